import sys, torch
from pathlib import Path
from mixtask.evaluation.run import EvalOptions, load_model
from mixtask.evaluation.inputs import make_samples, Context, Backbones
from mixtask.evaluation import metrics
torch.set_num_threads(1)
opts = EvalOptions(Path('../shared/data'), None, size=256, count=48, seed=0)
samples = make_samples(opts, [])
clean, mask = samples.composites; truth = mask > 0.5
ious = []
for w in sys.argv[1:3]:
    model, info = load_model(Path(w)); model = model.eval().to(memory_format=torch.channels_last)
    ctx = Context(model, info.task_set, opts, samples, Backbones(), {}, [])
    ious.append(metrics.iou(metrics.foreground(ctx.translate(clean, dict.fromkeys(sys.argv[3].split('+'), 1.0))), truth).float())
d = ious[1] - ious[0]
print(sys.argv[3], 'A %.3f B %.3f diff %.3f s.e. %.3f wins %d/%d' % (ious[0].mean(), ious[1].mean(), d.mean(), d.std() / len(d) ** 0.5, (d > 0).sum(), (d != 0).sum()))
