"""A grid of one photo at strengths 0.2..1: a row per (weights file, task) for seg and style1.

python look_sweep.py PHOTO OUT.png WEIGHTS...
"""

import sys

import numpy as np
import torch
from PIL import Image

from mixtask.weights import load_weights

STRENGTHS = (0.2, 0.4, 0.6, 0.8, 1.0)

torch.set_num_threads(1)
photo, out, *weight_files = sys.argv[1:]
image = Image.open(photo).convert("RGB")
image.thumbnail((256, 256))
image = image.crop((0, 0, image.width // 4 * 4, image.height // 4 * 4))
x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
rows = []
for path in weight_files:
    model, info = load_weights(path)
    model.eval()
    for task in ("seg", "style1"):
        tiles = []
        for strength in STRENGTHS:
            vector = torch.tensor(info.task_set.vector({task: strength}))[None]
            with torch.inference_mode():
                output = model.forward_any_size(x, vector).float().clamp(0, 1)
            tiles.append((output[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        rows.append(np.concatenate(tiles, axis=1))
Image.fromarray(np.concatenate(rows, axis=0)).save(out)
