"""Speed benchmark: training and inference against an honest peak and against the reference's step.

A script, never a test. Prints a table and a JSON object. Every figure is a median of repeated
timings, all in one run; steps that are compared (ours and the reference's, ours and another
version's) run interleaved, one step each in turn, so the machine's drift hits both alike.

    python benchmarks/bench.py --quick                      # about 3 minutes on a 2-core CPU
    python benchmarks/bench.py --quick --baseline-src ../old/src   # also time another version's main job
    python benchmarks/bench.py --layers                     # each U-Net layer, oneDNN against GEMM (fp32, bf16)
    python benchmarks/bench.py --ops                        # where the paper step's time goes, op by op and in oneDNN
    python benchmarks/bench.py --distributed 2              # main job on 1 and 2 CPU processes

What it reports:
- peaks: the best measured throughput (fastest of several runs) of the kernels the models use, per dtype: fp32 matrix
  products and convolutions of the models' shapes (NCHW and channels_last), and bf16 ones where
  the CPU has native bf16. "x limit" divides a step's time by its FLOPs at the peak of the dtype
  it ran in, so it cannot be below 1; if it would be, the peak is wrong and the table says so.
- paper: the paper's configuration (unet_256, 70x70 PatchGAN, batch 1, 256 px) as we train it,
  and the same step as the field's reference computes it (benchmarks/reference_step.py), and our
  speed-up over it: the figure that compares across machines.
- main: the main job (configs/openmoji_cpu.yaml) img/s, and inference and loader throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_step import ReferenceStep  # noqa: E402

from pix2pix.config import build_config, read_config_file  # noqa: E402
from pix2pix.methods import StepInfo, get_method  # noqa: E402
from pix2pix.models import gemm_conv  # noqa: E402
from pix2pix.training.cpu import choose_kernels, keep_freed_memory  # noqa: E402
from pix2pix.training.optim import keep_bf16_copies  # noqa: E402
from pix2pix.training.precision import cpu_flags, cpu_has_native_bf16, resolve_precision  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAPER = {"generator": "unet_256", "ngf": 64, "ndf": 64, "load_size": 256, "crop_size": 256, "batch_size": 1}
CYCLEGAN = {"method": "cyclegan"}  # the reference's defaults: ResNet-9 generators, 256 px, batch 1


def main_job_overrides() -> dict[str, Any]:
    """The main job's settings, read from its config file (one source of truth)."""
    return read_config_file(ROOT / "configs" / "openmoji_cpu.yaml")


def timings(fn: Callable[[], Any], *, repeat: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


def median_time(fn: Callable[[], Any], *, repeat: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> float:
    return statistics.median(timings(fn, repeat=repeat, warmup=warmup, sync=sync))


def best_time(fn: Callable[[], Any], *, repeat: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> float:
    """The fastest of `repeat` runs: a peak is what the machine can do, and noise only slows it."""
    return min(timings(fn, repeat=repeat, warmup=warmup, sync=sync))


def interleaved(fns: dict[str, Callable[[], Any]], *, repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each function, called in turn (A, B, A, B, ...) so drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


# --- peaks --------------------------------------------------------------------------------------

CONV_SHAPES = [  # (C_in, C_out, H) of convolutions in the models: 4x4, stride 2, batch 4
    (64, 128, 128), (128, 256, 64), (256, 512, 32), (512, 512, 16),
]


def measure_peaks(device: torch.device, quick: bool) -> dict[str, dict[str, float]]:
    """GFLOP/s of each kernel, per dtype: {'fp32': {'matmul 2048': ..., 'conv ...': ...}, 'bf16': {...}}."""
    repeat = 5 if quick else 9  # each kernel's fastest run counts
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    dtypes = [torch.float32] + ([torch.bfloat16] if device.type == "cuda" or cpu_has_native_bf16() else [])
    out: dict[str, dict[str, float]] = {}
    for dtype in dtypes:
        name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
        kernels: dict[str, float] = {}
        n = 2048
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        kernels[f"matmul {n}^3"] = 2 * n**3 / best_time(lambda a=a, b=b: a @ b, repeat=repeat, warmup=2, sync=sync) / 1e9
        for c_in, c_out, h in CONV_SHAPES[: 2 if quick else None]:
            w = torch.randn(c_out, c_in, 4, 4, device=device, dtype=dtype)
            for layout in ("nchw", "channels_last"):
                x = torch.randn(4, c_in, h, h, device=device, dtype=dtype)
                if layout == "channels_last":
                    x, w2 = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
                else:
                    w2 = w
                flops = 2 * 4 * c_out * c_in * 16 * (h // 2) ** 2
                t = best_time(lambda x=x, w2=w2: F.conv2d(x, w2, stride=2, padding=1), repeat=repeat, warmup=2, sync=sync)
                kernels[f"conv {c_in}->{c_out} @{h}px {layout}"] = flops / t / 1e9
        out[name] = kernels
    return out


def peak_of(peaks: dict[str, dict[str, float]], dtype: str) -> float:
    return max(peaks[dtype].values())


# --- steps --------------------------------------------------------------------------------------


class OurStep:
    """One training step of our pix2pix method on a fixed batch, as the training loop runs it."""

    def __init__(self, overrides: dict[str, Any], device: torch.device, *, amp: str = "off", bf16_copies: bool = True) -> None:
        cfg = build_config({**overrides, "amp": amp, "device": device.type})
        self.cfg = cfg
        self.precision = resolve_precision(cfg.train.amp, cfg.train.channels_last, device)
        torch.manual_seed(0)
        self.method = get_method(cfg.model.method)(cfg, device=device, precision=self.precision)
        self.method.train()
        b, s = cfg.train.batch_size, cfg.data.crop_size
        if device.type == "cpu" and cfg.train.cpu_kernels == "timed":
            examples = self.method.example_inputs(b // cfg.train.grad_accum, s)
            choose_kernels({k: (self.method.networks[k], x) for k, x in examples.items()}, self.precision.dtype)
        if bf16_copies:  # as training does (training/loop.py)
            keep_bf16_copies(list(self.method.networks.values()), device=device, dtype=self.precision.dtype,
                             grad_accum=cfg.train.grad_accum)  # fmt: skip
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
    from pix2pix.methods import make_adam
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
from bench import OurStep, interleaved
from pix2pix.training.cpu import keep_freed_memory
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
    import subprocess

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
            env = {**__import__("os").environ, "PYTHONPATH": path}
            proc = subprocess.run([sys.executable, "-c", script, json.dumps(overrides), str(steps), *extra],
                                  capture_output=True, text=True, env=env, timeout=900)  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"{name} run failed: {proc.stderr[-2000:]}")
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(out["img_per_s"])
            version = out.get("version", version) if name == "baseline" else version
    med = {name: statistics.median(v) for name, v in runs.items()}
    out = {"baseline_version": version, "baseline_img_per_s": med["baseline"], "no_hints_img_per_s": med["ours"],
           "speedup_vs_baseline_fp32": med["ours"] / med["baseline"], "rounds": runs}  # fmt: skip
    best = max(med["ours"], med.get("ours_bf16", 0.0))
    if "ours_bf16" in med:
        out["no_hints_bf16_img_per_s"] = med["ours_bf16"]
    out["speedup_vs_baseline"] = best / med["baseline"]  # the main job as it trains on this CPU
    return out


def flatten_overrides(data: dict[str, Any]) -> dict[str, Any]:
    """{'model': {'ngf': 16}, 'train': {...}} -> {'ngf': 16, ...}"""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


# --- inference and loader -----------------------------------------------------------------------


def bench_infer(step: OurStep, repeat: int) -> dict[str, float]:
    """Generator inference, batch 1, PyTorch and ONNX Runtime: seconds and FLOPs."""
    from pix2pix.inference import Pix2Pix

    cfg = step.cfg
    name = step.method.generators["AtoB"]
    pipe = Pix2Pix(step.method.networks[name], cfg, device=step.a.device)
    s = cfg.data.crop_size
    x = torch.rand(1, 3, s, s, device=step.a.device) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        pipe.translate_tensor(x)
    out = {"infer_gflop": counter.get_total_flops() / 1e9}
    out["infer_s"] = median_time(lambda: pipe.translate_tensor(x), repeat=repeat, warmup=2)
    try:
        from pix2pix.export.onnx import OnnxGenerator, export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(pipe.generator, Path(tmp) / "g.onnx", input_nc=pipe.net_in_nc, sample_size=pipe.size_multiple)
            ort = OnnxGenerator(path)
            xin = torch.cat([x, torch.zeros(1, pipe.hint_nc, s, s)], 1) if pipe.takes_hints else x
            out["onnx_infer_s"] = median_time(lambda: ort(xin), repeat=repeat, warmup=2)
    except ImportError:
        out["onnx_infer_s"] = float("nan")
    return out


def bench_loader(size: int, n: int, batch: int, crop: int) -> dict[str, float]:
    """Decode-once cost and cached batch throughput (gather + crop + flip + normalise)."""
    from pix2pix.data.loader import iterate_batches
    from pix2pix.data.paired import PairedDataset
    from pix2pix.data.transforms import normalize, random_crop_flip

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "train"
        folder.mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (size, 2 * size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        t = time.perf_counter()
        ds = PairedDataset(tmp, "train", load_size=size)
        decode = time.perf_counter() - t
        steps = max(1, 4 * n // batch)
        t = time.perf_counter()
        for step, a, b in iterate_batches(ds, batch_size=batch, seed=0, start_step=0, total_steps=steps):
            g = torch.Generator().manual_seed(step)
            a, b = random_crop_flip(a, b, crop_size=crop, flip=True, generator=g)
            normalize(a), normalize(b)
        loop = time.perf_counter() - t
    return {"decode_img_s": n / decode, "loader_img_s": steps * batch / loop}


# --- other modes --------------------------------------------------------------------------------


def bench_layers(overrides: dict, repeat: int, amp: str = "off") -> list[dict[str, Any]]:
    """Forward + backward of each GEMM-capable U-Net layer: oneDNN against the GEMM form, and the
    form the timing at the start of training picks; in float32, or under bf16 autocast (`amp`)."""
    step = OurStep(overrides, torch.device("cpu"), amp=amp)
    dtype = step.precision.dtype or torch.float32
    g = step.method.networks["generator"]
    example = next(iter(step.method.example_inputs(step.batch, step.cfg.data.crop_size).values()))
    names = {m: n for n, m in g.named_modules()}
    shapes = [(names[m], m, shape, in_dtype) for m, shape, in_dtype in gemm_conv.layer_inputs(g, example, dtype)]
    g.train()
    rows = []
    for name, mod, shape, in_dtype in shapes:
        x = torch.randn(shape).to(in_dtype).requires_grad_(name != "downs.0.0")
        key = (tuple(shape), dtype)

        with torch.no_grad(), gemm_conv.autocast_to(dtype):
            grad = torch.randn_like(mod(x))

        def run(mod: torch.nn.Module = mod, x: torch.Tensor = x, grad: torch.Tensor = grad) -> None:
            with gemm_conv.autocast_to(dtype):
                y = mod(x)
            y.backward(grad)

        with FlopCounterMode(display=False) as counter:
            run()
        chosen = getattr(mod, "kernel_choice", {}).get(key, "rule")
        times: dict[str, list[float]] = {"onednn": [], "gemm": []}
        for _ in range(repeat + 1):  # interleaved, so drift hits both alike; the first round warms up
            for kind in ("onednn", "gemm"):
                mod.kernel_choice = {**getattr(mod, "kernel_choice", {}), key: kind}
                t = time.perf_counter()
                run()
                times[kind].append(time.perf_counter() - t)
        mod.kernel_choice[key] = chosen
        onednn, gemm = (statistics.median(v[1:]) for v in times.values())
        rows.append({"layer": name, "dtype": step.dtype, "input": list(shape), "params_m": mod.weight.numel() / 1e6,
                     "weight_per_input": mod.weight.numel() / x.numel(), "gflop": counter.get_total_flops() / 1e9,
                     "onednn_ms": onednn * 1e3, "gemm_ms": gemm * 1e3, "timed_choice": chosen,
                     "rule_choice": "gemm" if gemm_conv.rule_says_gemm(mod, shape) else "onednn"})  # fmt: skip
    return rows


def bench_ops(overrides: dict, steps: int, amp: str = "off") -> dict[str, Any]:
    """Wall time per step of every aten op one training step dispatches, summed by op name.

    Each op is timed around its own call (a dispatch mode), so the rows add up to about the step
    (less the Python between ops, plus the mode's own cost). The torch profiler's CPU table does not:
    in a bf16 paper step it charged copy_ with 80-180 ms a step, where timing the op itself gives
    ~30 ms, and its total came to 1.3x the step.
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    totals: dict[str, list[float]] = {}

    class OpTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            row = totals.setdefault(func.overloadpacket.__name__, [0.0, 0])
            row[0] += time.perf_counter() - t
            row[1] += 1
            return out

    step = OurStep(overrides, torch.device("cpu"), amp=amp)
    for _ in range(2):
        step()
    plain = median_time(step, repeat=steps, warmup=0)
    with OpTimer():
        for _ in range(steps):
            step()
    ops = sorted(({"op": k, "ms": v[0] / steps * 1e3, "calls": v[1] // steps} for k, v in totals.items()),
                 key=lambda r: -r["ms"])  # fmt: skip
    return {"dtype": step.dtype, "step_ms": plain * 1e3, "ops_ms": sum(r["ms"] for r in ops), "ops": ops,
            "onednn": onednn_primitives(step)}  # fmt: skip


def onednn_primitives(step: Callable[[], Any]) -> list[dict[str, Any]]:
    """oneDNN's own account of one step: time per (primitive, implementation, direction), from its
    verbose log, which it writes to the process's stdout (captured here at the file descriptor).
    Shows what the aten rows hide: the reorders between PyTorch's layouts and oneDNN's blocked ones."""
    import os

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                step()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        lines = log.read().splitlines()
    totals: dict[tuple[str, str, str], list[float]] = {}
    for line in lines:  # onednn_verbose,v1,primitive,exec,cpu,KIND,IMPL,PROP,...,TIME_MS
        fields = line.split(",")
        if len(fields) > 8 and fields[0] == "onednn_verbose" and fields[3] == "exec":
            row = totals.setdefault((fields[5], fields[6], fields[7]), [0.0, 0])
            row[0] += float(fields[-1])
            row[1] += 1
    rows = [{"primitive": k[0], "implementation": k[1], "direction": k[2], "ms": v[0], "calls": v[1]} for k, v in totals.items()]
    return sorted(rows, key=lambda r: -r["ms"])


def _ddp_worker(rank: int, world: int, port: int, overrides: dict, batch: int, steps: int, out: str) -> None:
    """One rank of the distributed benchmark: DDP training steps at local batch = batch / world."""
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    keep_freed_memory()
    step = OurStep({**overrides, "batch_size": batch // world}, torch.device("cpu"))
    step.method.distribute(world=world, compile=False)
    times = []
    for i in range(steps + 2):
        dist.barrier()
        t = time.perf_counter()
        step.method.train_step(step.a, step.b, StepInfo(step=i, offset=rank * (batch // world), global_batch=batch))
        dist.barrier()
        if i >= 2:
            times.append(time.perf_counter() - t)
    if rank == 0:
        Path(out).write_text(json.dumps({"step_s": statistics.median(times)}))
    dist.destroy_process_group()


def bench_distributed(world: int, overrides: dict, batch: int, steps: int) -> dict[str, float]:
    """Global img/s with `world` CPU processes (gloo), the global batch split between them."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        mp.spawn(_ddp_worker, args=(world, port, overrides, batch, steps, out), nprocs=world, join=True)
        step_s = json.loads(Path(out).read_text())["step_s"]
    return {"ranks": world, "global_batch": batch, "step_s": step_s, "train_img_s": batch / step_s}


def report(lines: list[str], result: dict[str, Any], json_path: Path | None) -> None:
    """Print the table, then the same figures as JSON (also written to `json_path` if given)."""
    print("\n".join(lines))
    print(json.dumps(result, indent=2))
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))


def cpu_summary() -> str:
    """The CPU model and the SIMD features that decide kernel speed here."""
    from pix2pix.models.gemm_conv import cpu_signature

    flags = cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    return f"{cpu_signature()}; flags: {' '.join(f for f in wanted if f in flags) or 'unknown'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 3 minutes on 2 cores)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="also time the main-job step of another pix2pix version (its src/ folder), interleaved")
    parser.add_argument("--distributed", type=int, default=0, metavar="N",
                        help="instead: main-job training with 1 and N CPU processes (gloo), global batch fixed")
    parser.add_argument("--layers", action="store_true",
                        help="instead: each U-Net layer of the paper config, oneDNN against GEMM, and the timed choice")
    parser.add_argument("--ops", action="store_true",
                        help="instead: the paper step's time per aten op and per oneDNN primitive (fp32, and bf16 where native)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        keep_freed_memory()
    main_over = flatten_overrides(main_job_overrides())
    if args.layers:
        amps = ["off"] + (["bf16"] if cpu_has_native_bf16() else [])  # bf16: where the CPU has it natively
        rows = [r for amp in amps for r in bench_layers(PAPER, 5 if args.quick else 11, amp)]
        lines = [
            f"paper config, batch 1, forward + backward per layer; {cpu_summary()}",
            f"{'layer':10s} {'dtype':5s} {'input':>18s} {'M params':>8s} {'w/in':>6s} {'GFLOP':>6s} {'oneDNN ms':>9s} "
            f"{'GEMM ms':>8s} {'ratio':>6s} {'timed':>7s} {'rule':>7s}",
        ] + [
            f"{r['layer']:10s} {r['dtype']:5s} {str(tuple(r['input'])):>18s} {r['params_m']:8.2f} {r['weight_per_input']:6.0f} "
            f"{r['gflop']:6.2f} {r['onednn_ms']:9.2f} {r['gemm_ms']:8.2f} {r['onednn_ms'] / r['gemm_ms']:6.2f} "
            f"{r['timed_choice']:>7s} {r['rule_choice']:>7s}"
            for r in rows
        ]  # fmt: skip
        report(lines, {"cpu": cpu_summary(), "layers": rows}, args.json)
        return
    if args.ops:
        amps = ["off"] + (["bf16"] if cpu_has_native_bf16() else [])
        runs = [bench_ops(PAPER, 3 if args.quick else 5, amp) for amp in amps]
        lines = [f"paper config, batch 1, one training step op by op; {cpu_summary()}"]
        for run in runs:
            lines.append(f"{run['dtype']}: step {run['step_ms']:.1f} ms untimed; its ops add up to {run['ops_ms']:.1f} ms")
            lines += [f"  {r['op']:28s} {r['ms']:8.2f} ms {r['calls']:5d} calls" for r in run["ops"][:15]]
            lines.append(f"  oneDNN's own log of one step: {sum(r['ms'] for r in run['onednn']):.1f} ms in its primitives")
            lines += [f"    {r['primitive']:14s} {r['direction']:17s} {r['implementation']:44s} {r['ms']:7.2f} ms "
                      f"{r['calls']:4d} calls" for r in run["onednn"][:12]]  # fmt: skip
        report(lines, {"cpu": cpu_summary(), "ops": runs}, args.json)
        return
    if args.distributed:
        batch = main_over.get("batch_size", 16)
        rows = [bench_distributed(w, main_over, batch, 5 if args.quick else 15) for w in sorted({1, args.distributed})]
        lines = [f"main-job config, global batch {batch}, CPU gloo, {torch.get_num_threads()} cores shared by the ranks"] + [
            f"  {r['ranks']} rank(s): {r['step_s'] * 1000:7.1f} ms/step  {r['train_img_s']:7.1f} img/s  "
            f"x{r['train_img_s'] / rows[0]['train_img_s']:.2f}"
            for r in rows
        ]
        report(lines, {"cpu": cpu_summary(), "distributed": rows}, args.json)
        return

    repeat = 5 if args.quick else 11
    peaks = measure_peaks(device, args.quick)
    result: dict[str, Any] = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                              "cpu": cpu_summary(), "native_bf16": cpu_has_native_bf16(),
                              "peaks_gflops": peaks, "peak_gflops": {k: peak_of(peaks, k) for k in peaks}}  # fmt: skip

    # The paper's configuration: ours against the reference's step, interleaved.
    # Where the CPU has native bf16, our step also runs in bf16 autocast (what `amp auto` takes
    # when it measures faster); the headline is the faster of the two, its x limit against the
    # peak of its own dtype.
    ours = OurStep(PAPER, device)
    paper: dict[str, Any] = {"step_gflop": step_flops(ours) / 1e9, "dtype": ours.dtype}
    steps: dict[str, Callable[[], Any]] = {"ours": ours}
    if device.type == "cpu" and cpu_has_native_bf16():
        steps["ours_bf16"] = OurStep(PAPER, device, amp="bf16")
        steps["ours_bf16_no_copies"] = OurStep(PAPER, device, amp="bf16", bf16_copies=False)
    if device.type == "cpu":
        reference = ReferenceStep(batch=1, size=256)
        steps["reference"] = reference.step
    timed = interleaved(steps, repeat=repeat)
    paper["step_s"] = paper["fp32_step_s"] = timed["ours"]
    if "ours_bf16" in timed:
        paper["bf16_step_s"] = timed["ours_bf16"]
        paper["bf16_no_copies_step_s"] = timed["ours_bf16_no_copies"]  # casting weights every step instead
        if timed["ours_bf16"] < timed["ours"]:
            paper.update(step_s=timed["ours_bf16"], dtype="bf16")
    if "reference" in timed:
        paper["reference_step_s"] = timed["reference"]
        paper["speedup_vs_reference"] = timed["reference"] / paper["step_s"]
    paper.update(bench_infer(ours, repeat * 2))
    del ours, steps

    # The main job, and (with --baseline-src) another version's main-job step, interleaved.
    main_step = OurStep(main_over, device)
    main: dict[str, Any] = {"step_gflop": step_flops(main_step) / 1e9, "dtype": main_step.dtype,
                            "batch": main_step.batch, "hints": main_step.cfg.model.hints}  # fmt: skip
    main_steps: dict[str, Callable[[], Any]] = {"ours": main_step}
    if device.type == "cpu" and cpu_has_native_bf16():
        main_steps["ours_bf16"] = OurStep(main_over, device, amp="bf16")
    timed = interleaved(main_steps, repeat=repeat * 2)
    main["step_s"] = main["fp32_step_s"] = timed["ours"]
    if "ours_bf16" in timed:
        main["bf16_img_per_s"] = main_step.batch / timed["ours_bf16"]
        if timed["ours_bf16"] < timed["ours"]:
            main.update(step_s=timed["ours_bf16"], dtype="bf16")
    main["img_per_s"] = main_step.batch / main["step_s"]
    del main_steps
    if args.baseline_src is not None:
        # Both on the baseline's config (no hints: it has none), each in its own process.
        base_over = {k: v for k, v in main_over.items() if not k.startswith("hint")}
        main.update(versus_baseline(args.baseline_src, base_over, rounds=3 if args.quick else 5, steps=30 if args.quick else 60))
    main.update(bench_infer(main_step, repeat * 3))
    main.update(bench_loader(main_step.cfg.data.crop_size, 32 if args.quick else 128, main_step.batch,
                             main_step.cfg.data.crop_size))  # fmt: skip
    main["loader_x_train"] = main["loader_img_s"] / main["img_per_s"]

    # CycleGAN at the reference's settings: one step's time.
    cyc = OurStep(CYCLEGAN, device)
    cyclegan = {"step_gflop": step_flops(cyc) / 1e9, "dtype": cyc.dtype}
    cyclegan["step_s"] = interleaved({"ours": cyc}, repeat=3 if args.quick else 7, warmup=1)["ours"]
    cyclegan["train_x_limit"] = cyclegan["step_s"] / (cyclegan["step_gflop"] / result["peak_gflops"][cyc.dtype])
    del cyc
    result["cyclegan"] = cyclegan

    warnings = []
    for name, row in (("paper", paper), ("main", main)):
        peak = result["peak_gflops"][row["dtype"]]
        row["train_limit_s"] = row["step_gflop"] / peak
        row["train_x_limit"] = row["step_s"] / row["train_limit_s"]
        row["infer_limit_s"] = row["infer_gflop"] / result["peak_gflops"]["fp32"]
        best_infer = min(v for v in (row["infer_s"], row["onnx_infer_s"]) if v == v)
        row["infer_x_limit"] = best_infer / row["infer_limit_s"]
        for key in ("train_x_limit", "infer_x_limit"):
            if row[key] < 1.0:
                warnings.append(f"{name} {key} {row[key]:.2f} < 1: the measured peak is wrong (too low)")
    if "reference_step_s" in paper:
        # The most a step could gain over the reference's if every FLOP ran at the measured peak of
        # its dtype: in float32 that is only ~2x, so a 2x speed-up there needs the whole step at peak.
        paper["ceiling_vs_reference"] = {
            dtype: paper["reference_step_s"] / (paper["step_gflop"] / result["peak_gflops"][dtype]) for dtype in peaks
        }
    result.update({"paper": paper, "main": main, "warnings": warnings})

    peak_lines = [f"  {dtype} peak {max(k.values()):.0f} GFLOP/s  (" + ", ".join(f"{n} {v:.0f}" for n, v in k.items()) + ")"
                  for dtype, k in peaks.items()]  # fmt: skip
    lines = [f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; {result['cpu']}",
             "measured peaks (GFLOP/s):", *peak_lines, ""]  # fmt: skip
    lines.append(f"paper (unet_256, 70x70 PatchGAN, batch 1, 256 px, {paper['dtype']}): step {paper['step_s']:.3f} s, "
                 f"{paper['step_gflop']:.1f} GFLOP, x{paper['train_x_limit']:.2f} limit")  # fmt: skip
    if "bf16_step_s" in paper:
        lines.append(f"  fp32 {paper['fp32_step_s']:.3f} s, bf16 autocast {paper['bf16_step_s']:.3f} s (native bf16; "
                     f"{paper['bf16_no_copies_step_s']:.3f} s without bf16 weight copies)")  # fmt: skip
    if "reference_step_s" in paper:
        lines.append(f"  reference's step (eager, for-loop Adam, batch norm): {paper['reference_step_s']:.3f} s; "
                     f"ours is {paper['speedup_vs_reference']:.2f}x faster")  # fmt: skip
        lines.append("  at the measured peak a step would be at most " + ", ".join(
            f"{v:.2f}x ({k})" for k, v in paper["ceiling_vs_reference"].items()) + " faster than the reference's")  # fmt: skip
    lines.append(f"  inference: PyTorch {paper['infer_s'] * 1000:.1f} ms, ONNX Runtime {paper['onnx_infer_s'] * 1000:.1f} ms, "
                 f"x{paper['infer_x_limit']:.2f} limit")  # fmt: skip
    lines.append(f"main job (configs/openmoji_cpu.yaml, batch {main['batch']}{', hints' if main['hints'] else ''}): "
                 f"{main['img_per_s']:.1f} img/s ({main['step_s'] * 1000:.1f} ms/step, {main['step_gflop']:.1f} GFLOP, "
                 f"{main['dtype']}, x{main['train_x_limit']:.2f} limit)")  # fmt: skip
    if "bf16_img_per_s" in main:
        lines.append(f"  fp32 {main['batch'] / main['fp32_step_s']:.1f} img/s, bf16 autocast {main['bf16_img_per_s']:.1f} img/s (native bf16)")
    if "baseline_img_per_s" in main:
        bf16 = f", bf16 autocast {main['no_hints_bf16_img_per_s']:.1f}" if "no_hints_bf16_img_per_s" in main else ""
        lines.append(f"  without hints (the baseline's config): fp32 {main['no_hints_img_per_s']:.1f}{bf16} img/s; "
                     f"pix2pix {main['baseline_version']} from {args.baseline_src} (fp32): {main['baseline_img_per_s']:.1f} img/s "
                     f"-> {main['speedup_vs_baseline']:.2f}x as the main job trains here "
                     f"({main['speedup_vs_baseline_fp32']:.2f}x fp32 against fp32)")  # fmt: skip
    lines.append(f"  inference: PyTorch {main['infer_s'] * 1000:.2f} ms, ONNX Runtime {main['onnx_infer_s'] * 1000:.2f} ms; "
                 f"loader {main['loader_img_s']:.0f} img/s = {main['loader_x_train']:.0f}x training")  # fmt: skip
    lines.append(f"cyclegan (the reference's defaults: 2 ResNet-9 G, 2 70x70 D, 256 px, batch 1, {cyclegan['dtype']}): "
                 f"step {cyclegan['step_s']:.2f} s, {cyclegan['step_gflop']:.0f} GFLOP, x{cyclegan['train_x_limit']:.2f} limit")  # fmt: skip
    if cyclegan["train_x_limit"] < 1:
        warnings.append(f"cyclegan train_x_limit {cyclegan['train_x_limit']:.2f} < 1: the measured peak is wrong (too low)")
    lines += [f"WARNING: {w}" for w in warnings]
    report(lines, result, args.json)


if __name__ == "__main__":
    main()
