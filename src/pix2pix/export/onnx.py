"""ONNX export of a generator and an ONNX Runtime backend for inference.

The exported graph takes (B, input_nc, H, W) float32 in [-1, 1] with dynamic batch and spatial
axes (H and W must be multiples of the generator's size multiple; the pipeline pads to them).
onnx and onnxruntime are optional: they are imported only here.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

log = logging.getLogger(__name__)
OPSET = 17


def export_onnx(generator: nn.Module, path: str | Path, *, input_nc: int = 3, sample_size: int = 256, opset: int = OPSET) -> Path:
    """Export `generator` in eval mode to `path` (written atomically) and check it with onnx."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'pix2pix[onnx]'") from None
    from ..training.checkpoint import unwrap

    g = unwrap(generator)
    was_training = g.training
    g.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    dummy = torch.zeros(1, input_nc, sample_size, sample_size, device=next(g.parameters()).device)
    axes = {0: "batch", 2: "height", 3: "width"}
    try:
        with torch.no_grad():
            torch.onnx.export(
                g, (dummy,), tmp, input_names=["input"], output_names=["output"],
                dynamic_axes={"input": axes, "output": axes}, opset_version=opset, dynamo=False,
            )  # fmt: skip
        onnx.checker.check_model(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        g.train(was_training)
    return path


class OnnxGenerator:
    """An ONNX Runtime session with the generator's tensor-in, tensor-out interface."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("the ONNX backend needs onnxruntime: pip install 'pix2pix[onnx]'") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        self.path = Path(path)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(["output"], {"input": x.detach().cpu().float().contiguous().numpy()})[0]
        return torch.from_numpy(out)
