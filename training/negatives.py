"""The digit network's bank of "not a digit" examples, normalized like the live view's crops.

A camera frame holds marks that are not digits: scribbles, dashes, and two touching
digits read as one blob. Trained with an explicit 11th class for them, the network can
say "none of these" instead of naming its nearest digit, and the recognizer can prefer
splitting a blob when the whole of it looks like no digit.

Three kinds (:mod:`training.synth`), all from the MNIST *training* split or drawn at
random: two training digits overlapped (:func:`training.synth.overlapped_pair`),
scribbles and dashes. Letters are not in this bank: added here they did not lower the
single-digit network's false readings on rendered letters (the pair reader learns them).

Each is put in its 28x28 field by the recognizer's own recipe (:func:`training.fields.to_mnist`)
without its stroke-width step, which training covers by augmentation.
"""

from __future__ import annotations

import numpy as np
import torch

from training import fields, synth

NOT_A_DIGIT = "not a digit"
# what the bank is made of: overlapped digit pairs below the first bound, scribbles
# below the second, dashes above it (60%, 30%, 10%)
KIND_BOUNDS = (0.6, 0.9)


def negative_field(ink: np.ndarray) -> np.ndarray:
    """A float mark (1 = ink) as an MNIST-style uint8 field [28, 28]: every pixel of it
    kept (no mask), the stroke as it is."""
    field = fields.to_mnist(ink, np.ones(ink.shape, bool), stroke=None)
    return (field * 255 + 0.5).astype(np.uint8)


def make_negatives(n: int, images: torch.Tensor | np.ndarray, seed: int = 0) -> torch.Tensor:
    """``n`` negatives as uint8 [n, 28, 28] (white on black), like MNIST images;
    ``images``: the MNIST training images the pairs are made of."""
    rng = np.random.default_rng(seed)
    imgs = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    pairs, scribbles = KIND_BOUNDS
    out = np.zeros((n, fields.SIZE, fields.SIZE), np.uint8)
    for i in range(n):
        kind = rng.random()
        if kind < pairs:
            ink = synth.overlapped_pair(rng, imgs)
        elif kind < scribbles:
            ink = synth.scribble(rng)
        else:
            ink = synth.dash(rng)
        out[i] = negative_field(ink)
    return torch.from_numpy(out)
