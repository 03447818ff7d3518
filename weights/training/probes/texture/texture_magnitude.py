"""The texture term's size before the probe: per-tap relative Gram errors (strides 2, 4, 8, 16) against the
teacher's rendering of a training batch, for the shipped file's output, the photo itself, the rendering blurred
(3x3 box) and the rendering mirrored; and each one's L1. Run from the repo root with the run's state in
weights/training/base (its output is in the model card's texture probe).
"""

from dataclasses import replace

import torch
import torch.nn.functional as F

from mixtask.backbones.perceptual import relative_error
from mixtask.training.distributed import DistContext
from mixtask.training.options import resume_options
from mixtask.training.setup import setup_run
from mixtask.training.step import prepare, target_image
from mixtask.weights import load_weights

torch.manual_seed(0)
options = resume_options("weights/training/base", style_texture=1.0)
run = setup_run(replace(options, out="/tmp/texture-magnitude", compile=False, init=None), DistContext())
model, _ = load_weights("weights/mixtask-base.safetensors")
model.eval()
for name in ("style1", "style2"):
    job = next(job for job in run.plan.jobs(2) if job.name == name)
    batch = prepare(run, job)
    rendering = target_image(run, name, "style", batch)
    with torch.no_grad():
        candidates = {
            "model": model(batch.input, batch.vector),
            "photo": batch.clean,
            "blurred rendering": F.avg_pool2d(rendering, 3, 1, 1),
            "mirrored rendering": rendering.flip(-1),
        }
        targets = run.texture.grams(rendering)
        for label, image in candidates.items():
            errors = [round(float(relative_error(a, b)), 3) for a, b in zip(run.texture.grams(image), targets)]
            print(name, label, errors, "L1", round(float((image - rendering).abs().mean()), 4))
