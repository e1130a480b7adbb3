"""CLI: ``python -m realtime`` reads digits live from a camera, a video, images or a glob.

It only wires the stages together: source -> recognizer -> tracker -> overlay ->
window / recording / JSON lines / CSV / annotated images. The order of a run is the
order of its failures: arguments first (no heavy import), then the source is opened
and every output checked and opened, and only then are the models loaded, so a bad
``--source`` or ``--record`` is reported in well under a second.

Exit codes: 0 done; 1 an output failed during the run (e.g. the disk filled up; what
was written stays playable); 2 bad arguments, source, output or checkpoint (nothing
was processed); 128 + N stopped by signal N (Ctrl-C 130, SIGTERM 143, SIGHUP 129),
every output closed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from realtime.options import add_model_options, check_settings

log = logging.getLogger("realtime")

FLIPS = {"h": 1, "v": 0, "both": -1}  # cv2.flip codes
RUNS_ROOT = "runs/predict"


@dataclass(frozen=True)
class LiveSettings:
    source: str = "0"  # camera index, stream URL, video, image, folder or glob
    weights: str | None = None  # None: $DIGITS_WEIGHTS or assets/digits.pt
    pair_weights: str | None = None  # None: $DIGITS_PAIR_WEIGHTS or assets/pairs.pt if present; "": none
    seq_weights: str | None = None  # None: $DIGITS_SEQ_WEIGHTS or assets/sequences.pt if present; "": none
    min_confidence: float | None = None  # None: the recognizer's default
    max_frames: int | None = None  # stop after this many frames
    threads: int = 1  # network threads
    backend: str = "auto"  # inference engine
    record: str | None = None  # annotated video path
    json: str | None = None  # JSON lines path, "-" for stdout
    csv: str | None = None  # numbers as CSV rows, "-" for stdout
    save_dir: str | None = None  # annotated images folder ("" : the next runs/predict/expN)
    no_display: bool = False  # no window
    snapshot_dir: str = "."  # where the s key saves
    width: int | None = None  # camera capture width asked for
    height: int | None = None  # camera capture height asked for
    fps: float | None = None  # camera frame rate asked for
    fourcc: str | None = None  # camera pixel format asked for (MJPG)
    flip: str | None = None  # h, v or both
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h: only this part is read
    open_timeout: float = 5.0  # seconds a camera or stream may take to deliver a frame
    image_fps: float = 2.0  # frame rate of a recording of still images
    loop: bool = False  # start a video or a list of images again at its end
    smooth: int = 8  # frames of tracker smoothing
    no_track: bool = False  # every frame read on its own
    progress: bool = True  # progress bar for files when headless
    verbose: bool = False  # log what the pipeline does
    settings: tuple[str, ...] = ()  # recognizer settings, STAGE.FIELD=VALUE
    config_file: str | None = None  # a JSON or TOML file of recognizer settings


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h in pixels (four integers), got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"x and y must be >= 0 and w and h >= 1, got {text!r}")
    return x, y, w, h


def _fourcc(text: str) -> str:
    if len(text) != 4 or not text.isascii() or not text.isprintable():
        raise argparse.ArgumentTypeError(f"a pixel format is 4 characters (e.g. MJPG, YUYV), got {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    d = LiveSettings()
    p = argparse.ArgumentParser(
        prog="python -m realtime",
        description="Find and read handwritten digits live: boxes, digits, confidences and the processing rate "
        "drawn over the video; optional annotated recording, annotated images, JSON lines and CSV. Keys in "
        "the window: q or ESC quits, space pauses (and goes on from a held image), n, Enter or the right "
        "arrow go to the next image, f toggles full screen, s saves a snapshot. Images, and a video's "
        "last frame, stay on screen until a key.",
        epilog="Stream URLs (rtsp://, http://, anything FFmpeg opens) are read like a camera. Environment: "
        "DIGITS_WEIGHTS, DIGITS_PAIR_WEIGHTS and DIGITS_SEQ_WEIGHTS name the default checkpoints. Exit codes: 0 done, 1 an output failed during the run, "
        "2 bad arguments, source, output or checkpoint, 128+N stopped by signal N (outputs closed).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--source", default=d.source,
                   help="camera index (0, 1, ...), camera device (/dev/video0), stream URL, video file, image file, "
                        "folder of images (sorted by name), a glob in quotes (e.g. 'scans/*.png') or "
                        "'demo' (the short clip shipped with the package)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="CPU threads for the network (2 gave 15-25%% more FPS on a 2-core CPU, with more "
                        "jitter; the OpenCV stages always run on one)")
    add_model_options(p, backend=d.backend)
    _output_options(p, d)
    _camera_options(p, d)
    p.add_argument("--image-fps", type=float, default=d.image_fps,
                   help="frame rate of the recording when the source is images")
    p.add_argument("--loop", action="store_true",
                   help="start the video or the images again at the end (demos; --max-frames still stops)")
    p.add_argument("--smooth", type=int, default=d.smooth,
                   help="frames over which each tracked digit's class probabilities are averaged (live stability)")
    p.add_argument("--no-track", action="store_true", help="no tracking or smoothing: every frame is read on its own")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the pipeline does")
    return p


def _output_options(p: argparse.ArgumentParser, d: LiveSettings) -> None:
    p.add_argument("--record", metavar="OUT.mp4", default=None,
                   help="write the annotated video here (.mp4: H.264 when PyAV is installed, else mp4v; .avi: "
                        "MJPG); a camera's recording follows the clock, so it lasts as long as the run")
    p.add_argument("--json", metavar="OUT.jsonl", default=None,
                   help="one JSON line per frame: frame, source, ms, detections, numbers, t (seconds since the "
                        "start); '-' writes them to standard output")
    p.add_argument("--csv", metavar="OUT.csv", default=None,
                   help="one row per number read: frame, t, value, x, y, w, h; '-' is standard output")
    p.add_argument("--save-dir", metavar="DIR", nargs="?", const="", default=None,
                   help=f"save every annotated frame as an image here (images under their own names, video "
                        f"frames as frame_NNNNNN.jpg); without DIR, the next free {RUNS_ROOT}/expN")
    p.add_argument("--no-display", action="store_true", help="run headless (no window); shows a progress bar for files")
    p.add_argument("--snapshot-dir", default=d.snapshot_dir, help="folder for snapshots saved with the s key")


def _camera_options(p: argparse.ArgumentParser, d: LiveSettings) -> None:
    p.add_argument("--width", type=int, default=None, help="camera capture width to ask for")
    p.add_argument("--height", type=int, default=None, help="camera capture height to ask for")
    p.add_argument("--fps", type=float, default=None, help="camera frame rate to ask for")
    p.add_argument("--fourcc", type=_fourcc, default=None,
                   help="camera pixel format to ask for, e.g. MJPG (many USB cameras give 720p and up at full "
                        "rate only in MJPG)")
    p.add_argument("--flip", choices=sorted(FLIPS), nargs="?", const="h", default=None,
                   help="mirror each frame: h left-right (the default when given alone), v upside down, both "
                        "(a camera mounted upside down)")
    p.add_argument("--roi", type=_roi, metavar="X,Y,W,H", default=None,
                   help="read only this rectangle of each frame (pixels, after --flip); the rest is shown greyed")
    p.add_argument("--open-timeout", type=float, default=d.open_timeout,
                   help="seconds a camera or stream may take to open and deliver its first frame")


def parse_args(argv: Sequence[str] | None = None) -> LiveSettings:
    """The settings of a run; argparse's own exit (code 2, one usage line) on bad ones."""
    p = _parser()
    a = p.parse_args(argv)
    checks = [
        (a.max_frames is not None and a.max_frames < 1, "--max-frames must be >= 1"),
        (a.threads < 1, "--threads must be >= 1"),
        (a.smooth < 1, "--smooth must be >= 1"),
        (not 0 < a.image_fps <= 1000, "--image-fps must be > 0 and <= 1000"),
        (a.fps is not None and not 0 < a.fps <= 1000, "--fps must be > 0 and <= 1000"),
        (not 0 < a.open_timeout <= 3600, "--open-timeout must be > 0 (seconds)"),
        ((a.width is not None and a.width < 1) or (a.height is not None and a.height < 1),
         "--width and --height must be >= 1"),
    ]
    for bad, message in checks:
        if bad:
            p.error(message)
    check_settings(p, a)  # before any source or model is opened
    return LiveSettings(
        source=a.source, weights=a.weights, pair_weights=a.pair_weights, seq_weights=a.seq_weights,
        min_confidence=a.min_confidence, max_frames=a.max_frames, threads=a.threads, backend=a.backend,
        record=a.record, json=a.json, csv=a.csv, save_dir=a.save_dir, no_display=a.no_display,
        snapshot_dir=a.snapshot_dir, width=a.width, height=a.height, fps=a.fps, fourcc=a.fourcc, flip=a.flip,
        roi=a.roi, open_timeout=a.open_timeout, image_fps=a.image_fps, loop=a.loop, smooth=a.smooth,
        no_track=a.no_track, progress=not a.no_progress, verbose=a.verbose,
        settings=tuple(a.settings), config_file=a.config,
    )


def display_available() -> bool:
    """Whether a window can open: on Linux an X11 or Wayland display must be set."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def frame_record(index: int, source: str, ms: float, detections: Sequence[Any],
                 numbers: Sequence[dict[str, Any]] | None = None, t: float | None = None) -> dict[str, Any]:
    """One JSON line: the documented keys first, later additions (``t``) after them."""
    rec: dict[str, Any] = {
        "frame": int(index),
        "source": source,
        "ms": round(float(ms), 3),
        "detections": [d.to_json() for d in detections],
    }
    if numbers is not None:
        rec["numbers"] = [{"value": n["value"], "box": [int(v) for v in n["box"]], "digits": list(n["digits"])}
                          for n in numbers]
    if t is not None:
        rec["t"] = round(float(t), 4)
    return rec


# --------------------------------------------------------------------------- before the models


@dataclass
class Outputs:
    """Everything a run writes, opened (and checked) before any model loads."""

    recorder: Any = None
    jsonl: Any = None
    csv: Any = None
    saver: Any = None
    save_dir: Path | None = None


def _source_files(src: Any) -> list[Path]:
    from realtime.sources import ImageSource, VideoSource

    if isinstance(src, ImageSource):
        return src.paths
    if isinstance(src, VideoSource):
        return [Path(src.name)]
    return []


def _check_paths(settings: LiveSettings, src: Any, save_dir: Path | None) -> None:
    """No output may be an input or another output (links resolved)."""
    from realtime.sinks import is_stdout, refuse_overwrites, saved_path
    from realtime.sources import ImageSource

    inputs: dict[str, list[Any]] = {"the source": _source_files(src)}
    for option, value in (("--weights", settings.weights), ("--pair-weights", settings.pair_weights),
                          ("--seq-weights", settings.seq_weights)):
        if value:
            inputs[option] = [value]
    outputs: dict[str, Any] = {"--record": settings.record, "--json": settings.json, "--csv": settings.csv}
    refuse_overwrites(inputs, outputs)
    if save_dir is not None and isinstance(src, ImageSource):
        # where each annotated image will go: never over an input or another output
        others = {k: [v] for k, v in outputs.items() if v and not is_stdout(v)}
        for name in src.names:
            target = {"--save-dir": saved_path(save_dir, name)}
            refuse_overwrites(inputs, target)
            refuse_overwrites(others, target)


def open_source_for(settings: LiveSettings) -> Any:
    from realtime.sources import open_source

    return open_source(settings.source, fps=settings.image_fps, width=settings.width, height=settings.height,
                       camera_fps=settings.fps, fourcc=settings.fourcc, open_timeout=settings.open_timeout)


def open_outputs(settings: LiveSettings, src: Any, stack: ExitStack) -> Outputs:
    """Check and open every output (folders created) for ``src``."""
    from realtime.sinks import CsvWriter, ImageSaver, JsonlWriter, VideoRecorder, is_stdout, make_parent, \
        next_run_dir

    save_dir = None
    if settings.save_dir is not None:
        save_dir = Path(settings.save_dir) if settings.save_dir else next_run_dir(RUNS_ROOT)
    _check_paths(settings, src, save_dir)
    out = Outputs(save_dir=save_dir)
    for path in (settings.record, settings.json, settings.csv):
        if path and not is_stdout(path):
            make_parent(path)
    if settings.record:
        fps = src.fps if src.fps > 0 else settings.image_fps
        out.recorder = VideoRecorder(settings.record, fps, src.size)
        log.info("recording %s with %s at %.2f fps", settings.record, out.recorder.codec, fps)
    if settings.json:
        out.jsonl = stack.enter_context(JsonlWriter(settings.json))
    if settings.csv:
        out.csv = stack.enter_context(CsvWriter(settings.csv))
    if save_dir is not None:
        out.saver = stack.enter_context(ImageSaver(save_dir))
    return out


def check_roi(settings: LiveSettings, size: tuple[int, int]) -> None:
    from realtime.sources import SourceError

    if settings.roi is None:
        return
    x, y, w, h = settings.roi
    if x + w > size[0] or y + h > size[1]:
        raise SourceError(f"--roi {x},{y},{w},{h} does not fit in the {size[0]}x{size[1]} frames of {settings.source}")


def camera_line(src: Any) -> str:
    """What a camera delivers against what was asked: drivers quietly give other sizes."""
    w, h = src.size
    got = f"{src.name if not src.name.isdigit() else 'camera ' + src.name}: {w}x{h} at {src.fps:.1f} fps"
    if src.fourcc:
        got += f", {src.fourcc}"
    req = src.requested
    asked = []
    if req.get("width") or req.get("height"):
        asked.append(f"{req.get('width') or '?'}x{req.get('height') or '?'}")
    if req.get("fps"):
        asked.append(f"{req['fps']:g} fps")
    if req.get("fourcc"):
        asked.append(req["fourcc"])
    return got + (f" (asked {', '.join(asked)})" if asked else "")


def load_recognizer(settings: LiveSettings) -> Any:
    """The models, with a transient "loading" line on a terminal (so a first start that
    compiles kernels is never a silent wait, and the line is gone once it is over)."""
    from realtime.recognizer import Recognizer, configure

    tty = sys.stderr.isatty()
    if tty:
        print("loading the models ...", end="", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = dict(backend=settings.backend, threads=settings.threads,
                                  pair_weights=settings.pair_weights, seq_weights=settings.seq_weights,
                                  config=configure(settings=settings.settings, file=settings.config_file))
    if settings.min_confidence is not None:
        kwargs["min_confidence"] = settings.min_confidence
    try:
        rec = Recognizer.load(settings.weights, **kwargs)
    finally:
        if tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    log.info("models loaded in %.1f s from %s", time.perf_counter() - t0, getattr(rec, "weights_path", "?"))
    return rec


# --------------------------------------------------------------------------- the loop


@dataclass
class Clock:
    """A frame's time since the start ("t"): its capture time for a camera, its place in
    a video file (index / fps), when it was read for images."""

    live: bool
    video_fps: float | None
    start: float | None = None

    def of(self, frame: Any, n: int) -> float:
        if self.video_fps:
            return n / self.video_fps
        stamp = frame.timestamp if self.live else time.monotonic()
        if self.start is None:
            self.start = stamp
        return max(0.0, stamp - self.start)

    def now(self) -> float | None:
        return None if self.start is None else time.monotonic() - self.start


@dataclass
class Rates:
    """Processing rate and latency, smoothed for the status line."""

    ms: float | None = None
    latency: float | None = None

    def update(self, ms: float, latency_ms: float) -> None:
        a = 0.1
        self.ms = ms if self.ms is None else (1 - a) * self.ms + a * ms
        self.latency = latency_ms if self.latency is None else (1 - a) * self.latency + a * latency_ms

    @property
    def fps(self) -> float | None:
        return None if not self.ms else 1000.0 / self.ms


def transform(image: Any, settings: LiveSettings) -> Any:
    import cv2

    return image if settings.flip is None else cv2.flip(image, FLIPS[settings.flip])


def read(rec: Any, image: Any, tracker: Any, roi: tuple[int, int, int, int] | None) -> list[Any]:
    """Detections in frame pixels; with a region of interest only it is read."""
    import dataclasses

    from realtime.tracker import detect_tracked

    if roi is None:
        return detect_tracked(rec, image, tracker)
    x, y, w, h = roi
    dets = detect_tracked(rec, image[y:y + h, x:x + w], tracker)
    return [dataclasses.replace(d, box=(d.box[0] + x, d.box[1] + y, d.box[2], d.box[3])) for d in dets]


def annotate(image: Any, dets: Sequence[Any], numbers: Sequence[Any], rates: Rates, settings: LiveSettings,
             paused: bool = False) -> Any:
    import cv2

    from realtime.overlay import draw_frame, status_text

    if settings.roi is not None:
        x, y, w, h = settings.roi
        grey = (image * 0.45).astype(image.dtype)  # what is not read is shown dimmed
        grey[y:y + h, x:x + w] = image[y:y + h, x:x + w]
        image = grey
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), (200, 200, 200), 1)
    status = status_text(rates.fps, rates.ms, len(dets), paused=paused, latency_ms=rates.latency)
    return draw_frame(image, dets, numbers, status)


@dataclass
class Result:
    frames: int = 0
    quit: bool = False


def frames_of(settings: LiveSettings, first: Any) -> Any:
    """The source's frames, and with ``--loop`` those of the same source opened again."""
    src = first
    while True:
        try:
            yield from src
        finally:
            if src is not first:
                src.close()
        if not settings.loop or src.is_live:
            return
        src = open_source_for(settings)


def process(settings: LiveSettings, src: Any, rec: Any, out: Outputs, guard: Any, window: Any,
            clock: Clock, result: Result) -> None:
    """Every frame through the recognizer and out to every output, together."""
    from realtime.numbers import group_numbers
    from realtime.sources import ImageSource
    from realtime.tracker import Tracker

    images = isinstance(src, ImageSource)
    # images of a folder are unrelated pictures: tracking would smear labels across them
    tracker = None if settings.no_track or images else Tracker(
        window=settings.smooth, min_confidence=getattr(rec, "min_confidence", 0.4))
    rates = Rates()
    bar = _progress(settings, src, window)
    try:
        for frame in frames_of(settings, src):
            image = transform(frame.image, settings)
            t0 = time.perf_counter()
            dets = read(rec, image, tracker, settings.roi)
            ms = (time.perf_counter() - t0) * 1000.0
            numbers = group_numbers(dets)
            t = clock.of(frame, result.frames)
            rates.update(ms, (time.monotonic() - frame.timestamp) * 1000.0)
            shown = annotate(image, dets, numbers, rates, settings) if (
                window is not None or out.recorder is not None or out.saver is not None) else None
            name = frame.name if images else str(settings.source)
            with guard.deferred():  # a frame's line, its video frame, its rows: all or none
                _write(out, result.frames, name, ms, dets, numbers, t, shown, src.is_live, images)
            result.frames += 1
            if bar is not None:
                bar.update(1)
            if window is not None and _interact(window, shown, settings, src, images, frame, rates, dets):
                result.quit = True
                break
            if settings.max_frames is not None and result.frames >= settings.max_frames:
                break
    finally:
        if bar is not None:
            bar.close()
    if window is not None and not result.quit and not images and result.frames:
        _hold_end(window, settings)


def _write(out: Outputs, n: int, name: str, ms: float, dets: Sequence[Any], numbers: Sequence[Any], t: float,
           shown: Any, live: bool, images: bool) -> None:
    if out.jsonl is not None:
        out.jsonl.write(frame_record(n, name, ms, dets, numbers, t))
    if out.csv is not None:
        out.csv.write(n, t, numbers)
    if out.recorder is not None:
        out.recorder.write(shown, t if live else None)
    if out.saver is not None:
        out.saver.save(name if images else f"frame_{n:06d}.jpg", shown)


def _progress(settings: LiveSettings, src: Any, window: Any) -> Any:
    if window is not None or not settings.progress or src.is_live:
        return None
    from tqdm import tqdm

    total = None if settings.loop else src.length
    if settings.max_frames is not None:
        total = min(total, settings.max_frames) if total else settings.max_frames
    # delay: a run that is over (or fails) within a second draws no bar over its one line
    return tqdm(total=total, unit="frame", desc="processing", dynamic_ncols=True, file=sys.stderr, delay=1.0)


def _interact(window: Any, shown: Any, settings: LiveSettings, src: Any, images: bool, frame: Any,
              rates: Rates, dets: Sequence[Any]) -> bool:
    """Show the frame and answer the keys; True when the user quits. An image is held
    until a key; a video plays at its own rate; a camera is never held back."""
    from realtime.window import NEXT, PAUSE, QUIT, SNAPSHOT

    window.show(shown)
    if images:
        while True:
            action = window.hold()
            if action == SNAPSHOT:
                _snapshot(settings, shown, frame.index)
                continue
            return action == QUIT
    wait = 1
    if not src.is_live and src.fps > 0:
        wait = max(1, int(1000.0 / src.fps - (time.monotonic() - frame.timestamp) * 1000.0))
    action = window.poll(wait)
    paused = False
    while True:
        if action == QUIT:
            return True
        if action == SNAPSHOT:
            _snapshot(settings, shown, frame.index)
        if action == PAUSE:
            paused = not paused
            if paused:
                window.show(annotate_paused(shown, rates, dets))
        if action == NEXT and paused:
            paused = False
        if not paused:
            return False
        action = window.poll(50)


def annotate_paused(shown: Any, rates: Rates, dets: Sequence[Any]) -> Any:
    from realtime.overlay import draw_status

    return draw_status(shown, rates.fps, rates.ms, len(dets), paused=True, latency_ms=rates.latency)


def _hold_end(window: Any, settings: LiveSettings) -> None:
    """The last frame stays until a key: a clip that ends is not a window that vanishes."""
    from realtime.window import SNAPSHOT

    print("end of input: press a key in the window to close it", file=sys.stderr)
    while window.hold() == SNAPSHOT:
        pass


def _snapshot(settings: LiveSettings, shown: Any, index: int) -> None:
    import cv2

    from realtime.sinks import make_dir

    folder = make_dir(settings.snapshot_dir)
    snap = folder / f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{index:06d}.png"
    cv2.imwrite(str(snap), shown)
    print(f"snapshot saved: {snap}", file=sys.stderr)


def summary(settings: LiveSettings, out: Outputs, frames: int) -> str:
    """The closing line: how many frames, and where every result went."""
    went = []
    if out.jsonl is not None:
        went.append(f"JSON lines -> {'standard output' if out.jsonl.to_stdout else settings.json}")
    if out.csv is not None:
        went.append(f"numbers CSV -> {'standard output' if out.csv.to_stdout else settings.csv}")
    if out.recorder is not None:
        r = out.recorder
        hint = "" if r.codec.startswith("H.264") or r.fourcc == "MJPG" else "; pip install av for H.264"
        went.append(f"video -> {settings.record} ({r.frames_written} frames, {r.duration:.1f} s, {r.codec}{hint})")
    if out.saver is not None:
        went.append(f"annotated images -> {out.save_dir}/ ({out.saver.saved})")
    head = f"{frames} frame{'s' if frames != 1 else ''} read"
    if not went:
        return head + " (nothing saved: see --record, --json, --csv, --save-dir)"
    return head + "; " + "; ".join(went)


def _open_window(settings: LiveSettings, size: tuple[int, int]) -> Any:
    if settings.no_display:
        return None
    if not display_available():
        print("no display available: running headless (pass --no-display to silence this)", file=sys.stderr)
        return None
    import cv2

    from realtime.window import Window

    try:
        return Window(size=size)
    except cv2.error as err:
        print(f"cannot show a window ({str(err).strip().splitlines()[-1][:80]}): running headless", file=sys.stderr)
        return None


class RunFailed(Exception):
    """An output failed while frames were being processed (exit 1)."""


def _recorder_exit(recorder: Any, clock: Clock) -> Callable[..., bool]:
    """Close the recording when the run ends: a camera's held to the time the run
    took; a failure to close is logged when the run is already ending on another error."""
    from realtime.sinks import SinkError

    def close(exc_type: Any, *_: Any) -> bool:
        until = clock.now() if clock.live else None
        if exc_type is None:
            recorder.close(until=until)
            return False
        try:
            recorder.close(until=until)
        except SinkError as err:
            log.error("%s", err)
        return False

    return close


def run(settings: LiveSettings, guard: Any, *, source: Any = None, recognizer: Any = None) -> int:
    """Open (source, outputs), load, process; every output closed on every path.
    ``source`` (an opened frame source) and ``recognizer`` replace the ones the
    settings name, for programs and tests that bring their own."""
    from realtime.sinks import SinkError
    from realtime.sources import ImageSource

    result = Result()
    with ExitStack() as stack:
        src = stack.enter_context(source if source is not None else open_source_for(settings))
        check_roi(settings, src.size)
        if src.is_live:
            print(camera_line(src), file=sys.stderr)
        out = open_outputs(settings, src, stack)
        clock = Clock(live=src.is_live,
                      video_fps=None if src.is_live or isinstance(src, ImageSource) else src.fps)
        if out.recorder is not None:
            stack.push(_recorder_exit(out.recorder, clock))
        rec = recognizer if recognizer is not None else load_recognizer(settings)
        window = _open_window(settings, src.size)
        if window is not None:
            stack.callback(window.close)
        try:
            process(settings, src, rec, out, guard, window, clock, result)
            stack.close()
        except SinkError as err:
            raise RunFailed(str(err)) from None
        except KeyboardInterrupt:
            stack.close()
            print(summary(settings, out, result.frames), file=sys.stderr)
            raise
        print(summary(settings, out, result.frames), file=sys.stderr)
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


def _stopped(err: BaseException) -> int | None:
    """The exit code for a Ctrl-C or termination signal behind ``err``, having said so."""
    from realtime.sinks import Shutdown, interruption

    stop = interruption(err)
    if stop is None:
        return None
    if isinstance(stop, Shutdown):
        print(f"stopped by signal {stop.signum}: outputs closed", file=sys.stderr)
        return stop.exit_code
    print("interrupted: outputs closed", file=sys.stderr)
    return 130


def _leave_stuck_captures(code: int) -> int:
    """A camera or stream still blocked inside its driver or FFmpeg (a hung URL the user
    gave up on with Ctrl-C) cannot be released; the interpreter's teardown would then
    wait on it or abort ("terminate called without an active exception"). Everything
    of ours is closed by now, so such a process ends here, with its exit code."""
    import threading

    stuck = [t for t in threading.enumerate() if t.name.startswith("camera-") and t.is_alive()]
    for t in stuck:
        t.join(timeout=0.5)
    if any(t.is_alive() for t in stuck) and threading.current_thread() is threading.main_thread():
        log.debug("a capture is still blocked in its driver: exiting without waiting for it")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return _leave_stuck_captures(_main(argv))


def _main(argv: Sequence[str] | None) -> int:
    try:
        settings = parse_args(argv)
        logging.basicConfig(level=logging.INFO if settings.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        if hasattr(signal, "SIGXFSZ"):
            # past a file size limit a write then fails (EFBIG) and is reported, instead
            # of the signal killing the process with its recording unfinished
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if not settings.verbose:
            quiet_opencv()
        from realtime.sinks import graceful_shutdown

        with graceful_shutdown() as guard:
            return _guarded(settings, guard)
    except (KeyboardInterrupt, SystemError) as err:
        # SystemError: a signal that landed inside compiled code (see interruption); the
        # outputs were closed on the way out all the same
        code = _stopped(err)
        if code is None:
            raise
        return code


def _user_errors() -> tuple[type[BaseException], ...]:
    """The errors that are the user's input, said in one line: a source, an output, a
    checkpoint or graph (training.errors needs no torch: a live install has none)."""
    from realtime.sinks import SinkError
    from realtime.sources import SourceError
    from training.errors import CheckpointError

    return (SourceError, SinkError, CheckpointError)


def _guarded(settings: LiveSettings, guard: Any) -> int:
    try:
        return run(settings, guard)
    except RunFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - narrowed to the user's errors just below
        if not isinstance(err, _user_errors()):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
