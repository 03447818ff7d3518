"""Same numerics with the faster conv forms: seeded loss curves, plain forms against fast, and the noise floor.

Trains the same fresh network three times for --steps steps (--size px, batch 8, the shipped run's job weights and
losses, --compile): seed 1 with the convs in their plain forms, seed 1 in the faster exact forms
(`mixtask.nets.convforms`, what training runs), and seed 2 in the faster forms (the noise floor: what another
seed changes). Prints each job's mean loss over the last half of the steps for each run, the plain-vs-fast
difference and the seed-vs-seed difference, and the wall time of each run.

    python benchmarks/forms_curve.py --data ../shared/data [--steps 300] [--size 128] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from mixtask.nets.convforms import plain_forms
from mixtask.training import StyleSpec, TrainOptions, train

JOB_WEIGHTS = (
    "recon=0.25,inpaint=1,denoise=2,seg=4,style1=0.5,style2=0.5,denoise+style1=0.5,denoise+seg=1,seg+style1=1.5"
)


def job_means(log: Path, first_step: int) -> dict[str, float]:
    losses = defaultdict(list)
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record.get("step", 0) > first_step and "losses" in record:
            losses[record["job"]].append(record["losses"]["total"])
    return {job: statistics.fmean(values) for job, values in sorted(losses.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mixtask-forms-curve"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    data = args.data
    styles = (StyleSpec("style1", str(data / "styles/style1-starry-night.jpg")),
              StyleSpec("style2", str(data / "styles/candidates/plasma-autumn.jpg")))  # fmt: skip
    base = TrainOptions(str(data), "", styles, steps=args.steps, stage1_steps=0, size=args.size, batch=8, lr=1e-4,
                        adversarial_weight=0.0, compile=True, job_weights=JOB_WEIGHTS, checkpoint_every=0,
                        preview_every=0)  # fmt: skip
    runs = {}
    for name, seed, plain in (("plain-seed1", 1, True), ("fast-seed1", 1, False), ("fast-seed2", 2, False)):
        out = args.work / name
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        with plain_forms() if plain else contextlib.nullcontext():
            train(replace(base, out=str(out), seed=seed), quiet=True)
        runs[name] = {
            "seconds": round(time.perf_counter() - start, 1),
            "means": job_means(out / "log.jsonl", args.steps // 2),
        }
        print(f"{name}: {runs[name]['seconds']} s", flush=True)
    print(f"{'job':16s} {'plain s1':>10s} {'fast s1':>10s} {'fast s2':>10s} {'forms diff':>11s} {'seed diff':>10s}")
    for job, plain in runs["plain-seed1"]["means"].items():
        fast, other = runs["fast-seed1"]["means"][job], runs["fast-seed2"]["means"][job]
        print(f"{job:16s} {plain:10.5f} {fast:10.5f} {other:10.5f} {abs(fast - plain) / plain:10.1%} "
              f"{abs(other - fast) / fast:9.1%}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
