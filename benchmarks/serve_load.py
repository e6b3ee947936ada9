"""Load test for `pix2pix serve`: start a server on 127.0.0.1, send a bounded number of requests.

A script, never a test. Prints p50 / p95 / p99 latency, throughput and the count of non-2xx
answers (503s from the bounded queue included), as a table and as JSON. `--soak` sends 5,000
requests, 32 at a time, with colour hints (as multipart form data), and reports the server's
resident memory after warm-up and at the end beside the answers by status.

    python benchmarks/serve_load.py RUN_DIR --requests 500 --concurrency 16
    python benchmarks/serve_load.py RUN_DIR --soak
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import time
from pathlib import Path

from PIL import Image, ImageDraw


def sketch_png(size: int) -> bytes:
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    d.ellipse((size * 0.2, size * 0.2, size * 0.8, size * 0.8), outline="black", width=max(1, size // 36))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


HINTS = [{"x": 60, "y": 60, "color": "#d02020", "size": 9}, {"x": 128, "y": 128, "color": "#2040d0", "size": 9}]


def resident_mib() -> float:
    """This process's resident memory (the server runs in it, in a thread), in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fire(
    url: str, body: bytes, n: int, concurrency: int, timeout_s: float, hints: list | None = None
) -> tuple[list[float], dict[int, int], float]:
    try:
        import httpx2 as httpx  # the serve extra's HTTP client (httpx's successor)
    except ImportError:
        import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t = time.perf_counter()
            try:
                if hints is None:
                    r = await client.post(url, content=body, headers={"content-type": "image/png"})
                else:  # multipart: the image and its hints as JSON points
                    files = {"image": ("sketch.png", body, "image/png")}
                    r = await client.post(url, files=files, data={"hints": json.dumps(hints)})
                code = r.status_code
            except httpx.HTTPError:
                code = 0  # connection error or timeout
            latencies.append(time.perf_counter() - t)
            statuses[code] = statuses.get(code, 0) + 1

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--max-queue", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=256, help="side of the PNG sent")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--hints", action="store_true", help="send colour hints with each image (a hints model)")
    parser.add_argument("--soak", action="store_true", help="5,000 requests, 32 at a time, with hints; memory")
    args = parser.parse_args()
    if args.soak:
        args.requests, args.concurrency, args.hints = 5000, 32, True

    from pix2pix.serve.app import ServeSettings, create_app, serving_in_background

    app = create_app(args.run_dir, settings=ServeSettings(max_queue=args.max_queue), backend=args.backend)
    with serving_in_background(app) as base:
        url = f"{base}/v1/translate"
        body = sketch_png(args.image_size)
        hints = HINTS if args.hints else None
        asyncio.run(fire(url, body, min(64, args.requests), 4, args.timeout, hints))  # warm-up
        rss_warm = resident_mib()
        lat, statuses, wall = asyncio.run(fire(url, body, args.requests, args.concurrency, args.timeout, hints))
        rss_end = resident_mib()
    q = statistics.quantiles(lat, n=100)
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "backend": args.backend,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "throughput_rps": len(lat) / wall,
        "ok": ok,
        "non_2xx": len(lat) - ok,
        "statuses": statuses,
        "wall_s": wall,
        "hints": bool(args.hints),
        "rss_after_warmup_mib": round(rss_warm, 1),
        "rss_end_mib": round(rss_end, 1),
        "rss_growth": round(rss_end / rss_warm - 1, 4),
    }
    print(f"{args.requests} requests, {args.concurrency} concurrent, backend {args.backend}, {args.image_size}px PNG")
    print(
        f"p50 {result['p50_ms']:.1f} ms  p95 {result['p95_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
        f"throughput {result['throughput_rps']:.1f} req/s  non-2xx {result['non_2xx']} {statuses}"
    )
    print(
        f"resident memory: {rss_warm:.0f} MiB after warm-up, {rss_end:.0f} MiB at the end ({result['rss_growth']:+.1%})"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
