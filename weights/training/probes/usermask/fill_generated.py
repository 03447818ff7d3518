"""User-mask holes filled by the gated head's generated colours alone (thirteenth session): inside the mask the
gate is treated as 0, generated = (y - g x) / (1 - g), so no part of the hole's colour passes through; one
random colour (gen1) or four with their fills averaged (gen4), against `apply --mask`'s path (current)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from harness import score

from mixtask.apply.usermask import inpaint
from mixtask.evaluation.run import load_model
from mixtask.inference.translator import Translator
from mixtask.nets.film import recording_gates

weights = Path(sys.argv[1])
translator = Translator.from_file(weights)
vector = translator.task_set.parse("inpaint")
model, info = load_model(weights)
model.eval()
condition = torch.tensor(info.task_set.vector({"inpaint": 1.0}))[None]
rng = np.random.default_rng(0)
colours: list = []


@torch.inference_mode()
def generated(rgb, mask, passes):
    outs = []
    for colour in colours[:passes]:
        prepared = rgb.copy()
        prepared[mask] = colour
        x = torch.from_numpy(prepared).permute(2, 0, 1)[None].float() / 255
        with recording_gates() as gates:
            y = model.forward_any_size(x, condition).float()
        gate = torch.sigmoid(gates[-1].float())[..., : y.shape[-2], : y.shape[-1]]
        outs.append(((y - gate * x) / (1 - gate).clamp_min(1e-3)).clamp(0, 1)[0].permute(1, 2, 0).numpy())
    fill = np.clip(np.rint(np.mean(outs, 0) * 255), 0, 255).astype(np.uint8)
    return np.where(mask[..., None], fill, rgb)


def current(rgb, mask):
    colours[:] = [rng.integers(0, 256, 3, dtype=np.uint8) for _ in range(4)]  # the photo's colours, drawn first
    return inpaint(translator, rgb, mask, vector)


score(
    {"current": current, "gen1": lambda r, m: generated(r, m, 1), "gen4": lambda r, m: generated(r, m, 4)},
    int(sys.argv[2]) if len(sys.argv) > 2 else 10,
)
