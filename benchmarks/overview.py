"""The default benchmark: measured peaks, the paper's step against the reference's, the main job's
img/s (and another version's, with --baseline-src), inference, the loader and CycleGAN's step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from reference_step import ReferenceStep
from steps import CYCLEGAN, PAPER, OurStep, main_job_overrides, step_flops, versus_baseline
from throughput import bench_infer, bench_loader
from timing import cpu_summary, interleaved, measure_peaks, peak_of

from pix2pix.precision import cpu_has_native_bf16


def overview(device: torch.device, *, quick: bool, baseline_src: Path | None) -> tuple[list[str], dict[str, Any]]:
    """The table's lines and the JSON of the default run."""
    main_over = main_job_overrides()
    repeat = 5 if quick else 11
    peaks = measure_peaks(device, quick)
    result: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_summary(),
        "native_bf16": cpu_has_native_bf16(),
        "peaks_gflops": peaks,
        "peak_gflops": {k: peak_of(peaks, k) for k in peaks},
    }

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
    main: dict[str, Any] = {
        "step_gflop": step_flops(main_step) / 1e9,
        "dtype": main_step.dtype,
        "batch": main_step.batch,
        "hints": main_step.cfg.model.hints,
    }
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
    if baseline_src is not None:
        # Both on the baseline's config (no hints: it has none), each in its own process.
        base_over = {k: v for k, v in main_over.items() if not k.startswith("hint")}
        main.update(versus_baseline(baseline_src, base_over, rounds=3 if quick else 5, steps=30 if quick else 60))
    main.update(bench_infer(main_step, repeat * 3))
    main.update(
        bench_loader(main_step.cfg.data.crop_size, 32 if quick else 128, main_step.batch, main_step.cfg.data.crop_size)
    )
    main["loader_x_train"] = main["loader_img_s"] / main["img_per_s"]

    # CycleGAN at the reference's settings: one step's time.
    cyc = OurStep(CYCLEGAN, device)
    cyclegan = {"step_gflop": step_flops(cyc) / 1e9, "dtype": cyc.dtype}
    cyclegan["step_s"] = interleaved({"ours": cyc}, repeat=3 if quick else 7, warmup=1)["ours"]
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

    peak_lines = [
        f"  {dtype} peak {max(k.values()):.0f} GFLOP/s  (" + ", ".join(f"{n} {v:.0f}" for n, v in k.items()) + ")"
        for dtype, k in peaks.items()
    ]
    lines = [
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; {result['cpu']}",
        "measured peaks (GFLOP/s):",
        *peak_lines,
        "",
    ]
    lines.append(
        f"paper (unet_256, 70x70 PatchGAN, batch 1, 256 px, {paper['dtype']}): step {paper['step_s']:.3f} s, "
        f"{paper['step_gflop']:.1f} GFLOP, x{paper['train_x_limit']:.2f} limit"
    )
    if "bf16_step_s" in paper:
        lines.append(
            f"  fp32 {paper['fp32_step_s']:.3f} s, bf16 autocast {paper['bf16_step_s']:.3f} s (native bf16; "
            f"{paper['bf16_no_copies_step_s']:.3f} s without bf16 weight copies)"
        )
    if "reference_step_s" in paper:
        lines.append(
            f"  reference's step (eager, for-loop Adam, batch norm): {paper['reference_step_s']:.3f} s; "
            f"ours is {paper['speedup_vs_reference']:.2f}x faster"
        )
        lines.append(
            "  at the measured peak a step would be at most "
            + ", ".join(f"{v:.2f}x ({k})" for k, v in paper["ceiling_vs_reference"].items())
            + " faster than the reference's"
        )
    lines.append(
        f"  inference: PyTorch {paper['infer_s'] * 1000:.1f} ms, ONNX Runtime {paper['onnx_infer_s'] * 1000:.1f} ms, "
        f"x{paper['infer_x_limit']:.2f} limit"
    )
    lines.append(
        f"main job (configs/openmoji_cpu.yaml, batch {main['batch']}{', hints' if main['hints'] else ''}): "
        f"{main['img_per_s']:.1f} img/s ({main['step_s'] * 1000:.1f} ms/step, {main['step_gflop']:.1f} GFLOP, "
        f"{main['dtype']}, x{main['train_x_limit']:.2f} limit)"
    )
    if "bf16_img_per_s" in main:
        lines.append(
            f"  fp32 {main['batch'] / main['fp32_step_s']:.1f} img/s, bf16 autocast {main['bf16_img_per_s']:.1f} "
            "img/s (native bf16)"
        )
    if "baseline_img_per_s" in main:
        bf16 = f", bf16 autocast {main['no_hints_bf16_img_per_s']:.1f}" if "no_hints_bf16_img_per_s" in main else ""
        lines.append(
            f"  without hints (the baseline's config): fp32 {main['no_hints_img_per_s']:.1f}{bf16} img/s; "
            f"pix2pix {main['baseline_version']} from {baseline_src} (fp32): {main['baseline_img_per_s']:.1f} img/s "
            f"-> {main['speedup_vs_baseline']:.2f}x as the main job trains here "
            f"({main['speedup_vs_baseline_fp32']:.2f}x fp32 against fp32)"
        )
    lines.append(
        f"  inference: PyTorch {main['infer_s'] * 1000:.2f} ms, ONNX Runtime {main['onnx_infer_s'] * 1000:.2f} ms; "
        f"loader {main['loader_img_s']:.0f} img/s = {main['loader_x_train']:.0f}x training"
    )
    lines.append(
        f"cyclegan (the reference's defaults: 2 ResNet-9 G, 2 70x70 D, 256 px, batch 1, {cyclegan['dtype']}): "
        f"step {cyclegan['step_s']:.2f} s, {cyclegan['step_gflop']:.0f} GFLOP, x{cyclegan['train_x_limit']:.2f} limit"
    )
    if cyclegan["train_x_limit"] < 1:
        warnings.append(
            f"cyclegan train_x_limit {cyclegan['train_x_limit']:.2f} < 1: the measured peak is wrong (too low)"
        )
    lines += [f"WARNING: {w}" for w in warnings]
    return lines, result
