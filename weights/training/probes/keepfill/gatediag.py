"""Where the fill head's restorations lose, by the gate (seventeenth session).

On the eval's 16 inpaint and denoise samples (256 px, its seeds), dB inside the damaged pixels / on the whole image:
the output; the output with the head's keep map and gate from the true mask (what a perfect gate would give); the
local fill alone from the gate and from the true mask (colour offsets 0, no pass-through); the gate sharpened after
the fact; the gate's quartiles on the damaged pixels and the keep BCE (`--keep-weight`'s term) beside the image L2.
Usage (repository root): python weights/training/probes/keepfill/gatediag.py WEIGHTS
"""

import sys
from pathlib import Path

import numpy as np
import torch

from mixtask.nets import film
from mixtask.training.losses import keep_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evalcrops import COUNT, damaged_run, load

model, info, clean = load(sys.argv[1])


def psnr(out: torch.Tensor, where: torch.Tensor) -> float:
    return float(np.mean([-10 * torch.log10(((out[i] - clean[i]) ** 2)[where[i]].mean()) for i in range(COUNT)]))


def diagnose(kind: str) -> None:
    x, mask, y, raw = damaged_run(model, info, clean, kind)
    colour, gate, blend = raw[:, :3], torch.sigmoid(raw[:, 3:4]), torch.sigmoid(raw[:, 4:5])
    mean, std = film.input_stats(x)
    damaged, everywhere = mask.bool().expand_as(x), torch.ones_like(x, dtype=torch.bool)

    def scores(out: torch.Tensor) -> str:
        return f"{psnr(out, damaged):6.2f} / {psnr(out, everywhere):6.2f}"

    def finished(keep: torch.Tensor, passing: torch.Tensor) -> torch.Tensor:
        base = film.local_fill(x, keep, mean)
        return torch.lerp(colour * (blend * std + 1 - blend) + blend * base, x, passing).clamp(0, 1)

    true_keep, gate_keep = 1 - mask, film.kept_weight(gate)
    print(f"{kind}: output {scores(y)}")
    print(f"  keep map and gate from the true mask  {scores(finished(true_keep, true_keep))}")
    print(f"  local fill alone, from the gate       {scores(film.local_fill(x, gate_keep, mean))}")
    print(f"  local fill alone, from the true mask  {scores(film.local_fill(x, true_keep, mean))}")
    for t in (0.2, 0.5):
        sharpened = ((gate - t) / (1 - t)).clamp(0, 1)
        print(f"  gate sharpened, (g - {t}) / (1 - {t})  {scores(finished(gate_keep, sharpened))}")
    quantiles = [round(float(q), 3) for q in torch.quantile(gate[mask.bool()], torch.tensor([0.5, 0.75, 0.9, 0.95]))]
    print(f"  gate on the damaged pixels, quantiles 0.5 / 0.75 / 0.9 / 0.95: {quantiles}")
    print(f"  keep BCE {float(keep_loss(raw[:, 3:4], true_keep)):.3f}, image L2 {float(((y - clean) ** 2).mean()):.5f}")


for kind in ("inpaint", "denoise"):
    diagnose(kind)
