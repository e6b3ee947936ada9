"""The training steps the benchmarks time: ours as the training loop runs it, and another
version's main-job step (`--baseline-src`), each in its own process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from pix2pix import cpu
from pix2pix.config import build_config, read_config_file
from pix2pix.cpu.bf16_copies import keep_bf16_copies
from pix2pix.cpu.choices import choose_kernels
from pix2pix.methods import StepInfo, get_method
from pix2pix.precision import cpu_has_native_bf16, resolve_precision

ROOT = Path(__file__).resolve().parent.parent
PAPER = {"generator": "unet_256", "ngf": 64, "ndf": 64, "load_size": 256, "crop_size": 256, "batch_size": 1}
CYCLEGAN = {"method": "cyclegan"}  # the reference's defaults: ResNet-9 generators, 256 px, batch 1


def main_job_overrides() -> dict[str, Any]:
    """The main job's settings, read from its config file (one source of truth), flat."""
    return flatten_overrides(read_config_file(ROOT / "configs" / "openmoji_cpu.yaml"))


def flatten_overrides(data: dict[str, Any]) -> dict[str, Any]:
    """{'model': {'ngf': 16}, 'train': {...}} -> {'ngf': 16, ...}"""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


class OurStep:
    """One training step of our pix2pix method on a fixed batch, as the training loop runs it
    (`compile`: the step runs torch.compile'd networks, as `--compile` trains)."""

    def __init__(
        self,
        overrides: dict[str, Any],
        device: torch.device,
        *,
        amp: str = "off",
        bf16_copies: bool = True,
        compile: bool = False,
    ) -> None:
        cfg = build_config({**overrides, "amp": amp, "device": device.type})
        self.cfg = cfg
        self.precision = resolve_precision(cfg.train.amp, cfg.train.channels_last, device)
        torch.manual_seed(0)
        self.method = get_method(cfg.model.method)(cfg, device=device, precision=self.precision)
        if device.type == "cpu":  # as training does (training/loop.py)
            for net in self.method.networks.values():
                cpu.convert(net)
        self.method.train()
        b, s = cfg.train.batch_size, cfg.data.crop_size
        if device.type == "cpu" and cfg.train.cpu_kernels == "timed":
            examples = self.method.example_inputs(b // cfg.train.grad_accum, s)
            choose_kernels({k: (self.method.networks[k], x) for k, x in examples.items()}, self.precision.dtype)
        if bf16_copies:  # as training does (training/loop.py)
            keep_bf16_copies(
                list(self.method.networks.values()),
                list(self.method.optimizers.values()),
                device=device,
                dtype=self.precision.dtype,
                grad_accum=cfg.train.grad_accum,
                compiled=compile,
            )
        if compile:
            self.method.distribute(world=1, compile=True)
        gen = torch.Generator().manual_seed(1)
        self.a = self.precision.to_memory_format((torch.rand(b, 3, s, s, generator=gen) * 2 - 1).to(device))
        self.b = self.precision.to_memory_format((torch.rand(b, 3, s, s, generator=gen) * 2 - 1).to(device))
        self.step_index = 0
        self.batch = b

    def __call__(self) -> None:
        self.method.train_step(self.a, self.b, StepInfo(step=self.step_index, offset=0, global_batch=self.batch))
        self.step_index += 1

    @property
    def dtype(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.precision.dtype]


def step_flops(step: Callable[[], Any]) -> float:
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


BASELINE_SCRIPT = """
import json, statistics, sys, time, torch
from pix2pix.config import Config, apply_overrides
from pix2pix.losses import GANLoss
from pix2pix.models import make_discriminator, make_generator
try:
    from pix2pix.training.loop import make_adam, train_step
except ImportError:
    try:
        from pix2pix.methods import make_adam
    except ImportError:
        from pix2pix.optim import make_adam
    from pix2pix.methods.pix2pix import train_step
import pix2pix
over = json.loads(sys.argv[1])
known = {f for section in ("model", "data", "train") for f in getattr(Config(), section).__dataclass_fields__}
cfg = apply_overrides(Config(), {k: v for k, v in over.items() if k in known})
torch.manual_seed(0)
g, d = make_generator(cfg.model), make_discriminator(cfg.model)
og, od = make_adam(g.parameters(), cfg.train, None), make_adam(d.parameters(), cfg.train, None)
gan = GANLoss(cfg.train.gan_mode)
b, s = cfg.train.batch_size, cfg.data.crop_size
gen = torch.Generator().manual_seed(1)
x, y = (torch.rand(b, 3, s, s, generator=gen) * 2 - 1 for _ in range(2))
for _ in range(3):
    train_step(g, d, og, od, gan, x, y, cfg.train)
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); train_step(g, d, og, od, gan, x, y, cfg.train); times.append(time.perf_counter() - t)
print(json.dumps({"img_per_s": b / statistics.median(times), "version": getattr(pix2pix, "__version__", "?")}))
"""

OURS_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[3])
from steps import OurStep
from timing import interleaved
from pix2pix.cpu.choices import keep_freed_memory
import torch
keep_freed_memory()
step = OurStep(json.loads(sys.argv[1]), torch.device("cpu"), amp=sys.argv[4])
t = interleaved({"ours": step}, repeat=int(sys.argv[2]), warmup=3)["ours"]
print(json.dumps({"img_per_s": step.batch / t}))
"""


def versus_baseline(src: Path, overrides: dict[str, Any], *, rounds: int, steps: int) -> dict[str, Any]:
    """Main-job img/s of another pix2pix version (its src/ folder) and of ours, each in its own
    process as a user runs it (process-wide settings such as the allocator's stay apart), in
    alternating rounds so the machine's drift hits both alike. Ours runs in float32, and where the
    CPU has native bf16 also in bf16 autocast; as the main job trains it is the faster of the two
    (what `amp auto` takes when it measures faster). The baseline has no CPU bf16: float32 only."""
    if not (src / "pix2pix" / "__init__.py").is_file():
        raise SystemExit(f"--baseline-src {src}: no pix2pix package there")
    ours_src, bench_dir = str(ROOT / "src"), str(ROOT / "benchmarks")
    runs_of = {"baseline": (BASELINE_SCRIPT, str(src), []), "ours": (OURS_SCRIPT, ours_src, [bench_dir, "off"])}
    if cpu_has_native_bf16():
        runs_of["ours_bf16"] = (OURS_SCRIPT, ours_src, [bench_dir, "bf16"])
    runs: dict[str, list[float]] = {name: [] for name in runs_of}
    version = "?"
    for _ in range(rounds):
        for name, (script, path, extra) in runs_of.items():
            env = {**os.environ, "PYTHONPATH": path}
            proc = subprocess.run(
                [sys.executable, "-c", script, json.dumps(overrides), str(steps), *extra],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
            )
            if proc.returncode != 0:
                raise SystemExit(f"{name} run failed: {proc.stderr[-2000:]}")
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(out["img_per_s"])
            version = out.get("version", version) if name == "baseline" else version
    med = {name: statistics.median(v) for name, v in runs.items()}
    out = {
        "baseline_version": version,
        "baseline_img_per_s": med["baseline"],
        "no_hints_img_per_s": med["ours"],
        "speedup_vs_baseline_fp32": med["ours"] / med["baseline"],
        "rounds": runs,
    }
    best = max(med["ours"], med.get("ours_bf16", 0.0))
    if "ours_bf16" in med:
        out["no_hints_bf16_img_per_s"] = med["ours_bf16"]
    out["speedup_vs_baseline"] = best / med["baseline"]  # the main job as it trains on this CPU
    return out
