"""CLI: ``python -m realtime`` reads digits live from a camera, a video, images or a glob.

It only wires the stages together: source -> recognizer (segment, normalize, one
batched forward pass) -> tracker -> overlay -> window / recorder / JSON lines.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("realtime")

WINDOW = "realtime digits (q/ESC quit, space pause, s snapshot)"


@dataclass
class LiveSettings:
    source: str = "0"
    weights: str | None = None
    pair_weights: str | None = None  # None: $DIGITS_PAIR_WEIGHTS or assets/pairs.pt if present; "": none
    seq_weights: str | None = None  # None: $DIGITS_SEQ_WEIGHTS or assets/sequences.pt if present; "": none
    min_confidence: float | None = None  # None: the recognizer's default
    max_frames: int | None = None
    threads: int = 1
    backend: str = "auto"
    record: str | None = None
    json: str | None = None
    no_display: bool = False
    snapshot_dir: str = "."
    width: int | None = None
    height: int | None = None
    image_fps: float = 2.0
    smooth: int = 8
    no_track: bool = False
    progress: bool = True
    verbose: bool = False
    settings: tuple[str, ...] = ()  # recognizer settings, STAGE.FIELD=VALUE
    config_file: str | None = None  # a JSON or TOML file of recognizer settings


def parse_args(argv: Sequence[str] | None = None) -> LiveSettings:
    from realtime.recognizer import BACKENDS, DEFAULT_MIN_CONFIDENCE

    d = LiveSettings()
    p = argparse.ArgumentParser(
        prog="python -m realtime",
        description="Find and read handwritten digits live: boxes, digits, confidences and FPS drawn over "
        "the video; optional annotated recording and JSON lines. Keys in the window: q or ESC quits, "
        "space pauses, s saves a snapshot PNG.",
        epilog="Environment: DIGITS_WEIGHTS, DIGITS_PAIR_WEIGHTS and DIGITS_SEQ_WEIGHTS name the default "
        "checkpoints.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--source", default=d.source,
                   help="camera index (0, 1, ...), video file, image file, folder of images (sorted by name) or a glob "
                        "in quotes (e.g. 'scans/*.png')")
    p.add_argument("--weights", default=None,
                   help="checkpoint to load (default: $DIGITS_WEIGHTS, else assets/digits.pt)")
    p.add_argument("--pair-weights", default=None,
                   help="pair reader checkpoint, which reads two touching digits whole (default: "
                        "$DIGITS_PAIR_WEIGHTS, else assets/pairs.pt when present; '' turns it off)")
    p.add_argument("--seq-weights", default=None,
                   help="number reader checkpoint, which reads a blob of touching digits whole and helps choose "
                        "how to split it (default: $DIGITS_SEQ_WEIGHTS, else assets/sequences.pt when present; "
                        "'' turns it off)")
    p.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                   help="hide digits whose softmax probability is below this (rejects non-digits)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="CPU threads for the network (2 gave 15-25%% more FPS on a 2-core CPU, with more "
                        "jitter; the OpenCV stages always run on one)")
    p.add_argument("--backend", choices=BACKENDS, default=d.backend,
                   help="inference engine: int8 ONNX Runtime (fastest; needs calibration images in the "
                        "checkpoint), float32 ONNX Runtime, PyTorch eager, or auto (the fastest available)")
    p.add_argument("--record", metavar="OUT.mp4", default=None,
                   help="write the annotated video here (.mp4 or .avi), at the source's size and frame rate")
    p.add_argument("--json", metavar="OUT.jsonl", default=None,
                   help="write one JSON line per frame: frame, source, ms, detections, numbers")
    p.add_argument("--no-display", action="store_true", help="run headless (no window); shows a progress bar for files")
    p.add_argument("--snapshot-dir", default=d.snapshot_dir, help="folder for snapshots saved with the s key")
    p.add_argument("--width", type=int, default=None, help="requested camera capture width")
    p.add_argument("--height", type=int, default=None, help="requested camera capture height")
    p.add_argument("--image-fps", type=float, default=d.image_fps,
                   help="frame rate of the recording when the source is images")
    p.add_argument("--smooth", type=int, default=d.smooth,
                   help="frames over which each tracked digit's class probabilities are averaged (live stability)")
    p.add_argument("--no-track", action="store_true",
                   help="no tracking or smoothing: every frame is read on its own")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.FIELD=VALUE", dest="settings",
                   help="change one recognizer setting, e.g. --set segment.line_frac=0.3 or --set split.seq_weight=0 "
                        "(repeatable; the fields are those of realtime.recognizer.RecognizerConfig)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a JSON or TOML file of recognizer settings by stage, e.g. {\"segment\": {\"line_frac\": 0.3}} "
                        "(--set is applied after it)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the pipeline does")
    a = p.parse_args(argv)
    from realtime.recognizer import configure

    try:
        configure(settings=a.settings, file=a.config)
    except ValueError as err:
        p.error(str(err))
    if a.max_frames is not None and a.max_frames < 1:
        p.error("--max-frames must be >= 1")
    if not 0.0 <= a.min_confidence <= 1.0:
        p.error("--min-confidence must be between 0 and 1")
    if a.threads < 1:
        p.error("--threads must be >= 1")
    return LiveSettings(
        source=a.source, weights=a.weights, pair_weights=a.pair_weights, seq_weights=a.seq_weights,
        min_confidence=a.min_confidence, max_frames=a.max_frames,
        threads=a.threads, backend=a.backend, record=a.record, json=a.json, no_display=a.no_display,
        snapshot_dir=a.snapshot_dir, width=a.width, height=a.height, image_fps=a.image_fps,
        smooth=max(1, a.smooth), no_track=a.no_track, progress=not a.no_progress, verbose=a.verbose,
        settings=tuple(a.settings), config_file=a.config,
    )


def display_available() -> bool:
    """Whether a window can open: on Linux an X11 or Wayland display must be set."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def frame_record(index: int, source: str, ms: float, detections: Sequence[Any],
                 numbers: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One JSON line: the documented keys first, later additions after them."""
    rec: dict[str, Any] = {
        "frame": int(index),
        "source": source,
        "ms": round(float(ms), 3),
        "detections": [d.to_json() for d in detections],
    }
    if numbers is not None:
        rec["numbers"] = [{"value": n["value"], "box": [int(v) for v in n["box"]], "digits": list(n["digits"])}
                          for n in numbers]
    return rec


def run(settings: LiveSettings) -> int:
    import cv2

    from realtime.numbers import group_numbers
    from realtime.overlay import draw_detections, draw_numbers, draw_status
    from realtime.recognizer import DEFAULT_MIN_CONFIDENCE, Recognizer, configure
    from realtime.sinks import JsonlWriter, VideoRecorder
    from realtime.sources import ImageSource, open_source
    from realtime.tracker import Tracker, detect_tracked

    rec = Recognizer.load(settings.weights, backend=settings.backend, threads=settings.threads,
                          pair_weights=settings.pair_weights, seq_weights=settings.seq_weights,
                          config=configure(settings=settings.settings, file=settings.config_file),
                          min_confidence=DEFAULT_MIN_CONFIDENCE if settings.min_confidence is None
                          else settings.min_confidence)
    log.info("model %s on %s, %d thread(s); pair reader: %s; number reader: %s", rec.weights_path,
             rec.backend.name, rec.threads, "off" if rec.pair_backend is None else rec.pair_backend.name,
             "off" if rec.seq_backend is None else rec.seq_backend.name)
    show = not settings.no_display
    if show and not display_available():
        print("no display available: running headless (pass --no-display to silence this)", file=sys.stderr)
        show = False

    with ExitStack() as stack:
        src = stack.enter_context(open_source(settings.source, fps=settings.image_fps,
                                              width=settings.width, height=settings.height))
        src_label = str(settings.source)
        recorder = None
        if settings.record:
            recorder = stack.enter_context(VideoRecorder(settings.record, src.fps, src.size))
        jsonl = stack.enter_context(JsonlWriter(settings.json)) if settings.json else None
        # images of a folder are unrelated pictures: tracking would smear labels across them
        track = not settings.no_track and not isinstance(src, ImageSource)
        tracker = Tracker(window=settings.smooth, min_confidence=rec.min_confidence) if track else None
        bar = None
        if not show and settings.progress and not src.is_live:
            from tqdm import tqdm

            total = src.length
            if settings.max_frames is not None:
                total = min(total, settings.max_frames) if total else settings.max_frames
            bar = stack.enter_context(tqdm(total=total, unit="frame", desc="processing", dynamic_ncols=True))
        if show:
            stack.callback(cv2.destroyAllWindows)

        pace = show and not src.is_live and not isinstance(src, ImageSource) and src.fps > 0
        fps_smooth: float | None = None
        last_t = None
        paused = False
        n = 0
        for frame in src:
            t0 = time.perf_counter()
            dets = detect_tracked(rec, frame.image, tracker)
            ms = (time.perf_counter() - t0) * 1000.0
            numbers = group_numbers(dets)
            now = time.perf_counter()
            if last_t is not None:
                inst = 1.0 / max(now - last_t, 1e-6)
                fps_smooth = inst if fps_smooth is None else 0.9 * fps_smooth + 0.1 * inst
            last_t = now
            name = frame.name if not src.is_live and frame.name != src.name else src_label
            if jsonl is not None:
                jsonl.write(frame_record(frame.index, name, ms, dets, numbers))
            if recorder is not None or show:
                shown = draw_numbers(draw_detections(frame.image, dets), numbers)
                shown = draw_status(shown, fps_smooth, ms, len(dets))
                if recorder is not None:
                    recorder.write(shown)
                if show:
                    try:
                        cv2.imshow(WINDOW, shown)
                        # a video file plays at its own rate in the window (as fast as
                        # possible headless); cameras and images are never held back
                        wait = 1
                        if pace:
                            wait = max(1, int(1000.0 / src.fps - (time.perf_counter() - t0) * 1000.0))
                        key = cv2.waitKey(wait) & 0xFF
                        while True:
                            if key in (ord("q"), 27):
                                return 0
                            if key == ord("s"):
                                out = Path(settings.snapshot_dir)
                                out.mkdir(parents=True, exist_ok=True)
                                snap = out / f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{frame.index:06d}.png"
                                cv2.imwrite(str(snap), shown)
                                print(f"snapshot saved: {snap}", file=sys.stderr)
                            if key == ord(" "):
                                paused = not paused
                                if paused:
                                    cv2.imshow(WINDOW, draw_status(shown, fps_smooth, ms, len(dets), paused=True))
                            if not paused:
                                break
                            key = cv2.waitKey(50) & 0xFF
                    except cv2.error as err:
                        print(f"cannot show a window ({str(err).strip().splitlines()[-1][:80]}): running headless",
                              file=sys.stderr)
                        show = False
            if bar is not None:
                bar.update(1)
            n += 1
            if settings.max_frames is not None and n >= settings.max_frames:
                break
        log.info("processed %d frames", n)
    return 0


def quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own stderr logging (unless ``-v``).

    A camera index that does not open makes OpenCV print a dozen WARN/ERROR lines and a
    corrupt video makes FFmpeg print "moov atom not found"; the CLI reports every such
    failure itself, in one ``error:`` line. FFmpeg reads its level when a capture first
    opens, so setting the variable here (before any source is opened) is in time.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    import cv2

    # opencv-python's import points Qt at a font folder inside the wheel, which ships no
    # fonts, so every window warns; Qt reads the variable when the first window opens,
    # so pointing it at the system's fonts after the import is in time (a folder that
    # exists, e.g. the user's own choice, is left alone)
    if not os.path.isdir(os.environ.get("QT_QPA_FONTDIR", "")):
        for d in ("/usr/share/fonts/truetype", "/usr/share/fonts"):
            if os.path.isdir(d):
                os.environ["QT_QPA_FONTDIR"] = d
                break

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # a cv2 build without the logging utilities
        pass


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO if settings.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not settings.verbose:
        quiet_opencv()
    from realtime.sinks import Shutdown, SinkError, graceful_shutdown, interruption
    from realtime.sources import SourceError
    from training.checkpoint import CheckpointError

    try:
        with graceful_shutdown():
            return run(settings)
    except (SourceError, SinkError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemError) as err:
        # SystemError: a signal that landed inside a numba kernel (see interruption); the
        # outputs were closed on the way out all the same
        stop = interruption(err)
        if stop is None:
            raise
        if isinstance(stop, Shutdown):
            print(f"stopped by signal {stop.signum}: outputs closed", file=sys.stderr)
            return stop.exit_code
        print("interrupted: outputs closed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
