"""Speed benchmark: training and inference img/s, FLOPs, fraction of peak, data-loader throughput.

A script, never a test. Prints a table and a JSON object. Medians over repeated timings, all
measured in one run (these machines are noisy; compare ratios from the same run).

    python benchmarks/bench.py --quick        # under 3 minutes on a 2-core CPU
    python benchmarks/bench.py --device cuda  # GPU paths (AMP, channels_last) where a GPU exists
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from pix2pix.config import Config, apply_overrides
from pix2pix.losses import GANLoss
from pix2pix.methods import make_adam
from pix2pix.methods.pix2pix import train_step
from pix2pix.models import gemm_conv, make_discriminator, make_generator

CONFIGS = {
    # name: (overrides, batch)
    "paper b1": ({"generator": "unet_256", "ngf": 64, "ndf": 64, "load_size": 256, "crop_size": 256}, 1),
    "paper b4": ({"generator": "unet_256", "ngf": 64, "ndf": 64, "load_size": 256, "crop_size": 256}, 4),
    # configs/openmoji_cpu.yaml
    "main job b16": ({"generator": "unet_64", "ngf": 16, "ndf": 16, "discriminator": "pixel", "dropout": False,
                      "load_size": 64, "crop_size": 64, "lambda_l1": 300, "lambda_ssim": 300}, 16),
}


def median_time(fn: Callable[[], Any], *, repeat: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_gflops(device: torch.device, n: int = 2048, repeat: int = 5) -> float:
    """Dense fp32 matmul throughput: this machine's practical peak."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t = median_time(lambda: a @ b, repeat=repeat, warmup=2, sync=sync)
    return 2 * n**3 / t / 1e9


def build(cfg: Config, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    return make_generator(cfg.model).to(device), make_discriminator(cfg.model).to(device)


def bench_train(cfg: Config, batch: int, device: torch.device, repeat: int) -> dict[str, float]:
    g, d = build(cfg, device)
    opt_g, opt_d = make_adam(g.parameters(), cfg.train, device), make_adam(d.parameters(), cfg.train, device)
    gan = GANLoss(cfg.train.gan_mode)
    s = cfg.data.crop_size
    a = torch.rand(batch, 3, s, s, device=device) * 2 - 1
    b = torch.rand(batch, 3, s, s, device=device) * 2 - 1
    step = lambda: train_step(g, d, opt_g, opt_d, gan, a, b, cfg.train)  # noqa: E731
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t = median_time(step, repeat=repeat, warmup=1, sync=sync)
    return {"step_s": t, "train_img_s": batch / t, "step_gflop": flops / 1e9}


def bench_infer(cfg: Config, batch: int, device: torch.device, repeat: int, backend: str) -> dict[str, float]:
    from pix2pix.inference import Pix2Pix

    g, _ = build(cfg, device)
    pipe = Pix2Pix(g, cfg, device=device)
    s = cfg.data.crop_size
    x = torch.rand(batch, 3, s, s, device=device) * 2 - 1
    if backend == "onnx":
        from pix2pix.export.onnx import OnnxGenerator, export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(g, Path(tmp) / "g.onnx", input_nc=cfg.model.input_nc)
            ort = OnnxGenerator(path)
            run = lambda: ort(x)  # noqa: E731
            t = median_time(run, repeat=repeat, warmup=2)
    else:
        with FlopCounterMode(display=False) as counter:
            pipe.translate_tensor(x)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        t = median_time(lambda: pipe.translate_tensor(x), repeat=repeat, warmup=2, sync=sync)
        return {"infer_s": t, "infer_img_s": batch / t, "infer_gflop": counter.get_total_flops() / 1e9}
    return {"infer_s": t, "infer_img_s": batch / t}


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


def _ddp_worker(rank: int, world: int, port: int, overrides: dict, batch: int, steps: int, out: str) -> None:
    """One rank of the distributed benchmark: DDP training steps at local batch = batch / world."""
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    cfg = apply_overrides(Config(), {**overrides, "batch_size": batch})
    g, d = build(cfg, torch.device("cpu"))
    frozen = d
    if world > 1:
        g = torch.nn.parallel.DistributedDataParallel(g, gradient_as_bucket_view=True)
        d = torch.nn.parallel.DistributedDataParallel(d, gradient_as_bucket_view=True)
    opt_g, opt_d = make_adam(g.parameters(), cfg.train, None), make_adam(d.parameters(), cfg.train, None)
    s = cfg.data.crop_size
    local = batch // world
    a, b = torch.rand(local, 3, s, s) * 2 - 1, torch.rand(local, 3, s, s) * 2 - 1
    gan = GANLoss(cfg.train.gan_mode)
    times = []
    for i in range(steps + 2):
        dist.barrier()
        t = time.perf_counter()
        train_step(g, d, opt_g, opt_d, gan, a, b, cfg.train, frozen_discriminator=frozen)
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


def bench_layers(overrides: dict, batch: int, repeat: int) -> list[dict[str, Any]]:
    """Forward + backward of each U-Net conv, oneDNN against the GEMM form (models/gemm_conv.py)."""
    cfg = apply_overrides(Config(), {**overrides, "batch_size": batch})
    g, _ = build(cfg, torch.device("cpu"))
    shapes: list[tuple[str, torch.nn.Module, torch.Size]] = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: shapes.append((name, mod, inp[0].shape)))
        for name, m in g.named_modules()
        if isinstance(m, (gemm_conv.Conv2d, gemm_conv.ConvTranspose2d))
    ]
    with torch.no_grad():
        g.eval()(torch.zeros(batch, cfg.model.input_nc, cfg.data.crop_size, cfg.data.crop_size))
    for h in hooks:
        h.remove()
    g.train()
    saved, rows = gemm_conv.GEMM_MIN_WEIGHT_RATIO, []
    try:
        for name, mod, shape in shapes:
            x = torch.randn(shape, requires_grad=name != "downs.0.0")
            y = mod(x)
            grad = torch.randn_like(y)
            with FlopCounterMode(display=False) as counter:
                mod(x).backward(grad)
            times: dict[str, list[float]] = {"onednn": [], "gemm": []}
            for _ in range(repeat + 1):  # interleaved, so drift hits both alike; the first round warms up
                for kind, ratio in (("onednn", float("inf")), ("gemm", 0.0)):
                    gemm_conv.GEMM_MIN_WEIGHT_RATIO = ratio
                    t = time.perf_counter()
                    mod(x).backward(grad)
                    times[kind].append(time.perf_counter() - t)
            onednn, gemm = (statistics.median(v[1:]) for v in times.values())
            rows.append({"layer": name, "input": list(shape), "params_m": mod.weight.numel() / 1e6,
                         "weight_per_input": mod.weight.numel() / x.numel(),
                         "gflop": counter.get_total_flops() / 1e9, "onednn_ms": onednn * 1e3, "gemm_ms": gemm * 1e3})
    finally:
        gemm_conv.GEMM_MIN_WEIGHT_RATIO = saved
    return rows


def report(lines: list[str], result: dict[str, Any], json_path: Path | None) -> None:
    """Print the table, then the same figures as JSON (also written to `json_path` if given)."""
    print("\n".join(lines))
    print(json.dumps(result, indent=2))
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and configurations (< 3 min on 2 cores)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--distributed", type=int, default=0, metavar="N",
                        help="instead: main-job training with 1 and N CPU processes (gloo), global batch fixed")
    parser.add_argument("--layers", action="store_true",
                        help="instead: each U-Net conv of the paper config, oneDNN against the GEMM form")
    args = parser.parse_args()
    if args.layers:
        overrides, batch = CONFIGS["paper b1"]
        rows = bench_layers(overrides, batch, 5 if args.quick else 11)
        lines = [
            f"paper config, batch {batch}, forward + backward per layer, {torch.get_num_threads()} threads "
            f"(training uses GEMM where weight/input >= {gemm_conv.GEMM_MIN_WEIGHT_RATIO:g})",
            f"{'layer':10s} {'input':>18s} {'M params':>8s} {'w/in':>6s} {'GFLOP':>6s} {'oneDNN ms':>9s} {'GEMM ms':>8s} {'ratio':>6s}",
        ] + [
            f"{r['layer']:10s} {str(tuple(r['input'])):>18s} {r['params_m']:8.2f} {r['weight_per_input']:6.0f} {r['gflop']:6.2f} "
            f"{r['onednn_ms']:9.2f} {r['gemm_ms']:8.2f} {r['onednn_ms'] / r['gemm_ms']:6.2f}"
            for r in rows
        ]
        report(lines, {"layers": rows}, args.json)
        return
    if args.distributed:
        overrides, batch = CONFIGS["main job b16"]
        rows = [bench_distributed(w, overrides, batch, 5 if args.quick else 15) for w in sorted({1, args.distributed})]
        lines = [f"main-job config, global batch {batch}, CPU gloo, {torch.get_num_threads()} cores shared by the ranks"] + [
            f"  {r['ranks']} rank(s): {r['step_s'] * 1000:7.1f} ms/step  {r['train_img_s']:7.1f} img/s  "
            f"x{r['train_img_s'] / rows[0]['train_img_s']:.2f}"
            for r in rows
        ]
        report(lines, {"distributed": rows}, args.json)
        return
    device = torch.device(args.device)
    repeat = 3 if args.quick else 7
    peak = peak_gflops(device)
    rows: dict[str, dict[str, float]] = {}
    for name, (overrides, batch) in CONFIGS.items():
        if args.quick and name == "paper b4":
            continue
        cfg = apply_overrides(Config(), {**overrides, "batch_size": batch})
        row = bench_train(cfg, batch, device, repeat)
        row.update(bench_infer(cfg, 1, device, repeat * 3, "torch"))
        try:
            row["onnx_infer_s"] = bench_infer(cfg, 1, device, repeat * 3, "onnx")["infer_s"]
        except ImportError:
            row["onnx_infer_s"] = float("nan")
        row["train_limit_s"] = row["step_gflop"] / peak
        row["train_x_limit"] = row["step_s"] / row["train_limit_s"]
        row["infer_limit_s"] = row["infer_gflop"] / peak
        row["infer_x_limit"] = min(row["infer_s"], row["onnx_infer_s"]) / row["infer_limit_s"]
        row.update(bench_loader(cfg.data.crop_size, 32 if args.quick else 128, batch, cfg.data.crop_size))
        row["loader_x_train"] = row["loader_img_s"] / row["train_img_s"]
        rows[name] = row
    head = f"{'config':14s} {'step s':>8s} {'img/s':>7s} {'GFLOP':>7s} {'x limit':>7s} | {'infer s':>8s} {'onnx s':>8s} {'x limit':>7s} | {'loader img/s':>12s} {'x train':>8s}"
    lines = [f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, peak {peak:.0f} GFLOP/s (fp32 matmul)",
             head, "-" * len(head)] + [
        f"{name:14s} {r['step_s']:8.3f} {r['train_img_s']:7.1f} {r['step_gflop']:7.1f} {r['train_x_limit']:7.2f} | "
        f"{r['infer_s']:8.4f} {r['onnx_infer_s']:8.4f} {r['infer_x_limit']:7.2f} | {r['loader_img_s']:12.0f} {r['loader_x_train']:8.0f}"
        for name, r in rows.items()
    ]
    result = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(), "peak_gflops": peak, "configs": rows}
    report(lines, result, args.json)

if __name__ == "__main__":
    main()
