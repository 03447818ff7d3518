"""Inpainting with a user mask against OpenCV Telea given the same mask, on the val photos.

Each val photo (long side cut to --side px) gets the training holes from `mixtask damage` (seeded per photo); the
holes are filled by `apply --mask`'s path (`mixtask.inference.inpainting.inpaint`: the network's fill, Poisson-blended
into the rim) and by Telea (radius 5), and both are scored by PSNR inside the holes against the clean photo; the
network's fill before the blend is scored too. Outside the holes both keep the input.

    python benchmarks/inpaint_mask.py --data ../shared/data [-w WEIGHTS] [--side 512] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from mixtask.data.damage import damage
from mixtask.images import INPUT_EXTENSIONS, load_image
from mixtask.inference.blending import poisson_blend
from mixtask.inference.inpainting import FILL_PASSES, network_fill
from mixtask.inference.translator import Translator


def hole_psnr(output: np.ndarray, clean: np.ndarray, holes: np.ndarray) -> float:
    error = (output[holes].astype(np.float64) - clean[holes].astype(np.float64)) / 255
    mse = float(np.mean(error**2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def shrunk(rgb: np.ndarray, side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (round(width * scale), round(height * scale))
    return rgb if scale == 1 else np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("-w", "--weights", type=Path, default=None)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    translator = Translator.from_file(args.weights)
    vector = translator.task_set.parse("inpaint")
    photos = sorted(p for p in (args.data / "photos" / "val").iterdir() if p.suffix.lower() in INPUT_EXTENSIONS)
    rows = []
    for seed, path in enumerate(photos):
        clean = shrunk(load_image(path).rgb, args.side)
        damaged, mask = damage(clean, ("inpaint",), seed)
        holes = mask > 127
        fill = network_fill(translator, damaged, holes, vector)
        model = poisson_blend(damaged, fill, holes)  # = inpaint(translator, damaged, holes, vector), one network run
        telea = cv2.inpaint(damaged, holes.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
        assert (model[~holes] == damaged[~holes]).all()
        rows.append((path.name, *(hole_psnr(image, clean, holes) for image in (model, telea, fill))))
        print(f"{path.name:40s} model {rows[-1][1]:6.2f} dB   Telea {rows[-1][2]:6.2f} dB   "
              f"fill alone {rows[-1][3]:6.2f} dB", flush=True)  # fmt: skip
    model_mean, telea_mean, fill_mean = (float(np.mean([row[i] for row in rows])) for i in (1, 2, 3))
    wins = sum(row[1] >= row[2] for row in rows)
    print(f"{len(rows)} val photos at {args.side} px, hole PSNR: model {model_mean:.2f} dB, Telea {telea_mean:.2f} dB; "
          f"model >= Telea on {wins}; the network's fill before the blend {fill_mean:.2f} dB")  # fmt: skip
    if args.json:
        summary = {"photos": len(rows), "side": args.side, "fill_passes": FILL_PASSES, "model_db": model_mean,
                   "telea_db": telea_mean, "model_wins": wins, "fill_alone_db": fill_mean,
                   "weights": str(args.weights or "shipped"),
                   "rows": [{"photo": name, "model_db": m, "telea_db": t, "fill_alone_db": f}
                            for name, m, t, f in rows]}  # fmt: skip
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
