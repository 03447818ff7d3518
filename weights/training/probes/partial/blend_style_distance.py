"""Style distance of photo + s (rendering - photo): is the eval's style metric monotonic along an exact blend?

Renderings: the Magenta teacher's and the shipped weights' own output at strength 1 (16 val crops, 256 px).
"""

from pathlib import Path

import torch

from mixtask.evaluation import metrics
from mixtask.evaluation.inputs import Context, EvalOptions, load_backbones, load_styles, make_samples
from mixtask.weights import load_weights

BLENDS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)

torch.set_num_threads(1)
options = EvalOptions(data=Path("../shared/data"), count=16)
model, info = load_weights(None)
model.eval()
samples = make_samples(options, [])
ctx = Context(model, info.task_set, options, samples, load_backbones(options), {}, [])
ctx.styles = load_styles(ctx, info.provenance)
photos = samples.clean
for name in ("style1", "style2"):
    reference = ctx.styles[name]
    renderings = {"model@1": ctx.translate(photos, {name: 1.0})}
    if reference.teacher is not None:
        renderings["teacher"] = reference.teacher(photos)
    for label, rendering in renderings.items():
        distances = []
        for s in BLENDS:
            features = ctx.features(ctx.backbones.vgg, photos + s * (rendering - photos))
            distances.append(float(metrics.style_distance(features, reference.grams).mean()))
        print(name, label, [f"{d:.4f}" for d in distances])
