"""The main job's training time, this checkout against another version, as a user runs it (issue 38).

    python benchmarks/train_time.py --baseline-src ../old/src --data demo/data [--steps 400] [--rounds 2]

Runs `pix2pix train` with `make demo`'s settings (configs/openmoji_cpu.yaml, --ngf 32 --lr 1e-3) for
--steps steps, this checkout and the baseline (its src/ folder on PYTHONPATH) in alternating rounds on
the same data, so the machine's drift hits both alike. Prints each run's training img/s (the loop's
own figure: steps only) and its whole wall time (decoding, labelling the hint regions, kernel choice,
steps, the last checkpoint), then the medians and their ratio, and one JSON object.
A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARGS = [
    "--ngf",
    "32",
    "--lr",
    "1e-3",
    "--val-every",
    "0",
    "--sample-every",
    "0",
    "--select-by",
    "",
    "--no-tensorboard",
    "--no-html",
]


def run_once(src: Path, data: Path, steps: int, out: Path) -> dict[str, float]:
    config = ROOT / "src" / "pix2pix" / "configs" / "openmoji_cpu.yaml"
    cmd = [sys.executable, "-m", "pix2pix", "--no-progress", "train", "--config", str(config)]
    cmd += ["--data", str(data), "--out", str(out), "--max-steps", str(steps), *ARGS]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{src}: training failed:\n{proc.stderr[-2000:]}")
    found = re.search(r"in ([\d.]+) s \(([\d.]+) img/s\)", proc.stdout + proc.stderr)
    if found is None:
        raise SystemExit(f"{src}: no 'trained ... in S s (R img/s)' line in its output")
    return {"train_s": float(found.group(1)), "img_per_s": float(found.group(2)), "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, required=True, help="the other version's src/ folder")
    parser.add_argument("--data", type=Path, required=True, help="the main job's dataset (make demo's demo/data)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    versions = {"baseline": args.baseline_src.resolve(), "this checkout": ROOT / "src"}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, src in versions.items():
                runs[name].append(
                    run_once(src, args.data.resolve(), args.steps, Path(tmp) / f"{r}-{name.replace(' ', '-')}")
                )
                print(f"round {r + 1} {name:14s} {runs[name][-1]}", flush=True)
    med = {name: {k: statistics.median(x[k] for x in v) for k in v[0]} for name, v in runs.items()}
    ratio = med["this checkout"]["img_per_s"] / med["baseline"]["img_per_s"]
    wall = med["baseline"]["wall_s"] / med["this checkout"]["wall_s"]
    print(f"medians: {json.dumps(med)}")
    print(f"training img/s, this checkout / baseline: {ratio:.3f}; wall time, baseline / this checkout: {wall:.3f}")
    print(json.dumps({"steps": args.steps, "rounds": runs, "medians": med, "img_per_s_ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
