"""`apply`'s restoration finish (`blending.restore`: the gate sharpened, the generated pixels blended) over the
strength sweep of the eval, on its 16 damaged val crops: PSNR dB whole / damaged at each strength, to check that
the finished output still improves steadily with the strength.

    python weights/training/probes/selfmask/sweep.py WEIGHTS
"""

import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, "weights/training/probes")
from evalcrops import COUNT, SIZE
from probe import psnr

from mixtask.data import CORRUPTIONS, SampleMaker, default_max_side, load_dataset
from mixtask.evaluation.groups import SWEEP_STRENGTHS
from mixtask.inference.blending import restore
from mixtask.inference.translator import Translator
from mixtask.tensors import to_array


def main(weights: str) -> None:
    torch.set_num_threads(1)
    translator = Translator.from_file(weights, device="cpu", precision="fp32")
    dataset = load_dataset("../shared/data", "val", max_side=default_max_side(SIZE))
    clean = SampleMaker(dataset, SIZE, 0).clean(COUNT)
    for kind in ("inpaint", "denoise"):
        x, mask = CORRUPTIONS[kind](clean, torch.Generator().manual_seed(zlib.crc32(kind.encode())))
        line = []
        for strength in SWEEP_STRENGTHS:
            vector = translator.task_set.vector({kind: strength})
            scores = []
            for image, target, hole in zip(x, clean, mask, strict=True):
                out, truth = restore(translator, to_array(image), vector), to_array(target)
                scores.append((psnr(out, truth), psnr(out, truth, hole[0].numpy() > 0.5)))
            whole, damaged = np.mean(scores, axis=0)
            line.append(f"{strength:.1f}: {whole:.2f} / {damaged:.2f}")
        print(f"{kind}: " + ", ".join(line))


if __name__ == "__main__":
    main(*sys.argv[1:])
