"""Camera-like scenes of handwritten MNIST digits on paper, with exact ground truth.

A scene is what a webcam sees when it looks at a sheet of paper with digits written on
it: the sheet (white, cream, yellow or gray; plain, ruled or grid) lies on a desk, maybe
tilted in perspective, lit unevenly, seen through a slightly soft lens by a noisy sensor
and JPEG-compressed. Every digit is an MNIST *test* image, so the label is known, and
every digit's truth box is computed from that digit's own ink mask after all geometric
transforms, so it is tight and exact.

How a frame is made (each step is one or two vectorized OpenCV/numpy operations):

1. Resolve the :class:`SceneConfig` (conditions left as ``None`` are drawn from the seed).
2. Choose where the sheet lies in the frame (a quadrilateral) and the homography from the
   flat sheet to it. The flat sheet is rendered at about frame scale, larger than what
   the camera sees when there is no desk, so the warp neither magnifies nor aliases.
3. Lay out digits in rows like writing (reading order), some grouped into numbers with
   small gaps, numbers separated by large gaps. Each digit is scaled so its *ink* height
   is the chosen pixel height, slanted a little, and its stroke made thinner or thicker
   by eroding/dilating at render scale (a fine pen or a marker).
4. Paper colour, low-frequency paper unevenness, ruled/grid lines (under the ink), then
   ink: paper blended toward the ink colour by the MNIST intensity (soft edges).
5. Warp the sheet onto the desk; multiply by an illumination map (vignette, gradient,
   soft shadow, white balance); blur (lens softness always, plus defocus or motion);
   add sensor noise; JPEG round trip.

Truth boxes use the same homography: each digit's alpha patch is warped on its own and
the box is the bounding box of pixels above ``TRUTH_THRESHOLD`` of its peak. Digits
that would fall (even partly) outside the frame are not drawn at all in still scenes;
in videos the sheet is fixed, so a digit that leaves the view simply leaves the truth.

Real-world conditions (what real photos show and these scenes first lacked; each a
:class:`SceneConfig` field, off unless asked, so every earlier seed renders as before):
digits redrawn as pen strokes along their skeletons (``stroke``: a ballpoint 1-2 px
wide at 20-30 px) with pen skips (``pen_skips``: a digit's strokes cut apart, its truth
box still around all its pieces), faint pencil (``faint``), small 0s and 1s, dense
rows, European 1s and crossed 7s and 0s (``continental``; ``benchmarks.handwriting``),
the sheet's edge and its shadow on the desk (``sheet_edge``), photographic wood,
leather, fabric and carpet desks (``desk_texture``), a hand's or a phone's shadow
(``cast_shadow``), one digit anywhere from a small mark on a 2016x1512 page to 90% of
the frame (``solo``, with ``paper_tooth`` seen up close), and frames with no
handwritten digits (``clutter``: a printed page, dense non-digit marks, sensor noise;
``benchmarks.surfaces``). ``benchmarks.accuracy.CONDITIONS`` renders each as a group.

Everything random comes from ``np.random.default_rng(seed)``: the same seed gives the
same frame and truths, bit for bit, and nothing touches a global RNG.

Command line: ``python -m benchmarks.scenes --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks import surfaces
from benchmarks.handwriting import Pen, pen_digit
from benchmarks.surfaces import DESK_KINDS

log = logging.getLogger(__name__)

PAPERS = ("white", "cream", "yellow", "gray")
LINES = ("plain", "ruled", "grid")
INKS = ("black", "blue", "red", "pencil")
BLURS = ("none", "defocus", "motion")
MOTIONS = ("slow", "steady")
DISTRACTOR_KINDS = ("letters", "scribbles", "dots", "dashes")
#: Desk surfaces: the plain/wood texture of the first scenes, and photographic ones.
DESK_TEXTURES = ("classic",) + DESK_KINDS
CAST_SHADOWS = ("none", "hand", "phone")
#: Frames with no handwritten digits: a printed page, a sheet dense with non-digit
#: marks, nothing but sensor noise.
CLUTTERS = ("none", "text", "marks", "noise")

#: A pixel belongs to a digit's truth box when its warped ink alpha is at least this
#: fraction of that digit's peak: it ignores the faint anti-aliased fringe, so boxes are
#: tight around the visible stroke.
TRUTH_THRESHOLD = 0.35

# Colours are BGR on a 0-255 scale, as a webcam with auto white balance renders them
# (paper is not 255 and black ink is not 0).
_PAPER_BGR = {
    "white": (236.0, 238.0, 240.0),
    "cream": (200.0, 228.0, 244.0),
    "yellow": (140.0, 228.0, 248.0),
    "gray": (192.0, 195.0, 198.0),
}
_INK_BGR = {
    "black": (44.0, 40.0, 38.0),
    "blue": (140.0, 62.0, 32.0),
    "red": (40.0, 38.0, 178.0),
    "pencil": (84.0, 81.0, 79.0),
}
_DESK_WOOD_BGR = ((58.0, 98.0, 148.0), (40.0, 68.0, 108.0), (88.0, 128.0, 168.0), (30.0, 48.0, 78.0))
_DESK_PLAIN_BGR = ((72.0, 76.0, 82.0), (100.0, 100.0, 96.0), (52.0, 56.0, 66.0), (128.0, 124.0, 118.0))
# Letters whose script shapes are not easily mistaken for digits (no o, l, s, z, b, g, q).
_LETTERS = "acehkmnruvwxyAEFHKMNRW"

# MNIST strokes are about 12% of the ink height; used to keep eroded pens visible.
_STROKE_FRAC = 0.12


# --------------------------------------------------------------------------- config


@dataclass
class SceneConfig:
    """Every condition of a scene. ``None`` means "drawn at random from the seed".

    Explicit "off" values: ``desk=False``, ``tilt=0``, ``shadow=0``, ``blur="none"``,
    ``lens_blur=0``, ``noise=0``, ``jpeg=0`` (no compression), ``pen_px=0``.
    :meth:`resolve` returns a copy with every ``None`` filled in; ``render_scene``
    returns that resolved copy so a frame's conditions are always known.

    The fields after ``distractor_prob`` are the real-world conditions (what real photos
    show and the first scenes lacked). They are off by default and drawn only when set
    to ``None``, so a config that leaves them alone renders as it always has.
    """

    width: int = 640
    height: int = 480
    n_digits: int = 30  # target; fewer when the visible sheet is full
    digit_px: tuple[int, int] = (25, 90)  # ink height range in frame pixels (~20..160 fine)
    paper: str | None = None  # one of PAPERS
    lines: str | None = None  # one of LINES
    ink: str | None = None  # one of INKS
    pen_px: int | None = None  # stroke radius change: <0 erodes (fine pen), >0 dilates (marker)
    desk: bool | None = None  # desk texture visible around the sheet
    tilt: float | None = None  # 0 = flat axis-aligned sheet; 1 = strong perspective + ~5 deg
    shadow: float | None = None  # 0..1: light gradient strength and a soft shadow blob
    blur: str | None = None  # one of BLURS, on top of lens_blur
    blur_px: float | None = None  # defocus radius / motion length scale (px)
    lens_blur: float | None = None  # Gaussian sigma always applied (webcams are soft)
    noise: float | None = None  # sensor noise sigma (0-255 scale)
    jpeg: int | None = None  # JPEG quality 1..100, 0 = no compression
    brightness: float | None = None  # overall exposure gain (dim room < 1)
    group_prob: float = 0.5  # chance a token is a 2-5 digit number rather than one digit
    touching_prob: float = 0.0  # chance two neighbours in a number touch (overlap 1-2 px)
    distractors: tuple[str, ...] = ()  # non-digit marks to add (DISTRACTOR_KINDS)
    distractor_prob: float = 0.3  # chance a token is a distractor when distractors are on
    stroke: float | None = 0.0  # pen width / ink height, digits redrawn along their strokes (0: MNIST's own)
    pen_skips: float | None = 0.0  # chance a digit's strokes are cut apart (a skipping or lifted pen)
    faint: float | None = 0.0  # ink opacity of faint pencil or a dry pen (0: the pen's own, ~0.7-1)
    small_01: bool = False  # 0s and 1s written smaller than their row (and more of them)
    dense: bool = False  # long numbers, narrow gaps between digits, rows close together
    continental: bool = False  # European 1s (flag, foot), crossed 7s and crossed 0s (and more of them)
    sheet_edge: bool = False  # the sheet fills the frame but for one or two edges, its shadow on the desk
    desk_texture: str | None = "classic"  # one of DESK_TEXTURES; None: a photographic one
    cast_shadow: str | None = "none"  # one of CAST_SHADOWS over part of the frame; None: hand or phone
    solo: float | None = 0.0  # one digit, its ink this fraction of the frame height (0: rows of digits)
    paper_tooth: float | None = 0.0  # percent of paper-fibre mottling seen up close
    clutter: str = "none"  # one of CLUTTERS: a frame with no handwritten digits at all

    @classmethod
    def clean(cls, **overrides: Any) -> SceneConfig:
        """A fully fixed, benign config: flat white plain paper, black ink, no desk,
        even light, no extra blur, no noise, no JPEG. Overrides replace any field."""
        base = cls(
            paper="white", lines="plain", ink="black", pen_px=0, desk=False, tilt=0.0,
            shadow=0.0, blur="none", blur_px=0.0, lens_blur=0.0, noise=0.0, jpeg=0,
            brightness=1.0,
        )
        return replace(base, **overrides)

    def resolve(self, rng: np.random.Generator) -> SceneConfig:
        """Copy with every ``None`` condition drawn from ``rng`` (in a fixed order)."""
        # Draw every value whether needed or not, so fixing one condition does not
        # change the random draws of the others (or the layout that follows).
        draws = {
            "paper": str(rng.choice(PAPERS, p=[0.45, 0.2, 0.15, 0.2])),
            "lines": str(rng.choice(LINES, p=[0.4, 0.35, 0.25])),
            "ink": str(rng.choice(INKS, p=[0.4, 0.3, 0.1, 0.2])),
            "pen_px": int(rng.choice([-4, -3, -2, -1, 0, 0, 1, 2, 3])),
            "pencil_pen_px": int(rng.choice([-4, -3, -2, -1, 0])),  # pencils are never markers
            "desk": bool(rng.random() < 0.5),
            "tilt": 0.0 if rng.random() < 0.25 else round(float(rng.uniform(0.2, 1.0)), 3),
            "shadow": 0.0 if rng.random() < 0.3 else round(float(rng.uniform(0.2, 1.0)), 3),
            "blur": str(rng.choice(BLURS, p=[0.5, 0.3, 0.2])),
            "blur_px": round(float(rng.uniform(1.0, 2.6)), 3),
            "lens_blur": round(float(rng.uniform(0.4, 0.9)), 3),
            "noise": round(float(rng.uniform(1.0, 6.0)), 3),
            "jpeg": 0 if rng.random() < 0.4 else int(rng.integers(55, 96)),
            "brightness": round(float(rng.uniform(0.75, 1.08)), 3),
        }
        pencil_pen = draws.pop("pencil_pen_px")
        ink = self.ink if self.ink is not None else draws["ink"]
        if ink == "pencil":
            draws["pen_px"] = pencil_pen
        filled = {k: v for k, v in draws.items() if getattr(self, k) is None}
        filled.update(self._resolve_conditions(rng))
        return replace(self, **filled)

    def _resolve_conditions(self, rng: np.random.Generator) -> dict[str, Any]:
        """The real-world conditions set to ``None``, drawn after (and only if asked,
        so never changing) everything the first scenes draw."""
        ranges = {
            # a ballpoint at 20-30 px is 1-2 px wide; a close-up may be any pen
            "stroke": lambda: rng.uniform(0.015, 0.14) if (self.solo is None or self.solo) else rng.uniform(0.04, 0.08),
            "pen_skips": lambda: rng.uniform(0.5, 1.0),
            "faint": lambda: rng.uniform(0.22, 0.42),  # 30-60 grey levels on white paper
            "desk_texture": lambda: str(rng.choice(DESK_KINDS)),
            "cast_shadow": lambda: str(rng.choice(CAST_SHADOWS[1:])),
            "solo": lambda: rng.uniform(0.3, 0.9),
            "paper_tooth": lambda: rng.uniform(1.5, 5.0),
        }
        out: dict[str, Any] = {}
        for name, draw in ranges.items():
            if getattr(self, name) is None:
                value = draw()
                out[name] = round(float(value), 3) if isinstance(value, float) else value
        return out

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message for an impossible config."""
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"frame size {self.width}x{self.height} is out of range 16..8192")
        if self.n_digits < 0:
            raise ValueError(f"n_digits must be >= 0, not {self.n_digits}")
        lo, hi = self.digit_px
        if not (6 <= lo <= hi):
            raise ValueError(f"digit_px must be (min, max) with 6 <= min <= max, not {self.digit_px}")
        if hi > 0.8 * self.height:
            raise ValueError(f"digit_px max {hi} does not fit a {self.height}-px-high frame")
        for name, allowed in (("paper", PAPERS), ("lines", LINES), ("ink", INKS), ("blur", BLURS)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        for kind in self.distractors:
            if kind not in DISTRACTOR_KINDS:
                raise ValueError(f"distractor kind must be one of {', '.join(DISTRACTOR_KINDS)}, not {kind!r}")
        for name in ("group_prob", "touching_prob", "distractor_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {getattr(self, name)}")
        if self.tilt is not None and not 0.0 <= self.tilt <= 2.0:
            raise ValueError(f"tilt must be in [0, 2], not {self.tilt}")
        if self.shadow is not None and not 0.0 <= self.shadow <= 1.0:
            raise ValueError(f"shadow must be in [0, 1], not {self.shadow}")
        if self.jpeg is not None and not 0 <= self.jpeg <= 100:
            raise ValueError(f"jpeg must be a quality 1..100 or 0 for none, not {self.jpeg}")
        for name in ("noise", "lens_blur", "blur_px"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, not {value}")
        if self.brightness is not None and not 0.05 <= self.brightness <= 3.0:
            raise ValueError(f"brightness must be in [0.05, 3], not {self.brightness}")
        if self.pen_px is not None and abs(self.pen_px) > 20:
            raise ValueError(f"pen_px must be in [-20, 20], not {self.pen_px}")
        self._validate_conditions()

    def _validate_conditions(self) -> None:
        for name, lo, hi in (("stroke", 0.0, 0.3), ("pen_skips", 0.0, 1.0), ("faint", 0.0, 1.0),
                             ("solo", 0.0, 0.95), ("paper_tooth", 0.0, 30.0)):
            value = getattr(self, name)
            if value is not None and not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], not {value}")
        for name, allowed in (("desk_texture", DESK_TEXTURES), ("cast_shadow", CAST_SHADOWS),
                              ("clutter", CLUTTERS)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown SceneConfig fields: {', '.join(sorted(unknown))}")
        data = dict(data)
        for key in ("digit_px", "distractors"):
            if key in data and data[key] is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def random_config(rng: np.random.Generator, **overrides: Any) -> SceneConfig:
    """A fully resolved random config; ``overrides`` fix chosen fields first."""
    return SceneConfig(**overrides).resolve(rng)


@dataclass
class Truth:
    """One digit as the camera sees it."""

    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels, tight around the ink
    label: int
    mnist_index: int  # index into the MNIST *test* split
    number_id: int  # which multi-digit number (reading order); lone digits get their own

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "label": self.label,
                "mnist_index": self.mnist_index, "number_id": self.number_id}


# --------------------------------------------------------------------------- digits source


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor; .numpy() shares memory, no copy
        return x.detach().cpu().numpy()
    return np.asarray(x)


@lru_cache(maxsize=2)
def _default_digits(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    # Imported here so that metrics/tests that never render do not need torch.
    from training.data import load_mnist

    images, labels = load_mnist("test", data_dir)
    return _as_numpy(images), _as_numpy(labels)


def _digits_arrays(digits: tuple[Any, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N,28,28], labels [N])`` as numpy; default: MNIST test from
    ``$MNIST_DIR`` (or ``training.data``'s default folder)."""
    if digits is None:
        return _default_digits(os.environ.get("MNIST_DIR"))
    images, labels = (_as_numpy(d) for d in digits)
    if images.ndim != 3 or images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise ValueError("digits must be (images [N,H,W], labels [N]) with N > 0")
    if images.dtype != np.uint8:
        images = np.clip(images, 0, 255).astype(np.uint8)
    return images, labels


# --------------------------------------------------------------------------- glyphs


@dataclass
class _Glyph:
    """One mark on the sheet: an alpha patch and where it is pasted (sheet pixels)."""

    alpha: np.ndarray  # float32 [h, w], 0..1, cropped to its visible ink
    strong: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of alpha >= threshold
    label: int = -1  # -1 for distractors
    mnist_index: int = -1
    number_id: int = -1
    x: int = 0
    y: int = 0

    @property
    def h(self) -> int:
        return self.alpha.shape[0]

    @property
    def w(self) -> int:
        return self.alpha.shape[1]


def _crop_glyph(alpha: np.ndarray) -> np.ndarray | None:
    """Crop to pixels with visible ink (> 0.05): spacing is then measured ink to ink."""
    ys, xs = np.nonzero(alpha > 0.05)
    if ys.size == 0:
        return None
    return np.ascontiguousarray(alpha[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])


def _strong_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha >= TRUTH_THRESHOLD * float(alpha.max()))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _make_glyph(alpha: np.ndarray | None, **kw: Any) -> _Glyph | None:
    if alpha is None:
        return None
    alpha = _crop_glyph(alpha)
    if alpha is None or alpha.max() < 0.3:
        return None
    return _Glyph(alpha=alpha, strong=_strong_box(alpha), **kw)


def _digit_alpha(img28: np.ndarray, height: float, angle_deg: float, shear: float, pen: int) -> np.ndarray | None:
    """An MNIST digit as a float alpha patch whose ink is ``height`` px tall.

    The scale comes from the ink's bounding box (MNIST ink is ~20 px of the 28-px box,
    and varies per digit), so every digit gets the requested ink height. Upscaled MNIST
    edges are ramps several pixels wide; a contrast stretch around 0.5 (which keeps the
    stroke width) brings them back to the ~1.5 px edge a pen stroke has in a photo.
    """
    if img28.max() == 0:
        return None
    ys, xs = np.nonzero(img28)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    strong_rows = np.nonzero((img28 >= TRUTH_THRESHOLD * float(img28.max())).any(axis=1))[0]
    ink_h = float(strong_rows.max() - strong_rows.min() + 1)

    # Cap the pen change so a fine pen never erases a small digit and a marker never
    # fills it in: erosion keeps >= ~2.5 px of stroke; dilation adds <= ~8% of the height.
    if pen < 0:
        pen = -min(-pen, max(0, int((_STROKE_FRAC * height - 2.5) / 2.0)))
    elif pen > 0:
        pen = min(pen, max(1, int(0.08 * height)))
    s = max(height - 2 * max(pen, 0), 4.0) / ink_h  # dilation grows the ink by 2*pen

    a, c = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    lin = np.array([[a, -c], [c, a]]) @ np.array([[1.0, -shear], [0.0, 1.0]]) * s
    corners = np.array([[x0 - 0.5, y0 - 0.5], [x1 - 0.5, y0 - 0.5], [x1 - 0.5, y1 - 0.5], [x0 - 0.5, y1 - 0.5]])
    centre_src = corners.mean(axis=0)
    out = (corners - centre_src) @ lin.T
    pad = 3 + max(pen, 0) + int(math.ceil(s))
    ow = int(math.ceil(out[:, 0].max() - out[:, 0].min())) + 2 * pad
    oh = int(math.ceil(out[:, 1].max() - out[:, 1].min())) + 2 * pad
    centre_dst = np.array([(ow - 1) / 2.0, (oh - 1) / 2.0])
    m = np.hstack([lin, (centre_dst - lin @ centre_src)[:, None]]).astype(np.float64)
    src = img28.astype(np.float32) * (1.0 / 255.0)
    alpha = cv2.warpAffine(src, m, (ow, oh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    k = max(1.0, s / 1.5)
    if k > 1.0:
        alpha = (alpha - 0.5) * k + 0.5
    np.clip(alpha, 0.0, 1.0, out=alpha)
    if pen > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pen + 1, 2 * pen + 1))
        alpha = cv2.dilate(alpha, kernel)
    elif pen < 0:
        # Some MNIST writers used thin strokes already: erode less for them, so that at
        # least ~45% of the stroke area survives and the digit stays legible.
        area = float(np.count_nonzero(alpha > 0.5))
        for r in range(-pen, 0, -1):
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            eroded = cv2.erode(alpha, kernel)
            if np.count_nonzero(eroded > 0.5) >= 0.45 * area:
                alpha = eroded
                break
    return alpha


@dataclass(frozen=True)
class _Hand:
    """How this writer writes beyond MNIST (``plain``: as MNIST, the first scenes' way)."""

    pen: Pen
    skips: float  # chance a digit is cut into pieces
    small_01: bool  # 0s and 1s smaller than the row
    favoured: tuple[int, ...]  # labels written more often than their share (the condition's digits)
    dense: bool

    @classmethod
    def of(cls, cfg: SceneConfig) -> _Hand:
        favoured = tuple(sorted(({0, 1} if cfg.small_01 else set()) | ({0, 1, 7} if cfg.continental else set())))
        return cls(Pen(width=float(cfg.stroke or 0.0), grow=int(cfg.pen_px or 0), continental=cfg.continental),
                   float(cfg.pen_skips or 0.0), cfg.small_01, favoured, cfg.dense)

    @property
    def redrawn(self) -> bool:
        """Whether digits are redrawn along their strokes (else MNIST's pixels, scaled)."""
        return bool(self.pen.width or self.skips or self.pen.continental)


def _pick_digit(rng: np.random.Generator, hand: _Hand, labels: np.ndarray, pool: np.ndarray | None) -> int:
    """An MNIST index (the first scenes' one draw; half the time one of the favoured labels)."""
    idx = int(rng.integers(labels.shape[0]))
    if pool is not None and len(pool) and rng.random() < 0.5:
        idx = int(pool[rng.integers(len(pool))])
    return idx


def _write_digit(rng: np.random.Generator, hand: _Hand, img28: np.ndarray, label: int, height: float,
                 angle: float, shear: float, pen: int) -> np.ndarray | None:
    """A digit's alpha as this hand writes it: MNIST's pixels, or redrawn with its pen."""
    if not hand.redrawn:
        return _digit_alpha(img28, height, angle, shear, pen)
    skips = hand.skips > 0 and rng.random() < hand.skips
    return pen_digit(img28, label, height, angle, shear, replace(hand.pen, skips=skips), rng)


def _chaikin(points: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Corner-cutting smoothing so random polylines look like pen scribbles."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], axis=1).reshape(-1, 2), points[-1:]])
    return points


def _distractor_alpha(rng: np.random.Generator, kind: str, h: float, pen: int) -> tuple[np.ndarray | None, float]:
    """A non-digit mark about ``h`` px tall; returns (alpha, baseline offset / h)."""
    stroke = max(1, int(round(_STROKE_FRAC * h * 0.8 + pen)))
    if kind == "letters":
        n = int(rng.integers(1, 4))
        text = "".join(rng.choice(list(_LETTERS), size=n))
        face = int(rng.choice([cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX]))
        if rng.random() < 0.5:
            face |= cv2.FONT_ITALIC
        thick = max(1, int(round(stroke * rng.uniform(0.6, 1.3))))
        (tw, th), base = cv2.getTextSize(text, face, 1.0, thick)
        scale = max(0.2, 0.75 * h / max(th, 1))
        (tw, th), base = cv2.getTextSize(text, face, scale, thick)
        pad = thick + 4
        canvas = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
        cv2.putText(canvas, text, (pad, pad + th), face, scale, 255, thick, cv2.LINE_AA)
        return canvas.astype(np.float32) / 255.0, 0.0
    if kind == "scribbles":
        w = h * rng.uniform(0.8, 2.2)
        n = int(rng.integers(5, 12))
        pts = np.cumsum(rng.normal(0.0, 1.0, size=(n, 2)), axis=0)
        pts -= pts.min(axis=0)
        pts /= np.maximum(pts.max(axis=0), 1e-6)
        pts = _chaikin(pts * [w, h * 0.9])
        pad = stroke + 3
        canvas = np.zeros((int(h) + 2 * pad, int(w) + 2 * pad), np.uint8)
        cv2.polylines(canvas, [np.round(pts + pad).astype(np.int32)], False, 255, stroke, cv2.LINE_AA)
        return canvas.astype(np.float32) / 255.0, 0.0
    if kind == "dots":
        n = int(rng.integers(1, 4))
        radius = max(1, int(round(h * rng.uniform(0.04, 0.08))))
        step = radius * 2 + max(3, int(h * 0.25))
        canvas = np.zeros((2 * radius + 6, step * n + 6), np.uint8)
        for i in range(n):
            cv2.circle(canvas, (3 + radius + i * step, 3 + radius), radius, 255, -1, cv2.LINE_AA)
        return canvas.astype(np.float32) / 255.0, 0.0
    if kind == "dashes":
        length = h * rng.uniform(0.35, 0.9)
        ang = math.radians(rng.normal(0.0, 6.0))
        dx, dy = length * math.cos(ang), length * math.sin(ang)
        pad = stroke + 3
        cw, ch = int(abs(dx)) + 2 * pad, int(abs(dy)) + 2 * pad
        canvas = np.zeros((ch, cw), np.uint8)
        p0 = (pad, pad if dy >= 0 else ch - pad)
        p1 = (int(pad + abs(dx)), int(p0[1] + dy))
        cv2.line(canvas, p0, p1, 255, stroke, cv2.LINE_AA)
        return canvas.astype(np.float32) / 255.0, -0.4  # a dash floats mid-height
    raise ValueError(f"unknown distractor kind {kind!r}")


# --------------------------------------------------------------------------- geometry


def _identity_geometry(cfg: SceneConfig) -> tuple[np.ndarray, tuple[int, int]]:
    return np.eye(3), (cfg.width, cfg.height)


def _sheet_geometry(rng: np.random.Generator, cfg: SceneConfig, pad: float) -> tuple[np.ndarray, tuple[int, int], bool]:
    """Homography flat sheet -> frame, the flat sheet size, and whether it is identity.

    With a desk, the sheet covers the middle of the frame with desk on every side; without,
    it covers the frame (plus ``pad`` of it on each side, for a moving camera) entirely.
    """
    w, h = cfg.width, cfg.height
    tilt = float(cfg.tilt or 0.0)
    if cfg.sheet_edge:
        return _quad_homography(_edge_quad(rng, cfg, pad)) + (False,)
    if not cfg.desk and tilt == 0.0 and pad == 0.0:
        hom, size = _identity_geometry(cfg)
        return hom, size, True
    if cfg.desk:
        ml, mr = rng.uniform(0.05, 0.15, 2) * w
        mt, mb = rng.uniform(0.05, 0.15, 2) * h
        quad = np.array([[ml, mt], [w - mr, mt], [w - mr, h - mb], [ml, h - mb]])
    else:
        e = 0.04 + pad
        quad = np.array([[-e * w, -e * h], [w * (1 + e), -e * h], [w * (1 + e), h * (1 + e)], [-e * w, h * (1 + e)]])
    quad = quad + rng.uniform(-1.0, 1.0, (4, 2)) * tilt * 0.06 * np.array([w, h])
    theta = math.radians(rng.uniform(-1.0, 1.0) * tilt * 5.0)
    centre = quad.mean(axis=0)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    quad = (quad - centre) @ rot.T + centre
    if cfg.desk:
        # Keep the whole sheet in view, so desk shows on every side.
        for _ in range(40):
            if (quad >= 1).all() and (quad[:, 0] <= w - 2).all() and (quad[:, 1] <= h - 2).all():
                break
            quad = (quad - centre) * 0.97 + centre
    else:
        # The sheet must cover the frame (and the camera's travel) everywhere.
        need = np.array([[-pad * w, -pad * h], [w * (1 + pad), -pad * h], [w * (1 + pad), h * (1 + pad)], [-pad * w, h * (1 + pad)]])
        for _ in range(60):
            poly = quad.astype(np.float32).reshape(-1, 1, 2)
            if all(cv2.pointPolygonTest(poly, (float(x), float(y)), False) > 0 for x, y in need):
                break
            quad = (quad - centre) * 1.03 + centre
    hom, size = _quad_homography(quad)
    return hom, size, False


def _quad_homography(quad: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Homography from a flat sheet (its size from the quad's sides) onto ``quad``."""
    sw = int(round((np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2))
    sh = int(round((np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2))
    src = np.array([[0, 0], [sw - 1, 0], [sw - 1, sh - 1], [0, sh - 1]], np.float32)
    hom = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    return hom, (sw, sh)


def _edge_quad(rng: np.random.Generator, cfg: SceneConfig, pad: float) -> np.ndarray:
    """Where a sheet lies that fills the frame but for one or two of its edges, each
    5-22% of the frame in from the frame's side (the desk beyond it), turned 2-6 deg."""
    w, h = cfg.width, cfg.height
    tilt = float(cfg.tilt or 0.0)
    e = 0.06 + pad
    box = [-e * w, -e * h, w * (1 + e), h * (1 + e)]  # left, top, right, bottom
    for side in rng.permutation(4)[: 1 if rng.random() < 0.6 else 2]:
        extent = w if side % 2 == 0 else h
        inset = rng.uniform(0.05, 0.22) * extent
        box[side] = inset if side < 2 else extent - inset
    left, top, right, bottom = box
    quad = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float64)
    quad = quad + rng.uniform(-1.0, 1.0, (4, 2)) * tilt * 0.04 * np.array([w, h])
    theta = math.radians(rng.uniform(-1.0, 1.0) * (2.0 + 4.0 * tilt))
    centre = quad.mean(axis=0)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return (quad - centre) @ rot.T + centre


def _apply_h(hom: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.asarray(pts, np.float64) @ hom[:, :2].T + hom[:, 2]
    return p[:, :2] / p[:, 2:3]


def _layout_region(hom: np.ndarray, sheet: tuple[int, int], cfg: SceneConfig, frame_margin: float = 0.02,
                   sheet_margin: float = 0.04) -> tuple[float, float, float, float]:
    """Axis-aligned rectangle of the flat sheet that the camera sees (x0, y0, x1, y1),
    ``frame_margin`` of the frame and ``sheet_margin`` of the sheet inside their edges."""
    sw, sh = sheet
    w, h = cfg.width, cfg.height
    mx, my = frame_margin * w, frame_margin * h
    frame = np.array([[mx, my], [w - 1 - mx, my], [w - 1 - mx, h - 1 - my], [mx, h - 1 - my]])
    p = _apply_h(np.linalg.inv(hom), frame)
    margin = sheet_margin * min(sw, sh)
    x0 = max(p[0, 0], p[3, 0], margin)
    x1 = min(p[1, 0], p[2, 0], sw - 1 - margin)
    y0 = max(p[0, 1], p[1, 1], margin)
    y1 = min(p[2, 1], p[3, 1], sh - 1 - margin)
    poly = p.astype(np.float32).reshape(-1, 1, 2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    for _ in range(30):  # a rotated view: shrink until the rectangle is inside it
        rect = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        if all(cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0 for x, y in rect):
            break
        x0, x1 = cx + (x0 - cx) * 0.97, cx + (x1 - cx) * 0.97
        y0, y1 = cy + (y0 - cy) * 0.97, cy + (y1 - cy) * 0.97
    return float(x0), float(y0), float(x1), float(y1)


def _local_scale(hom: np.ndarray, x: float, y: float) -> float:
    """Frame pixels per sheet pixel around (x, y): sqrt of the Jacobian's determinant."""
    p = _apply_h(hom, np.array([[x, y], [x + 1.0, y], [x, y + 1.0]]))
    dx, dy = p[1] - p[0], p[2] - p[0]
    return float(math.sqrt(abs(dx[0] * dy[1] - dx[1] * dy[0])))


# --------------------------------------------------------------------------- layout


@dataclass
class _RuledLines:
    offset: float
    pitch: float

    def snap_below(self, y: float) -> float:
        return self.offset + math.ceil((y - self.offset) / self.pitch) * self.pitch


def _touch_offset(left: _Glyph, left_dy: int, right: _Glyph, right_dy: int, overlap: int) -> int | None:
    """x offset of ``right`` relative to ``left`` so their strong ink overlaps by
    ``overlap`` px on at least one shared row (bottoms aligned on the baseline + dy)."""
    la, ra = left.alpha >= 0.5, right.alpha >= 0.5
    # Row r of a glyph sits at baseline-relative y = r - h + dy.
    lrows = np.nonzero(la.any(axis=1))[0]
    rrows = np.nonzero(ra.any(axis=1))[0]
    l_right = {int(r - left.h + left_dy): int(np.nonzero(la[r])[0].max()) for r in lrows}
    best = None
    for r in rrows:
        y = int(r - right.h + right_dy)
        if y in l_right:
            need = l_right[y] + 1 - int(np.nonzero(ra[r])[0].min())
            best = need if best is None else max(best, need)
    if best is None:
        return None
    return max(1, best - overlap)


def _gap_in_number(rng: np.random.Generator, dense: bool, h_row: float) -> int:
    """The gap between two digits of one number (sheet px): well under a digit width;
    a dense hand leaves 3-12% of the row height, never touching."""
    if dense:
        return max(1, int(round(rng.uniform(0.03, 0.12) * h_row)))
    return max(2, int(round(rng.uniform(0.08, 0.3) * h_row)))


def _gap_after_number(rng: np.random.Generator, dense: bool, h_row: float, widest: int) -> float:
    """The gap after a number: wider than a digit (and than its widest), or, densely
    written, half a row height or so."""
    if dense:
        return rng.uniform(0.45, 0.8) * h_row
    return max(rng.uniform(0.9, 1.5) * h_row, widest + 2)


def _layout(rng: np.random.Generator, cfg: SceneConfig, region: tuple[float, float, float, float],
            scale: float, images: np.ndarray, labels: np.ndarray, ruled: _RuledLines | None,
            hand: _Hand) -> list[_Glyph]:
    """Write digits (and distractors) into rows, reading order, non-overlapping."""
    x0, y0, x1, y1 = region
    lo, hi = cfg.digit_px
    pen = int(cfg.pen_px or 0)
    pool = np.flatnonzero(np.isin(labels, hand.favoured)) if hand.favoured else None
    slant = rng.uniform(-0.25, 0.12)  # one writer, one slant (negative leans right)
    glyphs: list[_Glyph] = []
    n_placed = 0
    number_id = 0
    y_top = y0 + rng.uniform(0.0, 0.06) * (y1 - y0)
    if cfg.n_digits == 0 or x1 - x0 < lo / scale or y1 - y0 < lo / scale:
        return glyphs

    def make_token(h_row_f: float, remaining: int) -> list[tuple[_Glyph, int, int]]:
        """A number (or a distractor): glyphs with x offsets and baseline offsets."""
        h_row = h_row_f / scale
        if cfg.distractors and rng.random() < cfg.distractor_prob:
            kind = str(rng.choice(cfg.distractors))
            alpha, rise = _distractor_alpha(rng, kind, h_row * rng.uniform(0.6, 1.0), pen)
            g = _make_glyph(alpha)
            return [(g, 0, int(round(rise * h_row)))] if g else []
        if hand.dense:  # long numbers: phone numbers, codes, rows of marks
            k = int(rng.integers(6, 15))
        else:
            k = int(rng.integers(2, 6)) if rng.random() < cfg.group_prob else 1
        k = min(k, remaining)
        out: list[tuple[_Glyph, int, int]] = []
        right_edge = 0
        for _ in range(k):
            idx = _pick_digit(rng, hand, labels, pool)
            height = float(np.clip(h_row_f * rng.uniform(0.9, 1.1), lo, hi)) / scale
            if hand.small_01 and int(labels[idx]) in (0, 1):
                height *= rng.uniform(0.5, 0.75)
            angle = float(np.clip(rng.normal(0.0, 3.0), -8.0, 8.0))
            shear = slant + float(rng.normal(0.0, 0.05))
            g = _make_glyph(_write_digit(rng, hand, images[idx], int(labels[idx]), height, angle, shear, pen),
                            label=int(labels[idx]), mnist_index=idx, number_id=number_id)
            if g is None:
                continue
            dy = int(round(rng.uniform(-0.05, 0.05) * h_row))
            touching = rng.random() < cfg.touching_prob
            if not out:
                ox = 0
            else:
                prev, prev_ox, prev_dy = out[-1]
                rel = _touch_offset(prev, prev_dy, g, dy, int(rng.integers(1, 3))) if touching else None
                if rel is not None:
                    ox = prev_ox + rel
                else:
                    ox = right_edge + _gap_in_number(rng, hand.dense, h_row)
            out.append((g, ox, dy))
            right_edge = max(right_edge, ox + g.w)
        return out

    empty_tokens = 0  # guards against digit sources with no ink at all
    while n_placed < cfg.n_digits and empty_tokens < 100:
        # Row height: random in the range, but only as big as the space left allows
        # (so a big first pick does not end the sheet early).
        room_f = (y1 - y_top) / 1.45 * scale
        if room_f < lo:
            break
        h_row_f = float(math.exp(rng.uniform(math.log(lo), math.log(min(hi, room_f)) + 1e-9)))
        h_row = h_row_f / scale
        baseline = y_top + 1.3 * h_row
        if ruled is not None:
            baseline = ruled.snap_below(baseline)
            if baseline + 0.1 * h_row > y1:  # snapping overshot: use the line above
                baseline -= ruled.pitch
            baseline = max(baseline, y_top + 1.15 * h_row)
        if baseline + 0.1 * h_row > y1:
            break
        slope = float(rng.normal(0.0, 0.006))  # rows drift a little, like handwriting
        x = x0 + rng.uniform(0.0, 0.1) * (x1 - x0)
        row: list[_Glyph] = []
        while n_placed < cfg.n_digits:
            token = make_token(h_row_f, cfg.n_digits - n_placed)
            if not token:
                empty_tokens += 1
                if empty_tokens >= 100:
                    break
                continue
            if x + max(ox + g.w for g, ox, _ in token) > x1:
                if row:
                    break  # row full; this number is not written (keeps sizes per row)
                token = [t for t in token if x + t[1] + t[0].w <= x1]
                if not token:
                    break
            base_y = baseline + slope * (x - x0)
            for g, ox, dy in token:
                g.x = int(round(x + ox))
                g.y = int(round(base_y)) + dy - g.h
                g.y = max(g.y, int(math.ceil(y_top)))  # never reach into the row above
                row.append(g)
                if g.label >= 0:
                    n_placed += 1
            number_id += 1
            x += max(ox + g.w for g, ox, _ in token)
            x += _gap_after_number(rng, hand.dense, h_row, max(g.w for g, _, _ in token))
        if not row:
            break
        glyphs.extend(row)
        y_top = max(g.y + g.h for g in row) + (rng.uniform(0.1, 0.3) if hand.dense else rng.uniform(0.15, 0.8)) * h_row
    return glyphs


# --------------------------------------------------------------------------- textures


def _lowfreq(rng: np.random.Generator, size: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """Smooth random field in about [-1, 1]: a few random values upsampled (cheap)."""
    small = rng.standard_normal(grid).astype(np.float32)
    return cv2.resize(small, size, interpolation=cv2.INTER_CUBIC)


def _line_profile(n: int, positions: np.ndarray, thick: float) -> np.ndarray:
    """Anti-aliased coverage (0..1) along one axis of lines ``thick`` px wide centred at
    ``positions``: the exact overlap of each pixel [i-0.5, i+0.5] with each line."""
    centres = np.arange(n, dtype=np.float64)[:, None]
    lo, hi = positions[None, :] - thick / 2.0, positions[None, :] + thick / 2.0
    overlap = np.clip(np.minimum(centres + 0.5, hi) - np.maximum(centres - 0.5, lo), 0.0, 1.0)
    return np.minimum(overlap.sum(axis=1), 1.0)


def _blend_lines(img: np.ndarray, profile: np.ndarray, colour: np.ndarray, strength: float, axis: int) -> None:
    """Blend printed lines into ``img`` in place, touching only the rows (axis 0) or
    columns (axis 1) they cover: ruled lines are a few percent of the sheet."""
    idx = np.nonzero(profile > 0)[0]
    if idx.size == 0:
        return
    a = (profile[idx] * strength).astype(np.float32)
    if axis == 0:
        part = img[idx]
        part += (colour - part) * a[:, None, None]
        img[idx] = part
    else:
        part = img[:, idx]
        part += (colour - part) * a[None, :, None]
        img[:, idx] = part


def _paper(rng: np.random.Generator, cfg: SceneConfig, size: tuple[int, int], scale: float) -> tuple[np.ndarray, _RuledLines | None]:
    """Flat paper with low-frequency unevenness and ruled/grid lines (BGR float32)."""
    sw, sh = size
    colour = np.array(_PAPER_BGR[cfg.paper]) + rng.normal(0.0, 3.0, 3)
    # Unevenness (fibres, slight waviness catching light): a few random values per
    # channel-shared grid cell, upsampled straight into the 3-channel image (one pass).
    small = (1.0 + 0.025 * rng.standard_normal((5, 7)))[..., None] * colour
    img = cv2.resize(small.astype(np.float32), (sw, sh), interpolation=cv2.INTER_CUBIC)
    ruled = None
    mean_px = math.sqrt(cfg.digit_px[0] * cfg.digit_px[1]) / scale
    if cfg.lines in ("ruled", "grid"):
        thick = 1.0 if rng.random() < 0.7 else 1.8
        if cfg.lines == "ruled":
            pitch = max(12.0, rng.uniform(0.9, 1.4) * mean_px)
            offset = rng.uniform(0.3, 1.0) * pitch
            ruled = _RuledLines(offset, pitch)
            line_bgr = np.array([228.0, 188.0, 140.0], np.float32)
            _blend_lines(img, _line_profile(sh, np.arange(offset, sh, pitch), thick), line_bgr,
                         rng.uniform(0.35, 0.7), axis=0)
            if rng.random() < 0.5:  # a red margin line
                mx = np.array([rng.uniform(0.04, 0.12) * sw])
                _blend_lines(img, _line_profile(sw, mx, thick), np.array([150.0, 150.0, 232.0], np.float32),
                             0.5, axis=1)
        else:
            pitch = max(8.0, rng.uniform(0.35, 0.7) * mean_px)
            blue = rng.random() < 0.6
            line_bgr = np.array([222.0, 195.0, 160.0] if blue else [150.0, 150.0, 150.0], np.float32)
            strength = rng.uniform(0.25, 0.5)
            # Crossings get both blends, so they print a little darker, as on real paper.
            _blend_lines(img, _line_profile(sh, np.arange(rng.uniform(0, pitch), sh, pitch), thick),
                         line_bgr, strength, axis=0)
            _blend_lines(img, _line_profile(sw, np.arange(rng.uniform(0, pitch), sw, pitch), thick),
                         line_bgr, strength, axis=1)
    if cfg.paper_tooth:
        img *= surfaces.paper_tooth(rng, sw, sh, float(cfg.paper_tooth))[..., None]
    return img, ruled


def _desk(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A wood-like or plain textured desk (BGR float32), darker than paper.

    Built at half resolution and upsampled: the texture is soft at webcam distance
    and the desk is out of the digits' way, so this halves its cost for free.
    """
    hw, hh = max(2, w // 2), max(2, h // 2)
    if rng.random() < 0.6:
        colour = np.array(_DESK_WOOD_BGR[int(rng.integers(len(_DESK_WOOD_BGR)))]) * rng.uniform(0.85, 1.15)
        vertical = rng.random() < 0.5
        # Grain: noise that changes fast across the grain and slowly along it.
        grid = (6, max(2, hw // 2)) if vertical else (max(2, hh // 2), 6)
        grain = _lowfreq(rng, (hw, hh), grid)
        warp = _lowfreq(rng, (hw, hh), (3, 4))
        across = np.arange(hw if vertical else hh, dtype=np.float32)
        across = across[None, :] if vertical else across[:, None]
        rings = np.sin(across / rng.uniform(9.0, 22.0) * 2 * np.pi + 2.5 * warp)
        tex = 1.0 + 0.10 * grain + 0.07 * rings
    else:
        colour = np.array(_DESK_PLAIN_BGR[int(rng.integers(len(_DESK_PLAIN_BGR)))]) * rng.uniform(0.85, 1.15)
        fine = cv2.GaussianBlur(rng.standard_normal((hh, hw)).astype(np.float32), (0, 0), 0.5)
        tex = 1.0 + 0.12 * fine + 0.06 * _lowfreq(rng, (hw, hh), (4, 5))
    small = tex[..., None].astype(np.float32) * colour.astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _lighting(rng: np.random.Generator, cfg: SceneConfig) -> np.ndarray:
    """Per-pixel, per-channel gain: exposure, vignette, gradient, soft shadow, white balance."""
    w, h = cfg.width, cfg.height
    sw, sh = w // 8 + 2, h // 8 + 2
    yy, xx = np.mgrid[-1.0:1.0:complex(0, sh), -1.0:1.0:complex(0, sw)]
    gain = np.full((sh, sw), float(cfg.brightness), np.float64)
    gain *= 1.0 - rng.uniform(0.04, 0.16) * (xx**2 + yy**2) / 2.0  # lens vignette
    shadow = float(cfg.shadow)
    direction = rng.uniform(0, 2 * np.pi)
    grad = math.cos(direction) * xx + math.sin(direction) * yy
    gain *= 1.0 + (0.03 + 0.22 * shadow) * grad  # light from one side
    if shadow > 0:
        cx, cy = rng.uniform(-1.0, 1.0, 2)
        ax, ay = rng.uniform(0.3, 0.9, 2)
        ang = rng.uniform(0, np.pi)
        u = (math.cos(ang) * (xx - cx) + math.sin(ang) * (yy - cy)) / ax
        v = (-math.sin(ang) * (xx - cx) + math.cos(ang) * (yy - cy)) / ay
        r = np.sqrt(u * u + v * v)
        blob = 1.0 / (1.0 + np.exp((r - 1.0) / 0.18))  # soft-edged shadow (hand, head)
        gain *= 1.0 - shadow * rng.uniform(0.25, 0.45) * blob
    white_balance = 1.0 + rng.normal(0.0, 0.03, 3)
    small = (gain[..., None] * white_balance).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _blur_kernel(rng: np.random.Generator, cfg: SceneConfig) -> np.ndarray | None:
    """Defocus disk or motion line kernel (lens softness is a separate Gaussian)."""
    size = float(cfg.blur_px or 0.0)
    if cfg.blur == "none" or size <= 0:
        return None
    if cfg.blur == "defocus":
        r = size
        n = int(math.ceil(r)) * 2 + 3
        yy, xx = np.mgrid[:n, :n] - (n - 1) / 2.0
        k = np.clip(r + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0).astype(np.float32)
    else:
        length = max(2.0, 3.0 * size)
        n = int(math.ceil(length)) + 3
        k = np.zeros((n * 4, n * 4), np.float32)  # draw at 4x, then downsample: smooth ends
        ang = rng.uniform(0, np.pi)
        c = (n * 4 - 1) / 2.0
        dx, dy = 2.0 * length * math.cos(ang), 2.0 * length * math.sin(ang)
        cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 4, cv2.LINE_AA)
        k = cv2.resize(k, (n, n), interpolation=cv2.INTER_AREA)
    return k / k.sum()


# --------------------------------------------------------------------------- scene + view


@dataclass
class _Scene:
    cfg: SceneConfig
    sheet: np.ndarray  # float32 [sh, sw, 4]: BGR + coverage (1), or [h, w, 3] if identity
    hom: np.ndarray  # flat sheet -> frame at rest
    identity: bool
    glyphs: list[_Glyph]  # digits and distractors drawn on the sheet
    desk: np.ndarray | None
    light: np.ndarray
    kernel: np.ndarray | None
    drop: tuple[float, float, float, float] | None = None  # the sheet's shadow on the desk: dx, dy, blur, depth
    extra_noise: float = 0.0  # sensor noise sigma on top of cfg.noise (a frame of noise)


def _visible(g: _Glyph, hom: np.ndarray, w: int, h: int) -> bool:
    x0, y0, x1, y1 = g.strong
    pts = np.array([[x0, y0], [x1 - 1, y0], [x1 - 1, y1 - 1], [x0, y1 - 1]], np.float64) + [g.x, g.y]
    p = _apply_h(hom, pts)
    return bool((p[:, 0] >= 1).all() and (p[:, 1] >= 1).all() and (p[:, 0] <= w - 2).all() and (p[:, 1] <= h - 2).all())


def _build_scene(rng: np.random.Generator, cfg: SceneConfig, images: np.ndarray, labels: np.ndarray, pad: float = 0.0) -> _Scene:
    if cfg.clutter == "noise":  # no sheet, no desk: nothing but the sensor
        level, sigma = surfaces.sensor_noise(rng)
        img = np.full((cfg.height, cfg.width, 3), level, np.float32)
        return _Scene(cfg, img, np.eye(3), True, [], None, _lighting(rng, cfg), _blur_kernel(rng, cfg),
                      extra_noise=sigma)
    hom, (sw, sh), identity = _sheet_geometry(rng, cfg, pad)
    solo = bool(cfg.solo) and cfg.clutter == "none"
    # one digit may fill the view: it only has to stay clear of the frame's edge
    region = _layout_region(hom, (sw, sh), cfg, *((0.01, 0.01) if solo else (0.02, 0.04)))
    scale = _local_scale(hom, (region[0] + region[2]) / 2, (region[1] + region[3]) / 2)
    paper, ruled = _paper(rng, cfg, (sw, sh), scale)
    printed = None
    if cfg.clutter == "text":
        glyphs = []
        printed = surfaces.printed_text(rng, (sw, sh), region, rng.uniform(0.012, 0.028) * cfg.height / scale)
    elif cfg.clutter == "marks":
        glyphs = _dense_marks(rng, cfg, region, scale)
    elif solo:
        glyphs = _solo_layout(rng, cfg, region, scale, images, labels, _Hand.of(cfg))
    else:
        glyphs = _layout(rng, cfg, region, scale, images, labels, ruled, _Hand.of(cfg))
    # Do not draw marks the camera would cut: a half digit has no honest label.
    glyphs = [g for g in glyphs
              if g.x >= 0 and g.y >= 0 and g.x + g.w <= sw and g.y + g.h <= sh
              and _visible(g, hom, cfg.width, cfg.height)]
    renumber: dict[int, int] = {}
    for g in glyphs:
        if g.label >= 0:
            g.number_id = renumber.setdefault(g.number_id, len(renumber))
    _write_ink(rng, cfg, paper, glyphs, printed)

    if identity:
        sheet = paper
    else:
        sheet = np.empty((sh, sw, 4), np.float32)
        sheet[..., :3] = paper
        sheet[..., 3] = 1.0  # coverage: warped with the sheet, it antialiases the edges
    desk = _any_desk(rng, cfg) if cfg.desk or cfg.sheet_edge else None
    light = _lighting(rng, cfg)
    kernel = _blur_kernel(rng, cfg)
    log.debug("scene: sheet %dx%d, %d glyphs, identity=%s", sw, sh, len(glyphs), identity)
    scene = _Scene(cfg, sheet, hom, identity, glyphs, desk, light, kernel)
    if cfg.cast_shadow not in (None, "none"):
        # held over the page: the shadow falls on some of the writing
        aim = None
        if glyphs:
            g = glyphs[int(rng.integers(len(glyphs)))]
            aim = tuple(_apply_h(hom, np.array([[g.x + g.w / 2.0, g.y + g.h / 2.0]]))[0])
        scene.light = light * surfaces.cast_shadow(rng, cfg.cast_shadow, cfg.width, cfg.height, aim)
    if desk is not None and (cfg.sheet_edge or cfg.desk_texture != "classic"):
        # the sheet lies a little off the desk: its shadow is a dark rim on one side
        d = rng.uniform(0.002, 0.01) * max(cfg.width, cfg.height)
        ang = rng.uniform(0, 2 * np.pi)
        scene.drop = (d * math.cos(ang), d * math.sin(ang), rng.uniform(0.6, 2.0) * d, rng.uniform(0.25, 0.6))
    return scene


def _write_ink(rng: np.random.Generator, cfg: SceneConfig, paper: np.ndarray, glyphs: list[_Glyph],
               printed: np.ndarray | None) -> None:
    """Ink the glyphs (and a printed page) onto the paper, in place."""
    sh, sw = paper.shape[:2]
    ink = np.zeros((sh, sw), np.float32)
    for g in glyphs:
        pressure = rng.uniform(0.85, 1.0)
        roi = ink[g.y: g.y + g.h, g.x: g.x + g.w]
        np.maximum(roi, g.alpha * pressure, out=roi)
    pencil = cfg.ink == "pencil"
    # Graphite is grey and never fully opaque; ink from a pen nearly is.
    opacity = rng.uniform(0.65, 0.85) if pencil else rng.uniform(0.88, 1.0)
    ink_bgr = (np.array(_INK_BGR[cfg.ink]) + rng.normal(0.0, 4.0, 3)).astype(np.float32)
    if cfg.faint:
        opacity = float(cfg.faint)
    # Composite only the bands of rows that hold ink (slices are views: no copies).
    has_ink = np.zeros(sh + 1, bool)
    for g in glyphs:
        has_ink[g.y: g.y + g.h] = True
    if printed is not None:  # toner: black and opaque whatever the pen
        np.maximum(ink, printed, out=ink)
        has_ink[:sh] |= printed.any(axis=1)
        pencil, opacity, ink_bgr = False, 0.95, np.array([34.0, 32.0, 32.0], np.float32)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], has_ink]).astype(np.int8)))
    for r0, r1 in zip(edges[::2], edges[1::2]):
        a = ink[r0:r1] * opacity
        if pencil:  # graphite is grainy: paper tooth shows through the stroke
            grain = cv2.GaussianBlur(rng.random((r1 - r0, sw), dtype=np.float32), (0, 0), 0.7)
            a *= (0.85 + 0.8 * (grain - 0.5)).clip(0.5, 1.0)
        band = paper[r0:r1]
        band += (ink_bgr - band) * a[..., None]


def _any_desk(rng: np.random.Generator, cfg: SceneConfig) -> np.ndarray:
    if cfg.desk_texture in (None, "classic"):
        return _desk(rng, cfg.width, cfg.height)
    return surfaces.desk(rng, cfg.desk_texture, cfg.width, cfg.height)


def _solo_layout(rng: np.random.Generator, cfg: SceneConfig, region: tuple[float, float, float, float],
                 scale: float, images: np.ndarray, labels: np.ndarray, hand: _Hand) -> list[_Glyph]:
    """One digit whose ink is ``cfg.solo`` of the frame height (less if it would not fit),
    anywhere in ``region``: a close-up, or one small digit on a big page."""
    x0, y0, x1, y1 = region
    pool = np.flatnonzero(np.isin(labels, hand.favoured)) if hand.favoured else None
    pen = int(cfg.pen_px or 0)
    for _ in range(10):
        idx = _pick_digit(rng, hand, labels, pool)
        height = float(cfg.solo) * cfg.height / scale
        angle = float(np.clip(rng.normal(0.0, 4.0), -10.0, 10.0))
        shear = rng.uniform(-0.25, 0.12)
        for _ in range(12):
            g = _make_glyph(_write_digit(rng, hand, images[idx], int(labels[idx]), height, angle, shear, pen),
                            label=int(labels[idx]), mnist_index=idx, number_id=0)
            if g is None:
                break
            if g.w < x1 - x0 and g.h < y1 - y0:
                g.x = int(rng.uniform(x0, x1 - g.w))
                g.y = int(rng.uniform(y0, y1 - g.h))
                return [g]
            height *= 0.93
    return []


def _dense_marks(rng: np.random.Generator, cfg: SceneConfig, region: tuple[float, float, float, float],
                 scale: float) -> list[_Glyph]:
    """A sheet covered in handwritten non-digit marks (words, scribbles, dots, dashes),
    row after row with narrow gaps: many components, none of them a digit."""
    x0, y0, x1, y1 = region
    pen = int(cfg.pen_px or 0)
    glyphs: list[_Glyph] = []
    y = y0
    while True:
        h = rng.uniform(0.02, 0.06) * cfg.height / scale
        if y + 1.3 * h > y1:
            return glyphs
        baseline = y + 1.2 * h
        x = x0 + rng.uniform(0.0, 1.0) * h
        while x < x1:
            kind = str(rng.choice(DISTRACTOR_KINDS, p=[0.55, 0.2, 0.1, 0.15]))
            alpha, rise = _distractor_alpha(rng, kind, h * rng.uniform(0.6, 1.0), pen)
            g = _make_glyph(alpha)
            if g is None:
                x += 0.5 * h
                continue
            if x + g.w > x1:
                break
            g.x, g.y = int(x), max(int(y), int(baseline + rise * h) - g.h)
            glyphs.append(g)
            x += g.w + rng.uniform(0.1, 0.5) * h
        y = baseline + rng.uniform(0.1, 0.4) * h


def _truth_box(g: _Glyph, hom: np.ndarray, w: int, h: int) -> tuple[int, int, int, int] | None:
    """Tight box of this glyph's own ink after the homography (None if not all visible)."""
    if not _visible(g, hom, w, h):
        return None
    if np.allclose(hom, np.eye(3)):
        x0, y0, x1, y1 = g.strong
        return g.x + x0, g.y + y0, x1 - x0, y1 - y0
    corners = np.array([[-1, -1], [g.w, -1], [g.w, g.h], [-1, g.h]], np.float64) + [g.x, g.y]
    p = _apply_h(hom, corners)
    bx, by = int(math.floor(p[:, 0].min())) - 1, int(math.floor(p[:, 1].min())) - 1
    bw = int(math.ceil(p[:, 0].max())) + 2 - bx
    bh = int(math.ceil(p[:, 1].max())) + 2 - by
    shift_out = np.array([[1, 0, -bx], [0, 1, -by], [0, 0, 1]], np.float64)
    shift_in = np.array([[1, 0, g.x], [0, 1, g.y], [0, 0, 1]], np.float64)
    local = cv2.warpPerspective(g.alpha, shift_out @ hom @ shift_in, (bw, bh), flags=cv2.INTER_LINEAR)
    peak = float(local.max())
    if peak <= 0:
        return None
    ys, xs = np.nonzero(local >= TRUTH_THRESHOLD * peak)
    x0, y0 = max(0, bx + int(xs.min())), max(0, by + int(ys.min()))
    x1, y1 = min(w, bx + int(xs.max()) + 1), min(h, by + int(ys.max()) + 1)
    return x0, y0, x1 - x0, y1 - y0


def _render_view(scene: _Scene, rng: np.random.Generator, motion: np.ndarray | None = None) -> tuple[np.ndarray, list[Truth]]:
    """Photograph the prepared scene (optionally through a moved camera)."""
    cfg = scene.cfg
    w, h = cfg.width, cfg.height
    hom = scene.hom if motion is None else motion @ scene.hom
    if scene.identity and motion is None:
        img = scene.sheet.copy()
    else:
        warped = cv2.warpPerspective(scene.sheet, hom, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if scene.desk is not None:
            desk = scene.desk
            if motion is not None:
                desk = cv2.warpPerspective(desk, motion, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            if scene.drop is not None:
                desk = desk * surfaces.drop_shadow(warped[..., 3], *scene.drop)[..., None]
            # Border pixels are 0 in all four channels, so the warped colour is already
            # premultiplied by coverage: frame = sheet + desk * (1 - coverage).
            img = warped[..., :3] + desk * (1.0 - warped[..., 3:4])
        else:
            img = np.ascontiguousarray(warped[..., :3])
    img *= scene.light
    if cfg.lens_blur and cfg.lens_blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), float(cfg.lens_blur))
    if scene.kernel is not None:
        img = cv2.filter2D(img, -1, scene.kernel, borderType=cv2.BORDER_REFLECT_101)
    sigma = float(cfg.noise or 0.0)
    if scene.extra_noise:
        sigma = math.hypot(sigma, scene.extra_noise)
    if sigma > 0:
        # Mostly luminance noise plus some coarser colour noise, as webcam sensors give.
        img += (rng.standard_normal((h, w), dtype=np.float32) * sigma)[..., None]
        chroma = rng.standard_normal((h // 2 + 1, w // 2 + 1, 3), dtype=np.float32) * (0.4 * sigma)
        img += cv2.resize(chroma, (w, h), interpolation=cv2.INTER_NEAREST)
    np.clip(img, 0.0, 255.0, out=img)
    frame = (img + 0.5).astype(np.uint8)
    if cfg.jpeg:
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg)])
        if ok:
            frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    truths = []
    for g in scene.glyphs:
        if g.label < 0:
            continue
        box = _truth_box(g, hom, w, h)
        if box is not None and box[2] > 0 and box[3] > 0:
            truths.append(Truth(box=box, label=g.label, mnist_index=g.mnist_index, number_id=g.number_id))
    return frame, truths


# --------------------------------------------------------------------------- public API


def _prepare(seed: int, config: SceneConfig | None, digits: tuple[Any, Any] | None,
             pad: float = 0.0) -> tuple[np.random.Generator, SceneConfig, _Scene]:
    rng = np.random.default_rng(seed)
    cfg = (config or SceneConfig()).resolve(rng)
    cfg.validate()
    images, labels = _digits_arrays(digits)
    return rng, cfg, _build_scene(rng, cfg, images, labels, pad)


def render_scene(seed: int, config: SceneConfig | None = None,
                 digits: tuple[Any, Any] | None = None) -> tuple[np.ndarray, list[Truth], SceneConfig]:
    """Render one webcam frame of a written sheet.

    ``digits`` is ``(images [N,28,28] uint8, labels [N])`` (torch or numpy); by default
    the MNIST test split from ``$MNIST_DIR``. Returns ``(frame BGR uint8 [H,W,3],
    truths in reading order, the resolved config)``. Deterministic in ``seed``.
    """
    rng, cfg, scene = _prepare(seed, config, digits)
    frame, truths = _render_view(scene, rng)
    return frame, truths, cfg


def render_sheet_with_distractors(seed: int, kinds: Sequence[str] = DISTRACTOR_KINDS,
                                  config: SceneConfig | None = None,
                                  digits: tuple[Any, Any] | None = None) -> tuple[np.ndarray, list[Truth], SceneConfig]:
    """Like :func:`render_scene`, with non-digit marks (script letters, scribbles, dots,
    dashes) written among the numbers. The marks are never in the truth list."""
    cfg = replace(config or SceneConfig(), distractors=tuple(kinds))
    return render_scene(seed, cfg, digits)


def _camera_path(rng: np.random.Generator, cfg: SceneConfig, n_frames: int, fps: float, motion: str) -> Iterator[np.ndarray | None]:
    """Per-frame camera motion (a similarity about the frame centre), identity at t=0.

    "slow": smooth drift from two sinusoids per axis (hand-held or a loose mount);
    "steady": fixed camera (only sensor noise changes)."""
    if motion == "steady":
        for _ in range(n_frames):
            yield None
        return
    w, h = cfg.width, cfg.height
    amp = np.array([0.025 * w, 0.025 * h, math.radians(1.2), 0.025])  # dx, dy, angle, zoom
    f1 = rng.uniform(0.05, 0.2, 4)
    f2 = rng.uniform(0.2, 0.5, 4)
    p1, p2 = rng.uniform(0, 2 * np.pi, 4), rng.uniform(0, 2 * np.pi, 4)
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    for i in range(n_frames):
        t = i / fps
        wave = 0.7 * (np.sin(2 * np.pi * f1 * t + p1) - np.sin(p1)) + 0.3 * (np.sin(2 * np.pi * f2 * t + p2) - np.sin(p2))
        dx, dy, ang, zoom = amp * wave
        s = 1.0 + zoom
        rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]]) * s
        m = np.eye(3)
        m[:2, :2] = rot
        m[:2, 2] = c - rot @ c + [dx, dy]
        yield m


def render_frames(seed: int, n_frames: int, config: SceneConfig | None = None, motion: str = "slow",
                  fps: float = 30.0, digits: tuple[Any, Any] | None = None) -> Iterator[tuple[np.ndarray, list[Truth]]]:
    """Yield ``(frame, truths)`` for ``n_frames`` views of one sheet by a webcam that
    moves slowly (``motion="slow"``) or stays fixed (``"steady"``). Digits that leave
    the view leave that frame's truth list."""
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {', '.join(MOTIONS)}, not {motion!r}")
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, not {n_frames}")
    # A moving camera must not see past the sheet's edge when there is no desk.
    rng, cfg, scene = _prepare(seed, config, digits, pad=0.08 if motion == "slow" else 0.0)
    for m in _camera_path(rng, cfg, n_frames, fps, motion):
        yield _render_view(scene, rng, m)


def render_video(path: str | os.PathLike, seed: int, n_frames: int, fps: float = 30.0,
                 config: SceneConfig | None = None, motion: str = "slow",
                 digits: tuple[Any, Any] | None = None) -> list[list[Truth]]:
    """Write an MP4 (``mp4v``) of :func:`render_frames`; returns the per-frame truths."""
    cfg = config or SceneConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (cfg.width, cfg.height))
    if not writer.isOpened():
        raise OSError(f"{path}: cannot open an mp4v video writer")
    truths: list[list[Truth]] = []
    try:
        for frame, frame_truths in render_frames(seed, n_frames, cfg, motion, fps, digits):
            writer.write(frame)
            truths.append(frame_truths)
    finally:
        writer.release()
    log.info("wrote %s: %d frames at %g fps", path, len(truths), fps)
    return truths


def frame_seed(seed: int, index: int) -> int:
    """Independent, reproducible seed for frame ``index`` of a dataset with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def write_dataset(out_dir: str | os.PathLike, n_frames: int, seed: int, config: SceneConfig | None = None,
                  digits: tuple[Any, Any] | None = None) -> Path:
    """Write ``frame_0000.png ...`` and ``truth.json`` into ``out_dir``; returns the JSON path.

    Each frame is an independent scene (seed :func:`frame_seed`); conditions left
    ``None`` in ``config`` are drawn per frame and recorded in the JSON.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n_frames):
        frame, truths, cfg = render_scene(frame_seed(seed, i), config, digits)
        name = f"frame_{i:04d}.png"
        if not cv2.imwrite(str(out / name), frame):
            raise OSError(f"{out / name}: could not write image")
        records.append({"file": name, "width": cfg.width, "height": cfg.height, "seed": frame_seed(seed, i),
                        "config": cfg.to_dict(), "digits": [t.to_dict() for t in truths]})
    truth_path = out / "truth.json"
    tmp = truth_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"seed": seed, "frames": records}))
    tmp.replace(truth_path)  # never leave a half-written truth file
    log.info("wrote %d frames and %s", n_frames, truth_path)
    return truth_path


def load_truth(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a ``truth.json`` written by :func:`write_dataset`: its list of frame records."""
    return json.loads(Path(path).read_text())["frames"]


# --------------------------------------------------------------------------- CLI


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = OneLineParser(
        prog="python -m benchmarks.scenes",
        description="Render synthetic webcam frames (and optionally a video) of handwritten MNIST "
                    "test digits on paper, with exact ground-truth boxes. Conditions not given are "
                    "drawn at random per frame from the seed.",
    )
    p.add_argument("--out", type=Path, help="folder for frame_0000.png ... and truth.json")
    p.add_argument("--frames", type=int, default=20, help="number of still frames to write to --out (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same output (default 0)")
    p.add_argument("--video", type=Path, help="also write an .mp4 of one sheet seen by a moving camera, "
                                              "with per-frame truths in the same name + .json")
    p.add_argument("--seconds", type=float, default=10.0, help="video length in seconds (default 10)")
    p.add_argument("--fps", type=float, default=30.0, help="video frame rate (default 30)")
    p.add_argument("--motion", choices=MOTIONS, default="slow", help="video camera: slow drift or steady (default slow)")
    p.add_argument("--width", type=int, default=640, help="frame width in pixels (default 640)")
    p.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480)")
    p.add_argument("--n-digits", type=int, default=30, help="target number of digits per frame (default 30)")
    p.add_argument("--digit-px", type=int, nargs=2, metavar=("MIN", "MAX"), default=(25, 90),
                   help="range of digit ink heights in pixels (default 25 90)")
    p.add_argument("--paper", choices=PAPERS, help="paper colour (default random)")
    p.add_argument("--lines", choices=LINES, help="paper ruling (default random)")
    p.add_argument("--ink", choices=INKS, help="pen (default random)")
    p.add_argument("--pen-px", type=int, help="stroke radius change in px: <0 thinner, >0 thicker (default random)")
    p.add_argument("--desk", action=argparse.BooleanOptionalAction, default=None,
                   help="show (or not) a textured desk around the sheet (default random)")
    p.add_argument("--tilt", type=float, help="perspective/rotation strength, 0 = flat (default random in 0..1)")
    p.add_argument("--shadow", type=float, help="uneven light and shadow strength 0..1 (default random)")
    p.add_argument("--blur", choices=BLURS, help="extra blur on top of lens softness (default random)")
    p.add_argument("--noise", type=float, help="sensor noise sigma on 0-255 (default random 1..6)")
    p.add_argument("--jpeg", type=int, help="JPEG quality 1..100, 0 = none (default random)")
    p.add_argument("--group-prob", type=float, default=0.5, help="chance of multi-digit numbers (default 0.5)")
    p.add_argument("--touching-prob", type=float, default=0.0, help="chance neighbouring digits touch (default 0)")
    p.add_argument("--distractors", default="", help=f"comma list of non-digit marks to add: {','.join(DISTRACTOR_KINDS)}")
    g = p.add_argument_group("real-world conditions (off unless given)")
    g.add_argument("--stroke", type=float, default=0.0,
                   help="pen width as a fraction of the digit height, digits redrawn along their strokes "
                        "(a ballpoint at 25 px: 0.05)")
    g.add_argument("--pen-skips", type=float, default=0.0, help="chance a digit's strokes are cut apart (0..1)")
    g.add_argument("--faint", type=float, default=0.0, help="ink opacity of faint pencil (e.g. 0.3)")
    g.add_argument("--small-01", action="store_true", help="0s and 1s smaller than their row, and more of them")
    g.add_argument("--dense", action="store_true", help="long numbers, narrow gaps, rows close together")
    g.add_argument("--continental", action="store_true", help="European 1s, crossed 7s and crossed 0s")
    g.add_argument("--sheet-edge", action="store_true", help="the sheet's edge and its shadow inside the frame")
    g.add_argument("--desk-texture", choices=DESK_TEXTURES + ("random",), default="classic",
                   help="desk surface (random: a photographic one)")
    g.add_argument("--cast-shadow", choices=CAST_SHADOWS + ("random",), default="none",
                   help="a hand's or phone's shadow over part of the sheet")
    g.add_argument("--solo", type=float, default=0.0,
                   help="one digit, its ink this fraction of the frame height (a close-up: 0.3-0.9)")
    g.add_argument("--paper-tooth", type=float, default=0.0, help="percent of paper-fibre mottling (close range)")
    g.add_argument("--clutter", choices=CLUTTERS, default="none", help="a frame with no handwritten digits")
    p.add_argument("--data-dir", help="MNIST folder (default $MNIST_DIR)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = p.parse_args(argv)
    if args.out is None and args.video is None:
        p.error("give --out DIR and/or --video OUT.mp4")
    if args.frames < 0:
        p.error(f"--frames must be >= 0, not {args.frames}")
    if args.seconds <= 0 or args.fps <= 0:
        p.error("--seconds and --fps must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 failure, 2 bad arguments)."""
    try:
        args = _parse_args(argv)
    except SystemExit as stop:  # --help, or a bad argument already reported on one line
        return stop.code if isinstance(stop.code, int) else 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    kinds = tuple(k.strip() for k in args.distractors.split(",") if k.strip())
    cfg = SceneConfig(
        width=args.width, height=args.height, n_digits=args.n_digits, digit_px=tuple(args.digit_px),
        paper=args.paper, lines=args.lines, ink=args.ink, pen_px=args.pen_px, desk=args.desk,
        tilt=args.tilt, shadow=args.shadow, blur=args.blur, noise=args.noise, jpeg=args.jpeg,
        group_prob=args.group_prob, touching_prob=args.touching_prob, distractors=kinds,
        stroke=args.stroke, pen_skips=args.pen_skips, faint=args.faint, small_01=args.small_01, dense=args.dense,
        continental=args.continental, sheet_edge=args.sheet_edge,
        desk_texture=None if args.desk_texture == "random" else args.desk_texture,
        cast_shadow=None if args.cast_shadow == "random" else args.cast_shadow,
        solo=args.solo, paper_tooth=args.paper_tooth, clutter=args.clutter,
    )
    prog = "python -m benchmarks.scenes"
    try:
        cfg.validate()
        if args.data_dir:
            from training.data import load_mnist

            digits = tuple(_as_numpy(t) for t in load_mnist("test", args.data_dir))
        else:
            digits = _digits_arrays(None)
        t0 = time.perf_counter()
        if args.out is not None:
            truth = write_dataset(args.out, args.frames, args.seed, cfg, digits)
            print(f"wrote {args.frames} frames and {truth} in {time.perf_counter() - t0:.1f} s")
        if args.video is not None:
            n = max(1, int(round(args.seconds * args.fps)))
            t0 = time.perf_counter()
            truths = render_video(args.video, args.seed, n, args.fps, cfg, args.motion, digits)
            side = args.video.with_name(args.video.name + ".json")
            side.write_text(json.dumps({"seed": args.seed, "fps": args.fps, "width": cfg.width, "height": cfg.height,
                                        "frames": [[t.to_dict() for t in ft] for ft in truths]}))
            print(f"wrote {args.video} ({n} frames) and {side} in {time.perf_counter() - t0:.1f} s")
    except ValueError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - DataError, OSError: one line, not a traceback
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
