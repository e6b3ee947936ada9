"""Which dataset reads a run's data: the layout its config names (aligned, folders or unpaired)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .paired import PairedDataset
from .unpaired import open_unpaired_split

if TYPE_CHECKING:
    from ..config import Config


def dataset_for(config: Config, split: str, *, load_size: int, cache: bool = True, progress: bool = False) -> Any:
    """The `split` of the dataset a run's config describes, resized to `load_size`: a PairedDataset,
    or for unpaired data an UnpairedDataset (pairs where an evaluation split holds them)."""
    mc, dc = config.model, config.data
    if dc.dataset_mode == "unpaired":
        return open_unpaired_split(
            dc.root,
            split,
            direction=dc.direction,
            load_size=load_size,
            input_nc=mc.input_nc,
            output_nc=mc.output_nc,
            cache=cache,
            progress=progress,
        )
    return PairedDataset(
        dc.root,
        split,
        mode=dc.dataset_mode,
        direction=dc.direction,
        load_size=load_size,
        input_nc=mc.input_nc,
        output_nc=mc.output_nc,
        cache=cache,
        progress=progress,
    )
