"""Where a restoration's error lies: PSNR over the whole crop, the damaged pixels and the undamaged ones, and the
gated head's mean gate on each, for inpaint and denoise on the eval's 16 val crops at 256 px.

    python weights/training/probes/restoration/undamaged.py WEIGHTS...   (from the repository root)
"""

import sys
from pathlib import Path

import torch

from mixtask.evaluation import metrics
from mixtask.evaluation.inputs import Backbones, Context, EvalOptions, make_samples
from mixtask.nets.film import recording_gates
from mixtask.weights import load_weights

torch.set_num_threads(1)
for path in map(Path, sys.argv[1:]):
    model, info = load_weights(path)
    model = model.eval()
    options = EvalOptions(data=Path("../shared/data"), size=256, count=16)
    ctx = Context(model, info.task_set, options, make_samples(options, []), Backbones(), {}, [])
    clean = ctx.samples.clean
    label = path.parent.name if path.name == "weights.safetensors" else path.name
    for task in (t for t in info.task_set.tasks if t.name in ("denoise", "inpaint")):
        damaged, mask = ctx.damaged(task)
        vectors = torch.tensor(info.task_set.vector({task.name: 1.0})).expand(len(clean), -1)
        with torch.no_grad(), recording_gates() as gates:
            out = model(damaged, vectors).clamp(0, 1)
        gate, kept = torch.sigmoid(gates[-1]), 1 - mask
        psnr = {name: float(metrics.psnr(out, clean, where).mean()) for name, where in
                (("whole", None), ("damaged", mask), ("undamaged", kept))}  # fmt: skip
        gate_kept, gate_damaged = float((gate * kept).sum() / kept.sum()), float((gate * mask).sum() / mask.sum())
        print(f"{label:30s} {task.name}: whole {psnr['whole']:.2f} damaged {psnr['damaged']:.2f} "
              f"undamaged {psnr['undamaged']:.2f} dB; gate on undamaged mean {gate_kept:.4f}, "
              f"on damaged {gate_damaged:.4f}", flush=True)  # fmt: skip
