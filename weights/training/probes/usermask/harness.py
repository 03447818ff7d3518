"""Shared by the user-mask fill probes: the val photos with the training holes, scored inside the holes.

Each probe script passes its fill methods (rgb, hole mask -> filled rgb) to `score`, which prints one line per
photo and the means beside OpenCV Telea (radius 5), as `benchmarks/inpaint_mask.py` scores `apply --mask`.
Run from the repository root: python weights/training/probes/usermask/fill_colours.py WEIGHTS [PHOTOS]
(PHOTOS: how many of the sorted val photos, 10 by default).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from inpaint_mask import hole_psnr, shrunk

from mixtask.data.damage import damage
from mixtask.evaluation.run import load_model
from mixtask.images import INPUT_EXTENSIONS, load_image
from mixtask.inference.inpainting import network_fill
from mixtask.inference.translator import Translator
from mixtask.nets.film import recording_gates

SIDE = 512  # the benchmark's long side


def engine() -> tuple[Translator, tuple[float, ...]]:
    """The weights named on the command line, as `apply --mask` runs them, and inpaint's task vector."""
    translator = Translator.from_file(Path(sys.argv[1]))
    return translator, translator.task_set.parse("inpaint")


def inpaint(translator: Translator, rgb: np.ndarray, mask: np.ndarray, vector) -> np.ndarray:
    """`apply --mask`'s path as the thirteenth session's probes knew it: the network's averaged fill in the holes,
    before the Poisson blend that the fourteenth session added (`fill_poisson.py`)."""
    return np.where(mask[..., None], network_fill(translator, rgb, mask, vector), rgb)


def bare_model() -> tuple[torch.nn.Module, torch.Tensor]:
    """The same weights as a bare network, and inpaint's condition (1, tasks)."""
    model, info = load_model(Path(sys.argv[1]))
    return model.eval(), torch.tensor(info.task_set.vector({"inpaint": 1.0}))[None]


@torch.inference_mode()
def generated_colours(model: torch.nn.Module, condition: torch.Tensor, prepared: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1]: the gated head's generated colours alone, (y - g x) / (1 - g), as if the gate
    were 0 everywhere."""
    x = torch.from_numpy(prepared).permute(2, 0, 1)[None].float() / 255
    with recording_gates() as gates:
        y = model.forward_any_size(x, condition).float()
    gate = torch.sigmoid(gates[-1].float())[..., : y.shape[-2], : y.shape[-1]]
    return ((y - gate * x) / (1 - gate).clamp_min(1e-3)).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def cached(name: str, make, *args) -> np.ndarray:
    """make(*args), an array kept in /tmp/mixtask-fill-cache under `name` (the network's fills, run once)."""
    path = Path("/tmp/mixtask-fill-cache") / f"{name}.npy"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        np.save(path, make(*args))
    return np.load(path)


def damaged_photos():
    """(name, clean, damaged, holes) for the first PHOTOS val photos (argv[2], all by default) at SIDE px, with the
    training holes seeded by the photo's index."""
    torch.set_num_threads(1)
    for seed, path in enumerate(val_photos(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)):
        clean = shrunk(load_image(path).rgb, SIDE)
        damaged, mask = damage(clean, ("inpaint",), seed)
        yield path, clean, damaged, mask > 127


def val_photos(limit: int) -> list[Path]:
    folder = Path("../shared/data/photos/val")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in INPUT_EXTENSIONS)[:limit]


def score(methods: dict) -> None:
    torch.set_num_threads(1)
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    scores = {name: [] for name in [*methods, "telea"]}
    for seed, path in enumerate(val_photos(limit)):
        clean = shrunk(load_image(path).rgb, SIDE)
        damaged, mask = damage(clean, ("inpaint",), seed)
        holes = mask > 127
        for name, fill in methods.items():
            scores[name].append(hole_psnr(fill(damaged, holes), clean, holes))
        telea = cv2.inpaint(damaged, holes.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
        scores["telea"].append(hole_psnr(telea, clean, holes))
        print(path.name[:30], " ".join(f"{k} {v[-1]:.2f}" for k, v in scores.items()), flush=True)
    print("MEAN", " ".join(f"{k} {np.mean(v):.2f}" for k, v in scores.items()))
