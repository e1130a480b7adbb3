"""A touching number read whole: the number reader's input and the likelihood of a reading.

The live view splits a blob of touching digits by trying cut points and pair readings
and keeping the chain of readings the digit and pair networks trust most
(``realtime.segment.best_chain``). Each of those readers sees one or two digits; the
chain's score cannot tell "17" read across a bad cut from "117" read across three. The
number reader (``training.model.SeqNet``) sees the whole blob: its ink scaled so its
height is ``BOX`` px (its width at most ``WIDTH`` - 4 px) in a ``SIZE`` x ``WIDTH`` field,
the stroke width brought to MNIST's, and answers per column of the field how likely
each digit or CTC's blank is. :func:`ctc_log_likelihood` turns that into the
log-likelihood of each reading the chains offer, which the live view adds to each
chain's score (``realtime.recognizer.SEQ_WEIGHT``). The boxes still come from the
chain's cuts, so the number reader only chooses among readings, never invents one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from realtime.normalize import SIZE
from realtime.pairs import pair_fields, wide_field

WIDTH = 128  # five MNIST-shaped digits side by side, the longest touching run rendered
BLANK = 10  # CTC's "no new digit here" class, after the ten digits


def sequence_field(ink: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The number reader's input for one blob: float32 [SIZE, WIDTH] in [0, 1]."""
    return wide_field(ink, mask, WIDTH)


def sequence_fields(ink: np.ndarray, boxes: list[tuple[int, int, int, int]], masks: list[np.ndarray]) -> np.ndarray:
    """:func:`sequence_field` of several blobs of one ink map: float32 [N, SIZE, WIDTH]."""
    return pair_fields(ink, boxes, masks, WIDTH)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ctc_log_likelihood(log_probs: np.ndarray, reading: str) -> float:
    """log P(``reading`` | columns) under CTC: ``log_probs`` [T, 11] per column (digits,
    then the blank), ``reading`` a string of digits. ``-inf`` if it cannot fit in T
    columns (a repeated digit needs a blank between its two)."""
    labels = [int(ch) for ch in reading]
    ext = [BLANK]
    for d in labels:
        ext += [d, BLANK]
    s = len(ext)
    alpha = np.full(s, -np.inf)
    alpha[0] = log_probs[0, BLANK]
    if s > 1:
        alpha[1] = log_probs[0, ext[1]]
    # a label may be skipped to from two states back unless it repeats the label there
    skip = np.array([i >= 2 and ext[i] != BLANK and ext[i] != ext[i - 2] for i in range(s)])
    for t in range(1, len(log_probs)):
        prev1 = np.concatenate([[-np.inf], alpha])[:s]
        prev2 = np.where(skip, np.concatenate([[-np.inf, -np.inf], alpha])[:s], -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, prev1), prev2) + log_probs[t, ext]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if s > 1 else alpha[-1])


def reading_scores(logits: np.ndarray, readings: Iterable[str]) -> dict[str, float]:
    """:func:`ctc_log_likelihood` of each reading, from one blob's logits [T, 11]."""
    lp = log_softmax(logits)
    return {r: ctc_log_likelihood(lp, r) for r in readings}
