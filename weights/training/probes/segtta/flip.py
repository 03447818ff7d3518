"""Seg with a horizontal-flip test-time average (fourteenth session): is the gate (the cut-out's alpha) or the
black-background read-out better when the network also sees the mirrored image and the two are averaged?
Scored like `mixtask eval`'s seg rows on its 48 val samples at 256 px (seed 0).
Run from the repository root: python weights/training/probes/segtta/flip.py WEIGHTS [COUNT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mixtask.evaluation import metrics
from mixtask.evaluation.inputs import Backbones, Context, make_samples
from mixtask.evaluation.run import EvalOptions, load_model

torch.set_num_threads(1)
count = int(sys.argv[2]) if len(sys.argv) > 2 else 48
options = EvalOptions(Path("../shared/data"), Path(sys.argv[1]), size=256, count=count, seed=0)
model, info = load_model(options.weights)
samples = make_samples(options, [])
ctx = Context(model.eval(), info.task_set, options, samples, Backbones(), {}, [])
seg = next(t for t in info.task_set.tasks if t.kind == "seg").name
for name, (images, masks) in (("composites", samples.composites), ("photos", samples.photos)):
    truth = masks > 0.5
    output, gate = ctx.translate(images, {seg: 1.0}), ctx.gate(images, {seg: 1.0})
    mirrored = images.flip(-1)
    output_f, gate_f = ctx.translate(mirrored, {seg: 1.0}).flip(-1), ctx.gate(mirrored, {seg: 1.0}).flip(-1)
    rows = {
        "read-out": metrics.iou(metrics.foreground(output), truth),
        "read-out, flip-averaged": metrics.iou(metrics.foreground((output + output_f) / 2), truth),
        "alpha > 0.5": metrics.iou(gate > 0.5, truth),
        "alpha > 0.5, flip-averaged": metrics.iou((gate + gate_f) / 2 > 0.5, truth),
    }
    print(name, "  ".join(f"{k} {float(v.mean()):.3f}" for k, v in rows.items()), flush=True)
    gain = rows["alpha > 0.5, flip-averaged"] - rows["alpha > 0.5"]
    print(f"  alpha's paired gain {float(gain.mean()):+.4f} +- {float(gain.std() / len(gain) ** 0.5):.4f} (s.e.)")
