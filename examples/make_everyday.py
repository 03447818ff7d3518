"""Rebuild examples/everyday/ (the README's "Everyday jobs" pictures) with the shipped weights.

- cutout-on-checker.png: `mixtask apply photo --task seg=1,style1=1` (RGBA) shown over a checkerboard;
- inpaint-mask.png: a photo with holes from `mixtask damage --mask`, the mask, and `apply --task inpaint --mask`;
- serve-page.png: the `mixtask serve` page in headless Chromium after the style1 slider moved (needs the [serve]
  extra, Playwright and Debian's chromium; skipped without them).

    python examples/make_everyday.py        (from the repository root)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "everyday"
PHOTO = ROOT / "examples" / "skimage-astronaut.jpg"
SIDE = 384


def mixtask(*args) -> None:
    command = [sys.executable, "-m", "mixtask", *map(str, args)]
    print("+ mixtask", " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def checkerboard(width: int, height: int, cell: int = 16) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    grey = np.where((yy // cell + xx // cell) % 2 == 0, 205, 245).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))


def side_by_side(images: list[Image.Image], gap: int = 8) -> Image.Image:
    height = max(image.height for image in images)
    sheet = Image.new("RGB", (sum(image.width for image in images) + gap * (len(images) - 1), height), "white")
    left = 0
    for image in images:
        sheet.paste(image.convert("RGB"), (left, 0))
        left += image.width + gap
    return sheet


def cutout_picture(photo: Path) -> None:
    cut = OUT / "cutout.png"
    mixtask("apply", photo, "--task", "seg=1,style1=1", "-o", cut, "--overwrite")
    rgba = Image.open(cut).convert("RGBA")
    board = checkerboard(*rgba.size)
    board.paste(rgba, (0, 0), rgba)
    side_by_side([Image.open(photo), board]).save(OUT / "cutout-on-checker.png")
    cut.unlink()


def inpaint_picture(photo: Path) -> None:
    holes, mask, filled = OUT / "holes.png", OUT / "holes-mask.png", OUT / "filled.png"
    mixtask("damage", photo, "-k", "inpaint", "--seed", "4", "-o", holes, "--mask", mask, "--overwrite")
    mixtask("apply", holes, "--task", "inpaint", "--mask", mask, "-o", filled, "--overwrite")
    side_by_side([Image.open(holes), Image.open(mask), Image.open(filled)]).save(OUT / "inpaint-mask.png")
    for path in (holes, mask, filled):
        path.unlink()


def page_picture(photo: Path) -> None:
    chromium = shutil.which("chromium")
    try:
        import uvicorn
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("no chromium / playwright / uvicorn: serve-page.png not rebuilt")
        return
    from mixtask.inference.translator import Translator
    from mixtask.serve.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(Translator.from_file()), "127.0.0.1", 8765, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(viewport={"width": 1200, "height": 560})
        page.goto("http://127.0.0.1:8765/")
        page.wait_for_selector("#slider-style1")
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.getElementById('output').dataset.version !== undefined")
        first = page.eval_on_selector("#output", "img => img.src")
        page.fill("#slider-style1", "0.8")
        page.fill("#slider-seg", "1")
        page.wait_for_function(f"document.getElementById('output').src !== '{first}'")
        page.wait_for_function("document.getElementById('status').textContent.includes('seg')")
        page.wait_for_timeout(300)
        page.screenshot(path=str(OUT / "serve-page.png"))
        browser.close()
    server.should_exit = True


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    photo = OUT / "photo.png"
    Image.open(PHOTO).convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS).save(photo)
    cutout_picture(photo)
    inpaint_picture(photo)
    page_picture(photo)
    photo.unlink()


if __name__ == "__main__":
    main()
