"""Cut-outs a user can use (rembg's conventions): seg's object as alpha, on its own, or on a colour.

`--cutout` of `mixtask apply`, for a task vector with seg in it:
- `alpha` (the default): RGBA, alpha = the object mask, colour = the input's own colours times the mask
  (rembg's convention: dropping the alpha leaves the object on black); a mix with seg takes its colours
  from the same vector without seg (e.g. `seg=1,style1=1`: the style1 rendering).
- `black`: the network's own output (seg's black background), as the paper renders it.
- `mask`: the mask alone, 8-bit grey (255 = object).
`--bgcolor R,G,B[,A]` puts the alpha cut-out on that colour (opaque without A).

The mask is the network's own: for the gated head (the shipped default) the gate of seg alone at the
vector's seg strength (`Translator.gate_array`), averaged with the gate of the mirrored image mirrored back
(a test-time flip: on the 48 val samples of the model card the alpha's IoU at one half rose from 0.603 to 0.618
on composites and from 0.641 to 0.657 on photos; weights/training/probes/segtta/), then sharpened as `apply`
sharpens a restoration's gate (`film.sharpen_gate`: 0 below 0.3, 1 above 0.7, linear between, so the edges stay
soft). The soft gate kept a faint haze over the whole background: on those samples, with the step-601 file, the
IoU of any visible alpha rose from 0.212 to 0.568 on composites and from 0.420 to 0.700 on photos, and of the
premultiplied colours read as the eval reads a black background from 0.544 to 0.582 and from 0.656 to 0.682; at one
half it is the same (weights/training/probes/segsharp/results.txt). For the paper's rgb head,
which has no gate, the seg output's brightest channel, scaled so that the eval's read-out threshold (0.1)
becomes one half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mixtask.choices import CUTOUT_MODES
from mixtask.errors import MixtaskError
from mixtask.tasks import FOREGROUND_THRESHOLD, TaskSet

if TYPE_CHECKING:  # numpy and the metrics are imported where a cut-out is made: the CLI's help stays fast
    import numpy as np

# The mask is read on a copy of at most this many pixels on its long side: near the scale seg is trained at.
# On the 37 val photos with an object, IoU of gate > 0.5 against the ISNet labels (step 1,900 of the
# issue-14 run): 0.382 at 192, 0.386 at 256, 0.379 at 384, 0.376 at 512, 0.351 at 1024 px.
MASK_SIDE = 256


@dataclass(frozen=True)
class Cutout:
    """How one apply run renders seg: `mode` of CUTOUT_MODES, the seg task's index and the background."""

    mode: str
    seg_index: int
    background: tuple[int, ...] | None = None  # --bgcolor: (R, G, B) or (R, G, B, A)


def parse_bgcolor(text: str | None) -> tuple[int, ...] | None:
    """`255,255,255` or `0,0,0,128` -> a tuple of 3 or 4 values in 0..255."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) not in (3, 4) or not all(part.isascii() and part.isdigit() and int(part) <= 255 for part in parts):
        raise MixtaskError(f"--bgcolor {text!r}: give R,G,B or R,G,B,A, each 0..255 (e.g. 255,255,255)")
    return tuple(int(part) for part in parts)


def plan_cutout(mode: str | None, bgcolor: str | None, task_set: TaskSet, vector) -> Cutout | None:
    """The cut-out of a run, or None (no seg in the task); checked before any image is read. `vector`: the
    condition's uniform task vector, None for a task map (no cut-out)."""
    background = parse_bgcolor(bgcolor)
    seg = [i for i, task in enumerate(task_set.tasks) if task.kind == "seg"]
    has_seg = vector is not None and bool(seg) and vector[seg[0]] > 0
    if not has_seg:
        if mode is not None or background is not None:
            raise MixtaskError("--cutout and --bgcolor need seg in --task (e.g. --task seg or seg=1,style1=1)")
        return None
    if mode is not None and mode not in CUTOUT_MODES:
        raise MixtaskError(f"--cutout {mode!r}: use one of {', '.join(CUTOUT_MODES)}")
    mode = mode or "alpha"
    if background is not None and mode != "alpha":
        raise MixtaskError(f"--bgcolor puts the alpha cut-out on a colour; it does not go with --cutout {mode}")
    return Cutout(mode, seg[0], background)


def object_mask(translator, rgb: np.ndarray, cutout: Cutout, vector: tuple[float, ...]) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the network's object mask for seg at the vector's seg strength."""
    alone = tuple(value if i == cutout.seg_index else 0.0 for i, value in enumerate(vector))
    import numpy as np

    from mixtask.nets.film import sharpen_gate

    gate = translator.gate_array(rgb, alone, max_side=MASK_SIDE)
    if gate is not None:
        mirrored = translator.gate_array(np.ascontiguousarray(rgb[:, ::-1]), alone, max_side=MASK_SIDE)
        return sharpen_gate((gate + mirrored[:, ::-1]) / 2)
    output = translator.translate_array(rgb, alone).astype(np.float32) / 255
    return np.clip(output.max(axis=2) / (2 * FOREGROUND_THRESHOLD), 0, 1)


def render(translator, rgb: np.ndarray, cutout: Cutout, vector: tuple[float, ...]):
    """-> (rgb (H, W, 3) uint8, alpha (H, W) uint8 or None, grey (H, W) uint8 or None for --cutout mask)."""
    import numpy as np

    if cutout.mode == "black":
        return translator.translate_array(rgb, vector), None, None
    mask = object_mask(translator, rgb, cutout, vector)
    alpha = np.rint(mask * 255).astype(np.uint8)
    if cutout.mode == "mask":
        return None, None, alpha
    rest = tuple(0.0 if i == cutout.seg_index else value for i, value in enumerate(vector))
    colours = translator.translate_array(rgb, rest) if any(rest) else rgb
    if cutout.background is None:
        # rembg's cut-out: colour times the mask under the mask as alpha, so a reader that drops the alpha
        # still sees the object on black (seg's own rendering) and no background
        premultiplied = np.rint(colours.astype(np.float32) * mask[..., None]).astype(np.uint8)
        return premultiplied, alpha, None
    return on_background(colours, mask, cutout.background)


def on_background(colours: np.ndarray, mask: np.ndarray, background: tuple[int, ...]):
    """The cut-out over a plain colour: RGB, or RGBA when the colour has an alpha of its own."""
    import numpy as np

    colour, background_opacity = np.array(background[:3], np.float32), (background[3:] or (255,))[0] / 255
    weight = mask[..., None]
    opacity = mask + background_opacity * (1 - mask)  # straight alpha: colour over a (translucent) background
    blended = (colours.astype(np.float32) * weight + colour * background_opacity * (1 - weight)) / np.maximum(
        opacity[..., None], 1e-6
    )
    rgb = np.rint(np.clip(blended, 0, 255)).astype(np.uint8)
    return rgb, (np.rint(255 * opacity).astype(np.uint8) if len(background) == 4 else None), None


def has_alpha(cutout: Cutout | None, input_alpha: bool) -> bool:
    """Whether the output carries alpha: the input's own (kept), an alpha cut-out, or a translucent --bgcolor."""
    if cutout is None or cutout.mode == "black":
        return input_alpha
    if cutout.mode == "mask":
        return False
    return cutout.background is None or len(cutout.background) == 4
