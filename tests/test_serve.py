"""`mixtask serve`: the API through the ASGI test client on a tiny model, and the page in headless Chromium."""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from mixtask.inference.translator import Translator
from mixtask.serve.app import create_app
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.weights import save_weights
from tests.conftest import make_tiny_model

RGB = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    path = save_weights(tmp_path_factory.mktemp("serve") / "tiny.safetensors", make_tiny_model(), DEFAULT_TASK_SET)
    return Translator.from_file(path, device="cpu", precision="fp32")


@pytest.fixture
def client(translator):
    return TestClient(create_app(translator, max_bytes=200_000, max_waiting=2))


def png_bytes(rgb: np.ndarray = RGB) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def post(client, data: dict, image: bytes | None = None):
    return client.post("/v1/translate", data=data, files={"image": ("photo.png", image or png_bytes(), "image/png")})


def test_health_tasks_and_page(client):
    assert client.get("/healthz").json()["status"] == "ok"
    tasks = client.get("/v1/tasks").json()
    assert [task["name"] for task in tasks["tasks"]] == list(DEFAULT_TASK_SET.names)
    assert tasks["mixes"] == ["+".join(mix) for mix in DEFAULT_TASK_SET.mixes]
    page = client.get("/")
    assert page.status_code == 200 and "/v1/translate" in page.text


def test_translate_returns_what_the_translator_computes(client, translator):
    response = post(client, {"task": "denoise=1,style1=0.5"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(response.content)))
    np.testing.assert_array_equal(out, translator.translate_array(RGB, "denoise=1,style1=0.5"))
    same = post(client, {"strengths": json.dumps({"denoise": 1, "style1": 0.5})})
    assert same.content == response.content


def test_preview_size_format_and_seg_cutout(client):
    small = post(client, {"task": "style2", "max_side": "32", "format": "jpeg"})
    assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(small.content)).size == (32, 24)
    cut = Image.open(io.BytesIO(post(client, {"task": "seg"}).content))
    assert cut.mode == "RGBA"  # seg gives the alpha cut-out, as `apply` does


@pytest.mark.parametrize(
    ("data", "image", "status", "message"),
    [
        ({"task": "sepia"}, None, 422, "unknown task 'sepia'"),
        ({"strengths": '{"seg": 2}'}, None, 422, "not a number in 0..1"),
        ({"strengths": "{seg"}, None, 422, "strengths is not JSON"),
        ({}, None, 422, "give one of task"),
        ({"task": "seg", "strengths": "{}"}, None, 422, "give one of task"),
        ({"task": "seg", "max_side": "0"}, None, 422, "max_side 0"),
        ({"task": "seg", "max_side": "big"}, None, 422, "max_side"),
        ({"task": "seg", "format": "gif"}, None, 422, "format 'gif'"),
        ({"task": "seg"}, b"not an image", 400, "photo.png"),
        ({"task": "seg"}, b"\0" * 300_000, 413, "too large"),
    ],
)
def test_bad_requests_get_4xx_and_one_line_json(client, data, image, status, message):
    response = post(client, data, image)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error and "\n" not in error
    assert client.get("/healthz").status_code == 200  # still serving


def test_a_chunked_upload_without_length_is_refused(client):
    def chunks():
        yield b"--x\r\n"

    headers = {"content-type": "multipart/form-data; boundary=x"}
    response = client.post("/v1/translate", content=chunks(), headers=headers)
    assert response.status_code == 411 and "Content-Length" in response.json()["error"]


def test_a_missing_image_is_a_422(client):
    response = client.post("/v1/translate", data={"task": "seg"})
    assert response.status_code == 422 and "image" in response.json()["error"]


def test_the_waiting_line_is_bounded(translator):
    """With the network busy, requests beyond max_waiting get 503 at once instead of piling up."""
    app = create_app(translator, max_waiting=1)
    client = TestClient(app)
    release, started = threading.Event(), threading.Event()
    original = translator.translate_array

    def slow(rgb, vector):
        started.set()
        release.wait(10)
        return original(rgb, vector)

    translator.translate_array = slow
    try:
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(response=post(client, {"task": "denoise"})))
        worker.start()
        assert started.wait(10)
        busy = post(client, {"task": "denoise"})
        assert busy.status_code == 503 and "busy" in busy.json()["error"]
        release.set()
        worker.join(10)
        assert first["response"].status_code == 200
    finally:
        translator.translate_array = original


# ----------------------------------------------------------------------------- the page, in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(translator):
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    config = uvicorn.Config(create_app(translator), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_the_page_updates_the_output_when_a_slider_moves(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes())
    artefacts = Path(__file__).parent / "artefacts"
    artefacts.mkdir(exist_ok=True)
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        page = browser.new_page()
        page.goto(server)
        page.wait_for_selector("#slider-style1")
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.getElementById('output').dataset.version !== undefined")
        before = page.eval_on_selector("#output", "img => img.src")
        page.fill("#slider-style1", "1")  # sets the value and fires input, as a drag does
        page.wait_for_function(f"document.getElementById('output').src !== {json.dumps(before)}")
        page.wait_for_function("document.getElementById('output').complete")
        assert "style1" in page.text_content("#status")
        page.fill('[id="slider-seg+style1"]', "1")  # a mix slider moves its members
        assert page.input_value("#slider-seg") == "1"
        page.screenshot(path=str(artefacts / "serve-page.png"), full_page=True)
        browser.close()
    assert (artefacts / "serve-page.png").stat().st_size > 0
