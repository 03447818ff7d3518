"""`mixtask serve`: the network behind HTTP, loaded once, with a page of strength sliders.

- `GET /` the page (`page.html`): pick or drop an image, one slider per task and per trained mix; the
  output follows the sliders (debounced, at a preview size) and "Download" fetches it at full size.
- `GET /healthz`, `GET /v1/tasks` (names, kinds, aliases, mixes).
- `POST /v1/translate`, multipart: `image` (a file), `task` (a spec as `--task` takes it, e.g. `seg=1,style1=1`)
  or `strengths` (JSON, e.g. `{"seg": 1, "style1": 0.5}`), optional `max_side` (shrink first: previews) and
  `format` (png, jpeg or webp; default png). Returns the image; seg gives the alpha cut-out, as `apply` does.

Every bad request gets a 4xx and a one-line JSON `{"error": ...}`; the server itself never stops on one. The
request body is capped (`max_bytes`, 413 beyond), and so is the number of requests waiting for the network
(`max_waiting`, 503 beyond): the network runs one image at a time, in a worker thread, so the event loop stays free.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from importlib import resources

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mixtask import images
from mixtask.apply import cutout
from mixtask.apply.run import render
from mixtask.errors import MixtaskError
from mixtask.inference.conditions import task_vector

MAX_BYTES = 20 * 1024 * 1024
MAX_WAITING = 8
MAX_SIDE_RANGE = (16, 8192)
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class RequestError(Exception):
    """A bad request: its status and one line for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(translator, *, max_bytes: int = MAX_BYTES, max_waiting: int = MAX_WAITING) -> FastAPI:
    """The ASGI app around one loaded `infer.Translator`."""
    app = FastAPI(title="mixtask", docs_url=None, redoc_url=None, openapi_url=None)
    task_set = translator.task_set
    network = threading.Lock()  # one image at a time through the network
    waiting = {"count": 0}
    page = resources.files("mixtask.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        field = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
        return JSONResponse({"error": f"{field}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if request.method == "POST" and length is None:  # a chunked body could not be bounded before it is read
            message = "send a Content-Length header (chunked uploads are refused)"
            return JSONResponse({"error": message}, status_code=411)
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            return JSONResponse({"error": f"request too large: the limit is {max_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "tasks": list(task_set.names), "precision": translator.precision}

    @app.get("/v1/tasks")
    async def tasks() -> dict:
        return {
            "tasks": [_task_json(task) for task in task_set.tasks],
            "mixes": ["+".join(mix) for mix in task_set.mixes],
        }

    @app.post("/v1/translate")
    async def translate(
        image: UploadFile = File(...),
        task: str | None = Form(None),
        strengths: str | None = Form(None),
        max_side: int | None = Form(None),
        format: str = Form("png"),
    ) -> Response:
        format_name = images.normalize_format(format)
        if format_name not in MEDIA_TYPES:
            raise RequestError(422, f"format {format!r}: use png, jpeg or webp")
        vector = _vector(task_set, task, strengths)
        try:
            translator.check_task(vector)  # a mix or strength the architecture cannot take
        except MixtaskError as error:
            raise RequestError(422, str(error)) from None
        if max_side is not None and not MAX_SIDE_RANGE[0] <= max_side <= MAX_SIDE_RANGE[1]:
            raise RequestError(422, f"max_side {max_side}: use {MAX_SIDE_RANGE[0]}..{MAX_SIDE_RANGE[1]}")
        data = await image.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise RequestError(413, f"image too large: the limit is {max_bytes} bytes")
        if waiting["count"] >= max_waiting:
            raise RequestError(503, f"busy: {max_waiting} requests are already waiting; try again shortly")
        waiting["count"] += 1
        try:
            name = image.filename or "image"
            body = await anyio.to_thread.run_sync(_work, data, name, vector, max_side, format_name)
        finally:
            waiting["count"] -= 1
        return Response(body, media_type=MEDIA_TYPES[format_name])

    def _work(data: bytes, name: str, vector: tuple[float, ...], max_side: int | None, format_name: str) -> bytes:
        try:
            loaded = images.load_image(data, name)
        except MixtaskError as error:
            raise RequestError(400, str(error)) from None
        loaded = _shrunk(loaded, max_side)
        cut = cutout.plan_cutout(None, None, task_set, vector)
        if cut is not None and format_name == "jpeg":
            cut = replace(cut, background=(255, 255, 255))  # JPEG has no alpha: the cut-out on white
        with network:
            output = render(translator, loaded, task_vector(task_set, vector), cut)
        return images.encode(output, format_name, 92, loaded.icc_profile if output.mode != "L" else None)

    return app


def _task_json(task) -> dict:
    return {"name": task.name, "kind": task.kind, "aliases": list(task.aliases), "about": task.description}


def _vector(task_set, task: str | None, strengths: str | None) -> tuple[float, ...]:
    """The task vector of a request: a `task` spec or a JSON object of `strengths`, not both."""
    if (task is None) == (strengths is None):
        raise RequestError(422, 'give one of task (e.g. seg=1,style1=0.5) or strengths (JSON, e.g. {"seg": 1})')
    try:
        if task is not None:
            return task_set.parse(task)
        values = json.loads(strengths)
        if not isinstance(values, dict):
            raise MixtaskError('strengths must be a JSON object, e.g. {"seg": 1, "style1": 0.5}')
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise MixtaskError(f"strength of {name}: {value!r} is not a number in 0..1")
        return task_set.vector(values)
    except json.JSONDecodeError as error:
        raise RequestError(422, f"strengths is not JSON ({error.msg})") from None
    except MixtaskError as error:
        raise RequestError(422, str(error)) from None


def _shrunk(loaded: images.LoadedImage, max_side: int | None) -> images.LoadedImage:
    """The image with its long side cut to `max_side` (a preview), alpha and profile kept."""
    height, width = loaded.rgb.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return loaded
    import numpy as np
    from PIL import Image

    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    rgb = np.asarray(Image.fromarray(loaded.rgb).resize(size, Image.Resampling.LANCZOS))
    alpha = None if loaded.alpha is None else np.asarray(Image.fromarray(loaded.alpha).resize(size))
    return images.LoadedImage(rgb, alpha, loaded.format, loaded.name, loaded.icc_profile)
