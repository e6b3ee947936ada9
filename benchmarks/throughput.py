"""Inference, data-loader and multi-process training throughput."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from steps import OurStep, main_job_overrides
from timing import cpu_summary, median_time
from torch.utils.flop_counter import FlopCounterMode

from pix2pix.cpu.choices import keep_freed_memory
from pix2pix.methods import StepInfo


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
        from pix2pix.onnx_runtime import OnnxGenerator, export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(
                pipe.generator, Path(tmp) / "g.onnx", input_nc=pipe.net_in_nc, sample_size=pipe.size_multiple
            )
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
    from pix2pix.data.transforms import random_crop_flip
    from pix2pix.images import from_uint8

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
            from_uint8(a), from_uint8(b)
        loop = time.perf_counter() - t
    return {"decode_img_s": n / decode, "loader_img_s": steps * batch / loop}


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


def distributed_report(world: int, quick: bool) -> tuple[list[str], dict[str, Any]]:
    """`--distributed N`: main-job training on 1 and N CPU processes (gloo), global batch fixed."""
    main_over = main_job_overrides()
    batch = main_over.get("batch_size", 16)
    rows = [bench_distributed(w, main_over, batch, 5 if quick else 15) for w in sorted({1, world})]
    lines = [
        f"main-job config, global batch {batch}, CPU gloo, {torch.get_num_threads()} cores shared by the ranks"
    ] + [
        f"  {r['ranks']} rank(s): {r['step_s'] * 1000:7.1f} ms/step  {r['train_img_s']:7.1f} img/s  "
        f"x{r['train_img_s'] / rows[0]['train_img_s']:.2f}"
        for r in rows
    ]
    return lines, {"cpu": cpu_summary(), "distributed": rows}
