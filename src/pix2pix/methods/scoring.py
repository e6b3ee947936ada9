"""What validation computes while a run trains: a translator's mean metrics over a split, and the
grid of sample rows the live page shows. (Judging a finished run against the baselines is
evaluation.py's, above the methods.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..images import from_uint8, to_unit
from ..metrics.image import image_metrics

if TYPE_CHECKING:
    from ..data.paired import PairedDataset


@torch.no_grad()
def paired_metrics(
    translate: Callable[[torch.Tensor, torch.Tensor, list[str]], torch.Tensor],
    dataset: PairedDataset,
    *,
    device: torch.device,
    batch_size: int = 16,
    lpips: torch.nn.Module | None = None,
) -> dict[str, float]:
    """Mean L1 / PSNR / SSIM (and LPIPS when given) of translate(A, B, names) against B over `dataset`.

    The caller puts its networks in eval mode; `translate` maps normalised A (and B, from which a
    hints model's simulated hints are drawn) to a fake B in [-1, 1].
    """
    sums: dict[str, float] = {}
    for start in range(0, len(dataset), batch_size):
        idx = list(range(start, min(start + batch_size, len(dataset))))
        a_u8, b_u8 = dataset.batch(torch.tensor(idx))
        names = [dataset.name(i) for i in idx]
        out = to_unit(translate(from_uint8(a_u8.to(device)), from_uint8(b_u8.to(device)), names)).float().cpu()
        target = to_unit(from_uint8(b_u8))
        values = image_metrics(out, target)
        if lpips is not None:
            values["lpips"] = lpips(out, target)
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
    return {k: v / len(dataset) for k, v in sums.items()}


def sample_rows(
    translators: dict[str, Callable[[torch.Tensor, torch.Tensor, list[str]], torch.Tensor]],
    a_u8: torch.Tensor,
    b_u8: torch.Tensor,
    *,
    device: torch.device,
    names: list[str] | None = None,
    hinted_input: torch.Tensor | None = None,
) -> torch.Tensor:
    """(3, N*S, K*S) grid in [0, 1]: one row per image, input | each translator's output | target.

    `hinted_input` ((N, C, S, S) in [-1, 1], the input with its hints drawn on) goes before the
    last output, the one made with those hints.
    """
    names = names or [str(i) for i in range(len(a_u8))]
    real_a, real_b = from_uint8(a_u8.to(device)), from_uint8(b_u8.to(device))
    outs = [to_unit(fn(real_a, real_b, names)).float().cpu() for fn in translators.values()]
    columns = [to_unit(from_uint8(a_u8)), *outs[:-1]]
    if hinted_input is not None:
        columns.append(to_unit(hinted_input.float().cpu()))
    columns += [outs[-1], to_unit(from_uint8(b_u8))]
    columns = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns]
    rows = torch.cat(columns, dim=3)  # (N, 3, S, K*S)
    return torch.cat(list(rows), dim=1)  # (3, N*S, K*S)
