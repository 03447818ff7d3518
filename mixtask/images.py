"""Image files in and out: decode any common file to 8-bit RGB (+ alpha), encode the result.

The network sees only 8-bit RGB. Everything else a file may hold is dealt with here, once:
EXIF orientation, palettes (with transparency), grayscale, CMYK, 16-bit and float pixels,
and alpha, which is split off so it can be put back unchanged on the output. Damaged files
(truncated, corrupt, not an image) raise `MixtaskError` naming the file.

Output formats: PNG, JPEG or WebP. By default an output keeps its input's format (other
formats such as BMP, TIFF or GIF become PNG), and an image with alpha is written as PNG when
the chosen format (JPEG) cannot hold it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from mixtask.errors import MixtaskError

MAX_PIXELS = 150_000_000  # 12,000 x 12,500; far above photos, well below a decompression bomb
MAX_PIXELS_ENV = "MIXTASK_MAX_PIXELS"  # a user with bigger images (and the memory) raises the cap here
WRITABLE_FORMATS = ("png", "jpeg", "webp")
ALPHA_FORMATS = ("png", "webp")
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
FORMAT_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "jfif": "jpeg", "mpo": "jpeg", "tif": "tiff"}
INPUT_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
_RGB_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA")
_truncation_lock = threading.Lock()


@dataclass
class LoadedImage:
    """A decoded image: `rgb` (H, W, 3) uint8, `alpha` (H, W) uint8 or None."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    format: str  # lower-case decoder name, e.g. "png", "jpeg", "webp", "bmp"
    name: str
    icc_profile: bytes | None = None  # an RGB profile, carried to the output

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports it."""
        return self.rgb.shape[1], self.rgb.shape[0]


def normalize_format(name: str | None) -> str | None:
    """`jpg` -> `jpeg`, `PNG` -> `png`; None stays None."""
    if name is None:
        return None
    name = name.lower().lstrip(".")
    return FORMAT_ALIASES.get(name, name)


def format_from_extension(path: Path) -> str | None:
    """The format a file name suggests (`.JPG` -> `jpeg`), or None for unknown suffixes."""
    suffix = path.suffix.lower()
    return normalize_format(suffix) if suffix in INPUT_EXTENSIONS else None


def is_input_name(name: str) -> bool:
    """Whether a folder scan takes this file name as an input image: not hidden, one of INPUT_EXTENSIONS."""
    return not name.startswith(".") and Path(name).suffix.lower() in INPUT_EXTENSIONS


def choose_format(requested: str | None, input_format: str | None, has_alpha: bool) -> str:
    """The output format: `requested`, else the input's (if writable), else PNG; PNG for alpha in JPEG."""
    chosen = normalize_format(requested) or normalize_format(input_format)
    if chosen not in WRITABLE_FORMATS:
        chosen = "png"
    if has_alpha and chosen not in ALPHA_FORMATS:
        return "png"
    return chosen


def extension(format_name: str) -> str:
    """File extension (no dot) for an output format: `jpeg` -> `jpg`."""
    return EXTENSIONS[normalize_format(format_name)]


def load_image(source: Path | bytes, name: str | None = None) -> LoadedImage:
    """Decode a file (or its bytes) to 8-bit RGB + alpha, EXIF orientation applied."""
    name = name or (str(source) if isinstance(source, Path) else "<stdin>")
    try:
        with _open(source, name) as image:
            _check_size(image, name)
            if image.format == "PNG":
                check_png_data(source.read_bytes() if isinstance(source, Path) else source, name)
            _load_strictly(image)
            return from_pil(image, name)
    except MixtaskError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise _unreadable(name, error) from None


def _open(source: Path | bytes, name: str) -> Image.Image:
    if isinstance(source, Path) and not source.is_file():
        raise MixtaskError(f"{name}: no such file" if not source.exists() else f"{name}: not a file")
    if isinstance(source, bytes) and not source:
        raise MixtaskError(f"{name}: empty (no bytes to decode)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap is checked next
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def max_pixels() -> int:
    """The largest image accepted, in pixels: $MIXTASK_MAX_PIXELS, else MAX_PIXELS."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise MixtaskError(f"{MAX_PIXELS_ENV}={text!r}: give a whole number of pixels, e.g. 300000000")
    return int(text)


def _check_still(image: Image.Image, name: str) -> None:
    """A multi-frame file (animated GIF, WebP or PNG; multi-page TIFF) is refused, never cut to its first frame."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise MixtaskError(
            f"{name}: {frames} frames ({image.format} animation or pages); mixtask translates still images: "
            "save the frames as separate files first"
        )


def _check_size(image: Image.Image, name: str) -> None:
    width, height = image.size
    limit = max_pixels()
    if width * height > limit:
        raise MixtaskError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the limit of "
            f"{limit / 1e6:.0f}; downscale it first (or raise the limit: {MAX_PIXELS_ENV}=N pixels)"
        )


PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_raw_size(width: int, height: int, depth: int, colour_type: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines a PNG of this header must decompress to (one filter byte per row)."""
    bits = depth * PNG_CHANNELS.get(colour_type, 4)

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w and h else 0

    if not interlaced:
        return rows(width, height)
    return sum(rows((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in ADAM7)


def check_png_data(data: bytes, name: str) -> None:
    """A PNG whose compressed data ends before its declared frame is an error, found before any frame is
    allocated: PIL would fill the missing rows with black and call the image valid. The data is inflated
    once, counted and thrown away, stopping at the declared size (so the cost is bounded by the file)."""
    import struct
    import zlib

    position, header, compressed = 8, None, []
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR" and len(body) >= 13:
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
        position += 12 + length
    if header is None:
        return  # PIL reports a PNG without a header itself
    width, height, depth, colour_type, _, _, interlace = header
    needed = png_raw_size(width, height, depth, colour_type, bool(interlace))
    inflater, produced = zlib.decompressobj(), 0
    try:
        for part in compressed:
            while part and produced < needed:
                produced += len(inflater.decompress(part, min(needed - produced, 1 << 22)))
                part = inflater.unconsumed_tail
            if produced >= needed:
                return
    except zlib.error as error:
        raise MixtaskError(f"{name}: not a readable image (damaged PNG data: {error})") from None
    rows = produced * height // max(needed, 1)
    raise MixtaskError(f"{name}: not a readable image (truncated PNG: its data holds about {rows} of {height} rows)")


def _load_strictly(image: Image.Image) -> None:
    """Decode all pixels now, failing on truncated files even if LOAD_TRUNCATED_IMAGES was set."""
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        image.load()
        return
    with _truncation_lock:  # the flag is global: restore it for whoever set it
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = True


def _unreadable(name: str, error: BaseException) -> MixtaskError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    detail = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the data", detail)  # PIL names the buffer
    if isinstance(error, Image.DecompressionBombError):
        return MixtaskError(f"{name}: too many pixels to decode safely ({detail})")
    return MixtaskError(f"{name}: not a readable image ({detail})")


def from_pil(image: Image.Image, name: str = "image") -> LoadedImage:
    """Split a PIL image of any mode into 8-bit RGB and alpha (orientation applied); a multi-frame one is refused."""
    _check_still(image, name)
    format_name = normalize_format(image.format) or "png"  # transposed copies forget their format
    image = _oriented(image)
    rgb, alpha = _to_rgb_alpha(image)
    icc = image.info.get("icc_profile") if image.mode in _RGB_MODES else None
    return LoadedImage(rgb, alpha, format_name, name, icc or None)


def _oriented(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # EXIF in the wild is often malformed; orientation is not worth failing for
        return image


def _to_rgb_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        gray = _deep_to_8bit(image)
        return np.repeat(gray[..., None], 3, axis=2), None
    if (mode == "P" and image.has_transparency_data) or mode in ("PA", "RGBa"):
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("LA", "La"):
        image = image.convert("LA")
        return _rgb(image.getchannel("L").convert("RGB")), np.array(image.getchannel("A"))
    if mode == "RGBA":
        return _rgb(image.convert("RGB")), np.array(image.getchannel("A"))
    return _rgb(image.convert("RGB")), None


def rgb_of(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 of any mode, 16-bit and float scaled as `load_image` does, alpha dropped."""
    return _to_rgb_alpha(image)[0]


def _rgb(image: Image.Image) -> np.ndarray:
    return np.array(image, dtype=np.uint8)  # a writable copy: torch.from_numpy wants one


def _deep_to_8bit(image: Image.Image) -> np.ndarray:
    """16-bit (I;16*, I) scales 0..65535 to 0..255; float (F) in [0, 1] scales by 255, else clips."""
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        values = np.nan_to_num(values, nan=0.0) * scale
    else:
        values = values / 257.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def grey_pil(grey: np.ndarray) -> Image.Image:
    """(H, W) uint8 -> an 8-bit grey ("L") image."""
    return Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8), "L")


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """RGB (H, W, 3) uint8 plus optional alpha (H, W) uint8 -> an RGB or RGBA image."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if alpha is None:
        return image
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha {alpha.shape} does not match image {rgb.shape[:2]}")
    image.putalpha(Image.fromarray(np.ascontiguousarray(alpha, dtype=np.uint8), "L"))
    return image


def encode(image: Image.Image, format_name: str, quality: int = 92, icc_profile: bytes | None = None) -> bytes:
    """Encode to PNG, JPEG or WebP bytes. JPEG drops alpha: callers pick PNG for that (`choose_format`)."""
    format_name = normalize_format(format_name)
    if format_name not in WRITABLE_FORMATS:
        raise MixtaskError(f"cannot write {format_name!r} images; use png, jpg or webp")
    options: dict = {"icc_profile": icc_profile} if icc_profile else {}
    if format_name == "jpeg":
        image = image.convert("RGB")
        # Full-resolution colour at high quality: 4:2:0 smears the fine colour edges of styles.
        # No optimize=True: Pillow then sizes its buffer at ~1 byte/pixel, and noisy images (styles!)
        # at high quality overflow it ("Suspension not allowed here").
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif format_name == "webp":
        options.update(quality=quality, lossless=quality >= 100, exact=True)
    buffer = io.BytesIO()
    with contextlib.closing(buffer):
        image.save(buffer, format=format_name.upper(), **options)
        return buffer.getvalue()
