"""A FastAPI app around a trained run: POST an image, get the translated PNG back.

The model is loaded once. Inference runs in a worker thread, off the event loop, behind a
bounded queue: when it is full the answer is 503 with Retry-After, never a hang. Every bad
input gets a 4xx with a JSON body {"error": ...}; none reaches a 500.
"""

import asyncio
import contextlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .. import __version__
from ..images import to_mode, upright
from ..inference import Pix2Pix
from ..options import MAX_PIXELS, MAX_QUEUE, MAX_UPLOAD_BYTES, SCALES

log = logging.getLogger(__name__)
ACCEPTED_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


@dataclass(frozen=True)
class ServeSettings:
    max_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS  # decoded size limit: decompression bombs stop here
    max_queue: int = MAX_QUEUE  # requests waiting or running; more get 503
    workers: int = 1  # inference threads (each uses torch's intra-op threads)
    size: int | None = None  # resize inputs to size x size and run the generator there (None: keep their size)
    scale: str = "auto"  # how an input of its own size is coloured (inference.SCALES; Pix2Pix.translate_full)


class BadInput(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_upload(data: bytes, settings: ServeSettings, *, what: str = "image", rgb: bool = True) -> Image.Image:
    """Bytes -> an upright RGB image (or, `rgb=False`, in its own mode), or BadInput with the
    status a client should see. `what` names the part in errors ('image', 'hints')."""
    if not data:
        raise BadInput(400, f"empty {'body' if what == 'image' else what}: send a PNG, JPEG or WebP image")
    if len(data) > settings.max_bytes:
        raise BadInput(413, f"{what} of {len(data)} bytes is over the limit of {settings.max_bytes} bytes")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        noun = "upload" if what == "image" else f"{what} upload"
        raise BadInput(415, f"the {noun} is not a PNG, JPEG or WebP image (its first bytes: {data[:8]!r})") from None
    if img.format not in ACCEPTED_TYPES.values():
        raise BadInput(415, f"unsupported {what} format {img.format}: send PNG, JPEG or WebP")
    w, h = img.size
    if w * h > settings.max_pixels:
        raise BadInput(413, f"{what} of {w}x{h} pixels is over the limit of {settings.max_pixels} pixels")
    if getattr(img, "n_frames", 1) > 1:
        raise BadInput(400, f"animated or multi-frame {what} ({img.n_frames} frames): send a single frame")
    try:
        img.load()
        img = upright(img)  # a phone photo's EXIF orientation, as the browser shows it
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise BadInput(400, f"corrupt or truncated {what} ({err})") from None
    return to_mode(img, 3) if rgb else img


def is_json_upload(content_type: str | None, filename: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json" or (
        filename or ""
    ).lower().endswith(".json")


def decode_points(text: str, size: tuple[int, int]) -> list[dict[str, Any]]:
    """JSON points for an image of `size` (width, height), checked, or BadInput 400 naming the problem."""
    from ..hints import parse_points

    try:
        points = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(
            400, f'hints are not valid JSON ({err}): send a list of points [{{"x": 30, "y": 22, "color": "#d02020"}}]'
        ) from None
    try:
        parse_points(points, *size)
    except ValueError as err:
        raise BadInput(400, str(err)) from None
    return points["points"] if isinstance(points, dict) and "points" in points else points


class Translator:
    """The loaded model and a bounded queue in front of its worker threads."""

    def __init__(self, pipe: Pix2Pix, settings: ServeSettings) -> None:
        self.pipe = pipe
        self.settings = settings
        self.size = settings.size
        self.executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="pix2pix-infer")
        self.pending = 0  # touched only on the event loop thread

    def run(self, img: Image.Image, hints: Any = None, spread: str | None = None) -> bytes:
        pipe = self.pipe if spread is None else self.pipe.with_spread(spread)
        out = pipe(img, size=self.size or None, scale=self.settings.scale, hints=hints)
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()

    async def translate(self, img: Image.Image, hints: Any = None, spread: str | None = None) -> bytes:
        if self.pending >= self.settings.max_queue:
            raise BadInput(503, f"busy: {self.pending} requests in the queue; retry shortly")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self.run, img, hints, spread)
        finally:
            self.pending -= 1


def page_html(name: str = "index.html") -> str:
    """A page shipped in serve/static: the drawing page, or the API's docs (no asset from another site)."""
    return resources.files("pix2pix.serve").joinpath("static", name).read_text(encoding="utf-8")


def create_app(
    run_dir: str | Path | None = None,
    *,
    pipe: Pix2Pix | None = None,
    settings: ServeSettings | None = None,
    checkpoint: str = "auto",
    backend: str = "torch",
    device: str = "auto",
    direction: str = "AtoB",
    spread: str = "fill",
) -> Any:
    """The FastAPI app for `run_dir` (or an already loaded `pipe`, whose own spread holds)."""
    # Check the arguments, then load what the app needs.
    if pipe is None and run_dir is None:
        raise ValueError("create_app needs a run_dir or a pipe")
    settings = settings or ServeSettings()
    if settings.scale not in SCALES:
        raise ValueError(f"unknown scale {settings.scale!r}; valid: {', '.join(SCALES)}")
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import HTMLResponse, Response
    except ImportError:
        raise ImportError("serving needs FastAPI and uvicorn: pip install 'pix2pix[serve]'") from None
    if pipe is None:
        pipe = Pix2Pix.from_pretrained(
            run_dir, checkpoint=checkpoint, backend=backend, device=device, direction=direction, spread=spread
        )
    translator = Translator(pipe, settings)
    app = FastAPI(  # FastAPI's own /docs loads Swagger UI from a CDN: blank offline, so the page below instead
        title="pix2pix",
        version=__version__,
        description="Paired image-to-image translation: POST an image to /v1/translate, get a PNG back.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.translator = translator

    _json_errors(app)  # every error is JSON {"error", "status"}; a full queue says when to retry

    # The page, health and what the model is.
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page_html("docs.html"))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queue": translator.pending, "max_queue": settings.max_queue}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return model_info(pipe, settings)

    # Translation.
    @app.post(
        "/v1/translate",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the translated image"}},
    )
    async def translate(request: Request) -> Response:
        """Send an image as multipart form data (field `image`) or as the raw body with an
        image/png, image/jpeg or image/webp content type. A hints model also takes colour hints
        in the multipart field `hints`: a PNG (or WebP) of the image's size whose alpha > 0 marks a
        hint and whose RGB is its colour, or points as JSON (a text field, or a file sent as
        application/json or named *.json): [{"x": 30, "y": 22, "color": "#d02020", "size": 3}]. The
        text field `spread` ("fill" or "propagate", as /v1/model's `spreads` lists) chooses how the hints
        are spread (default: the server's, `serve --spread`)."""
        data, hints_data, hints_json, spread = await read_request(request, settings)
        img = decode_upload(data, settings)
        hints = decode_hints(hints_data, hints_json, img, pipe, settings)
        if spread is not None and spread not in pipe.spreads:
            raise BadInput(400, f"spread {spread!r} is not one this model takes ({', '.join(pipe.spreads) or 'none'})")
        png = await translator.translate(img, hints, spread)
        return Response(content=png, media_type="image/png")

    return app


def _json_errors(app: Any) -> None:
    """Every error the app answers as JSON {"error", "status"}: bad input, HTTP errors (404, 405),
    request validation; a 503 says when to retry."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def error(status: int, message: str) -> JSONResponse:
        headers = {"Retry-After": "1"} if status == 503 else None
        return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)

    @app.exception_handler(BadInput)
    async def bad_input(_: Request, exc: BadInput) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "invalid request")


def model_info(pipe: Pix2Pix, settings: ServeSettings) -> dict[str, Any]:
    """What /v1/model answers: the model, how the server runs it, and its limits."""
    cfg = pipe.config
    return {
        "pix2pix_version": __version__,
        "model": cfg.model.method,
        "translates": pipe.direction,
        "hints": pipe.takes_hints,
        "generator": cfg.model.generator,
        "input_nc": pipe.in_nc,
        "output_nc": pipe.out_nc,
        "train_size": cfg.data.crop_size,
        "serve_size": settings.size or None,
        "serve_scale": settings.scale,
        "spread": pipe.spread if pipe.takes_hints else None,
        "spreads": list(pipe.spreads),
        "size_multiple": pipe.size_multiple,
        "direction": cfg.data.direction,
        "step": pipe.meta.get("step"),
        "weights": pipe.meta.get("weights"),
        "backend": "onnx" if pipe.onnx is not None else "torch",
        "limits": {"max_bytes": settings.max_bytes, "max_pixels": settings.max_pixels},
        "config": cfg.to_dict(),
    }


async def read_request(request: Any, settings: ServeSettings) -> tuple[bytes, bytes | None, str | None, str | None]:
    """A translate request's parts: (image bytes, hints image bytes, hints JSON text, spread), either part
    of the hints and the spread None; BadInput for what cannot be read (too large, no image, another content type)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = int(request.headers.get("content-length") or 0)
    limit = settings.max_bytes * 2 if ctype == "multipart/form-data" else settings.max_bytes
    if length > limit + 1024 * 64:  # refuse early, before reading a huge body
        raise BadInput(413, f"request of {length} bytes is over the limit of {limit} bytes")
    if ctype in ACCEPTED_TYPES:
        return await request.body(), None, None, None
    if ctype != "multipart/form-data":
        raise BadInput(
            415,
            f"unsupported content type {ctype or '(none)'}: send image/png, image/jpeg, "
            "image/webp or multipart/form-data",
        )
    hints_data: bytes | None = None
    hints_json: str | None = None
    spread: str | None = None
    async with request.form() as form:  # closes the spooled upload files
        upload = form.get("image") or form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadInput(400, "multipart request without an 'image' file field")
        data = await upload.read()
        hints_upload = form.get("hints")
        if isinstance(hints_upload, str):  # a text field: JSON points
            hints_json = hints_upload
        elif hints_upload is not None:
            hints_data = await hints_upload.read()
            if is_json_upload(hints_upload.content_type, hints_upload.filename):
                hints_json, hints_data = hints_data.decode("utf-8", errors="replace"), None
        field = form.get("spread")
        if field is not None:
            if not isinstance(field, str):
                raise BadInput(400, "the 'spread' field is text: fill or propagate")
            spread = field.strip()
    return data, hints_data, hints_json, spread


def decode_hints(
    hints_data: bytes | None, hints_json: str | None, img: Image.Image, pipe: Pix2Pix, settings: ServeSettings
) -> Any:
    """The hints of a request for `img` (points or an RGBA image), None without any; BadInput where
    the model takes none or they do not fit the image."""
    if hints_data is None and hints_json is None:
        return None
    if not pipe.takes_hints:
        raise BadInput(400, "this model was trained without hints: send the image alone")
    if hints_json is not None:
        return decode_points(hints_json, img.size)
    hints = decode_upload(hints_data, settings, what="hints", rgb=False)
    if hints.size != img.size:
        raise BadInput(
            400,
            f"hints of {hints.size[0]}x{hints.size[1]} do not match the image's "
            f"{img.size[0]}x{img.size[1]}: send hints of the image's size",
        )
    if "A" not in hints.getbands() and not (hints.mode == "P" and "transparency" in hints.info):
        raise BadInput(400, f"hints have no alpha channel (mode {hints.mode}): alpha > 0 marks a hint")
    return hints


def _uvicorn() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise ImportError("serving needs FastAPI and uvicorn: pip install 'pix2pix[serve]'") from None
    return uvicorn


@contextlib.contextmanager
def serving_in_background(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 30.0
) -> Iterator[str]:
    """Run `app` with uvicorn in a daemon thread and yield its base URL (for tests, notebooks, load tests).

    Port 0 lets the OS pick a free port. The server stops when the block ends.
    """
    uvicorn = _uvicorn()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server on {host}:{port} did not start within {timeout_s:g} s")
        time.sleep(0.05)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve(
    run_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    checkpoint: str = "auto",
    backend: str = "torch",
    device: str = "auto",
    direction: str = "AtoB",
    spread: str = "fill",
) -> None:
    """Run the app with uvicorn until interrupted."""
    uvicorn = _uvicorn()
    app = create_app(
        run_dir,
        settings=settings,
        checkpoint=checkpoint,
        backend=backend,
        device=device,
        direction=direction,
        spread=spread,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
