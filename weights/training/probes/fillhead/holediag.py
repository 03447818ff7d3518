"""Where the blind inpaint's error in the holes comes from, and what a local fill could give (sixteenth session).

On the eval's 16 inpaint samples (256 px, its seed): PSNR in the holes of the network's output, of its generated
colours alone (gate 0), of them renormalised with statistics that leave the holes out or with the clean image's,
of Telea given the mask, and of pull-push fills (`mixtask.nets.film.local_fill`) from the true mask or from the
gate, with 2x2 boxes or the [1, 3, 3, 1] kernel. Writes runs/holes-look.png (clean, damaged, output, Telea).
Usage (from the repository root): python weights/training/probes/fillhead/holediag.py WEIGHTS
"""

import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mixtask.nets import film

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evalcrops import COUNT, damaged_run, load

model, info, clean = load(sys.argv[1])
x, mask, y, raw = damaged_run(model, info, clean, "inpaint")
colour, gate, blend = raw[:, :3], torch.sigmoid(raw[:, 3:4]), torch.sigmoid(raw[:, 4:5])
keep = 1 - mask


def generated(mean, std):
    return (colour * (blend * std + (1 - blend)) + blend * mean).clamp(0, 1)


def hole_psnr(out):
    holes = mask.bool().expand_as(out)
    return np.mean([float(-10 * torch.log10(((out[i] - clean[i]) ** 2)[holes[i]].mean())) for i in range(COUNT)])


def pull_push_box(image, weight, levels, fallback):
    if levels == 0:
        return torch.lerp(fallback.expand_as(image), image, weight)
    pooled_x = F.avg_pool2d(image * weight, 2, ceil_mode=True)
    pooled_w = F.avg_pool2d(weight, 2, ceil_mode=True)
    coarse = pull_push_box(pooled_x / pooled_w.clamp_min(1e-6), (4 * pooled_w).clamp(max=1), levels - 1, fallback)
    up = F.interpolate(coarse, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return torch.lerp(up, image, weight)


mean_damaged, std_damaged = film.input_stats(x)
mean_kept = (x * keep).sum((2, 3), keepdim=True) / keep.sum((2, 3), keepdim=True)
std_kept = (((x - mean_kept) ** 2 * keep).sum((2, 3), keepdim=True) / keep.sum((2, 3), keepdim=True) + 1e-5).sqrt()
telea = torch.stack([
    torch.from_numpy(cv2.inpaint((x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
                                 (mask[i, 0].numpy() > 0).astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA))
    .permute(2, 0, 1).float() / 255 for i in range(COUNT)
])  # fmt: skip
gate_weight = film.kept_weight(gate)
rows = {
    "output": y,
    "generated colours alone (gate 0)": generated(mean_damaged, std_damaged),
    "  renormalised without the holes": generated(mean_kept, std_kept),
    "  renormalised with the clean image's statistics": generated(*film.input_stats(clean)),
    "Telea given the mask": telea,
    "pull-push, 2x2 boxes, 6 levels, true mask": pull_push_box(x, keep, 6, mean_damaged),
    "pull-push, 2x2 boxes, 6 levels, gate": pull_push_box(x, gate_weight, 6, mean_damaged),
    "pull-push, [1,3,3,1], 4 levels, true mask (local_fill)": film.local_fill(x, keep, mean_damaged),
    "pull-push, [1,3,3,1], 4 levels, gate (local_fill)": film.local_fill(x, gate_weight, mean_damaged),
}
print(f"holes: {mask.mean():.3f} of the pixels; gate there {gate[mask.bool()].mean():.3f}")
for name, out in rows.items():
    print(f"{name:58s} {hole_psnr(out):6.2f}")
grid = torch.cat([torch.cat([clean[i], x[i], y[i], telea[i]], 2) for i in range(6)], 1)
Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save("runs/holes-look.png")
