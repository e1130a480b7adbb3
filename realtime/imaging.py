"""Pixel helpers shared by the stages: the ink channel, fast area reduction and enlargement.

Pure functions on numpy images; each picks the cheapest OpenCV route that gives the
same values as the obvious one.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# 8 neighbouring 0/1 bytes read as one uint64 and multiplied by this sum into the top byte
BYTE_SUM = np.uint64(0x0101010101010101)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Luma for display-like grayscale (BGR, BGRA or gray in)."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def ink_gray(frame: np.ndarray) -> np.ndarray:
    """The per-pixel median of B, G and R: the channel that separates ink from paper.

    Coloured inks are dark in at least two channels (red ink in G and B, blue ink in G
    and R) and black or pencil in all three, so their median is dark, near black ink's
    contrast; printed ruled lines are dark in only one (light-blue rules in R, a red
    margin in G and B), so their median stays as faint as in luma. Luma would make red
    and blue ink as faint as the rules.
    """
    if frame.ndim == 2:
        return frame
    # split() copies each channel contiguous once; min/max on strided views copy per call
    b, g, r = cv2.split(frame)[:3]
    return cv2.max(cv2.min(b, g), cv2.min(cv2.max(b, g), r))


@lru_cache(maxsize=8)
def gaussian_kernel(sigma: float) -> np.ndarray:
    """The 1-D Gaussian kernel ``cv2.GaussianBlur`` picks for a uint8 image and ``sigma``."""
    return cv2.getGaussianKernel(int(round(sigma * 6 + 1)) | 1, sigma)


def shrink(img: np.ndarray, f: int) -> np.ndarray:
    """``img`` averaged over ``f`` x ``f`` blocks (what ``INTER_AREA`` does). For a power
    of two that divides the size, repeated 2x2 halvings with ``INTER_LINEAR`` (exactly a
    2x2 mean at that factor, and SIMD-optimized) give the same result to a grey level,
    ~5x faster than OpenCV's uint8 ``INTER_AREA``."""
    h, w = img.shape[:2]
    if f & (f - 1) or w % f or h % f:
        return cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    while f > 1:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
        f //= 2
    return img


def reduce(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` reduced to ``size`` (w, h; at most its own), each pixel about the mean of
    those it covers: exact 2x2 halvings while the size allows, then one linear step of
    less than 2x, whose samples still touch every pixel. OpenCV's ``INTER_AREA`` at a
    factor that is not a whole number costs ~5x as much (5 ms for a 1080p frame)."""
    w, h = size
    while img.shape[1] >= 2 * w and img.shape[0] >= 2 * h:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_LINEAR)
    if img.shape[1] == w and img.shape[0] == h:
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def grow(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` enlarged to ``size`` (w, h) by repeating pixels (``INTER_NEAREST``); a plain
    row/column repeat when the factors are whole numbers (row repeats are memory copies)."""
    w, h = size
    sh, sw = img.shape[:2]
    if h % sh or w % sw:
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)
    if h != sh:
        img = np.repeat(img, h // sh, axis=0)
    if w == 8 * sw and img.dtype == np.uint8:
        # each byte times 0x0101..01 as a uint64 is that byte 8 times: 5x faster than a
        # repeat along the last axis
        return np.multiply(img, BYTE_SUM, dtype=np.uint64).view(np.uint8)
    if w != sw:
        img = np.repeat(img, w // sw, axis=1)
    return np.ascontiguousarray(img)
