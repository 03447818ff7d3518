"""Training speed on this machine: seconds per step for each kind of job, against the machine's own conv peak.

First a micro-benchmark measures what one 3x3 convolution (128 channels, 32x32, batch 8, forward and backward)
reaches per precision: the ceiling of the network's main layers. Then, for each job kind (an L2 job, seg with
its mask loss, a style under the teacher loss and under the perceptual loss, a mix) and each setting, it times
`optimize` (forward, losses, backward, Adam) on fixed batches, median of --steps after a warm-up, and reports
images per second, the step's rate as a fraction of the conv peak, and the CPU share the process got.

    python benchmarks/train_step.py --data ../shared/data [--sizes 128] [--precisions bf16,fp32]
        [--jobs denoise,seg,style1,style1-perceptual,seg+style1] [--compile both|on|off]
        [--forms both|fast|plain] [--json OUT]

`--forms both` times each row with the network's convs in their faster exact forms (`mixtask.nets.convforms`,
what training runs) and in their plain forms (before that rewrite), side by side.

Run it on an idle machine: the rows are only comparable within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from mixtask.nets.convforms import plain_forms
from mixtask.training import distributed as ddp
from mixtask.training.options import StyleSpec, TrainOptions
from mixtask.training.setup import setup_run
from mixtask.training.step import optimize, prepare

JOBS = ("denoise", "seg", "style1", "style1-perceptual", "seg+style1")


def conv_peak(dtype: torch.dtype | None, repeats: int = 10) -> float:
    """GFLOP/s of a 3x3, 128-channel conv at 32x32, batch 8, forward + backward (3 convolutions' work)."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1)
    x = torch.randn(8, 128, 32, 32, requires_grad=True)

    def once() -> None:
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            y = conv(x)
        y.float().sum().backward()

    for _ in range(3):
        once()
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    seconds = (time.perf_counter() - start) / repeats
    return 3 * 2 * 8 * 128 * 128 * 9 * 32 * 32 / seconds / 1e9


def network_gflop(size: int, batch: int, width: int = 32, res_blocks: int = 5) -> float:
    """Forward + backward convolution work of the Johnson network (gated head: 5 output channels), GFLOP."""
    w, s = width, size
    layers = [(3, w, 9, s), (w, 2 * w, 3, s // 2), (2 * w, 4 * w, 3, s // 4)]
    layers += [(4 * w, 4 * w, 3, s // 4)] * (2 * res_blocks)
    layers += [(4 * w, 2 * w, 3, s // 2), (2 * w, w, 3, s), (w, 5, 9, s)]
    forward = sum(2 * cin * cout * k * k * side * side for cin, cout, k, side in layers) * batch
    return 3 * forward / 1e9


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def time_job(options: TrainOptions, job_name: str, steps: int, plain: bool) -> dict:
    with plain_forms() if plain else contextlib.nullcontext():
        return _time_job(options, job_name, steps)


def _time_job(options: TrainOptions, job_name: str, steps: int) -> dict:
    run = setup_run(options, ddp.DistContext())
    job = next(job for job in run.plan.jobs(run.plan.stage_at(0)) if job.name == job_name)
    batches = [prepare(run, job) for _ in range(4)]
    start = time.perf_counter()
    optimize(run, job, batches[0])  # warm-up (and compilation)
    first = time.perf_counter() - start
    optimize(run, job, batches[1])
    times, cpu_start, wall_start = [], cpu_seconds(), time.perf_counter()
    for i in range(steps):
        start = time.perf_counter()
        optimize(run, job, batches[i % len(batches)])
        times.append(time.perf_counter() - start)
    share = (cpu_seconds() - cpu_start) / (time.perf_counter() - wall_start) / torch.get_num_threads()
    return {"first_step_s": round(first, 2), "step_s": statistics.median(times), "cpu_share": round(share, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sizes", default="128")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--compile", choices=("both", "on", "off"), default="both")
    parser.add_argument("--forms", choices=("both", "fast", "plain"), default="fast")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    data = args.data
    styles = (StyleSpec("style1", str(data / "styles/style1-starry-night.jpg")),
              StyleSpec("style2", str(data / "styles/candidates/plasma-autumn.jpg")))  # fmt: skip
    base = TrainOptions(str(data), "/tmp/mixtask-train-bench", styles, steps=100, stage1_steps=0, batch=args.batch,
                        adversarial_weight=0.0, seed=1, device="cpu", preview_every=0, checkpoint_every=0)  # fmt: skip
    precisions = args.precisions.split(",")
    peaks = {name: conv_peak(torch.bfloat16 if name == "bf16" else None) for name in precisions}
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("conv peak (3x3, 128 ch, fwd+bwd): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    rows = []
    compiles = {"both": (False, True), "on": (True,), "off": (False,)}[args.compile]
    forms = {"both": ("plain", "fast"), "fast": ("fast",), "plain": ("plain",)}[args.forms]
    for size in (int(s) for s in args.sizes.split(",")):
        for precision in precisions:
            for job_name in args.jobs.split(","):
                task = job_name.removesuffix("-perceptual")
                loss = "perceptual" if job_name.endswith("-perceptual") else "teacher"
                for compiled, form in itertools.product(compiles, forms):
                    options = replace(base, size=size, precision=precision, style_loss=loss, compile=compiled)
                    result = time_job(options, task, args.steps, plain=form == "plain")
                    gflop = network_gflop(size, args.batch)
                    row = {"job": job_name, "size": size, "precision": precision, "compile": compiled, "forms": form,
                           **result, "images_per_s": round(args.batch / result["step_s"], 2),
                           "conv_peak_fraction": round(gflop / result["step_s"] / peaks[precision], 3)}  # fmt: skip
                    rows.append(row)
                    print(f"{job_name:18s} {size:4d} px {precision:5s} compile {'on ' if compiled else 'off'} "
                          f"{form:5s} {row['step_s']:.3f} s/step {row['images_per_s']:6.1f} img/s "
                          f"{row['conv_peak_fraction']:.0%} of the conv peak, CPU share {row['cpu_share']:.0%}, "
                          f"first step {row['first_step_s']} s", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"conv_peak_gflops": peaks, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
