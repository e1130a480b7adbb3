"""The web app: the page (Draw, Webcam, Upload tabs) and its HTTP and WebSocket API.

- ``GET /``: the page; ``/static/...``: its script and style (nothing from elsewhere).
- ``GET /api/health``: the loaded models (path, short sha256 as version, backend).
- ``POST /api/detect``: an image file (multipart field ``file``, or the raw body) ->
  the live JSON line (``frame``, ``source``, ``ms``, ``detections``, ``numbers``);
  ``?probs=true`` adds each digit's ten probabilities.
- ``POST /api/annotate``: an image or a short video -> its JSON lines and the annotated
  PNG or WebM (base64), tracked over the video's frames as the desktop window does.
- ``WS /ws/live``: binary JPEG frames in, one JSON line out per frame read. The server
  reads only the newest frame a client has sent (older ones are dropped, never queued),
  each client with its own tracker.

Bad requests get a 4xx with ``{"error": "one line"}``; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import anyio
import cv2
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from realtime.recognizer import Recognizer
from realtime.results import Result, decode_image, recognize, results_jsonl
from realtime.sinks import SinkError, VideoRecorder
from realtime.sources import SourceError, VideoSource
from realtime.tracker import Tracker
from realtime.web.pool import FairPool

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
R = TypeVar("R")


@dataclass(frozen=True)
class WebConfig:
    max_upload_bytes: int = 25 * 2**20  # larger uploads get 413 before they are read into memory
    max_video_frames: int = 900  # a "short video": 30 s at 30 fps; frames after these are not read
    smooth: int = 8  # frames a digit's probabilities are averaged over in webcam and video (as the window)
    video_fourcc: str = "VP80"  # WebM/VP8: plays in every browser, and opencv-python's FFmpeg writes it


class ApiError(HTTPException):
    """A bad request, answered as ``{"error": detail}`` with its status."""


class TooLarge(Exception):
    """The request body passed ``max_upload_bytes`` while being read."""


class BodyLimit:
    """ASGI middleware: a body longer than the limit is refused (413) before it is read,
    by its Content-Length, or as soon as a chunked body passes the limit."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"error": self._message()}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise TooLarge(self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"upload too large (limit {self.max_bytes / 2**20:.0f} MiB)"


def describe_models(rec: Recognizer) -> dict[str, Any]:
    """What ``/api/health`` says about the loaded readers: path, version (the first 12 hex
    digits of the file's sha256), inference backend; ``None`` for a reader that is off."""

    def one(reader: Any) -> dict[str, Any] | None:
        if reader is None:
            return None
        p = Path(reader.net.path)
        digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12] if p.is_file() else None
        out = {"path": str(p), "version": digest, "backend": getattr(reader.backend, "name", str(reader.backend))}
        if "test_accuracy" in reader.net.metrics:
            out["test_accuracy"] = reader.net.metrics["test_accuracy"]
        return out

    return {"digits": one(rec.digit_reader), "pairs": one(rec.pair_reader), "numbers": one(rec.number_reader)}


async def leased(pool: FairPool[Recognizer], fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(recognizer, *args, **kwargs)`` in a worker thread, with a recognizer of its own."""

    def work() -> R:
        with pool.lease() as rec:
            return fn(rec, *args, **kwargs)

    return await anyio.to_thread.run_sync(work)


async def read_upload(request: Request, config: WebConfig) -> tuple[str, bytes]:
    """``(file name, bytes)`` of the upload: multipart field ``file`` or the raw body."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=8)
        item = form.get("file")
        if not isinstance(item, UploadFile):
            raise ApiError(400, "no file: send the image as the multipart field 'file'")
        name, data = Path(item.filename or "upload").name, await item.read()
    else:
        name, data = Path(request.headers.get("x-filename", "upload")).name, await request.body()
    if not data:
        raise ApiError(400, f"{name}: empty file")
    if len(data) > config.max_upload_bytes:
        raise ApiError(413, f"upload too large (limit {config.max_upload_bytes / 2**20:.0f} MiB)")
    return name, data


async def decode_upload(name: str, data: bytes) -> Any:
    """The upload as a BGR frame, or 415 when it is not an image."""
    try:
        return await anyio.to_thread.run_sync(decode_image, data, name)
    except ValueError as err:
        raise ApiError(415, str(err)) from None


def encode_png(image: Any) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - PNG encoding of a uint8 BGR image does not fail
        raise ValueError("cannot encode the annotated image")
    return buf.tobytes()


def annotate_video(pool: FairPool[Recognizer], data: bytes, name: str, config: WebConfig) -> dict[str, Any]:
    """An uploaded video read frame by frame (a recognizer leased per frame, so a long
    video takes its turn with the live clients), tracked; its JSON lines and WebM."""
    suffix = Path(name).suffix.lower() if Path(name).suffix else ".bin"
    with tempfile.TemporaryDirectory(prefix="digits-web-") as tmp:
        src_path, out_path = Path(tmp) / f"upload{suffix}", Path(tmp) / "annotated.webm"
        src_path.write_bytes(data)
        try:
            src = VideoSource(src_path)
        except SourceError:
            raise ApiError(415, f"{name}: neither an image nor a video OpenCV can decode") from None
        lines: list[str] = []
        results = 0
        truncated = False
        tracker: Tracker | None = None
        with src, VideoRecorder(out_path, src.fps, src.size, fourcc=config.video_fourcc) as out:
            for frame in src:
                if frame.index >= config.max_video_frames:
                    truncated = True
                    break
                with pool.lease() as rec:
                    if tracker is None:
                        tracker = Tracker(window=config.smooth, min_confidence=rec.min_confidence)
                    result = recognize(rec, frame.image, tracker=tracker, source=name, frame=frame.index)
                out.write(result.plot())
                lines.append(results_jsonl([result]))
                results += 1
        return {"kind": "video", "frames": results, "fps": src.fps, "truncated": truncated,
                "jsonl": "".join(lines), "media_type": "video/webm",
                "media": base64.b64encode(out_path.read_bytes()).decode("ascii")}


def live_record(pool: FairPool[Recognizer], data: bytes, tracker: Tracker, index: int) -> dict[str, Any]:
    """One webcam frame: decoded, read with the client's tracker, as its JSON line
    (plus the frame's size and the server's time for it, decoding included)."""
    t0 = time.perf_counter()
    try:
        image = decode_image(data, f"frame {index}")
    except ValueError as err:
        return {"frame": index, "error": str(err)}
    with pool.lease() as rec:
        result = recognize(rec, image, tracker=tracker, source="webcam", frame=index)
    record = result.to_dict()
    record["width"], record["height"] = int(image.shape[1]), int(image.shape[0])
    record["server_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
    return record


class LiveSession:
    """One webcam client: the newest frame it sent (older ones are dropped) and its tracker."""

    def __init__(self, config: WebConfig, min_confidence: float) -> None:
        self.config, self.min_confidence = config, min_confidence
        self.tracker = self.new_tracker()
        self.pending: bytes | None = None
        self.ready = asyncio.Event()
        self.closed = False
        self.dropped = 0
        self.index = 0

    def new_tracker(self) -> Tracker:
        return Tracker(window=self.config.smooth, min_confidence=self.min_confidence)

    def offer(self, data: bytes) -> None:
        if self.pending is not None:
            self.dropped += 1
        self.pending = data
        self.ready.set()

    async def receive(self, ws: WebSocket) -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("bytes"):
                    self.offer(msg["bytes"])
                elif msg.get("text", "").strip() == "reset":
                    self.tracker = self.new_tracker()
        except (WebSocketDisconnect, RuntimeError):  # the connection went away mid-message
            pass
        finally:
            self.closed = True
            self.ready.set()

    async def serve(self, ws: WebSocket, pool: FairPool[Recognizer]) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            if self.closed:
                return
            data, self.pending = self.pending, None
            if data is None:
                continue
            record = await anyio.to_thread.run_sync(live_record, pool, data, self.tracker, self.index)
            self.index += 1
            record["dropped"] = self.dropped
            await ws.send_json(record)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


def add_error_handlers(app: FastAPI) -> None:
    """Every error as one line of JSON: ``{"error": "..."}``."""

    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, exc.detail)

    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    async def too_large(_: Request, exc: TooLarge) -> JSONResponse:
        return _error(413, str(exc))

    async def failed(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(TooLarge, too_large)
    app.add_exception_handler(Exception, failed)


def create_app(pool: FairPool[Recognizer], models: dict[str, Any], config: WebConfig = WebConfig()) -> FastAPI:
    """The app around a pool of loaded recognizers (``models``: what health reports)."""
    app = FastAPI(title="realtime-digits", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes + 64 * 1024)  # + multipart headers
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    min_confidence = pool.items[0].min_confidence

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "workers": pool.size, "waiting": pool.waiting, "min_confidence": min_confidence,
                "max_upload_bytes": config.max_upload_bytes, "max_video_frames": config.max_video_frames,
                "models": models}

    @app.post("/api/detect")
    async def detect(request: Request, probs: bool = False) -> dict[str, Any]:
        name, data = await read_upload(request, config)
        image = await decode_upload(name, data)
        result: Result = await leased(pool, recognize, image, source=name)
        return result.to_dict(probs=probs)

    @app.post("/api/annotate")
    async def annotate(request: Request) -> dict[str, Any]:
        name, data = await read_upload(request, config)
        try:
            image = await anyio.to_thread.run_sync(decode_image, data, name)
        except ValueError:
            try:
                return await anyio.to_thread.run_sync(annotate_video, pool, data, name, config)
            except SinkError as err:
                raise ApiError(422, f"{name}: cannot write the annotated video ({err})") from None
        result = await leased(pool, recognize, image, source=name)
        png = await anyio.to_thread.run_sync(encode_png, result.plot())
        return {"kind": "image", "frames": 1, "truncated": False, "jsonl": results_jsonl([result]),
                "media_type": "image/png", "media": base64.b64encode(png).decode("ascii")}

    @app.websocket("/ws/live")
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        session = LiveSession(config, min_confidence)
        reader = asyncio.create_task(session.receive(ws))
        try:
            await session.serve(ws, pool)
        except (WebSocketDisconnect, RuntimeError):  # the client left while its answer was on the way
            pass
        finally:
            reader.cancel()

    return app


def cpu_workers() -> int:
    """The recognizers to load by default: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
