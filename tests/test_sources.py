"""Tests for realtime.sources on tiny synthetic inputs and fake camera captures."""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.sources import (
    CameraSource,
    ImageSource,
    SourceError,
    VideoSource,
    frames,
    open_source,
)


def _img(value: int, w: int = 32, h: int = 24) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (value, 255 - value, value // 2)
    return img


def _write_png(path: Path, img: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "scans"
    d.mkdir()
    # Written out of order, with different sizes, so order and size come from the file.
    _write_png(d / "c.png", _img(30, 40, 30))
    _write_png(d / "a.PNG", _img(10, 32, 24))
    _write_png(d / "b.jpg", _img(20, 36, 20))
    (d / "notes.txt").write_text("not an image")
    return d


def test_folder_sorted_by_name(image_dir: Path) -> None:
    with open_source(str(image_dir)) as src:
        assert isinstance(src, ImageSource)
        assert src.length == 3 and not src.is_live
        assert src.size == (32, 24)
        assert src.fps == 2.0
        got = list(src)
    assert [f.name for f in got] == ["a.PNG", "b.jpg", "c.png"]
    assert [f.index for f in got] == [0, 1, 2]
    assert [f.image.shape for f in got] == [(24, 32, 3), (20, 36, 3), (30, 40, 3)]
    assert all(f.image.dtype == np.uint8 for f in got)
    assert got[0].image[0, 0].tolist() == [10, 245, 5]
    assert got[0].timestamp <= got[1].timestamp <= got[2].timestamp


def test_glob_sorted(image_dir: Path) -> None:
    with open_source(str(image_dir / "*.jpg"), fps=5) as src:
        assert src.fps == 5.0
        names = [f.name for f in src]
    assert names == ["b.jpg"]
    with open_source(str(image_dir / "[ab]*")) as src:
        assert [f.name for f in src] == ["a.PNG", "b.jpg"]


def test_single_image_and_grayscale(tmp_path: Path) -> None:
    gray = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32)
    p = _write_png(tmp_path / "g.png", gray)
    with open_source(p) as src:
        assert src.length == 1 and src.size == (32, 24)
        (f,) = list(src)
    assert f.name == str(p) and f.index == 0  # the path as given
    assert f.image.shape == (24, 32, 3)
    assert np.array_equal(f.image[..., 0], gray) and np.array_equal(f.image[..., 2], gray)


def test_unreadable_image_in_folder_is_skipped(image_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (image_dir / "b.jpg").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="realtime.sources"):
        with open_source(image_dir) as src:
            got = list(src)
    assert [f.name for f in got] == ["a.PNG", "c.png"]
    assert [f.index for f in got] == [0, 1]
    assert "b.jpg" in caplog.text


def test_unreadable_only_image(tmp_path: Path) -> None:
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(SourceError, match=r"^cannot read image: .*x\.png \(not a readable image\)$"):
        open_source(str(bad))
    d = tmp_path / "d"
    d.mkdir()
    (d / "only.png").write_bytes(b"")
    # A folder whose only image is unreadable names that file.
    with pytest.raises(SourceError, match=r"^cannot read image: .*only\.png \(empty file\)$"):
        open_source(str(d))
    (d / "two.png").write_bytes(b"nope")
    with pytest.raises(SourceError, match=r"^no readable images in folder: .*d \(2 files\)$"):
        open_source(str(d))
    with pytest.raises(SourceError, match="cannot read image"):
        ImageSource([d / "only.png"])


def test_names_relative_to_the_glob_or_folder_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A glob over digits/*/*.png names 3/0.png and 7/0.png, not two lines called 0.png."""
    for d in ("3", "7"):
        (tmp_path / "digits" / d).mkdir(parents=True)
        _write_png(tmp_path / "digits" / d / "0.png", _img(int(d) * 10))
    monkeypatch.chdir(tmp_path)
    with open_source("digits/*/*.png") as src:
        assert [f.name for f in src] == ["3/0.png", "7/0.png"]
    with open_source(str(tmp_path / "digits" / "*" / "0.png")) as src:
        assert [f.name for f in src] == ["3/0.png", "7/0.png"]
    with open_source("digits/**/*.png") as src:
        assert [f.name for f in src] == ["3/0.png", "7/0.png"]
    with open_source("digits/3") as src:
        assert [f.name for f in src] == ["0.png"]
    with open_source("./digits/7/0.png") as src:
        assert [f.name for f in src] == ["./digits/7/0.png"]


@pytest.mark.parametrize("damage", ["truncated", "crc"])
def test_corrupt_png_says_nothing_of_its_own(tmp_path: Path, capfd: pytest.CaptureFixture, damage: str) -> None:
    """libpng prints "libpng error: ..." itself; the one error must be the source's, and
    it carries the decoder's reason."""
    ok, data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    raw = bytearray(data.tobytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[200] ^= 0xFF
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(raw))
    capfd.readouterr()
    with pytest.raises(SourceError, match=r"^cannot read image: .*bad\.png \(.+\)$") as info:
        open_source(str(bad))
    if damage == "crc":  # the decoder's words, in the one line
        assert "libpng error: IDAT: CRC error" in str(info.value)
    out, err = capfd.readouterr()
    assert err == "" and out == "", err
    good = _write_png(tmp_path / "good.png", _img(5))
    with open_source(tmp_path) as src:  # a folder: the bad one skipped, quietly at the fd level
        assert [f.name for f in src] == ["good.png"]
    assert capfd.readouterr().err == ""
    assert good.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
def test_fifo_is_named_for_what_it_is(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.mp4"
    os.mkfifo(fifo)
    with pytest.raises(SourceError, match=r"^cannot read .*feed\.mp4: it is a named pipe \(FIFO\)"):
        open_source(str(fifo))


def _write_video(path: Path, n: int = 12, size: tuple[int, int] = (64, 48), fps: float = 10.0) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert w.isOpened()
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), i * 20, np.uint8))
    w.release()


def test_video_all_frames_in_order(tmp_path: Path) -> None:
    p = tmp_path / "clip.mp4"
    _write_video(p)
    with open_source(str(p)) as src:
        assert isinstance(src, VideoSource)
        assert src.fps == pytest.approx(10.0, abs=0.1)
        assert src.length == 12 and src.size == (64, 48) and not src.is_live
        got = list(src)
        assert src.closed  # exhausting the iterator releases the capture
    assert [f.index for f in got] == list(range(12))
    assert {f.name for f in got} == {str(p)}
    means = [float(f.image.mean()) for f in got]
    # Lossy codec: each frame is near its written value and strictly increasing.
    assert all(abs(m - i * 20) < 8 for i, m in enumerate(means)), means
    assert means == sorted(means)


def test_frames_helper_limits(tmp_path: Path) -> None:
    p = tmp_path / "clip.mp4"
    _write_video(p)
    with open_source(p) as src:
        assert [f.index for f in frames(src, max_frames=5)] == [0, 1, 2, 3, 4]
        assert next(src).index == 5  # the source itself is not closed by frames()
    assert src.closed
    assert list(src) == []  # idempotent close, closed source yields nothing
    src.close()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing.mp4", r"^video file not found: .*missing\.mp4$"),
        ("missing.png", r"^image file not found: .*missing\.png$"),
        ("nothing_here", r"^no such file, folder or camera: "),
        ("*.nomatch", r"^no files match glob: .*\*\.nomatch$"),
    ],
)
def test_missing_inputs(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(str(tmp_path / spec))


def test_empty_folder(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    (d / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match=r"^no images in folder: .*empty$"):
        open_source(str(d))


def test_glob_matching_only_non_images(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SourceError, match="no images match glob"):
        open_source(str(tmp_path / "*.txt"))


def test_corrupt_and_truncated_video_fail_at_open(tmp_path: Path) -> None:
    bad = tmp_path / "x.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match=r"^cannot decode video: .*x\.mp4$"):
        open_source(str(bad))
    good = tmp_path / "good.mp4"
    _write_video(good)
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(good.read_bytes()[:200])
    with pytest.raises(SourceError, match="cannot decode video"):
        open_source(trunc)


def test_video_released_on_close(tmp_path: Path) -> None:
    fake = FakeCapture(frames=[_img(i) for i in range(3)])
    src = VideoSource("v.mp4", capture_factory=lambda _p: fake)
    assert next(src).index == 0
    src.close()
    src.close()
    assert fake.release_calls == 1


# ---------------------------------------------------------------------------------
# Cameras, with fake captures (no webcam on CI machines)
# ---------------------------------------------------------------------------------


class FakeCapture:
    """cv2.VideoCapture stand-in.

    Frames come from a list, or from a queue the test feeds (read() then blocks like a
    real camera); ``None`` in the queue or the end of the list means read() fails from
    then on, as after an unplug.
    """

    def __init__(self, frames: list[np.ndarray] | None = None, feed: queue.Queue | None = None,
                 opened: bool = True, fps: float = 0.0, interval: float = 0.0) -> None:
        self._frames = list(frames or [])
        self._feed = feed
        self._opened = opened
        self._fps = fps
        self._interval = interval
        self.reads = 0
        self.release_calls = 0
        self.props: dict[int, float] = {}
        self.disconnected = False

    def isOpened(self) -> bool:  # noqa: N802 (cv2 API)
        return self._opened and self.release_calls == 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.release_calls:
            return False, None
        if self._feed is not None:
            item = None if self.disconnected else self._feed.get()
            if item is None:
                self.disconnected = True
                return False, None
            self.reads += 1
            return True, item
        if self._interval:
            time.sleep(self._interval)
        if self.reads < len(self._frames):
            self.reads += 1
            return True, self._frames[self.reads - 1]
        return False, None

    def get(self, prop: int) -> float:
        return self._fps if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def release(self) -> None:
        self.release_calls += 1


def _tagged(seq: int) -> np.ndarray:
    img = np.zeros((12, 16, 3), np.uint8)
    img[0, 0, 0] = seq
    return img


def _wait(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_camera_not_opened() -> None:
    fake = FakeCapture(opened=False)
    with pytest.raises(SourceError, match=r"^cannot open camera 3$"):
        CameraSource(3, capture_factory=lambda _i: fake)
    assert fake.release_calls == 1
    with pytest.raises(SourceError, match=r"^cannot open camera 3$"):
        open_source("3", capture_factory=lambda _i: FakeCapture(opened=False))


def test_real_cv2_missing_camera() -> None:
    with pytest.raises(SourceError, match=r"^cannot open camera 99$"):
        open_source(99)


def test_camera_never_delivers_fails_at_open() -> None:
    fake = FakeCapture(frames=[])
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="camera 0 opened but delivered no frame"):
        CameraSource(0, open_timeout=0.3, capture_factory=lambda _i: fake)
    assert time.monotonic() - t0 < 3
    assert fake.release_calls == 1


def test_camera_newest_frame_only() -> None:
    feed: queue.Queue = queue.Queue()
    fake = FakeCapture(feed=feed)
    feed.put(_tagged(0))
    src = CameraSource(0, width=640, height=480, capture_factory=lambda _i: fake)
    with src:
        assert src.is_live and src.length is None and src.size == (16, 12)
        assert fake.props == {cv2.CAP_PROP_FRAME_WIDTH: 640.0, cv2.CAP_PROP_FRAME_HEIGHT: 480.0}
        f0 = next(src)
        assert (f0.index, int(f0.image[0, 0, 0]), f0.name) == (0, 0, "0")
        # The consumer is "busy" while five frames arrive: it must then get the last
        # of them, not the oldest.
        for seq in range(1, 6):
            feed.put(_tagged(seq))
        _wait(lambda: src.frames_captured == 6)
        f1 = next(src)
        assert (f1.index, int(f1.image[0, 0, 0])) == (1, 5)
        assert src.frames_dropped == 4
        for seq in (6, 7):
            feed.put(_tagged(seq))
        _wait(lambda: src.frames_captured == 8)
        f2 = next(src)
        assert (f2.index, int(f2.image[0, 0, 0])) == (2, 7)
        assert f0.timestamp < f1.timestamp < f2.timestamp
        feed.put(None)  # unplug: iteration must end, not hang
        assert list(src) == []
    assert fake.release_calls == 1


def test_camera_slow_consumer_drops_frames() -> None:
    n = 60
    fake = FakeCapture(frames=[_tagged(i) for i in range(n)], interval=0.005)
    seqs = []
    with CameraSource(0, stall_timeout=1.0, capture_factory=lambda _i: fake) as src:
        for f in src:
            seqs.append(int(f.image[0, 0, 0]))
            behind = fake.reads - 1 - seqs[-1]
            assert behind <= 6, f"consumer got frame {seqs[-1]} while {fake.reads - 1} was read"
            time.sleep(0.03)
    assert seqs == sorted(set(seqs))
    assert len(seqs) < n / 2, seqs  # frames were dropped, not queued
    assert seqs[-1] == n - 1  # the frame before the disconnect is still delivered
    assert fake.release_calls == 1


def test_camera_disconnect_ends_iteration(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeCapture(frames=[_tagged(i) for i in range(5)], fps=25.0)
    with caplog.at_level(logging.WARNING, logger="realtime.sources"):
        with CameraSource(1, max_read_failures=3, capture_factory=lambda _i: fake) as src:
            got = list(src)
            assert src.fps == 25.0  # too few frames to measure: the reported rate
            assert src.closed
    assert 1 <= len(got) <= 5
    assert fake.release_calls == 1
    assert "camera 1" in caplog.text


def test_camera_stall_ends_iteration() -> None:
    feed: queue.Queue = queue.Queue()
    fake = FakeCapture(feed=feed)
    feed.put(_tagged(0))
    src = CameraSource(0, stall_timeout=0.3, capture_factory=lambda _i: fake)
    t0 = time.monotonic()
    assert len(list(src)) == 1  # then read() blocks forever: a frozen driver
    assert 0.25 < time.monotonic() - t0 < 3
    # The reader is still stuck in read(); once it returns, the capture is released.
    feed.put(None)
    _wait(lambda: fake.release_calls == 1)


def test_camera_measures_fps() -> None:
    fake = FakeCapture(frames=[_tagged(i % 256) for i in range(400)], interval=0.01, fps=5.0)
    with CameraSource(0, fps_window=0.3, capture_factory=lambda _i: fake) as src:
        fps = src.fps
    # ~100 fps nominal; loose bounds since the test machine is shared and busy.
    assert 20 < fps <= 110
    assert fake.release_calls == 1


def test_close_from_other_thread_unblocks_consumer() -> None:
    feed: queue.Queue = queue.Queue()
    fake = FakeCapture(feed=feed)
    feed.put(_tagged(0))
    src = CameraSource(0, stall_timeout=30, capture_factory=lambda _i: fake)
    next(src)
    threading.Timer(0.2, src.close).start()
    feed_unblock = threading.Timer(0.3, feed.put, args=(None,))
    feed_unblock.start()
    t0 = time.monotonic()
    assert list(src) == []
    assert time.monotonic() - t0 < 5
    feed_unblock.join()
    _wait(lambda: fake.release_calls == 1)


def test_digit_string_and_url_are_live(tmp_path: Path) -> None:
    calls = []

    def factory(dev):
        calls.append(dev)
        return FakeCapture(frames=[_tagged(0)])

    with open_source(" 2 ", capture_factory=factory) as src:
        assert src.is_live
    with open_source("rtsp://cam.local/stream", capture_factory=factory) as src:
        assert src.is_live and src.name == "rtsp://cam.local/stream"
    assert calls == [2, "rtsp://cam.local/stream"]
    with pytest.raises(SourceError, match=r"^cannot open stream http://x/y$"):
        open_source("http://x/y", capture_factory=lambda _d: FakeCapture(opened=False))


def test_camera_asks_for_fps_and_fourcc() -> None:
    class Mjpg(FakeCapture):
        def get(self, prop: int) -> float:
            if prop == cv2.CAP_PROP_FOURCC:
                return float(cv2.VideoWriter_fourcc(*"MJPG"))
            return super().get(prop)

    fake = Mjpg(frames=[_tagged(i) for i in range(3)], fps=25.0)
    with open_source("0", width=1280, height=720, camera_fps=60, fourcc="MJPG", capture_factory=lambda _i: fake) as src:
        assert src.fourcc == "MJPG" and src.reported_fps == 25.0
        assert src.requested == {"width": 1280, "height": 720, "fps": 60, "fourcc": "MJPG"}
    assert list(fake.props) == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                                cv2.CAP_PROP_FPS], "the pixel format goes first: drivers offer sizes per format"
    assert fake.props[cv2.CAP_PROP_FPS] == 60.0


def test_capture_that_hangs_in_open_honours_open_timeout() -> None:
    """A stream that never answers blocks inside the capture's constructor: the source
    gives up after open_timeout, and the capture is released when the call returns."""
    release = threading.Event()
    fake = FakeCapture(frames=[_tagged(0)])

    def hanging(_dev):
        release.wait(30)
        return fake

    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"^stream rtsp://cam/x did not open within 0\.5 s$"):
        open_source("rtsp://cam/x", open_timeout=0.5, capture_factory=hanging)
    elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 0.5 * 4, elapsed
    release.set()
    _wait(lambda: fake.release_calls == 1)


@pytest.fixture
def silent_server():
    """A TCP server on the loopback that accepts and never answers (a hung camera)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    accepted = threading.Event()
    conns = []

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)
            accepted.set()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], accepted
    srv.close()
    for c in conns:
        c.close()


def test_real_stream_that_never_answers(silent_server) -> None:
    """OpenCV's own FFmpeg open waits 30 s by default; the source gives up after its
    open_timeout (here 1 s) with one line, whichever of the two gives up first."""
    port, accepted = silent_server
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=rf"^(stream http://127\.0\.0\.1:{port}/cam did not open within 1 s"
                                          rf"|cannot open stream http://127\.0\.0\.1:{port}/cam)$"):
        open_source(f"http://127.0.0.1:{port}/cam", open_timeout=1.0)
    assert accepted.is_set(), "the stream was never even asked"
    assert time.monotonic() - t0 < 1.0 * 5


def test_demo_names_the_bundled_clip_unless_a_file_has_that_name(tmp_path, monkeypatch):
    from realtime.sources import demo_clip

    assert demo_clip().is_file()
    with open_source("demo") as src:
        first = next(iter(src))
        assert first.image.shape == (480, 640, 3)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # a folder called demo is what the user means
    with pytest.raises(SourceError, match="no images in folder: demo"):
        open_source("demo")
