"""Sheet: rows = weights files; columns, for each README photo: the photo, style1 at 0.8, style1, style2 (256 px wide;
the flower, wider than tall, is cropped into a 256 x 256 canvas with black below it).

    python weights/training/probes/texture/look.py OUT.png A.safetensors B.safetensors
"""

import sys

import numpy as np
from PIL import Image

from mixtask import load_model


def square(photo: Image.Image) -> np.ndarray:
    scale = 256 / max(photo.size)
    small = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    return np.asarray(small.crop((0, 0, 256, 256)))


out, files = sys.argv[1], sys.argv[2:]
names = ("skimage-astronaut.jpg", "mate-fresh-flower.jpg")
photos = [square(Image.open(f"examples/{name}").convert("RGB")) for name in names]
vectors = ((0, 0, 0, 0.8, 0), (0, 0, 0, 1, 0), (0, 0, 0, 0, 1))  # inpaint, denoise, seg, style1, style2
rows = []
for path in files:
    model = load_model(path, precision="fp32")
    cells = [cell for photo in photos for cell in (photo, *(model.translate_array(photo, v) for v in vectors))]
    rows.append(np.concatenate(cells, axis=1))
Image.fromarray(np.concatenate(rows, axis=0)).save(out)
