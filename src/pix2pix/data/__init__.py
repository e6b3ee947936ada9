from ..images import load_image, save_image, tensor_to_pil
from .files import SPLITS
from .paired import PairedDataset

__all__ = ["SPLITS", "PairedDataset", "load_image", "save_image", "tensor_to_pil"]
