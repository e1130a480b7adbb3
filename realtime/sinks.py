"""Output sinks (annotated video, JSON lines, CSV, annotated images) that stay valid
however a run ends, and the checks that keep them from destroying anything.

A live session usually ends with Ctrl-C, a ``kill`` from a supervisor (SIGTERM), a
closed terminal (SIGHUP), a full disk or an exception. An MP4 whose writer was never
released has no index (``moov`` atom) and will not play, so every sink here is a
context manager with an idempotent ``close()``, and :func:`graceful_shutdown` turns
those signals into an exception like Ctrl-C so that ``with`` blocks and ``finally``
clauses run on every path::

    with graceful_shutdown() as guard, VideoRecorder(out, src.fps, src.size) as rec, \\
            JsonlWriter(log_path) as jl:
        for frame in src:
            with guard.deferred():  # a frame and its line, or neither
                rec.write(annotated)
                jl.write({"frame": frame.index, "digits": digits})

Recordings: H.264 in a fragmented MP4 through PyAV where it is installed (browsers,
GitHub and Jupyter play it; every fragment is self-contained, so even a killed process
or a full disk leaves a playable file), else OpenCV's ``mp4v``/``MJPG``. Neither
library reports every failed write, so the recorder also watches the room left for
its file (free space, ``RLIMIT_FSIZE``) and closes the file, playable, while its index
still fits, then raises :class:`SinkError`; a file that still did not finalize is
reported at close.

Nothing can save a file from SIGKILL or a power cut: JSONL lines are flushed one by
one, so such a file ends on its last complete line at worst; an OpenCV MP4 is then
unplayable, a PyAV one plays up to its last fragment (about a second before the end).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import logging
import math
import os
import signal
import stat
import sys
import threading
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, Sequence

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
    ".webm": "VP80",  # plays in every browser (the web app's annotated videos)
}
# Containers PyAV writes as fragmented H.264 MP4 when it is installed.
H264_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov"})
# x264 settings: ultrafast costs about what OpenCV's mp4v does (1.9 against 1.4 ms per
# 640x480 frame on one core) for a smaller file; zerolatency emits every frame at once,
# so a fragment reaches the disk one keyframe interval (1 s) after its frames.
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23", "threads": "1"}
# Room a recording keeps free for its index and the writer's buffers: a fixed part,
# per written frame (MP4 sample tables, AVI index entries), and a few of its largest
# steps of growth between two frames (frames still in the writer's buffers).
RESERVE_BYTES = 256 * 1024
RESERVE_PER_FRAME = 64
RESERVE_STEPS = 4


class SinkError(Exception):
    """An output cannot be opened or written; the message is one line for the user."""


# ---------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------


def is_stdout(path: str | os.PathLike[str] | None) -> bool:
    """``-`` names standard output (for the JSON lines and CSV writers)."""
    return path is not None and os.fspath(path) == "-"


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """The resolved path (symbolic links followed) and, for an existing file, its
    (device, inode), which also catches hard links and bind mounts."""
    resolved = os.path.realpath(path)
    try:
        st = os.stat(resolved)
        return resolved, (st.st_dev, st.st_ino)
    except OSError:
        return resolved, None


def refuse_overwrites(inputs: Mapping[str, Sequence[str | os.PathLike[str]]],
                      outputs: Mapping[str, str | os.PathLike[str] | None]) -> None:
    """Raise :class:`SinkError` when an output is an input or another output.

    ``inputs`` maps a role ("source", "--weights") to its files; ``outputs`` maps an
    option to its path (None: not given; ``-``: standard output, which two outputs
    cannot share). Paths are compared after resolving links, and by inode where the
    file exists, so ``./x``, ``x`` and a link to ``x`` are the same file.
    """
    seen: dict[Any, str] = {}
    roles: dict[str, str] = {}
    for role, paths in inputs.items():
        for p in paths:
            resolved, inode = _identity(Path(p))
            for key in (resolved, inode):
                if key is not None:
                    seen.setdefault(key, role)
                    roles.setdefault(role, "input")
    for option, path in outputs.items():
        if path is None:
            continue
        if is_stdout(path):
            keys: list[Any] = ["<stdout>"]
        else:
            resolved, inode = _identity(Path(path))
            keys = [k for k in (resolved, inode) if k is not None]
        for key in keys:
            if key in seen:
                other = seen[key]
                if roles.get(other) == "input":
                    raise SinkError(f"{option} {path} is an input ({other}): it would be overwritten; "
                                    "choose another path")
                raise SinkError(f"{option} {path} is also given to {other}: choose another path for one")
        for key in keys:
            seen[key] = option


def make_parent(path: str | os.PathLike[str]) -> None:
    """Create the folder an output goes in (one line :class:`SinkError` if it cannot be)."""
    parent = Path(path).parent
    if str(parent) in ("", "."):
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SinkError(f"cannot create folder {parent} for {path}: a file of that name is in the way") from None
    except NotADirectoryError:
        raise SinkError(f"cannot create folder {parent} for {path}: part of that path is a file") from None
    except OSError as e:
        raise SinkError(f"cannot create folder {parent} for {path}: {e.strerror or e}") from None


def make_dir(path: str | os.PathLike[str]) -> Path:
    """Create an output folder; returns it."""
    folder = Path(path)
    make_parent(folder / "x")
    if not folder.is_dir():
        raise SinkError(f"not a folder: {folder}")
    return folder


def next_run_dir(root: str | os.PathLike[str] = "runs/predict", stem: str = "exp") -> Path:
    """The first free ``root/stemN`` (N = 1, 2, ...): each run's results in a new folder."""
    base = Path(root)
    n = 1
    while (base / f"{stem}{n}").exists():
        n += 1
    return base / f"{stem}{n}"


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


def space_left(path: Path) -> float:
    """Bytes ``path`` may still grow by: the free space of its file system, and at most
    the process's file size limit (``RLIMIT_FSIZE``) minus its size. ``inf`` if unknown."""
    left = math.inf
    try:
        st = os.statvfs(path.parent if str(path.parent) else ".")
        left = float(st.f_bavail * st.f_frsize)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            size = path.stat().st_size if path.exists() else 0
            left = min(left, float(soft - size))
    except (ImportError, OSError, ValueError):
        pass
    return left


# ---------------------------------------------------------------------------------
# Video
# ---------------------------------------------------------------------------------


class _Sink:
    """A ``with`` block closes the sink on every exit path; ``close()`` is idempotent.

    When the block is already leaving on an exception (Ctrl-C, another sink's error),
    a failure to close is logged instead of replacing that exception.
    """

    def close(self) -> None:  # pragma: no cover - every sink defines it
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204 - returns the subclass instance
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except SinkError as err:
            log.error("%s", err)

    def __del__(self) -> None:
        # Last resort for a forgotten close(); the with block is the real guarantee.
        with contextlib.suppress(Exception):
            self.close()


@functools.lru_cache(maxsize=1)
def h264_available() -> bool:
    """Whether PyAV with an H.264 encoder is installed."""
    try:
        import av
        from av.codec import Codec

        Codec("libx264", "w")
        return av is not None
    except Exception:  # noqa: BLE001 - ImportError, or a PyAV build without libx264
        return False


class _PyAVWriter:
    """H.264 in a fragmented MP4: a fragment per keyframe, each playable on its own."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av

        self._av = av
        self.rate = Fraction(fps).limit_denominator(1001)
        # yuv420p halves the colour planes: the frame must have even sides
        self.size = (size[0] - size[0] % 2, size[1] - size[1] % 2)
        self._out = av.open(str(path), "w", format="mp4",
                            options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
        try:
            self._stream = self._out.add_stream("libx264", rate=self.rate)
            self._stream.width, self._stream.height = self.size
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.options = dict(X264_OPTIONS, g=str(max(1, round(fps))))
            self._out.start_encoding()  # opens the file and writes the header: fail here, not later
        except Exception:
            self._out.close()
            raise
        self._pts = 0

    def write(self, frame: np.ndarray) -> None:
        w, h = self.size
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="bgr24")
        vf.pts, vf.time_base = self._pts, 1 / self.rate
        self._pts += 1
        for packet in self._stream.encode(vf):
            self._out.mux(packet)

    def release(self) -> None:
        try:
            for packet in self._stream.encode():
                self._out.mux(packet)
        finally:
            self._out.close()


class VideoRecorder(_Sink):
    """Write BGR frames to a video file.

    ``.mp4``/``.m4v``/``.mov`` are H.264 (fragmented MP4, through PyAV) where PyAV is
    installed, else OpenCV's ``mp4v``; ``.avi``/``.mkv`` are MJPG; ``fourcc`` forces an
    OpenCV codec. ``codec`` says which was chosen. Frames of another size are resized
    to ``size`` (logged once); gray or BGRA frames are converted.

    ``write(image, t)`` places a frame by its time ``t`` (seconds since the recording
    began): the previous frame is repeated over the time it was on screen, and a frame
    whose slot is already written is dropped, so a recording of a live camera lasts as
    long as the run, however many frames processing kept up with. ``close(until=t)``
    holds the last frame until ``t``. Without ``t`` each frame is appended.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int], *,
                 fourcc: str | None = None, h264: bool | None = None) -> None:
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
        ext = self.path.suffix.lower()
        if ext not in FOURCC_BY_EXTENSION:
            raise SinkError(f"unsupported video extension: {self.path} "
                            f"(use one of {', '.join(sorted(FOURCC_BY_EXTENSION))})")
        if fourcc is not None and len(fourcc) != 4:
            raise SinkError(f"fourcc must be 4 characters: {fourcc!r}")
        self._check_target()
        use_h264 = fourcc is None and ext in H264_EXTENSIONS and (h264_available() if h264 is None else h264)
        self.frames_written = 0
        self.frames_dropped = 0
        self._warned_resize = False
        self._last: np.ndarray | None = None
        self._grown = 0  # largest growth of the file between two writes
        self._size_seen = 0
        self._writer: Any = self._open_pyav() if use_h264 else self._open_cv2(fourcc or FOURCC_BY_EXTENSION[ext])
        self._check_room()

    def _check_target(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        except OSError as e:
            raise SinkError(f"cannot open video for writing: {self.path} ({e.strerror or e})") from None
        if stat.S_ISDIR(st.st_mode):
            raise SinkError(f"cannot open video for writing: {self.path} (path is a folder)")
        if not stat.S_ISREG(st.st_mode):
            raise SinkError(f"cannot open video for writing: {self.path} (not a regular file; "
                            "a video needs a seekable file)")

    def _open_pyav(self) -> _PyAVWriter:
        try:
            writer = _PyAVWriter(self.path, self.fps, self.size)
        except Exception as e:  # noqa: BLE001 - av.error.* are OSError/ValueError subclasses
            why = _why_unwritable(self.path)
            if why == "writer refused to open":
                why = getattr(e, "strerror", None) or str(e)
            raise SinkError(f"cannot open video for writing: {self.path} ({why})") from None
        self.fourcc = "avc1"
        self.codec = "H.264 (PyAV)"
        return writer

    def _open_cv2(self, fourcc: str) -> Any:
        try:
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, self.size)
            opened = writer.isOpened()
        except cv2.error:
            writer, opened = None, False
        if not opened:
            if writer is not None:
                writer.release()
            raise SinkError(f"cannot open video for writing: {self.path} ({_why_unwritable(self.path)})")
        self.fourcc = fourcc
        self.codec = f"{fourcc} (OpenCV)"
        return writer

    @property
    def closed(self) -> bool:
        return self._writer is None

    @property
    def duration(self) -> float:
        """Seconds of video written so far."""
        return self.frames_written / self.fps

    def _adapt(self, image: np.ndarray) -> np.ndarray:
        frame = image
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if (frame.shape[1], frame.shape[0]) != self.size:
            # A writer silently drops frames of the wrong size, which would leave a
            # short or empty file with no error at all.
            if not self._warned_resize:
                log.warning("video %s: resizing %dx%d frames to %dx%d", self.path,
                            frame.shape[1], frame.shape[0], *self.size)
                self._warned_resize = True
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame)

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        """Append one frame (BGR uint8; other sizes/channel counts are adapted), or with
        ``t`` place it at its time: repeat the previous frame up to it, or drop it."""
        if self._writer is None:
            raise SinkError(f"write to closed video: {self.path}")
        if t is not None:
            slot = int(round(max(0.0, float(t)) * self.fps))
            if slot < self.frames_written:
                self.frames_dropped += 1
                return
            self._repeat_until(slot)
        frame = self._adapt(image)
        self._put(frame)
        self._last = frame

    def _repeat_until(self, slot: int) -> None:
        while self._last is not None and self.frames_written < slot:
            self._put(self._last)

    def _put(self, frame: np.ndarray) -> None:
        try:
            self._writer.write(frame)
        except Exception as e:  # noqa: BLE001 - PyAV raises av.error.OSError and kin
            self._abandon()
            raise SinkError(f"cannot write video {self.path}: {getattr(e, 'strerror', None) or e}; "
                            f"{self.frames_written} frames before it kept") from None
        self.frames_written += 1
        self._check_room()

    def _check_room(self) -> None:
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        self._grown = max(self._grown, size - self._size_seen)
        self._size_seen = size
        need = RESERVE_BYTES + RESERVE_PER_FRAME * self.frames_written + RESERVE_STEPS * self._grown
        left = space_left(self.path)
        if left < need:
            n = self.frames_written
            self._last = None
            self.close()  # while the index still fits: the file stays playable
            free = f"{max(0.0, left) / 1e6:.2f} MB free"
            if n == 0:
                raise SinkError(f"no room to record {self.path} ({free})")
            raise SinkError(f"no room left to record {self.path} ({free}): stopped after {n} frames, "
                            "the file is closed and plays")

    def _abandon(self) -> None:
        writer, self._writer = self._writer, None
        with contextlib.suppress(Exception):
            writer.release()

    def close(self, until: float | None = None) -> None:
        """Finish the file (holding the last frame until ``until`` seconds when given);
        safe to call more than once. Raises :class:`SinkError` when the file did not
        finalize (a write that failed unseen, e.g. a full disk under OpenCV)."""
        if self._writer is None:
            return
        if until is not None and self._last is not None:
            self._repeat_until(int(round(until * self.fps)))
        writer, self._writer = self._writer, None
        self._last = None
        try:
            writer.release()
        except Exception as e:  # noqa: BLE001
            raise SinkError(f"cannot finish video {self.path}: {getattr(e, 'strerror', None) or e}") from None
        log.info("video %s: %d frames written (%s)", self.path, self.frames_written, self.codec)
        if not isinstance(writer, _PyAVWriter):
            self._verify()

    def _verify(self) -> None:
        """OpenCV reports no failed write: read the finished file's own frame count."""
        cap = cv2.VideoCapture(str(self.path))
        try:
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0.0
        finally:
            cap.release()
        if self.frames_written and not count:
            raise SinkError(f"video {self.path} did not finalize (the disk is full or the write failed): "
                            f"it does not play")
        if count and count < self.frames_written:
            raise SinkError(f"video {self.path} holds only {int(count)} of {self.frames_written} frames "
                            "(the disk is full or the write failed)")


# ---------------------------------------------------------------------------------
# JSON lines, CSV, images
# ---------------------------------------------------------------------------------


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


class _TextSink(_Sink):
    """A text file, or standard output for ``-``, written line by line and flushed per
    line. After a failed write the file is abandoned: closing it raises nothing more."""

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.to_stdout = is_stdout(path)
        self.path = Path("<stdout>") if self.to_stdout else Path(path)
        self.lines_written = 0
        self._failed = False
        if self.to_stdout:
            self._fh: IO[str] | None = sys.stdout
            return
        try:
            self._fh = open(self.path, "a" if append else "w", encoding="utf-8", newline="")
        except OSError as e:
            raise SinkError(f"cannot open for writing: {self.path} ({e.strerror or e})") from None

    @property
    def closed(self) -> bool:
        return self._fh is None

    def _write_text(self, text: str) -> None:
        if self._fh is None:
            raise SinkError(f"write to closed file: {self.path}")
        try:
            # One write call, then flush: a partial line can only be the last.
            self._fh.write(text)
            self._fh.flush()
        except (OSError, ValueError) as e:
            self._failed = True
            self.close()
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise SinkError(f"cannot write {self.path}: {why}") from None

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        if self._failed:
            self._drop(fh)
            return
        try:
            fh.flush() if self.to_stdout else fh.close()
        except (OSError, ValueError) as e:
            self._failed = True
            self._drop(fh)
            raise SinkError(f"cannot write {self.path}: {getattr(e, 'strerror', None) or e}") from None

    def _drop(self, fh: IO[str]) -> None:
        """Let go of a file whose writes failed, so nothing retries its buffer (and
        fails again, with a traceback) when the interpreter exits."""
        if not self.to_stdout:
            with contextlib.suppress(OSError, ValueError):
                fh.close()
            return
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fh.fileno())
            os.close(devnull)


class JsonlWriter(_TextSink):
    """Write one compact JSON object per line, flushed per line (``-``: standard output).

    Flushing each line means a killed process leaves only complete lines (at most
    the line being written is partial). NaN/Infinity become null so strict JSON
    readers accept the file. ``append=True`` keeps an existing file.
    """

    def write(self, record: Mapping[str, Any]) -> None:
        try:
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False,
                              default=_json_default, allow_nan=False)
        except ValueError:
            line = json.dumps(_finite(record), separators=(",", ":"), ensure_ascii=False,
                              default=_json_default, allow_nan=False)
        self._write_text(line + "\n")
        self.lines_written += 1


CSV_COLUMNS = ("frame", "t", "value", "x", "y", "w", "h")


class CsvWriter(_TextSink):
    """One row per number read: ``frame, t, value, x, y, w, h`` (the number's box), under
    a header row; ``-`` is standard output. Values stay text ("007" keeps its zeros)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._row(CSV_COLUMNS)

    def _row(self, values: Sequence[Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        self._write_text(buf.getvalue())

    def write(self, frame: int, t: float, numbers: Sequence[Mapping[str, Any]]) -> None:
        if not numbers:
            return
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        for n in numbers:
            out.writerow([int(frame), f"{t:.3f}", str(n["value"]), *(int(v) for v in n["box"])])
        self._write_text(buf.getvalue())  # a frame's rows together, in one write
        self.lines_written += len(numbers)


def saved_path(folder: str | os.PathLike[str], name: str) -> Path:
    """Where :class:`ImageSaver` saves ``name`` in ``folder`` (a name with ``..`` or an
    absolute one keeps only its file name; one without an image extension gets .png)."""
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        rel = Path(rel.name)
    if rel.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
        rel = rel.with_name(rel.name + ".png")
    return Path(folder) / rel


class ImageSaver(_Sink):
    """Annotated images into a folder, each under a relative name (sub-folders made)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = make_dir(folder)
        self.saved = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def target(self, name: str) -> Path:
        return saved_path(self.folder, name)

    def save(self, name: str, image: np.ndarray) -> Path:
        if self._closed:
            raise SinkError(f"write to closed folder: {self.folder}")
        path = self.target(name)
        ok, data = cv2.imencode(path.suffix.lower() if path.suffix.lower() != ".jpeg" else ".jpg", image)
        if not ok:
            raise SinkError(f"cannot encode {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data.tobytes())
            os.replace(tmp, path)  # never a half-written image under the real name
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise SinkError(f"cannot write {path}: {e.strerror or e}") from None
        self.saved += 1
        return path

    def close(self) -> None:
        self._closed = True


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
    if hasattr(signal, "SIGHUP"):  # the terminal closed
        sigs.append(signal.SIGHUP)
    if hasattr(signal, "SIGBREAK"):  # Ctrl-Break on Windows
        sigs.append(signal.SIGBREAK)
    return tuple(sigs)


class SignalGuard:
    """Termination signals as :class:`Shutdown`, with sections they cannot split.

    Why: Python's default SIGTERM and SIGHUP actions kill the process without
    unwinding, so no ``finally`` runs and the MP4 is left without its index. Raising
    an exception in the main thread instead unwinds normally and every sink is closed.

    The first signal raises, unless it lands inside :meth:`deferred`: then it raises
    when that block ends, so a frame's outputs (its JSON line, video frame, CSV rows)
    are written together or not at all. Further signals during cleanup are logged and
    ignored, so an impatient second Ctrl-C cannot abort ``release()`` half-way; a
    third restores the default action and re-sends the signal to force an exit.
    (``pthread_sigmask`` cannot do this: a process-directed signal is then taken by
    another thread, OpenCV's or FFmpeg's, and Python still runs the handler at once.)
    """

    def __init__(self) -> None:
        self.received = 0
        self._depth = 0
        self._pending: int | None = None

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        self.received += 1
        if self.received == 1:
            if self._depth:
                self._pending = signum
                return
            raise Shutdown(signum)
        if self.received == 2:
            log.warning("shutdown in progress (finishing outputs); send the signal again to force exit")
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal that arrives in the block until the block is done."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self._pending is not None:
            signum, self._pending = self._pending, None
            raise Shutdown(signum)


def install_signal_handlers(signals: Iterable[int] | None = None,
                            guard: SignalGuard | None = None) -> Callable[[], None]:
    """Make termination signals (SIGINT, SIGTERM, SIGHUP; Ctrl-Break on Windows) raise
    :class:`Shutdown` through ``guard`` (see :class:`SignalGuard`); returns a restore
    function. Signal handlers can only be set from the main thread; elsewhere this
    logs and installs nothing."""
    sigs = tuple(_default_signals() if signals is None else signals)
    if threading.current_thread() is not threading.main_thread():
        log.debug("not in main thread; signal handlers not installed")
        return lambda: None
    handler = (guard or SignalGuard()).handler
    previous: dict[int, Any] = {}
    for s in sigs:
        previous[s] = signal.signal(s, handler)

    def restore() -> None:
        while previous:
            s, h = previous.popitem()
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore


@contextlib.contextmanager
def graceful_shutdown(signals: Iterable[int] | None = None) -> Iterator[SignalGuard]:
    """Context manager form of :func:`install_signal_handlers`; restores on exit and
    yields the :class:`SignalGuard` (``with guard.deferred(): ...``).

    Put it outermost, so the handlers are still installed while the inner ``with``
    blocks close their sinks.
    """
    guard = SignalGuard()
    restore = install_signal_handlers(signals, guard)
    try:
        yield guard
    finally:
        restore()
