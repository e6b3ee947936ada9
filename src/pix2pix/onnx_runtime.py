"""ONNX export of a generator and an ONNX Runtime backend for inference.

The exported graph takes (B, input_nc, H, W) float32 in [-1, 1] with dynamic batch and spatial
axes (H and W must be multiples of the generator's size multiple; the pipeline pads to them).
onnx and onnxruntime are optional: they are imported only here.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .io import atomic_path, cache_dir

log = logging.getLogger(__name__)
OPSET = 18


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's internal noise: FutureWarnings from torch's own pytree code, log lines about
    torchvision operators a pix2pix model never uses, and the graph optimizer's INFO lines (onnx_ir,
    onnxscript: "Removed 151 unused nodes"), which the CLI's INFO logging would otherwise print."""
    noisy = [logging.getLogger(n) for n in ("torch.onnx._internal.exporter._registration", "onnx_ir", "onnxscript")]
    levels = [log.level for log in noisy]
    for log in noisy:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for log, level in zip(noisy, levels):
            log.setLevel(level)


def export_onnx(
    generator: nn.Module, path: str | Path, *, input_nc: int = 3, sample_size: int = 256, opset: int = OPSET
) -> Path:
    """Export `generator` in eval mode to `path` (written atomically) and check it with onnx.

    `sample_size` is the generator's size multiple: height and width are exported as dynamic
    multiples of it, and the batch as dynamic.
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'pix2pix[onnx]'") from None
    from .run_folder import unwrap

    g = unwrap(generator)
    was_training = g.training
    g.eval()
    path = Path(path)
    from torch.export import Dim

    # A sample of batch 2 and 2x3 multiples, so no dimension is specialised to 1.
    dummy = torch.zeros(2, input_nc, 2 * sample_size, 3 * sample_size, device=next(g.parameters()).device)
    dynamic = {
        "x": {
            0: Dim("batch", min=1, max=4096),
            2: sample_size * Dim("h", min=1, max=512),
            3: sample_size * Dim("w", min=1, max=512),
        }
    }
    try:
        with atomic_path(path) as tmp:
            with torch.no_grad(), _quiet_exporter():
                program = torch.onnx.export(
                    g,
                    (dummy,),
                    dynamic_shapes=dynamic,
                    input_names=["input"],
                    output_names=["output"],
                    opset_version=opset,
                    dynamo=True,
                    verbose=False,
                )
                program.save(str(tmp))
            onnx.checker.check_model(str(tmp))
    finally:
        g.train(was_training)
    return path


def cached_onnx(generator: nn.Module, weights: Path, pipe: Any) -> Path:
    """The ONNX export of `generator` for the ONNX backend, in pix2pix's cache folder (io.cache_dir),
    named by a hash of its weights file and what shapes the graph: reading a run never writes into
    it (a read-only run works; two processes export to their own temp files, and one rename wins).
    The first export of a model takes seconds, and says so."""
    import hashlib
    import time

    key = hashlib.sha256(Path(weights).read_bytes())
    key.update(f"{pipe.net_in_nc} {pipe.size_multiple} {OPSET} {torch.__version__}".encode())
    path = cache_dir() / "onnx" / f"{key.hexdigest()[:32]}.onnx"
    if not path.is_file():
        start = time.perf_counter()
        export_onnx(generator, path, input_nc=pipe.net_in_nc, sample_size=pipe.size_multiple)
        log.info("exported %s to ONNX once (%.1f s), cached as %s", weights, time.perf_counter() - start, path)
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
