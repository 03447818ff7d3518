"""Classical restoration baselines, so evaluation shows whether the network beats them.

Denoising (scratch removal): OpenCV median filter (3 and 5 px) and non-local means
(Buades et al. 2005, `cv2.fastNlMeansDenoisingColored`). Inpainting: Telea (2004) fast marching,
`cv2.inpaint`, given the TRUE hole mask, which the network's own row never sees (an advantage to Telea); the row
`model given the mask` (`mixtask.evaluation.groups`) is told it too, as `apply --mask` is.
`BASELINES` maps a task kind to its baselines; each takes the damaged batch (B, 3, H, W) in
[0, 1] and the damage mask (B, 1, H, W) and returns the restored batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mixtask.tensors import from_uint8, to_array


def _per_image(batch: torch.Tensor, function: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    return torch.stack([from_uint8(function(to_array(image))) for image in batch]).to(batch.device)


def median(batch: torch.Tensor, kernel: int) -> torch.Tensor:
    import cv2

    return _per_image(batch, lambda image: cv2.medianBlur(image, kernel))


def non_local_means(batch: torch.Tensor, strength: float = 10.0) -> torch.Tensor:
    import cv2

    def denoise(image: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(image[..., ::-1])  # OpenCV's colour conversion expects BGR
        return cv2.fastNlMeansDenoisingColored(bgr, None, strength, strength, 7, 21)[..., ::-1]

    return _per_image(batch, denoise)


def telea_inpaint(batch: torch.Tensor, mask: torch.Tensor, radius: int = 5) -> torch.Tensor:
    """Fill the pixels where `mask` (B, 1, H, W) is set, from their surroundings."""
    import cv2

    outputs = []
    for image, hole in zip(batch, mask):
        hole_u8 = (hole[0] > 0.5).byte().cpu().numpy() * 255
        outputs.append(from_uint8(cv2.inpaint(to_array(image), hole_u8, radius, cv2.INPAINT_TELEA)))
    return torch.stack(outputs).to(batch.device)


Baseline = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

BASELINES: dict[str, dict[str, Baseline]] = {
    "denoise": {
        "median 3x3": lambda batch, mask: median(batch, 3),
        "median 5x5": lambda batch, mask: median(batch, 5),
        "non-local means": lambda batch, mask: non_local_means(batch),
    },
    "inpaint": {"Telea (true mask)": telea_inpaint},
}
