"""The seg mask (the gate that `--cutout` reads) of each weights file on the README's two example photos, side
by side: one row per weights file, the photos in the first row.

    python weights/training/probes/scales/look_masks.py OUT.png WEIGHTS...
"""

import sys

import numpy as np
from PIL import Image

from mixtask import load_model

PHOTOS = ("examples/skimage-astronaut.jpg", "examples/mate-fresh-flower.jpg")
SIDE = 256

out, weights = sys.argv[1], sys.argv[2:]
photos = [Image.open(path).convert("RGB").resize((SIDE, SIDE)) for path in PHOTOS]
rows = [np.concatenate([np.asarray(photo) for photo in photos], axis=1)]
for path in weights:
    model = load_model(path)
    masks = [model.gate_array(np.asarray(photo), "seg=1") for photo in photos]  # the cut-out's alpha
    rows.append(np.repeat(np.concatenate([(255 * mask).round() for mask in masks], axis=1)[..., None], 3, axis=2))
Image.fromarray(np.concatenate(rows, axis=0).astype(np.uint8)).save(out)
print("wrote", out)
