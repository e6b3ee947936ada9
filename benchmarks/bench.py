"""Speed benchmark: training and inference against an honest peak and against the reference's step.

A script, never a test. Prints a table and a JSON object. Every figure is a median of repeated
timings, all in one run; steps that are compared (ours and the reference's, ours and another
version's) run interleaved, one step each in turn, so the machine's drift hits both alike.

    python benchmarks/bench.py --quick                      # about 3 minutes on a 2-core CPU
    python benchmarks/bench.py --quick --baseline-src ../old/src   # also time another version's main job
    python benchmarks/bench.py --layers                     # each U-Net layer, oneDNN against GEMM (fp32, bf16)
    python benchmarks/bench.py --ops                        # where the paper step's time goes, op by op and in oneDNN
    python benchmarks/bench.py --distributed 2              # main job on 1 and 2 CPU processes
    python benchmarks/bench.py --device cuda                # the paper step per CUDA mode against the reference's
    python benchmarks/bench.py --fullsize demo/run          # seconds per 512 px and 1000 x 700 drawing at full size
    python benchmarks/bench.py --input-path [--device cuda] # a hints step's input side, now and at de4f1a5 (issue 38)

What it reports:
- peaks: the best measured throughput (fastest of several runs) of the kernels the models use, per dtype: fp32 matrix
  products and convolutions of the models' shapes (NCHW and channels_last), and bf16 ones where
  the CPU has native bf16. "x limit" divides a step's time by its FLOPs at the peak of the dtype
  it ran in, so it cannot be below 1; if it would be, the peak is wrong and the table says so.
- paper: the paper's configuration (unet_256, 70x70 PatchGAN, batch 1, 256 px) as we train it,
  and the same step as the field's reference computes it (benchmarks/reference_step.py), and our
  speed-up over it: the figure that compares across machines.
- main: the main job (configs/openmoji_cpu.yaml) img/s, and inference and loader throughput.
- cuda (`--device cuda`): the paper step at batch 1 and 16 in each mode (fp32, bf16 autocast,
  + channels_last, + torch.compile) beside the reference's step: img/s, MFU, peak memory.

This file parses the command line; the figures come from its neighbours: timing.py (medians,
peaks), steps.py (the steps timed), overview.py (the default run), throughput.py (inference,
loader, processes), cpu_detail.py (layers, ops), fullsize.py (full-size output) and gpu.py (CUDA).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import report  # noqa: E402

from pix2pix.cpu.choices import keep_freed_memory  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 3 minutes on 2 cores)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="also time the main-job step of another pix2pix version (its src/ folder), interleaved",
    )
    parser.add_argument(
        "--distributed",
        type=int,
        default=0,
        metavar="N",
        help="instead: main-job training with 1 and N CPU processes (gloo), global batch fixed",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="instead: each U-Net layer of the paper config, oneDNN against GEMM, and the timed choice",
    )
    parser.add_argument(
        "--modes", nargs="*", default=None, metavar="MODE", help="with --device cuda: only these modes (default: all)"
    )
    parser.add_argument(
        "--fullsize",
        nargs="?",
        const="",
        default=None,
        metavar="RUN",
        help="instead: seconds per 512 px and 1000 x 700 drawing at full size (a run's generator, "
        "else the main job's untrained)",
    )
    parser.add_argument(
        "--input-path",
        action="store_true",
        help="instead: a hints step's input side (crop, jitter, hints, fill) at 64/128/256 px, beside de4f1a5's",
    )
    parser.add_argument(
        "--ops",
        action="store_true",
        help="instead: the paper step's time per aten op and per oneDNN primitive (fp32, and bf16 where native)",
    )
    args = parser.parse_args()
    if args.input_path:
        from input_path import input_path_report

        keep_freed_memory()
        report(*input_path_report(torch.device(args.device), args.quick), args.json)
        return
    if args.device == "cuda":
        from gpu import MODES, bench_cuda, lines_of

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: this torch sees no CUDA device")
        result: dict = {}
        for batch in (1, 16):  # each batch's table as soon as it is measured
            part = bench_cuda(
                batches=(batch,),
                repeat=10 if args.quick else 20,
                peaks=result.get("peak_tflops"),
                modes={k: v for k, v in MODES.items() if args.modes is None or k in args.modes},
            )
            result = {**part, "batches": {**result.get("batches", {}), **part["batches"]}}
            print("\n".join(lines_of(part)), flush=True)
        report([], result, args.json)
        return
    keep_freed_memory()
    if args.layers:
        from cpu_detail import layers_report

        report(*layers_report(args.quick), args.json)
    elif args.ops:
        from cpu_detail import ops_report

        report(*ops_report(args.quick), args.json)
    elif args.fullsize is not None:
        from fullsize import fullsize_report

        report(*fullsize_report(Path(args.fullsize) if args.fullsize else None, args.quick), args.json)
    elif args.distributed:
        from throughput import distributed_report

        report(*distributed_report(args.distributed, args.quick), args.json)
    else:
        from overview import overview

        report(*overview(torch.device("cpu"), quick=args.quick, baseline_src=args.baseline_src), args.json)


if __name__ == "__main__":
    main()
