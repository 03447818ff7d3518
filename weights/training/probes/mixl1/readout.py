"""Where does seg+style1's read-out IoU lose against seg's? precision / recall on 48 val composites."""
import sys, torch
from pathlib import Path
from mixtask.evaluation.run import EvalOptions, load_model
from mixtask.evaluation.inputs import make_samples, Context, Backbones, teacher_runs, style_teacher
from mixtask.evaluation import metrics
from mixtask.mixing import derive_mix, render_target
torch.set_num_threads(1)
w = Path(sys.argv[1]); n = int(sys.argv[2]) if len(sys.argv) > 2 else 48
opts = EvalOptions(Path('../shared/data'), w, size=256, count=n, seed=0)
model, info = load_model(w); model = model.eval().to(memory_format=torch.channels_last)
notes = []
samples = make_samples(opts, notes)
ctx = Context(model, info.task_set, opts, samples, Backbones(), {}, notes)
clean, mask = samples.composites
truth = mask > 0.5
def pr(pred):
    inter = (pred & truth).sum((1, 2, 3)).float(); p = pred.sum((1, 2, 3)).float(); t = truth.sum((1, 2, 3)).float()
    return (inter / p.clamp_min(1)).mean().item(), (inter / t.clamp_min(1)).mean().item(), metrics.iou(pred, truth).mean().item()
seg = ctx.translate(clean, {'seg': 1.0})
mix = ctx.translate(clean, {'seg': 1.0, 'style1': 1.0})
teacher = style_teacher(Path('../shared/data/styles/style1-starry-night.jpg'), notes)
target = render_target(derive_mix(info.task_set, 'seg+style1'), clean, mask, lambda x, name: teacher(x))
for label, out in [('seg', seg), ('seg+style1', mix), ('target', target)]:
    for th in (0.05, 0.1, 0.2):
        print(label, th, 'precision %.3f recall %.3f iou %.3f' % pr(metrics.foreground(out, th)))
both = metrics.foreground(seg) & metrics.foreground(mix)
print('seg AND mix read-outs iou %.3f' % metrics.iou(both, truth).mean().item())
print('mix read-out vs seg read-out iou %.3f' % metrics.iou(metrics.foreground(mix), metrics.foreground(seg)).mean().item())
bg = ~truth
print('mean max-channel in background: seg %.4f mix %.4f' % ((seg.amax(1, keepdim=True) * bg).sum() / bg.sum(), (mix.amax(1, keepdim=True) * bg).sum() / bg.sum()))
