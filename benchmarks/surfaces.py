"""What a camera sees around and over handwriting: photographic desks, paper tooth, the
shadows of hands and phones, printed pages, sensor noise.

Procedural textures for ``benchmarks.scenes``, each a pure function of a
``numpy.random.Generator`` and a size, returning float32 images on the 0-255 scale
(BGR) or gain maps. Desks are built at full resolution: their fine texture (carpet
loops, woven threads, leather grain) is what a segmenter has to reject, so it must not
be smoothed away. Tones include desks brighter than a shadowed sheet and strongly
saturated ones, as real desks are.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

DESK_KINDS = ("wood", "leather", "fabric", "carpet")

# BGR tones per desk kind: dark and light, grey and saturated. Several are brighter than
# white paper under a strong shadow (about 140-160 here).
_TONES = {
    "wood": ((40.0, 58.0, 88.0), (60.0, 100.0, 150.0), (110.0, 165.0, 215.0), (140.0, 190.0, 226.0),
             (45.0, 60.0, 120.0), (28.0, 34.0, 44.0)),
    "leather": ((28.0, 28.0, 30.0), (32.0, 48.0, 78.0), (70.0, 112.0, 165.0), (40.0, 40.0, 160.0),
                (55.0, 35.0, 115.0), (150.0, 170.0, 190.0)),
    "fabric": ((125.0, 75.0, 40.0), (150.0, 150.0, 150.0), (60.0, 125.0, 60.0), (50.0, 50.0, 175.0),
               (175.0, 200.0, 215.0), (200.0, 200.0, 205.0)),
    "carpet": ((150.0, 150.0, 95.0), (125.0, 120.0, 110.0), (160.0, 185.0, 200.0), (60.0, 50.0, 120.0),
               (70.0, 110.0, 75.0), (190.0, 195.0, 200.0)),
}


def _noise(rng: np.random.Generator, w: int, h: int, sigma: float) -> np.ndarray:
    """White noise blurred by ``sigma`` px and rescaled to unit deviation."""
    n = rng.standard_normal((h, w), dtype=np.float32)
    if sigma > 0:
        n = cv2.GaussianBlur(n, (0, 0), sigma)
    return n / max(float(n.std()), 1e-6)


def _smooth_field(rng: np.random.Generator, w: int, h: int, cell: float) -> np.ndarray:
    """A smooth random field of unit scale whose features are about ``cell`` px apart."""
    gw, gh = max(2, int(round(w / cell)) + 1), max(2, int(round(h / cell)) + 1)
    return cv2.resize(rng.standard_normal((gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _streaks(rng: np.random.Generator, w: int, h: int, along: float, vertical: bool) -> np.ndarray:
    """Noise stretched ``along`` times along one axis: fibres, threads, grain."""
    if vertical:
        small = rng.standard_normal((max(2, int(h / along)), w)).astype(np.float32)
    else:
        small = rng.standard_normal((h, max(2, int(w / along)))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _rotated(tex_fn, rng: np.random.Generator, w: int, h: int, angle: float) -> np.ndarray:
    """A texture made on a larger canvas and turned by ``angle`` degrees, cropped to w x h."""
    if abs(angle) < 0.5:
        return tex_fn(rng, w, h)
    d = int(math.ceil(math.hypot(w, h))) + 2
    big = tex_fn(rng, d, d)
    m = cv2.getRotationMatrix2D((d / 2.0, d / 2.0), angle, 1.0)
    m[:, 2] += [(w - d) / 2.0, (h - d) / 2.0]
    return cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _wood(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    plank = rng.uniform(0.18, 0.5) * max(w, h)
    period = rng.uniform(6.0, 26.0)

    def tex(r: np.random.Generator, tw: int, th: int) -> np.ndarray:
        x = np.arange(tw, dtype=np.float32)[None, :]
        warp = _smooth_field(r, tw, th, rng.uniform(60.0, 200.0)) * rng.uniform(4.0, 14.0)
        rings = np.sin(2 * np.pi * (x + warp) / period)
        rings = np.sign(rings) * np.abs(rings) ** 0.6  # late wood is a sharp dark band
        fibres = _streaks(r, tw, th, rng.uniform(15.0, 50.0), vertical=True)
        planks = np.floor(x / plank)
        tone = (np.sin(planks * 12.9898) * 43758.5453) % 1.0 - 0.5  # one tone per plank
        seam = np.abs(((x + plank / 2) % plank) - plank / 2) < 0.8
        t = 1.0 + 0.08 * rings + 0.05 * fibres + 0.14 * tone - 0.35 * seam
        return t.astype(np.float32)

    return _rotated(tex, rng, w, h, float(rng.choice([0.0, 90.0])) + rng.normal(0.0, 4.0))


def _leather(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    pebble = _noise(rng, w, h, rng.uniform(1.0, 2.2))
    grain = -np.abs(_noise(rng, w, h, rng.uniform(2.0, 4.0)))  # a network of fine creases
    creases = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(2, 7))):
        pts = np.cumsum(rng.normal(0.0, 1.0, (12, 2)), axis=0)
        pts = (pts - pts.min(0)) / np.maximum(np.ptp(pts, 0), 1e-6)
        pts = pts * rng.uniform(0.2, 0.8) * [w, h] + rng.uniform(0, 1, 2) * [w, h]
        cv2.polylines(creases, [pts.astype(np.int32)], False, 1.0, int(rng.integers(1, 3)), cv2.LINE_AA)
    creases = cv2.GaussianBlur(creases, (0, 0), 1.2)
    sheen = _smooth_field(rng, w, h, max(w, h) / 3.0)
    return (1.0 + 0.06 * pebble + 0.07 * grain - 0.25 * creases + 0.08 * sheen).astype(np.float32)


def _fabric(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    pitch = rng.uniform(2.5, 7.0)

    def tex(r: np.random.Generator, tw: int, th: int) -> np.ndarray:
        yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
        warp_t = np.sin(2 * np.pi * xx / pitch)
        weft_t = np.sin(2 * np.pi * yy / pitch)
        over = np.sign(np.sin(np.pi * (np.floor(xx / pitch) + np.floor(yy / pitch))))  # which thread is on top
        weave = np.where(over > 0, warp_t, weft_t)
        slub = _streaks(r, tw, th, rng.uniform(20.0, 60.0), vertical=bool(r.random() < 0.5))
        return (1.0 + 0.10 * weave + 0.05 * slub + 0.04 * _noise(r, tw, th, 0.7)).astype(np.float32)

    folds = _smooth_field(rng, w, h, rng.uniform(80.0, 250.0))
    return _rotated(tex, rng, w, h, rng.uniform(-30.0, 30.0)) * (1.0 + 0.09 * folds).astype(np.float32)


def _carpet(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    loops = _noise(rng, w, h, rng.uniform(0.6, 1.4))
    tufts = _noise(rng, w, h, rng.uniform(2.0, 4.0))
    mottle = _smooth_field(rng, w, h, rng.uniform(15.0, 40.0))
    specks = (rng.random((h, w)) < rng.uniform(0.002, 0.01)).astype(np.float32)
    specks = cv2.GaussianBlur(specks, (0, 0), 0.8) * 4.0
    t = 1.0 + 0.16 * loops + 0.10 * tufts + 0.08 * mottle - 0.5 * specks
    return np.clip(t, 0.3, 1.6).astype(np.float32)


_TEXTURES = {"wood": _wood, "leather": _leather, "fabric": _fabric, "carpet": _carpet}


def desk(rng: np.random.Generator, kind: str, w: int, h: int) -> np.ndarray:
    """A ``kind`` desk (one of :data:`DESK_KINDS`) filling a w x h frame, BGR float32."""
    if kind not in _TEXTURES:
        raise ValueError(f"desk kind must be one of {', '.join(DESK_KINDS)}, not {kind!r}")
    tones = _TONES[kind]
    colour = np.array(tones[int(rng.integers(len(tones)))], np.float32) * np.float32(rng.uniform(0.85, 1.12))
    colour = colour * (1.0 + rng.normal(0.0, 0.04, 3)).astype(np.float32)  # no two desks alike
    tex = _TEXTURES[kind](rng, w, h)
    return np.clip(tex[..., None] * colour, 0.0, 255.0).astype(np.float32)


def paper_tooth(rng: np.random.Generator, w: int, h: int, amount: float) -> np.ndarray:
    """Gain map of paper fibres seen up close: fine mottling of ``amount`` percent."""
    fine = _noise(rng, w, h, rng.uniform(0.8, 1.6))
    fibres = _streaks(rng, w, h, rng.uniform(4.0, 10.0), vertical=bool(rng.random() < 0.5))
    return (1.0 + amount / 100.0 * (0.8 * fine + 0.5 * fibres)).astype(np.float32)


def _phone(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Coverage of a phone held over the page: a rounded rectangle entering from a side."""
    m = np.zeros((h, w), np.float32)
    pw, ph = rng.uniform(0.25, 0.45) * w, rng.uniform(0.5, 1.0) * h
    ang = rng.uniform(-35.0, 35.0)
    side = int(rng.integers(4))
    depth = rng.uniform(0.2, 0.45)  # how far into the frame the phone's far edge reaches
    cx, cy = {0: (rng.uniform(0.2, 0.8) * w, depth * h - ph / 2),
              1: (w - depth * w + pw / 2, rng.uniform(0.2, 0.8) * h),
              2: (rng.uniform(0.2, 0.8) * w, h - depth * h + ph / 2),
              3: (depth * w - pw / 2, rng.uniform(0.2, 0.8) * h)}[side]
    r = 0.12 * min(pw, ph)  # rounded corners
    arc = np.linspace(0.0, np.pi / 2, 8)
    corner = np.stack([np.cos(arc), np.sin(arc)], axis=1) * r
    local = np.concatenate([corner + [pw / 2 - r, ph / 2 - r],
                            corner[:, ::-1] * [-1, 1] + [-pw / 2 + r, ph / 2 - r],
                            -corner + [-pw / 2 + r, -ph / 2 + r],
                            corner[:, ::-1] * [1, -1] + [pw / 2 - r, -ph / 2 + r]])
    t = math.radians(ang)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    poly = local @ rot.T + [cx, cy]
    cv2.fillPoly(m, [np.round(poly * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    return m


def _hand(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Coverage of a hand and forearm reaching in from a side: palm, fingers, arm."""
    s = min(w, h)
    m = np.zeros((h, w), np.float32)
    side = int(rng.integers(4))
    # build for a hand reaching in from the bottom, then turn to the chosen side
    reach = rng.uniform(0.35, 0.6) * h
    px, py = rng.uniform(0.25, 0.75) * w, h - reach + 0.18 * s
    palm = (0.16 * s * rng.uniform(0.9, 1.2), 0.2 * s * rng.uniform(0.9, 1.2))
    cv2.ellipse(m, (int(px), int(py)), (int(palm[0]), int(palm[1])), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    cv2.rectangle(m, (int(px - 0.7 * palm[0]), int(py)), (int(px + 0.7 * palm[0]), h + 10), 1.0, -1)
    for k in range(int(rng.integers(3, 5))):
        a = math.radians(-90 + (k - 1.5) * rng.uniform(12.0, 20.0) + rng.normal(0, 4))
        length = rng.uniform(0.16, 0.26) * s
        base = (px + math.cos(a) * palm[0] * 0.7, py + math.sin(a) * palm[1] * 0.8)
        tip = (base[0] + math.cos(a) * length, base[1] + math.sin(a) * length)
        cv2.line(m, (int(base[0]), int(base[1])), (int(tip[0]), int(tip[1])), 1.0,
                 max(2, int(0.055 * s * rng.uniform(0.8, 1.2))), cv2.LINE_AA)
    thumb = math.radians(rng.choice([-20.0, -160.0]) + rng.normal(0, 8))
    cv2.line(m, (int(px), int(py + 0.3 * palm[1])),
             (int(px + math.cos(thumb) * 0.3 * s), int(py + 0.3 * palm[1] + math.sin(thumb) * 0.3 * s)),
             1.0, max(2, int(0.06 * s)), cv2.LINE_AA)
    if side == 1:
        m = cv2.resize(cv2.rotate(m, cv2.ROTATE_90_COUNTERCLOCKWISE), (w, h))
    elif side == 2:
        m = cv2.rotate(m, cv2.ROTATE_180)
    elif side == 3:
        m = cv2.resize(cv2.rotate(m, cv2.ROTATE_90_CLOCKWISE), (w, h))
    return m


def cast_shadow(rng: np.random.Generator, kind: str, w: int, h: int,
                aim: tuple[float, float] | None = None) -> np.ndarray:
    """Per-pixel, per-channel gain (float32 [h, w, 3]) of the shadow a ``hand`` or a
    ``phone`` casts over part of the frame: 35-60% darker, a penumbra of 0.3-3% of the
    frame, a little bluer (shade is lit by the sky, not the lamp). ``aim`` (frame px):
    a point the shadow covers (the hand or phone is held over it)."""
    soft = rng.uniform(0.003, 0.03) * max(w, h)
    # drawn and blurred at the resolution of its penumbra (a few px there), then enlarged
    k = max(1.0, soft / 2.5)
    sw, sh = max(8, int(round(w / k))), max(8, int(round(h / k)))
    cover = _phone(rng, sw, sh) if kind == "phone" else _hand(rng, sw, sh)
    inside = np.argwhere(cover >= 0.99)
    if aim is not None and len(inside):
        py, px = inside[int(rng.integers(len(inside)))]
        m = np.float32([[1, 0, aim[0] / k - px], [0, 1, aim[1] / k - py]])
        # a hand's arm still reaches the frame's edge; a phone's shadow may float free
        border = cv2.BORDER_REPLICATE if kind == "hand" else cv2.BORDER_CONSTANT
        cover = cv2.warpAffine(cover, m, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=border)
    cover = cv2.GaussianBlur(cover, (0, 0), max(0.5, soft / k))
    cover = cv2.resize(cover, (w, h), interpolation=cv2.INTER_LINEAR)
    depth = rng.uniform(0.35, 0.6)
    tint = np.array([0.85, 1.0, 1.1], np.float32)  # B darkens least
    gain = 1.0 - depth * cover[..., None] * np.minimum(tint, 1.0 / depth)
    return gain.astype(np.float32)


def drop_shadow(coverage: np.ndarray, dx: float, dy: float, blur: float, depth: float) -> np.ndarray:
    """Gain of a sheet's shadow on the desk: the sheet's coverage moved by (dx, dy),
    blurred, ``depth`` dark at most (apply it to the desk only)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(coverage, m, (coverage.shape[1], coverage.shape[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return 1.0 - depth * cv2.GaussianBlur(moved, (0, 0), max(0.5, blur))


_WORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


def printed_text(rng: np.random.Generator, size: tuple[int, int], region: tuple[float, float, float, float],
                 cap_px: float) -> np.ndarray:
    """Alpha (float32) of a printed page of words (letters only, no numerals) filling
    ``region`` of a ``size`` sheet, capitals ``cap_px`` tall: paragraphs, a heading,
    justified-looking lines, as a book or a handout."""
    sw, sh = size
    x0, y0, x1, y1 = region
    canvas = np.zeros((sh, sw), np.uint8)
    font = int(rng.choice(_FONTS))
    scale = cap_px / 22.0  # Hershey capitals are about 22 px at scale 1
    thick = max(1, int(round(cap_px / 9.0)))
    lead = cap_px * rng.uniform(1.5, 2.1)
    y = y0 + cap_px * 2.5
    heading = True
    while y < y1 - cap_px:
        s = scale * (1.7 if heading else 1.0)
        x = x0
        words = []
        while True:
            word = "".join(rng.choice(list(_WORD_LETTERS), size=int(rng.integers(2, 10))))
            if heading and rng.random() < 0.5:
                word = word.capitalize()
            (tw, _), _ = cv2.getTextSize(word + " ", font, s, thick)
            if x + tw > x1:
                break
            words.append((word, x))
            x += tw
        for word, wx in words:
            cv2.putText(canvas, word, (int(wx), int(y)), font, s, 255, thick, cv2.LINE_AA)
        y += lead * (1.8 if heading else 1.0)
        heading = False
        if rng.random() < 0.08:  # a paragraph ends
            y += lead
    return canvas.astype(np.float32) / 255.0


def sensor_noise(rng: np.random.Generator) -> tuple[float, float]:
    """A frame of nothing but sensor noise (a covered lens, a dark room at high gain): its
    flat level and the sensor's noise sigma there (0-255 scale), which the camera adds
    after the lens (so the noise is sharp, unlike the scene)."""
    return float(rng.uniform(20.0, 170.0)), float(rng.uniform(12.0, 35.0))
