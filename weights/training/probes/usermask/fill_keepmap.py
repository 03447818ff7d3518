"""User-mask holes with the fill head told where the holes are (seventeenth session, issue 18).

With `head="gated-fill"` the generated colours are offsets from `local_fill` of the pixels the gate keeps. With a
user mask the holes are known: here the keep map is the mask's complement and the gate is 0 in the mask, so the
offsets start from a pull-push fill of exactly the known pixels. Against `apply --mask`'s path (current: the
gate's own keep map, 4 colours averaged, Poisson-blended), with and without the blend, 1 or 4 colours; and the
pull-push fill alone (no network) as a reference.
Usage (repository root): python weights/training/probes/usermask/fill_keepmap.py WEIGHTS [PHOTOS]
"""

from __future__ import annotations

import numpy as np
import torch
from harness import bare_model, engine, inpaint, score

from mixtask.inference.blending import poisson_blend
from mixtask.nets import film

translator, vector = engine()
model, condition = bare_model()
raws: list = []
model.output.register_forward_hook(lambda module, args, out: raws.append(out))


@torch.inference_mode()
def told(rgb: np.ndarray, mask: np.ndarray, passes: int) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: the head's output with the user's mask as its keep map, averaged over passes."""
    rng = np.random.default_rng(0)
    keep = torch.from_numpy(~mask)[None, None].float()
    total = 0
    for _ in range(passes):
        prepared = rgb.copy()
        prepared[mask] = rng.integers(0, 256, 3, dtype=np.uint8)
        x = torch.from_numpy(prepared).permute(2, 0, 1)[None].float() / 255
        model.forward_any_size(x, condition)
        raw = raws.pop().float()[..., : x.shape[-2], : x.shape[-1]]
        colour, blend = raw[:, :3], torch.sigmoid(raw[:, 4:5])
        mean, std = film.input_stats(x)
        base = film.local_fill(x, keep, mean)
        generated = colour * (blend * std + (1 - blend)) + blend * base
        total = total + torch.lerp(generated, x, keep).clamp(0, 1)
    return (total / passes)[0].permute(1, 2, 0).numpy()


def as_bytes(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def pull_push(rgb, mask):
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    keep = torch.from_numpy(~mask)[None, None].float()
    return as_bytes(film.local_fill(x, keep, film.input_stats(x)[0])[0].permute(1, 2, 0).numpy())


score({
    "current": lambda r, m: poisson_blend(r, inpaint(translator, r, m, vector), m),
    "told1": lambda r, m: as_bytes(told(r, m, 1)),
    "told4": lambda r, m: as_bytes(told(r, m, 4)),
    "told4+blend": lambda r, m: poisson_blend(r, as_bytes(told(r, m, 4)), m),
    "pullpush": pull_push,
})  # fmt: skip
