"""Image decoding to 8-bit RGB + alpha, output-format rules and encoding."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from mixtask import images
from mixtask.errors import MixtaskError
from mixtask.images import choose_format, encode, from_pil, load_image, to_pil

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (24, 40), dtype=np.uint8)


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): gray (H, W) or RGB (H, W, 3)."""
    height, width = array.shape[:2]
    color_type = 2 if array.ndim == 3 else 0
    rows = array.astype(">u2").reshape(height, -1).tobytes()
    stride = len(rows) // height
    raw = b"".join(b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_rgb_png_round_trip(tmp_path):
    loaded = load_image(save(Image.fromarray(RGB), tmp_path / "a.png"))
    assert loaded.format == "png" and loaded.alpha is None and loaded.name.endswith("a.png")
    np.testing.assert_array_equal(loaded.rgb, RGB)
    assert loaded.size == (40, 24)


def test_rgba_splits_alpha(tmp_path):
    loaded = load_image(save(to_pil(RGB, ALPHA), tmp_path / "a.png"))
    np.testing.assert_array_equal(loaded.alpha, ALPHA)
    np.testing.assert_array_equal(loaded.rgb, RGB)


def test_la_and_grayscale(tmp_path):
    gray = Image.fromarray(RGB[..., 0])
    la = load_image(save(Image.merge("LA", [gray, Image.fromarray(ALPHA)]), tmp_path / "la.png"))
    np.testing.assert_array_equal(la.alpha, ALPHA)
    for loaded in (la, load_image(save(gray, tmp_path / "l.png"))):
        assert loaded.rgb.shape == (24, 40, 3)
        np.testing.assert_array_equal(loaded.rgb[..., 2], RGB[..., 0])


def test_palette_with_and_without_transparency(tmp_path):
    palette = Image.fromarray(RGB).quantize(16)
    opaque = load_image(save(palette, tmp_path / "p.png"))
    assert opaque.alpha is None and opaque.rgb.shape == (24, 40, 3)
    clear = load_image(save(palette, tmp_path / "t.png", transparency=0))
    expected = np.where(np.asarray(palette) == 0, 0, 255)
    np.testing.assert_array_equal(clear.alpha, expected)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    flat = Image.new("RGB", (32, 32), (200, 40, 90))
    loaded = load_image(save(flat.convert("CMYK"), tmp_path / "c.jpg", quality=95))
    assert loaded.format == "jpeg" and loaded.alpha is None
    assert np.abs(loaded.rgb.astype(int) - (200, 40, 90)).max() <= 6


def test_16bit_gray_png_scales_to_8bit(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    path.write_bytes(png16(values))
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded.rgb[0, :, 1], [0, 100, 255, 255])


def test_16bit_rgb_png(tmp_path):
    values = np.array([[[65535, 0, 257 * 7]]], dtype=np.uint16)
    loaded = load_image(png16(values))
    np.testing.assert_array_equal(loaded.rgb[0, 0], [255, 0, 7])
    assert loaded.name == "<stdin>"


def test_float_and_int32_images():
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    np.testing.assert_array_equal(from_pil(floats).rgb[0, :, 0], [0, 128, 255])
    ints = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    np.testing.assert_array_equal(from_pil(ints).rgb[0, :, 0], [0, 255])


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = save(Image.fromarray(RGB), tmp_path / "rot.jpg", exif=exif)
    loaded = load_image(path)
    assert loaded.rgb.shape == (40, 24, 3) and loaded.format == "jpeg"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("lenient", [False, True])
def test_truncated_files_are_errors(tmp_path, monkeypatch, fmt, lenient):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", lenient)
    buffer = io.BytesIO()
    Image.fromarray(RGB).save(buffer, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(MixtaskError, match=r"cut\.\w+: not a readable image"):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is lenient


def test_not_an_image_and_missing_file(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(MixtaskError, match=r"notes\.jpg: not a readable image"):
        load_image(tmp_path / "notes.jpg")
    with pytest.raises(MixtaskError, match=r"gone\.png: no such file"):
        load_image(tmp_path / "gone.png")
    with pytest.raises(MixtaskError, match="not a file"):
        load_image(tmp_path)


def test_big_images_load_and_a_cap_stops_bombs(tmp_path, monkeypatch):
    path = save(Image.new("L", (6000, 4000)), tmp_path / "big.png")
    assert load_image(path).rgb.shape == (4000, 6000, 3)
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(MixtaskError, match=r"big\.png: 6000x4000 is 24 megapixels, over the limit.*MIXTASK_MAX_PIXELS"):
        load_image(path)
    monkeypatch.setenv("MIXTASK_MAX_PIXELS", "24000000")  # a user raises the cap
    assert load_image(path).rgb.shape == (4000, 6000, 3)
    monkeypatch.setenv("MIXTASK_MAX_PIXELS", "23999999")
    with pytest.raises(MixtaskError, match="over the limit"):
        load_image(path)
    monkeypatch.setenv("MIXTASK_MAX_PIXELS", "lots")
    with pytest.raises(MixtaskError, match="MIXTASK_MAX_PIXELS='lots': give a whole number"):
        load_image(path)


def test_choose_format_rules():
    assert choose_format(None, "jpeg", False) == "jpeg"
    assert choose_format(None, "webp", True) == "webp"
    assert choose_format(None, "bmp", False) == "png"
    assert choose_format(None, "gif", False) == "png"
    assert choose_format("jpg", "png", False) == "jpeg"
    assert choose_format("jpg", "png", True) == "png"  # JPEG has no alpha
    assert choose_format(None, "jpeg", True) == "png"
    assert images.extension("jpeg") == "jpg"
    assert images.format_from_extension(Path("x.JPEG")) == "jpeg"
    assert images.format_from_extension(Path("x.txt")) is None


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_encode_decodes_back(fmt):
    data = encode(to_pil(RGB, None if fmt == "jpeg" else ALPHA), fmt, quality=100)
    loaded = load_image(data)
    assert loaded.format == fmt and loaded.rgb.shape == RGB.shape
    if fmt != "jpeg":
        np.testing.assert_array_equal(loaded.alpha, ALPHA)
        np.testing.assert_array_equal(loaded.rgb, RGB)  # PNG, and WebP at 100, are lossless


@pytest.mark.parametrize("quality", [92, 100])
def test_noisy_jpeg_at_high_quality(quality):
    noise = RNG.integers(0, 256, (96, 128, 3), dtype=np.uint8)  # compresses worse than 1 byte/pixel
    assert load_image(encode(to_pil(noise), "jpeg", quality)).size == (128, 96)


def test_quality_and_icc_profile():
    image = to_pil(RGB)
    assert len(encode(image, "jpg", quality=30)) < len(encode(image, "jpg", quality=95))
    profile = b"fake-icc-profile"
    assert Image.open(io.BytesIO(encode(image, "png", icc_profile=profile))).info["icc_profile"] == profile
    with pytest.raises(MixtaskError, match="cannot write 'bmp'"):
        encode(image, "bmp")


def test_to_pil_validates_shapes():
    assert to_pil(RGB, ALPHA).mode == "RGBA" and to_pil(RGB).mode == "RGB"
    with pytest.raises(ValueError):
        to_pil(RGB.astype(np.float32))
    with pytest.raises(ValueError):
        to_pil(RGB, ALPHA[:5])


def png_with_rows(width: int, height: int, rows: int) -> bytes:
    """A PNG declaring width x height whose (valid) compressed stream holds only `rows` rows."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([200]) * (width * 3) for _ in range(rows))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height", "rows"), [(96, 96, 10), (4000, 4000, 1), (12000, 12000, 1)])
def test_a_png_whose_data_ends_early_is_refused_fast(width, height, rows):
    import time

    start = time.perf_counter()
    with pytest.raises(MixtaskError, match=f"truncated PNG: its data holds about {rows} of {height} rows"):
        load_image(png_with_rows(width, height, rows))
    assert time.perf_counter() - start < 5  # bounded by the file, not by the declared frame


def test_complete_and_interlaced_pngs_still_load(tmp_path):
    assert load_image(png_with_rows(16, 8, 8)).rgb.shape == (8, 16, 3)
    rgb = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    for mode, image in (
        ("RGB", Image.fromarray(rgb)),
        ("P", Image.fromarray(rgb).quantize(16)),
        ("I;16", Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)),
    ):
        path = tmp_path / f"{mode.replace(';', '')}.png"
        image.save(path, interlace=1) if mode == "RGB" else image.save(path)
        assert load_image(path).rgb.shape == (33, 47, 3), mode


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG", "TIFF"])
def test_a_multi_frame_file_is_refused_not_cut_to_its_first_frame(tmp_path, fmt):
    frames = [Image.fromarray(np.full((16, 16, 3), value, np.uint8)) for value in (0, 128, 255)]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(MixtaskError, match=r"anim\.\w+: 3 frames .* mixtask translates still images"):
        load_image(path)
    with Image.open(path) as opened, pytest.raises(MixtaskError, match="3 frames"):  # the Python API's way in
        from_pil(opened)
    frames[0].save(tmp_path / f"still.{fmt.lower()}", format=fmt)  # one frame: fine
    assert load_image(tmp_path / f"still.{fmt.lower()}").rgb.shape == (16, 16, 3)
