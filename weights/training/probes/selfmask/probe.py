"""Blind inpaint as two passes: the network's gate finds the holes, then `apply --mask`'s path fills them.

On the eval's 16 damaged val crops (256 px, the eval's seeds), for a weights file: the blind output as `apply`
writes it today (one pass, blended where the gate says generated), the fill told the TRUE mask (the eval's row
`model given the mask`), and the fill told the mask the gate estimates (gate < THRESHOLD, dilated by D px),
for a grid of thresholds and dilations; and the one-pass variant: the gate made hard (gate >= THRESHOLD is the
known map of the same pass: only the head changes), the generated pixels blended as `apply` blends them.
Scores: PSNR dB inside the damaged pixels and on the whole crop.

    python weights/training/probes/selfmask/probe.py WEIGHTS [inpaint|denoise] [DILATIONS, e.g. 0,1,2,4]
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, "weights/training/probes")
from evalcrops import COUNT, SIZE

from mixtask.data import CORRUPTIONS, SampleMaker, default_max_side, load_dataset
from mixtask.inference.blending import blend_generated
from mixtask.inference.inpainting import inpaint
from mixtask.inference.translator import Translator
from mixtask.tensors import to_array

THRESHOLDS = (0.3, 0.5, 0.7)
BANDS = ((0.45, 0.55), (0.4, 0.6), (0.3, 0.7))


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64)) / 255
    mse = float((diff**2)[where].mean()) if where is not None else float((diff**2).mean())
    return 10 * np.log10(1 / max(mse, 1e-10))


def dilated(mask: np.ndarray, pixels: int) -> np.ndarray:
    if pixels == 0:
        return mask
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.max_pool2d(t, 2 * pixels + 1, stride=1, padding=pixels)[0, 0].numpy() > 0.5


def main(weights: str, kind: str = "inpaint", dilations: str = "0") -> None:
    import zlib

    torch.set_num_threads(1)
    translator = Translator.from_file(weights, device="cpu", precision="fp32")
    dataset = load_dataset("../shared/data", "val", max_side=default_max_side(SIZE))
    clean = SampleMaker(dataset, SIZE, 0).clean(COUNT)
    x, mask = CORRUPTIONS[kind](clean, torch.Generator().manual_seed(zlib.crc32(kind.encode())))
    vector = translator.task_set.vector({kind: 1.0})
    rows: dict[str, list[tuple[float, float]]] = {}

    def score(name, out, truth, hole):
        rows.setdefault(name, []).append((psnr(out, truth, hole), psnr(out, truth)))

    recall = {}
    for image, target, hole_t in zip(x, clean, mask, strict=True):
        rgb, truth, hole = to_array(image), to_array(target), hole_t[0].numpy() > 0.5
        output, gate = translator.translate_with_gate(rgb, vector)
        score("blind, as apply writes it", blend_generated(output, gate), truth, hole)
        score("told the true mask", inpaint(translator, rgb, hole, vector), truth, hole)
        for threshold in THRESHOLDS:
            if threshold == 0.5:  # the gate sharpened by a linear ramp over a band around 0.5: continuous, near hard
                for low, high in BANDS:
                    ramp = np.clip((gate - low) / (high - low), 0, 1).astype(np.float32)
                    sharp = translator.translate_array(rgb, vector, known=ramp)
                    score(f"gate ramped over {low}-{high}", blend_generated(sharp, ramp), truth, hole)
            hard = gate >= threshold
            one_pass = translator.translate_array(rgb, vector, known=hard)
            score(
                f"hard gate >= {threshold}, one pass", blend_generated(one_pass, hard.astype(np.float32)), truth, hole
            )
            for pixels in map(int, dilations.split(",")):
                estimate = dilated(gate < threshold, pixels)
                name = f"told gate < {threshold}, dilated {pixels} px"
                score(name, inpaint(translator, rgb, estimate, vector), truth, hole)
                found = recall.setdefault(name, [])
                found.append((float((estimate & hole).sum() / max(hole.sum(), 1)), float(estimate.mean())))
    print(f"{weights}, {kind}: {COUNT} val crops of {SIZE} px; dB damaged / whole (recall of the damage, area)")
    for name, values in rows.items():
        damaged, whole = np.mean(values, axis=0)
        extra = ""
        if name in recall:
            r, area = np.mean(recall[name], axis=0)
            extra = f"   recall {r:.3f}, area {area:.3f}"
        print(f"{name:34s} {damaged:6.2f} / {whole:6.2f}{extra}")
    print(f"true damaged area {float(mask.mean()):.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
