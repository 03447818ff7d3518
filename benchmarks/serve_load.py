"""Throughput of `mixtask serve`: concurrent POST /v1/translate requests from this machine to 127.0.0.1 only.

Starts the server (uvicorn, the shipped weights unless -w) on a free local port, sends --requests requests per
size with --concurrency at a time (a random photo-sized PNG, task `seg=1,style1=1`), and reports images per
second and the median and 95th-percentile latency. Needs the [serve] extra and httpx.

    python benchmarks/serve_load.py [-w WEIGHTS] [--sizes 256,1024] [--requests 16] [--concurrency 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image

from mixtask.inference.translator import Translator
from mixtask.serve.app import create_app

TASK = "seg=1,style1=1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photo_png(side: int) -> bytes:
    """A smooth random image (compresses like a photo, unlike noise)."""
    small = np.random.default_rng(side).integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--weights", type=Path, default=None)
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    translator = Translator.from_file(args.weights)
    port = free_port()
    config = uvicorn.Config(create_app(translator, max_waiting=64), "127.0.0.1", port, log_level="error")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/translate"
    print(f"{platform.machine()}, precision {translator.precision}, {args.concurrency} concurrent clients, task {TASK}")
    rows = []
    with httpx.Client(timeout=600) as client:
        for side in (int(s) for s in args.sizes.split(",")):
            body = photo_png(side)

            def one(_: int, body: bytes = body) -> float:
                start = time.perf_counter()
                response = client.post(url, data={"task": TASK}, files={"image": ("p.png", body, "image/png")})
                response.raise_for_status()
                return time.perf_counter() - start

            one(0)  # warm-up
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                latencies = sorted(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - start
            row = {"side": side, "requests": args.requests, "images_per_s": round(args.requests / wall, 2),
                   "p50_s": round(statistics.median(latencies), 3),
                   "p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3)}  # fmt: skip
            rows.append(row)
            latency = f"latency p50 {row['p50_s']} s, p95 {row['p95_s']} s"
            print(f"{side:5d} px: {row['images_per_s']:6.2f} images/s, {latency}")
    server.should_exit = True
    if args.json:
        args.json.write_text(json.dumps({"precision": translator.precision, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
