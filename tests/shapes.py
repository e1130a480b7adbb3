"""Hand-made binary shapes with known geometry, for tests of masks and cuts."""

from __future__ import annotations

import cv2
import numpy as np


def ring(h: int, w: int, t: int) -> np.ndarray:
    """A bool ellipse outline ``t`` px thick, cut to its ink (a "0")."""
    img = np.zeros((h, w), np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (w // 2 - t, h // 2 - t), 0, 0, 360, 255, t)
    ys, xs = np.nonzero(img)
    return img[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] > 0


def disc(h: int, w: int) -> np.ndarray:
    """A filled bool ellipse, cut to its ink."""
    img = np.zeros((h, w), np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1)
    ys, xs = np.nonzero(img)
    return img[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1] > 0
