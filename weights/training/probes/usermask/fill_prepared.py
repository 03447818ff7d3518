"""User-mask holes, the head told where they are (`Translator.translate_array(..., known=)`), and how the holes are
prepared (seventeenth session, issue 18): FILL_PASSES seeded constant colours averaged, as training holes look
(told4), against one pass with the holes prepared as the pull-push fill of the known pixels (smooth1), each with
and without the Poisson blend; the pull-push fill alone as a reference. `apply --mask`'s engine (enlargement of
small photos included).
Usage (repository root): python weights/training/probes/usermask/fill_prepared.py WEIGHTS [PHOTOS]
"""

from __future__ import annotations

import numpy as np
import torch
from harness import engine, score

from mixtask.inference.blending import poisson_blend
from mixtask.inference.inpainting import network_fill
from mixtask.nets import film

translator, vector = engine()


def pull_push(rgb, mask):
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    keep = torch.from_numpy(~mask)[None, None].float()
    filled = film.local_fill(x, keep, film.input_stats(x)[0])[0].permute(1, 2, 0).numpy()
    return np.clip(np.rint(filled * 255), 0, 255).astype(np.uint8)


def smooth(rgb, mask):
    return translator.translate_array(pull_push(rgb, mask), vector, known=~mask)


score({
    "told4": lambda r, m: network_fill(translator, r, m, vector),
    "told4+blend": lambda r, m: poisson_blend(r, network_fill(translator, r, m, vector), m),
    "smooth1": smooth,
    "smooth1+blend": lambda r, m: poisson_blend(r, smooth(r, m), m),
    "pullpush": pull_push,
})  # fmt: skip
