"""Output sinks (annotated video, JSONL predictions) that stay valid however a run ends.

A live session usually ends with Ctrl-C, a ``kill`` from a supervisor (SIGTERM), or
an exception. An MP4 whose writer was never released has no index (``moov`` atom)
and will not play, so every sink here is a context manager with an idempotent
``close()``, and :func:`graceful_shutdown` turns SIGTERM into an exception like
Ctrl-C so that ``with`` blocks and ``finally`` clauses run on that path too::

    with graceful_shutdown(), VideoRecorder(out, src.fps, src.size) as rec, \\
            JsonlWriter(log_path) as jl:
        for frame in src:
            rec.write(annotated)
            jl.write({"frame": frame.index, "digits": digits})

Nothing can save a file from SIGKILL or a power cut: JSONL lines are flushed one by
one, so such a file ends on its last complete line at worst, but an MP4 written
directly to its final path is then unplayable (use ``.avi``/MJPG, which has no
trailing index, where that matters).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

import cv2
import numpy as np

log = logging.getLogger(__name__)

# Codecs that ship with every opencv-python wheel (no external encoder needed).
FOURCC_BY_EXTENSION = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".avi": "MJPG",
    ".mkv": "MJPG",
}


class SinkError(Exception):
    """An output cannot be opened or written; the message is one line for the user."""


def _why_unwritable(path: Path) -> str:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return "path is a folder"
    if not parent.exists():
        return f"folder does not exist: {parent}"
    if not parent.is_dir():
        return f"not a folder: {parent}"
    if not os.access(parent, os.W_OK):
        return f"no permission to write in {parent}"
    return "writer refused to open"


class _Sink:
    """A ``with`` block closes the sink on every exit path; ``close()`` is idempotent."""

    def close(self) -> None:  # pragma: no cover - every sink defines it
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204 - returns the subclass instance
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort for a forgotten close(); the with block is the real guarantee.
        with contextlib.suppress(Exception):
            self.close()


class VideoRecorder(_Sink):
    """Write BGR frames to a video file with cv2.VideoWriter.

    The codec follows the extension (``mp4v`` for .mp4/.m4v/.mov, ``MJPG`` for
    .avi/.mkv) unless ``fourcc`` is given. Frames of another size are resized to
    ``size`` (logged once); gray or BGRA frames are converted.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int], *,
                 fourcc: str | None = None) -> None:
        self.path = Path(path)
        try:
            self.fps = float(fps)
        except (TypeError, ValueError):
            raise SinkError(f"invalid fps for video {self.path}: {fps!r}") from None
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise SinkError(f"invalid fps for video {self.path}: {fps!r}")
        w, h = (int(v) for v in size)
        if w <= 0 or h <= 0:
            raise SinkError(f"invalid video size for {self.path}: {size!r}")
        self.size = (w, h)
        if fourcc is None:
            fourcc = FOURCC_BY_EXTENSION.get(self.path.suffix.lower())
            if fourcc is None:
                raise SinkError(f"unsupported video extension: {self.path} "
                                f"(use one of {', '.join(sorted(FOURCC_BY_EXTENSION))})")
        if len(fourcc) != 4:
            raise SinkError(f"fourcc must be 4 characters: {fourcc!r}")
        self.fourcc = fourcc
        self.frames_written = 0
        self._warned_resize = False
        self._writer: cv2.VideoWriter | None = None
        try:
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, self.size)
            opened = writer.isOpened()
        except cv2.error:
            writer, opened = None, False
        if not opened:
            if writer is not None:
                writer.release()
            raise SinkError(f"cannot open video for writing: {self.path} ({_why_unwritable(self.path)})")
        self._writer = writer

    @property
    def closed(self) -> bool:
        return self._writer is None

    def write(self, image: np.ndarray) -> None:
        """Append one frame (BGR uint8; other sizes/channel counts are adapted)."""
        if self._writer is None:
            raise SinkError(f"write to closed video: {self.path}")
        frame = image
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if (frame.shape[1], frame.shape[0]) != self.size:
            # The writer silently drops frames of the wrong size, which would leave a
            # short or empty file with no error at all.
            if not self._warned_resize:
                log.warning("video %s: resizing %dx%d frames to %dx%d", self.path,
                            frame.shape[1], frame.shape[0], *self.size)
                self._warned_resize = True
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames_written += 1

    def close(self) -> None:
        """Release the writer (finishes the file); safe to call more than once."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()
            log.info("video %s: %d frames written", self.path, self.frames_written)



def _json_default(obj: Any) -> Any:
    # Predictions come straight out of numpy/torch code; numpy scalars and arrays
    # would otherwise make json.dumps fail mid-run.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN/Infinity (invalid JSON) with None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.floating):
        return _finite(float(obj))
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class JsonlWriter(_Sink):
    """Write one compact JSON object per line, flushed per line.

    Flushing each line means a killed process leaves only complete lines (at most
    the line being written is partial). NaN/Infinity become null so strict JSON
    readers accept the file. ``append=True`` keeps an existing file.
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.lines_written = 0
        try:
            self._fh: IO[str] | None = open(self.path, "a" if append else "w", encoding="utf-8",
                                            newline="\n")
        except OSError as e:
            raise SinkError(f"cannot open for writing: {self.path} ({e.strerror or e})") from None

    @property
    def closed(self) -> bool:
        return self._fh is None

    def write(self, record: Mapping[str, Any]) -> None:
        if self._fh is None:
            raise SinkError(f"write to closed file: {self.path}")
        try:
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False,
                              default=_json_default, allow_nan=False)
        except ValueError:
            line = json.dumps(_finite(record), separators=(",", ":"), ensure_ascii=False,
                              default=_json_default, allow_nan=False)
        try:
            # One write call per line, then flush: a partial line can only be the last.
            self._fh.write(line + "\n")
            self._fh.flush()
        except OSError as e:
            raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from None
        self.lines_written += 1

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()



# ---------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------


class Shutdown(KeyboardInterrupt):
    """Raised in the main thread when a termination signal arrives.

    A KeyboardInterrupt subclass so that existing ``except KeyboardInterrupt``
    handling covers SIGTERM too, and so that ``except Exception`` does not swallow
    it. ``exit_code`` is the shell convention 128 + signal number.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        super().__init__(f"received {name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interruption(err: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or :class:`Shutdown` behind ``err`` (itself, or what it was raised
    from), or ``None``. A signal that lands while numba-compiled code calls back into
    Python reaches the caller wrapped in ``SystemError``, its cause the interrupt."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, KeyboardInterrupt):
        cause = cause.__cause__ or cause.__context__
    return cause


def _default_signals() -> tuple[int, ...]:
    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):  # Ctrl-Break on Windows
        sigs.append(signal.SIGBREAK)
    return tuple(sigs)


def install_signal_handlers(signals: Iterable[int] | None = None) -> Callable[[], None]:
    """Make termination signals raise :class:`Shutdown`; returns a restore function.

    Why: Python's default SIGTERM action kills the process without unwinding, so no
    ``finally`` runs and the MP4 is left without its index. Raising an exception in
    the main thread instead unwinds normally and every sink is closed.

    The first signal raises. Further ones during cleanup are logged and ignored, so
    an impatient second Ctrl-C cannot abort ``release()`` half-way; a third restores
    the default action and re-sends the signal to force an exit.

    Signal handlers can only be set from the main thread; elsewhere this logs and
    installs nothing.
    """
    sigs = tuple(_default_signals() if signals is None else signals)
    if threading.current_thread() is not threading.main_thread():
        log.debug("not in main thread; signal handlers not installed")
        return lambda: None
    received = 0
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received == 1:
            raise Shutdown(signum)
        if received == 2:
            log.warning("shutdown in progress (finishing outputs); send the signal again to force exit")
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for s in sigs:
        previous[s] = signal.signal(s, handler)

    def restore() -> None:
        while previous:
            s, h = previous.popitem()
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore


@contextlib.contextmanager
def graceful_shutdown(signals: Iterable[int] | None = None) -> Iterator[None]:
    """Context manager form of :func:`install_signal_handlers`; restores on exit.

    Put it outermost, so the handlers are still installed while the inner ``with``
    blocks close their sinks.
    """
    restore = install_signal_handlers(signals)
    try:
        yield
    finally:
        restore()
