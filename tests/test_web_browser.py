"""The web page in a real browser (headless Chromium driven by Playwright): digits drawn
with a mouse, a finger and a pen are read; a fake camera playing the demo clip gets its
digits boxed; an uploaded image and video come back annotated and downloadable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.web_tools import CHROMIUM, DEMO_NUMBERS, chromium, demo_frames, serve, write_video, write_y4m

pytest.importorskip("playwright.sync_api")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $CHROMIUM)", allow_module_level=True)

WAIT_MS = 120_000  # a loaded 2-core machine is slow, not broken: waits are on events, bounded generously
# strokes in the canvas's own pixels (720x360): a 7, a 1 and a 2, side by side
SEVEN = [(100, 80), (200, 80), (140, 290)]
ONE = [(300, 100), (330, 70), (330, 290)]
TWO = [(450, 110), (480, 75), (530, 75), (550, 110), (540, 160), (450, 290), (560, 290)]


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory) -> Path:
    """The demo clip's first frames forth and back (no jump where Chromium loops it)."""
    frames = demo_frames(15)
    return write_y4m(tmp_path_factory.mktemp("cam") / "clip.y4m", frames + frames[::-1])


@pytest.fixture(scope="module")
def server():
    with serve(workers=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(fake_camera):
    with chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-video-capture={fake_camera}") as b:
        yield b


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1000, "height": 800}, has_touch=True, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    yield page
    context.close()
    assert not errors, errors


def canvas_points(page, points):
    box = page.locator("#draw-canvas").bounding_box()
    sx, sy = box["width"] / 720, box["height"] / 360
    return [(box["x"] + x * sx, box["y"] + y * sy) for x, y in points]


def stroke_mouse(page, points) -> None:
    pts = canvas_points(page, points)
    page.mouse.move(*pts[0])
    page.mouse.down()
    for p in pts[1:]:
        page.mouse.move(*p, steps=8)
    page.mouse.up()


def interpolate(pts, steps: int = 8):
    out = [pts[0]]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        out += [(x0 + (x1 - x0) * t / steps, y0 + (y1 - y0) * t / steps) for t in range(1, steps + 1)]
    return out


def stroke_touch(page, points) -> None:
    cdp = page.context.new_cdp_session(page)
    pts = interpolate(canvas_points(page, points))
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": pts[0][0], "y": pts[0][1]}]})
    for x, y in pts[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def stroke_pen(page, points) -> None:
    cdp = page.context.new_cdp_session(page)
    pts = interpolate(canvas_points(page, points))

    def pen(kind: str, x: float, y: float, **kw) -> None:
        cdp.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "pointerType": "pen",
                                               "force": 0.5, **kw})

    pen("mousePressed", *pts[0], button="left", buttons=1, clickCount=1)
    for x, y in pts[1:]:
        pen("mouseMoved", x, y, button="left", buttons=1)
    pen("mouseReleased", *pts[-1], button="left", buttons=0, clickCount=1)
    cdp.detach()


def overlay_has_ink(page, canvas_id: str) -> bool:
    return page.evaluate(f"""() => {{
        const c = document.getElementById('{canvas_id}');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
        return false;
    }}""")


def test_digits_drawn_with_mouse_finger_and_pen_are_read(page):
    stroke_mouse(page, SEVEN)
    page.wait_for_function("document.getElementById('draw-reading').textContent === '7'")
    assert page.locator(".bar-card").count() == 1
    stroke_touch(page, ONE)
    stroke_pen(page, TWO)
    page.wait_for_function("document.getElementById('draw-reading').textContent === '712'")
    cards = page.locator(".bar-card")
    assert [cards.nth(i).get_attribute("data-digit") for i in range(cards.count())] == ["7", "1", "2"]
    for i in range(3):
        assert cards.nth(i).locator(".bar").count() == 10
        assert cards.nth(i).locator(".bar.top").count() == 1
    assert overlay_has_ink(page, "draw-overlay")  # the boxes are drawn over the canvas
    page.click("#draw-clear")
    assert page.inner_text("#draw-reading") == "-"
    assert page.locator(".bar-card").count() == 0 and not overlay_has_ink(page, "draw-overlay")


def test_the_webcam_tab_boxes_the_digits_of_a_fake_camera(page):
    page.click("#tab-webcam")
    page.click("#cam-start")
    page.wait_for_function("Number(document.getElementById('cam-count').textContent) >= 15")
    page.wait_for_function("Number(document.getElementById('cam-fps').textContent) > 0")
    reading = page.inner_text("#cam-reading").split()
    assert DEMO_NUMBERS <= set(reading), reading
    assert float(page.inner_text("#cam-latency")) > 0 and float(page.inner_text("#cam-ms")) > 0
    assert overlay_has_ink(page, "cam-overlay")
    page.click("#cam-stop")
    assert page.is_enabled("#cam-start") and not page.is_enabled("#cam-stop")
    assert page.locator("#cam-error").is_hidden()


def download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    return Path(info.value.path()).read_bytes()


def test_an_uploaded_image_comes_back_annotated(page, tmp_path):
    path = tmp_path / "frame0.png"
    cv2.imwrite(str(path), demo_frames(1)[0])
    page.click("#tab-upload")
    page.set_input_files("#upload-file", str(path))
    page.wait_for_selector("#upload-result:not([hidden])")
    assert DEMO_NUMBERS <= set(page.inner_text("#upload-reading").split())
    page.wait_for_function("document.getElementById('upload-image').naturalWidth === 640")
    png = download(page, "#upload-media-link")
    annotated = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert annotated.shape == (480, 640, 3)
    lines = download(page, "#upload-jsonl-link").decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["source"] == "frame0.png"


def test_an_uploaded_video_comes_back_annotated_and_plays(page, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", demo_frames(8))
    page.click("#tab-upload")
    page.set_input_files("#upload-file", str(clip))
    page.wait_for_selector("#upload-result:not([hidden])")
    assert "(last of 8 frames)" in page.inner_text("#upload-reading")
    page.wait_for_function("document.getElementById('upload-video').readyState >= 2")
    assert page.evaluate("document.getElementById('upload-video').videoWidth") == 640
    lines = download(page, "#upload-jsonl-link").decode().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(8))


def test_a_bad_upload_shows_its_error(page, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not digits\n")
    page.click("#tab-upload")
    page.set_input_files("#upload-file", str(path))
    page.wait_for_selector("#upload-error:not([hidden])")
    assert "neither an image nor a video" in page.inner_text("#upload-error")
    assert page.locator("#upload-result").is_hidden()
