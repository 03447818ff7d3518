"""How far each task's output on a small image is from its output at the training scale.

Each of 8 val photos is resized to a 256-px short side (the reference scale) and to 96, 128 and 192 px; each task
vector's output on the small copy is scored by PSNR against the reference output downscaled to it (mean / min
over the photos). `--forms` compares three ways to run the small copy with PIL resampling: `native` (as it is,
as `Translator` ran it before it enlarged small images), `up` (enlarged to 256 px, the output downscaled) and
`resid` (enlarged, the network's change downscaled and added to the image); without it, the small copy goes
through `Translator` as it is now (enlarged to 256 px, torch resampling).

    python weights/training/probes/small-images/small_images.py runs/snaps/b6-2309.safetensors [--forms]
"""

import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mixtask.inference.translator import Translator

TASKS = ["denoise=1", "seg=1", "style1=1", "style2=1", "denoise=1,style1=1", "denoise=1,seg=1", "seg=1,style1=1"]
SIZES = [96, 128, 192]
REFERENCE = 256


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * math.log10(255**2 / max(mse, 1e-9))


def resized(rgb: np.ndarray, width: int, height: int, method=Image.Resampling.LANCZOS) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((width, height), method))


def enlarged_run(translator: Translator, small: np.ndarray, task: str, residual: bool) -> np.ndarray:
    height, width = small.shape[:2]
    scale = REFERENCE / min(height, width)
    up = resized(small, round(width * scale), round(height * scale), Image.Resampling.BICUBIC)
    out = translator.translate_array(up, task)
    if not residual:
        return resized(out, width, height)
    change = out.astype(np.float32) - up.astype(np.float32)
    change = np.stack([np.asarray(Image.fromarray(change[..., c]).resize((width, height))) for c in range(3)], -1)
    return np.clip(np.rint(small + change), 0, 255).astype(np.uint8)


def main() -> None:
    torch.set_num_threads(1)
    weights, forms = sys.argv[1], "--forms" in sys.argv
    translator = Translator.from_file(weights, device="cpu")
    ways = ("native", "up", "resid") if forms else ("translator",)
    scores = {(task, way): {size: [] for size in SIZES} for task in TASKS for way in ways}
    for path in sorted(Path("../shared/data/photos/val").iterdir())[:8]:
        photo = Image.open(path).convert("RGB")
        scale = REFERENCE / min(photo.size)
        reference = np.asarray(photo.resize((round(photo.size[0] * scale), round(photo.size[1] * scale))))
        for task in TASKS:
            out = translator.translate_array(reference, task)
            for size in SIZES:
                width, height = (round(n * size / REFERENCE) for n in reference.shape[1::-1])
                small, target = resized(reference, width, height), resized(out, width, height)
                for way in ways:
                    if way in ("native", "translator"):
                        translator.working_side = None if way == "native" else REFERENCE  # native: never enlarged
                        result = translator.translate_array(small, task)
                    else:
                        result = enlarged_run(translator, small, task, residual=way == "resid")
                    scores[(task, way)][size].append(psnr(result, target))
    for (task, way), by_size in scores.items():
        cells = " ".join(f"{size}:{np.mean(v):5.1f}/{np.min(v):5.1f}" for size, v in by_size.items())
        print(f"{task:20s} {way:10s} {cells}")


if __name__ == "__main__":
    main()
