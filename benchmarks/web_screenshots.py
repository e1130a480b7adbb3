"""Screenshots of the web app's three tabs for the README, taken in headless Chromium.

Starts ``python -m realtime.web``, draws "712" on the canvas, plays the demo clip through
Chromium's fake camera, uploads a demo frame, and saves one small PNG per tab
(palette-quantized):

    python -m benchmarks.web_screenshots --out assets
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import cv2

from benchmarks.web_tools import chromium, demo_frames, serve, write_y4m

WAIT_MS = 120_000
STROKES = [[(100, 80), (200, 80), (140, 290)], [(300, 100), (330, 70), (330, 290)],
           [(450, 110), (480, 75), (530, 75), (550, 110), (540, 160), (450, 290), (560, 290)]]
VIEWPORT = {"width": 960, "height": 720}


def draw(page) -> None:
    box = page.locator("#draw-canvas").bounding_box()
    sx, sy = box["width"] / 720, box["height"] / 360
    for stroke in STROKES:
        pts = [(box["x"] + x * sx, box["y"] + y * sy) for x, y in stroke]
        page.mouse.move(*pts[0])
        page.mouse.down()
        for p in pts[1:]:
            page.mouse.move(*p, steps=8)
        page.mouse.up()
    page.wait_for_function("document.getElementById('draw-reading').textContent === '712'")


def save_small(png: bytes, path: Path) -> int:
    """A screenshot as a 128-colour PNG (a fifth of the size, the UI's flat colours survive)."""
    import io

    from PIL import Image

    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128).save(path, optimize=True)
    return path.stat().st_size


def take(out: Path, tmp: Path) -> list[Path]:
    frames = demo_frames(15)
    clip = write_y4m(tmp / "clip.y4m", frames + frames[::-1])
    still = tmp / "demo_frame.png"
    cv2.imwrite(str(still), demo_frames(1, start=150)[0])
    shots = []
    with serve() as srv, chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                  f"--use-file-for-fake-video-capture={clip}") as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        page.goto(srv.url + "/#draw")
        page.wait_for_function("!document.getElementById('health').textContent.includes('connecting')")
        draw(page)
        shots.append(("web_draw.png", page.screenshot()))
        page.click("#tab-webcam")
        page.click("#cam-start")
        page.wait_for_function("Number(document.getElementById('cam-count').textContent) >= 20")
        time.sleep(2)  # the FPS counter covers a whole second
        shots.append(("web_webcam.png", page.screenshot()))
        page.click("#cam-stop")
        page.click("#tab-upload")
        page.set_input_files("#upload-file", str(still))
        page.wait_for_selector("#upload-result:not([hidden])")
        page.wait_for_function("document.getElementById('upload-image').complete")
        shots.append(("web_upload.png", page.screenshot(full_page=True)))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, png in shots:
        size = save_small(png, out / name)
        print(f"{out / name}: {size / 1024:.0f} KiB", file=sys.stderr)
        paths.append(out / name)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.web_screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="assets", help="folder for web_draw.png, web_webcam.png, web_upload.png")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="web-shots-") as tmp:
        take(Path(a.out), Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
