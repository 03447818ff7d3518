"""User-mask holes filled by the gated head's generated colours alone (thirteenth session): inside the mask the
gate is treated as 0, generated = (y - g x) / (1 - g), so no part of the hole's colour passes through; one
random colour (gen1) or four with their fills averaged (gen4), against `apply --mask`'s path (current)."""

from __future__ import annotations

import numpy as np
from harness import bare_model, engine, generated_colours, inpaint, score

translator, vector = engine()
model, condition = bare_model()
rng = np.random.default_rng(0)
colours: list = []


def generated(rgb, mask, passes):
    outs = []
    for colour in colours[:passes]:
        prepared = rgb.copy()
        prepared[mask] = colour
        outs.append(generated_colours(model, condition, prepared))
    fill = np.clip(np.rint(np.mean(outs, 0) * 255), 0, 255).astype(np.uint8)
    return np.where(mask[..., None], fill, rgb)


def current(rgb, mask):
    colours[:] = [rng.integers(0, 256, 3, dtype=np.uint8) for _ in range(4)]  # the photo's colours, drawn first
    return inpaint(translator, rgb, mask, vector)


score({"current": current, "gen1": lambda r, m: generated(r, m, 1), "gen4": lambda r, m: generated(r, m, 4)})
