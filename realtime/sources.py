"""Frame sources: one iterator interface over cameras, video files and still images.

The recognizer loop should not care where pixels come from, so everything that can
supply frames is opened through :func:`open_source` and used the same way::

    with open_source(args.source) as src:
        for frame in frames(src, max_frames=args.max_frames):
            ...  # frame.image is BGR uint8 HxWx3

A spec is one of:

* a camera index: an ``int`` or a string of digits (``"0"``); a file literally named
  ``0`` can still be opened as ``./0``;
* a stream URL (anything containing ``://``), read like a camera;
* a video file (any existing file without an image extension);
* an image file (extensions in :data:`IMAGE_EXTENSIONS`, case-insensitive);
* a folder of images (non-recursive, sorted by file name);
* a glob pattern such as ``"scans/*.png"`` (sorted; ``**`` recurses).

Every source fails at open time with a one-line :class:`SourceError` when it cannot
deliver a first frame, so a bad ``--source`` is reported before windows, recorders or
models are set up, not half-way through a run.

Live sources read on a background thread that keeps only the newest frame: when
recognition is slower than the camera, old frames are dropped instead of queued, so
the shown result never lags further and further behind the paper.
"""

from __future__ import annotations

import contextlib
import glob as globmod
import itertools
import logging
import math
import os
import stat
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})

DEFAULT_FPS = 30.0
DEFAULT_IMAGE_FPS = 2.0
# Containers occasionally report nonsense rates (e.g. a timebase of 90000); anything
# outside this range is treated as "unknown".
_MAX_PLAUSIBLE_FPS = 1000.0


class SourceError(Exception):
    """A frame source cannot be opened or read; the message is one line for the user."""


@dataclass
class Frame:
    """One captured frame.

    ``image`` is always BGR ``uint8`` of shape (H, W, 3). ``index`` counts the frames
    this source has yielded, from 0 (a live source that dropped frames has no gaps
    here). ``name`` is the file name for image sources and the spec string otherwise.
    ``timestamp`` is ``time.monotonic()`` when the frame was captured or decoded.
    """

    image: np.ndarray
    index: int
    name: str
    timestamp: float


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as 3-channel BGR uint8 (gray and BGRA are converted)."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise SourceError(f"unsupported frame shape {image.shape}")


def _plausible_fps(value: Any) -> float | None:
    try:
        fps = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(fps) or fps <= 0 or fps > _MAX_PLAUSIBLE_FPS:
        return None
    return fps


class FrameSource(ABC):
    """Iterator of :class:`Frame` and context manager; ``close()`` is idempotent.

    Exhausting the iterator also closes the source, so a loop that simply runs to the
    end does not leak a capture; the properties stay readable after closing.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._closed = False
        self._gen: Iterator[Frame] | None = None
        self._count = 0

    # -- properties every source provides ------------------------------------------
    # file sources know both at open time; a camera measures its rate and overrides
    _fps: float = 0.0
    _size: tuple[int, int] = (0, 0)

    @property
    def fps(self) -> float:
        """Frames per second to record at / to expect."""
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the first frame."""
        return self._size

    @property
    def length(self) -> int | None:
        """Number of frames when known in advance, else None."""
        return None

    @property
    def is_live(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    # -- iteration -----------------------------------------------------------------
    @abstractmethod
    def _generate(self) -> Iterator[np.ndarray | tuple[np.ndarray, float, str]]:
        """Yield images, or (image, timestamp, name) tuples, until the source ends."""

    def _release(self) -> None:
        """Free OS resources; called once by close()."""

    def __iter__(self) -> FrameSource:
        return self

    def __next__(self) -> Frame:
        if self._closed:
            raise StopIteration
        if self._gen is None:
            self._gen = self._generate()
        try:
            item = next(self._gen)
        except StopIteration:
            self.close()
            raise
        if isinstance(item, tuple):
            image, ts, name = item
        else:
            image, ts, name = item, time.monotonic(), self.name
        frame = Frame(image=to_bgr(image), index=self._count, name=name, timestamp=ts)
        self._count += 1
        return frame

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # The generator is only dropped, not closed: close() may be called from another
        # thread while the consumer is inside it, and it owns no resources itself.
        self._gen = None
        self._release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def frames(source: FrameSource, max_frames: int | None = None) -> Iterator[Frame]:
    """Yield frames from ``source``, at most ``max_frames`` (None: all).

    The source is not closed here; keep it in a ``with`` block.
    """
    if max_frames is None:
        return iter(source)
    if max_frames < 0:
        raise ValueError("max_frames must be >= 0")
    return itertools.islice(source, max_frames)


# ---------------------------------------------------------------------------------
# Still images
# ---------------------------------------------------------------------------------


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Catch what C libraries print on file descriptor 2 while the block runs.

    libpng and libjpeg print their own lines ("libpng error: IDAT: CRC error") on a
    damaged image, before the CLI could say which file failed; the decoders' words go
    into the list instead (the caller logs them or puts them in its one message).
    Python's own stderr is flushed first, so nothing of its is swallowed.
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (e.g. pythonw)
        yield lines
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def _read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """``(image or None, why not)``. imdecode over np.fromfile, not imread: imread
    cannot open non-ASCII paths on Windows, and this way a missing/empty/corrupt file
    is simply None, with the decoder's own words (not printed) as the reason."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except (OSError, ValueError) as e:
        return None, getattr(e, "strerror", None) or str(e)
    if data.size == 0:
        return None, "empty file"
    with captured_stderr() as said:
        try:
            img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        except cv2.error:
            img = None
    if said:
        log.debug("decoding %s: %s", path, " / ".join(said))
    if img is None:
        return None, said[-1] if said else "not a readable image"
    return img, ""


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


class ImageSource(FrameSource):
    """A sorted list of still images, yielded once each.

    Unreadable images are skipped with a warning, but at least one must be readable
    at open time. ``fps`` is only the rate a recording of these frames should play at
    (e.g. a slideshow of scans); frames are not paced. ``names`` are what each frame
    is called (``Frame.name``): by default the path as given; a folder or glob names
    its files relative to its root.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, fps: float = DEFAULT_IMAGE_FPS,
                 name: str | None = None, what: str | None = None,
                 names: Sequence[str] | None = None) -> None:
        super().__init__(name if name is not None else str(paths[0]) if paths else "")
        if not paths:
            raise SourceError(f"no images in {what or 'source'}")
        self._paths = [Path(p) for p in paths]
        self._names = [str(n) for n in names] if names is not None else [str(p) for p in paths]
        if len(self._names) != len(self._paths):
            raise ValueError("one name per image path")
        self._fps = float(fps)
        if not _plausible_fps(self._fps):
            raise SourceError(f"invalid fps for images: {fps}")
        self._first: tuple[int, np.ndarray] | None = None
        why = ""
        for i, p in enumerate(self._paths):
            img, why = _read_image(p)
            if img is not None:
                self._first = (i, img)
                break
            if len(self._paths) > 1:
                log.warning("skipping unreadable image: %s (%s)", p, why)
        if self._first is None:
            self._closed = True
            if len(self._paths) == 1:
                raise SourceError(f"cannot read image: {self._paths[0]} ({why})")
            raise SourceError(f"no readable images in {what or 'source'} ({len(self._paths)} files)")
        h, w = self._first[1].shape[:2]
        self._size = (int(w), int(h))

    @property
    def length(self) -> int:
        """Number of image files (unreadable ones are skipped, so at most this many)."""
        return len(self._paths)

    @property
    def paths(self) -> list[Path]:
        return list(self._paths)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def _generate(self) -> Iterator[tuple[np.ndarray, float, str]]:
        assert self._first is not None
        start, first = self._first
        self._first = None  # let the decoded image go once yielded
        yield first, time.monotonic(), self._names[start]
        for p, name in zip(self._paths[start + 1:], self._names[start + 1:]):
            img, why = _read_image(p)
            if img is None:
                log.warning("skipping unreadable image: %s (%s)", p, why)
                continue
            yield img, time.monotonic(), name


# ---------------------------------------------------------------------------------
# Video files
# ---------------------------------------------------------------------------------


class VideoSource(FrameSource):
    """A video file decoded with cv2.VideoCapture, every frame in order."""

    def __init__(self, path: str | os.PathLike[str], *,
                 capture_factory: Callable[[str], Any] = cv2.VideoCapture) -> None:
        super().__init__(str(path))
        self._cap: Any = None
        try:
            self._cap = capture_factory(str(path))
            ok = bool(self._cap.isOpened())
            first = None
            if ok:
                # Decode the first frame now: a corrupt or truncated file must fail
                # here, not after the caller has set up windows and recorders.
                ok, first = self._cap.read()
        except cv2.error:
            ok, first = False, None
        if not ok or first is None:
            self._closed = True
            self._release()
            raise SourceError(f"cannot decode video: {path}")
        self._first: np.ndarray | None = first
        h, w = first.shape[:2]
        self._size = (int(w), int(h))
        reported = _plausible_fps(self._cap.get(cv2.CAP_PROP_FPS))
        if reported is None:
            log.warning("video %s reports no usable fps; assuming %.0f", path, DEFAULT_FPS)
        self._fps = reported or DEFAULT_FPS
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        # FRAME_COUNT comes from container metadata: absent for some streams and only
        # an estimate for others, so it is a hint, not a promise.
        self._length = int(count) if count is not None and math.isfinite(count) and count > 0 else None

    @property
    def length(self) -> int | None:
        return self._length

    def _generate(self) -> Iterator[np.ndarray]:
        first, self._first = self._first, None
        assert first is not None
        yield first
        n = 1
        while True:
            ok, img = self._cap.read()
            if not ok or img is None:
                break
            n += 1
            yield img
        if self._length is not None and n < self._length:
            log.warning("video %s ended after %d of %d frames", self.name, n, self._length)

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


# ---------------------------------------------------------------------------------
# Live cameras and streams
# ---------------------------------------------------------------------------------


class CameraSource(FrameSource):
    """A live camera (or stream URL) read on a background thread, newest frame only.

    The reader thread overwrites a one-slot buffer; the iterator waits for a frame
    newer than the one it returned last, so a slow consumer always gets the latest
    frame and never a backlog. Iteration ends, with a warning, when ``read()`` fails
    ``max_read_failures`` times in a row or no new frame arrives for
    ``stall_timeout`` seconds (an unplugged camera), letting the caller finish its
    outputs normally.

    ``capture_factory(device)`` builds the capture; pass e.g.
    ``lambda i: cv2.VideoCapture(i, cv2.CAP_DSHOW)`` to pick a backend, or a fake with
    ``isOpened/read/get/set/release`` in tests. It runs on the reader thread, as does
    everything else that touches the capture (cv2 captures are not thread-safe), so a
    stream URL that hangs in open costs at most ``open_timeout`` (and Ctrl-C is
    answered at once): the thread releases the capture whenever the call returns.
    ``width``, ``height``, ``fps`` and ``fourcc`` (e.g. ``"MJPG"``, which lets many USB
    cameras deliver 720p/1080p at full rate) are asked of the driver; what it
    delivers is in :attr:`size`, :attr:`fps` and :attr:`fourcc`.
    """

    def __init__(self, device: int | str = 0, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, fourcc: str | None = None,
                 stall_timeout: float = 2.0, open_timeout: float = 5.0, max_read_failures: int = 10,
                 fps_window: float = 1.0,
                 capture_factory: Callable[[Any], Any] | None = None) -> None:
        super().__init__(str(device))
        self._device = device
        self._what = f"camera {device}" if isinstance(device, int) else f"stream {device}"
        self.stall_timeout = float(stall_timeout)
        self._max_failures = max(1, int(max_read_failures))
        self._fps_window = float(fps_window)
        self.requested = {"width": width, "height": height, "fps": fps, "fourcc": fourcc}
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, float] | None = None
        self._seq = 0  # frames stored by the reader
        self._seen = 0  # seq of the frame the iterator returned last
        self._stop = False
        self._opened: bool | None = None  # None while the capture is being opened
        self._reader_done = False
        self._stamps: list[float] = []
        self._fps_measured: float | None = None
        self._fps_final = False
        self._reported_fps: float | None = None
        self._fourcc = ""
        factory = capture_factory or (lambda dev: _default_capture(dev, open_timeout))
        self._thread: threading.Thread | None = threading.Thread(
            target=self._reader, args=(factory,), name=f"camera-{device}", daemon=True)
        try:
            self._thread.start()
            self._await_first_frame(float(open_timeout))
        except BaseException:
            self.close()
            raise

    def _await_first_frame(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.wait_for(lambda: self._opened is not None, timeout=timeout)
            opened = self._opened
        if opened is None:
            raise SourceError(f"{self._what} did not open within {timeout:g} s")
        if not opened:
            raise SourceError(f"cannot open {self._what}")
        with self._cond:
            self._cond.wait_for(lambda: self._seq > 0 or self._reader_done,
                                timeout=max(0.0, deadline - time.monotonic()))
            first = self._latest
        if first is None:
            raise SourceError(f"{self._what} opened but delivered no frame within {timeout:g} s")
        h, w = first[0].shape[:2]
        self._size = (int(w), int(h))

    # -- reader thread -------------------------------------------------------------
    def _open(self, factory: Callable[[Any], Any]) -> Any:
        """The capture, configured, or None; tells the waiting constructor either way."""
        try:
            cap = factory(self._device)
            opened = bool(cap.isOpened())
        except cv2.error:
            cap, opened = None, False
        if opened and not self._stop:
            self._configure(cap)
        elif cap is not None:
            cap.release()  # failed, or opened after the constructor gave up waiting
            cap, opened = None, False
        with self._cond:
            self._opened = opened
            self._cond.notify_all()
        return cap

    def _configure(self, cap: Any) -> None:
        req = self.requested
        if req["fourcc"]:  # before the size: some drivers offer large sizes only compressed
            cap.set(cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter_fourcc(*req["fourcc"])))
        if req["width"]:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(req["width"]))
        if req["height"]:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(req["height"]))
        if req["fps"]:
            cap.set(cv2.CAP_PROP_FPS, float(req["fps"]))
        self._reported_fps = _plausible_fps(cap.get(cv2.CAP_PROP_FPS))
        code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        text = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4))
        self._fourcc = text if code and text.isprintable() and text.strip() else ""

    def _reader(self, factory: Callable[[Any], Any]) -> None:
        cap = None
        failures = 0
        try:
            cap = self._open(factory)
            while cap is not None and not self._stop:
                try:
                    ok, img = cap.read()
                except cv2.error as e:
                    log.debug("%s read raised: %s", self._what, e)
                    ok, img = False, None
                now = time.monotonic()
                if not ok or img is None:
                    failures += 1
                    # Before the first frame some backends fail a few reads while the
                    # sensor starts up; open_timeout bounds that phase instead.
                    if failures >= self._max_failures and self._seq > 0:
                        log.warning("%s: read failed %d times in a row; stopping", self._what, failures)
                        break
                    # Without a pause a failing backend that returns at once would spin.
                    time.sleep(0.02)
                    continue
                failures = 0
                with self._cond:
                    self._latest = (img, now)
                    self._seq += 1
                    self._note_stamp(now)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._reader_done = True
                self._finish_fps(complete=False)
                self._cond.notify_all()
            if cap is not None:
                cap.release()

    def _note_stamp(self, now: float) -> None:
        if self._fps_final:
            return
        if self._stamps and now - self._stamps[0] > self._fps_window:
            self._finish_fps(complete=True)
        else:
            self._stamps.append(now)

    def _finish_fps(self, complete: bool) -> None:
        if self._fps_final:
            return
        self._fps_final = True
        s = self._stamps
        # Only a full window is trusted: a camera that died within it, or a burst of
        # buffered frames right after opening, says nothing about the steady rate.
        if complete and len(s) >= 3 and s[-1] > s[0]:
            self._fps_measured = _plausible_fps(round((len(s) - 1) / (s[-1] - s[0]), 2))

    # -- public --------------------------------------------------------------------
    @property
    def fps(self) -> float:
        """Measured delivery rate over the first ~``fps_window`` s of frames.

        May block up to that long right after opening. Falls back to the rate the
        driver reports, then to 30, when too few frames arrived to measure.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._fps_final or self._stop,
                                timeout=self._fps_window + self.stall_timeout)
            measured = self._fps_measured
        return measured or self._reported_fps or DEFAULT_FPS

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def reported_fps(self) -> float | None:
        """The rate the driver says it delivers (None when it gives no usable one)."""
        return self._reported_fps

    @property
    def fourcc(self) -> str:
        """The pixel format the driver says it delivers (e.g. ``MJPG``, ``YUYV``), or ''."""
        return self._fourcc

    @property
    def is_live(self) -> bool:
        return True

    @property
    def frames_captured(self) -> int:
        """Frames the camera delivered so far (yielded or dropped)."""
        with self._cond:
            return self._seq

    @property
    def frames_dropped(self) -> int:
        """Frames overwritten before the consumer asked for them."""
        with self._cond:
            return max(0, self._seen - self._count)

    def _generate(self) -> Iterator[tuple[np.ndarray, float, str]]:
        while True:
            with self._cond:
                got = self._cond.wait_for(
                    lambda: self._seq > self._seen or self._reader_done or self._stop,
                    timeout=self.stall_timeout)
                if self._stop:
                    return
                if self._seq > self._seen:
                    # Still hand out a frame that arrived just before a disconnect.
                    self._seen = self._seq
                    img, ts = self._latest  # type: ignore[misc]
                elif self._reader_done:
                    log.warning("%s stopped delivering frames; ending input", self._what)
                    return
                else:
                    assert not got
                    log.warning("%s: no new frame for %.1f s; ending input", self._what, self.stall_timeout)
                    return
            yield img, ts, self.name

    def _release(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        t = self._thread
        if t is None or t is threading.current_thread() or self._opened is None:
            return  # still inside the factory call (a hanging stream): it releases on return
        # read() can block inside the driver (a few seconds on V4L2 after an unplug);
        # the thread releases the capture itself as soon as it returns.
        t.join(timeout=max(1.0, self.stall_timeout + 1.0))
        if t.is_alive():
            log.warning("%s: reader still blocked in read(); capture is released when it returns", self._what)


def _default_capture(device: int | str, timeout: float) -> Any:
    """cv2.VideoCapture; a stream URL also gets FFmpeg's own open and read timeouts,
    so that its thread gives up too (OpenCV's default is 30 s)."""
    if isinstance(device, str) and "://" in device:
        # a little shorter than the source's own wait, so that FFmpeg gives up (and the
        # thread ends) first, with its own reason
        ms = int(max(0.1, 0.8 * timeout) * 1000)
        try:
            return cv2.VideoCapture(device, cv2.CAP_ANY,
                                    [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        except (cv2.error, TypeError, AttributeError):  # an OpenCV without open parameters
            pass
    return cv2.VideoCapture(device)


# ---------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------


def _sorted_images(paths: Sequence[Path]) -> list[Path]:
    return sorted((p for p in paths if p.is_file() and _is_image(p)), key=str)


def glob_root(pattern: str) -> Path:
    """The folder a glob starts from: its leading parts without wildcards
    (``digits/*/*.png`` -> ``digits``), so matches can be named relative to it."""
    parts = Path(os.path.expanduser(pattern)).parts
    fixed = list(itertools.takewhile(lambda part: not globmod.has_magic(part), parts[:-1]))
    return Path(*fixed) if fixed else Path(".")


def _relative_names(paths: Sequence[Path], root: Path) -> list[str]:
    return [Path(os.path.relpath(p, root)).as_posix() for p in paths]


def _special_file(path: Path) -> str | None:
    """What ``path`` is when it exists but is neither a file nor a folder, else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    return None


DEMO_SOURCE = "demo"  # names the bundled clip, wherever the package is installed


def demo_clip() -> Path:
    """The short clip of handwritten digits shipped with the package (``--source demo``)."""
    from realtime.assets import ASSETS

    return ASSETS / "demo.mp4"


def open_source(spec: str | int | os.PathLike[str], *, fps: float = DEFAULT_IMAGE_FPS,
                width: int | None = None, height: int | None = None, camera_fps: float | None = None,
                fourcc: str | None = None, stall_timeout: float = 2.0, open_timeout: float = 5.0,
                capture_factory: Callable[[Any], Any] | None = None) -> FrameSource:
    """Open a frame source from a camera index, URL, video, image, folder or glob
    (``"demo"``: the bundled clip, unless a file of that name exists).

    ``fps`` applies to image sources only (the rate to record them at); ``width``,
    ``height``, ``camera_fps`` and ``fourcc`` are requested from cameras;
    ``open_timeout`` bounds how long a camera or stream may take to deliver its first
    frame, ``stall_timeout`` ends a live source that stops delivering frames;
    ``capture_factory`` replaces cv2.VideoCapture for cameras and videos. Raises
    :class:`SourceError` with a one-line message when the source cannot be opened or
    yields no first frame.

    Frames are named by the path as given; a folder's or a glob's images by their path
    relative to the folder or to the glob's fixed leading part (``digits/*/*.png``
    names ``digits/3/0.png`` ``3/0.png``).
    """
    if isinstance(spec, bool):
        raise SourceError(f"invalid source: {spec!r}")
    cam_kwargs: dict[str, Any] = dict(width=width, height=height, fps=camera_fps, fourcc=fourcc,
                                      stall_timeout=stall_timeout, open_timeout=open_timeout)
    if capture_factory is not None:
        cam_kwargs["capture_factory"] = capture_factory
    if isinstance(spec, int):
        return CameraSource(spec, **cam_kwargs)
    text = os.fspath(spec)
    if not text.strip():
        raise SourceError("empty source")
    if text.strip().isdigit():
        return CameraSource(int(text.strip()), **cam_kwargs)
    if "://" in text:
        return CameraSource(text, **cam_kwargs)

    path = Path(text).expanduser()
    if path.is_dir():
        images = _sorted_images(list(path.iterdir()))
        if not images:
            raise SourceError(f"no images in folder: {text}")
        return ImageSource(images, fps=fps, name=text, what=f"folder: {text}",
                           names=_relative_names(images, path))
    if path.is_file():
        if _is_image(path):
            return ImageSource([path], fps=fps, name=text, names=[text])
        vid_kwargs = {} if capture_factory is None else {"capture_factory": capture_factory}
        return VideoSource(path, **vid_kwargs)
    if text == DEMO_SOURCE and not path.exists():
        return open_source(demo_clip(), fps=fps, capture_factory=capture_factory)
    if path.exists() and path.is_char_device():  # /dev/video0: a camera by its device path
        return CameraSource(text, **cam_kwargs)
    special = _special_file(path)
    if special is not None:
        raise SourceError(f"cannot read {text}: it is {special}, not a video or image file "
                          "(give a file, a folder, a glob, a camera index or a stream URL)")
    return _open_glob(text, path, fps)


def _open_glob(text: str, path: Path, fps: float) -> FrameSource:
    """The images a glob matches; for a path that is no glob, why nothing is there."""
    if globmod.has_magic(text):
        matches = [Path(m) for m in globmod.glob(os.path.expanduser(text), recursive=True)]
        if not matches:
            raise SourceError(f"no files match glob: {text}")
        images = _sorted_images(matches)
        if not images:
            raise SourceError(f"no images match glob: {text} ({len(matches)} other files)")
        return ImageSource(images, fps=fps, name=text, what=f"glob: {text}",
                           names=_relative_names(images, glob_root(text)))
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        raise SourceError(f"image file not found: {text}")
    if suffix in VIDEO_EXTENSIONS:
        raise SourceError(f"video file not found: {text}")
    raise SourceError(f"no such file, folder or camera: {text}")
