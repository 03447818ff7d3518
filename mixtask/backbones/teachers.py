"""Teachers: small pretrained ONNX networks that make training targets, never the product's model.

- `StyleTeacher`: Magenta's arbitrary style transfer (Ghiasi et al. 2017, "Exploring the structure
  of a real-time, arbitrary neural artistic stylization network", https://arxiv.org/abs/1705.06830):
  a style predictor turns a style image into a 100-number vector, a transform network renders a
  photo in that style. `--style-loss teacher` trains the style tasks (and the style part of the
  mixes' targets) against its renderings with a pixel loss: far cheaper per step than a VGG
  forward and backward, and it keeps the photo's layout, which the Gram loss did not.
- `SaliencyTeacher`: U²-Net-p (Qin et al. 2020, https://arxiv.org/abs/2005.09007), rembg's small
  salient-object net; `mixtask label` writes pseudo-label masks with it for a user's own photos.

Both follow the conventions of the packages they come from (../shared/teachers/README.md).
ONNX Runtime is an optional dependency (`pip install mixtask[train]`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from mixtask.errors import MixtaskError

STYLE_PREDICTOR, STYLE_TRANSFORM, SALIENCY = "arbitrary_predict.onnx", "arbitrary_transform.onnx", "u2netp.onnx"
STYLE_VECTOR_SIDE, STYLE_CONTENT_SIDE, SALIENCY_SIDE = 256, 384, 320
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def default_teacher_dir() -> Path:
    """`$MIXTASK_TEACHERS`, else `../shared/teachers` beside the project (where this repository keeps them)."""
    import os

    if os.environ.get("MIXTASK_TEACHERS"):
        return Path(os.environ["MIXTASK_TEACHERS"])
    return Path(__file__).resolve().parents[3] / "shared" / "teachers"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _session(path: Path, threads: int = 0):
    try:
        import onnxruntime
    except ImportError:
        raise MixtaskError("teachers need ONNX Runtime: pip install 'mixtask[train]' (or onnxruntime)") from None
    if not Path(path).is_file():
        raise MixtaskError(f"teacher model not found: {path} (see --teachers)")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad files
        raise MixtaskError(f"teacher model {path} cannot be loaded: {str(error).splitlines()[0]}") from None


def _fit_long_side(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS)


class StyleTeacher:
    """Magenta arbitrary style transfer: `render(rgb)` -> the photo in the style of `style_image`."""

    def __init__(self, folder: Path, style_image: Path):
        self.folder, self.style_image = Path(folder), Path(style_image)
        predictor = _session(self.folder / STYLE_PREDICTOR)
        self.transform = _session(self.folder / STYLE_TRANSFORM)
        self.vector = predictor.run(None, {"style_image": self._style_input()})[0]

    def _style_input(self) -> np.ndarray:
        """The largest centred square of the style image, 256 x 256, in 0..1 (NHWC)."""
        from mixtask.images import load_image

        rgb = load_image(self.style_image).rgb
        height, width = rgb.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = Image.fromarray(rgb[top : top + side, left : left + side])
        square = square.resize((STYLE_VECTOR_SIDE, STYLE_VECTOR_SIDE), Image.LANCZOS)
        return (np.asarray(square, dtype=np.float32) / 255)[None]

    def render(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (H, W, 3) uint8 stylised: the teacher sees the photo at 384 px on its long
        side (mirror-padded to 384 x 384), and its rendering is resized back to H x W."""
        height, width = rgb.shape[:2]
        small = np.asarray(_fit_long_side(Image.fromarray(rgb), STYLE_CONTENT_SIDE), dtype=np.float32) / 255
        pad = ((0, STYLE_CONTENT_SIDE - small.shape[0]), (0, STYLE_CONTENT_SIDE - small.shape[1]), (0, 0))
        padded = np.pad(small, pad, mode="symmetric")[None]
        inputs = {"content_image": padded, self.transform.get_inputs()[1].name: self.vector}
        out = self.transform.run(None, inputs)[0][0, : small.shape[0], : small.shape[1]]
        image = Image.fromarray(np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8))
        return np.asarray(image.resize((width, height), Image.LANCZOS))

    def provenance(self) -> dict:
        return {
            "teacher": "Magenta arbitrary image stylization (Ghiasi et al. 2017), int8 ONNX",
            "files": {name: file_sha256(self.folder / name) for name in (STYLE_PREDICTOR, STYLE_TRANSFORM)},
            "style_image_sha256": file_sha256(self.style_image),
        }


class SaliencyTeacher:
    """U²-Net-p: `mask(rgb)` -> (H, W) uint8 salient-object mask, as rembg computes it."""

    def __init__(self, model: Path):
        self.model = Path(model)
        self.session = _session(self.model)

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        image = Image.fromarray(rgb).resize((SALIENCY_SIDE, SALIENCY_SIDE), Image.LANCZOS)
        x = np.asarray(image, dtype=np.float32)
        x = (x / max(float(x.max()), 1e-6) - IMAGENET_MEAN) / IMAGENET_STD
        x = x.transpose(2, 0, 1)[None].astype(np.float32)
        out = self.session.run(None, {self.session.get_inputs()[0].name: x})[0][0, 0]
        out = (out - out.min()) / max(float(out.max() - out.min()), 1e-6)  # rembg's per-image min-max
        mask = Image.fromarray((out * 255).astype(np.uint8)).resize((width, height), Image.LANCZOS)
        return np.asarray(mask)


def _cached_render(path: Path, rgb: np.ndarray, teacher: StyleTeacher) -> np.ndarray:
    """The teacher's rendering of `rgb`, read from `path` when a file of the right size is there."""
    from mixtask.fileio import write_bytes_atomic
    from mixtask.images import encode

    if path.is_file():
        cached = np.array(Image.open(path).convert("RGB"))
        if cached.shape == rgb.shape:
            return cached
    rendered = teacher.render(rgb)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, encode(Image.fromarray(rendered), "png"))
    return rendered


def on_white(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA uint8 -> RGB flattened onto white (the teacher package's rule for alpha)."""
    alpha = rgba[..., 3:].astype(np.float32) / 255
    return np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)


def render_cache(dataset, provenance: dict) -> Path:
    """Where the renderings of one data split and style go: `$MIXTASK_CACHE` or ~/.cache/mixtask, then
    teacher-styles/<data, split and decoded size>/<style image>; runs and probes on the same data share it."""
    from mixtask.fileio import cache_dir

    root = cache_dir()
    data = hashlib.sha256(str(Path(dataset.root).resolve()).encode()).hexdigest()[:12]
    teacher = hashlib.sha256(json.dumps(provenance, sort_keys=True).encode()).hexdigest()[:16]  # style + teacher files
    return root / "teacher-styles" / f"{data}-{dataset.split}-{dataset.max_side}" / teacher


def render_dataset(dataset, teacher: StyleTeacher, cache: Path, progress=None):
    """The teacher's rendering of every photo and cut-out of `dataset` (CHW uint8 tensors, aligned with
    `dataset.photos` and `dataset.cutouts`), cached as PNGs under `cache` so a resume renders nothing."""
    import torch

    def chw(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(array)).permute(2, 0, 1)

    photos, cutouts = [], []
    for name, photo in zip(dataset.photo_names, dataset.photos):
        rgb = photo.permute(1, 2, 0).numpy()
        photos.append(chw(_cached_render(cache / "photos" / f"{Path(name).stem}.png", rgb, teacher)))
        if progress:
            progress()
    for name, cutout in zip(dataset.cutout_names, dataset.cutouts):
        flat = on_white(cutout.permute(1, 2, 0).numpy())
        cutouts.append(chw(_cached_render(cache / "cutouts" / f"{Path(name).stem}.png", flat, teacher)))
        if progress:
            progress()
    return tuple(photos), tuple(cutouts)
