"""CLI: ``python -m realtime.web`` serves the web app (draw, webcam, upload) on one port."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger("realtime.web")


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"  # only this machine; 0.0.0.0 shows it to the network
    port: int = 8000  # 0: any free port (printed)
    weights: str | None = None  # None: $DIGITS_WEIGHTS or assets/digits.pt
    pair_weights: str | None = None  # None: $DIGITS_PAIR_WEIGHTS or assets/pairs.pt; "": off
    seq_weights: str | None = None  # None: $DIGITS_SEQ_WEIGHTS or assets/sequences.pt; "": off
    backend: str = "auto"  # the recognizer's inference engine
    min_confidence: float | None = None  # None: the recognizer's default
    workers: int | None = None  # recognizers, i.e. frames read at once; None: one per core
    max_upload_mb: float = 25.0  # larger uploads are refused with 413
    max_video_frames: int = 900  # an uploaded video is read up to this many frames
    smooth: int = 8  # frames a webcam digit's probabilities are averaged over
    verbose: bool = False  # log every request


def parse_args(argv: Sequence[str] | None = None) -> ServeSettings:
    from realtime.options import add_model_options, check_settings

    d = ServeSettings()
    p = argparse.ArgumentParser(
        prog="python -m realtime.web",
        description="Serve the web app: draw digits on a canvas, read them from the browser's webcam, or upload "
                    "an image or a short video, in one page; plus the HTTP API (POST /api/detect, GET /api/health, "
                    "POST /api/annotate, WebSocket /ws/live; docs at /api/docs). Everything it serves is its own: "
                    "no internet needed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--host", default=d.host, help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=d.port, help="port to listen on (0: any free port, printed at start)")
    add_model_options(p, backend=d.backend, settings=False)
    p.add_argument("--workers", type=int, default=None,
                   help="recognizers loaded, i.e. frames read at the same time, shared first come first served "
                        "by all clients (default: one per CPU core)")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="largest upload accepted, in MiB")
    p.add_argument("--max-video-frames", type=int, default=d.max_video_frames,
                   help="an uploaded video is read up to this many frames (the rest is left out, and the page says so)")
    p.add_argument("--smooth", type=int, default=d.smooth,
                   help="frames over which each tracked webcam or video digit's probabilities are averaged")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request and what the pipeline does")
    a = p.parse_args(argv)
    if not 0 <= a.port <= 65535:
        p.error("--port must be between 0 and 65535")
    if a.workers is not None and a.workers < 1:
        p.error("--workers must be >= 1")
    check_settings(p, a)
    if a.max_upload_mb <= 0 or a.max_video_frames < 1 or a.smooth < 1:
        p.error("--max-upload-mb, --max-video-frames and --smooth must be positive")
    return ServeSettings(host=a.host, port=a.port, weights=a.weights, pair_weights=a.pair_weights,
                         seq_weights=a.seq_weights, backend=a.backend, min_confidence=a.min_confidence,
                         workers=a.workers, max_upload_mb=a.max_upload_mb, max_video_frames=a.max_video_frames,
                         smooth=a.smooth, verbose=a.verbose)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (so that ``--port 0`` can print the port it got)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it a keep-alive client waited ~40 ms for
    # every answer (Nagle's algorithm against the client's delayed ACK), 0.9 ms with it
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def serve(settings: ServeSettings) -> int:
    import cv2
    import uvicorn

    from realtime.recognizer import Recognizer
    from realtime.web.app import WebConfig, create_app, cpu_workers, describe_models
    from realtime.web.pool import FairPool

    # each recognizer reads its frame on one core; OpenCV's own pool would only contend
    cv2.setNumThreads(1)
    # the port first: a port in use fails at once, not after the models have loaded
    sock = listen(settings.host, settings.port)
    workers = settings.workers or cpu_workers()
    print(f"loading {workers} recognizer{'s' if workers > 1 else ''} ...", file=sys.stderr, flush=True)
    recs = [Recognizer.load(settings.weights, backend=settings.backend, threads=1,
                            min_confidence=settings.min_confidence, pair_weights=settings.pair_weights,
                            seq_weights=settings.seq_weights) for _ in range(workers)]
    models = describe_models(recs[0])
    config = WebConfig(max_upload_bytes=int(settings.max_upload_mb * 2**20),
                       max_video_frames=settings.max_video_frames, smooth=settings.smooth)
    app = create_app(FairPool(recs), models, config)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info" if settings.verbose else "warning",
                                           access_log=settings.verbose, ws_max_size=config.max_upload_bytes))
    server.run(sockets=[sock])
    return 0 if server.started else 1


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO if settings.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not settings.verbose:
        from realtime.__main__ import quiet_opencv

        quiet_opencv()
    from training.errors import CheckpointError

    try:
        return serve(settings)
    except (CheckpointError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
