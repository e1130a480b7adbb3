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

from collections.abc import Iterable, Sequence

import numpy as np

from realtime import native
from realtime.pairs import pair_fields, wide_field
from training.model import SeqNet

WIDTH = SeqNet.WIDTH
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


def ctc_labels(readings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Readings as CTC's inputs: ``(labels int64 [R, L] padded with BLANK, lengths [R])``."""
    lengths = np.array([len(r) for r in readings], np.int64)
    labels = np.full((len(readings), max(1, int(lengths.max(initial=0)))), BLANK, np.int64)
    for i, r in enumerate(readings):
        labels[i, : len(r)] = [int(ch) for ch in r]
    return labels, lengths


def _logaddexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # written out (as the compiled kernel in realtime.native writes it) so both routes
    # compute the same sums in the same way
    m = np.maximum(a, b)
    with np.errstate(invalid="ignore"):
        return np.where(m == -np.inf, -np.inf, m + np.log1p(np.exp(-np.abs(a - b))))


def ctc_numpy(log_probs: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """log P(reading | columns) under CTC for several readings at once: ``log_probs``
    float64 [T, 11] per column (digits, then the blank); ``labels``/``lengths`` as
    :func:`ctc_labels` gives them. ``-inf`` for a reading that cannot fit in T columns
    (a repeated digit needs a blank between its two). The numpy route of
    ``realtime.native``'s ``ctc`` kernel."""
    r, n = labels.shape
    s = 2 * n + 1
    ext = np.full((r, s), BLANK, np.int64)
    ext[:, 1::2] = labels
    # a label may be skipped to from two states back unless it repeats the label there
    skip = np.zeros((r, s), bool)
    skip[:, 2:] = (ext[:, 2:] != BLANK) & (ext[:, 2:] != ext[:, :-2])
    rows = np.arange(r)[:, None]
    alpha = np.full((r, s), -np.inf)
    alpha[:, 0] = log_probs[0, BLANK]
    alpha[:, 1] = log_probs[0, ext[:, 1]]
    for t in range(1, len(log_probs)):
        prev1 = np.full((r, s), -np.inf)
        prev1[:, 1:] = alpha[:, :-1]
        prev2 = np.full((r, s), -np.inf)
        prev2[:, 2:] = np.where(skip[:, 2:], alpha[:, :-2], -np.inf)
        alpha = _logaddexp(_logaddexp(alpha, prev1), prev2) + log_probs[t][ext]
    last = alpha[rows[:, 0], 2 * lengths]
    before = np.where(lengths > 0, alpha[rows[:, 0], np.maximum(2 * lengths - 1, 0)], -np.inf)
    return _logaddexp(last, before)


def ctc_log_likelihoods(log_probs: np.ndarray, readings: Sequence[str]) -> np.ndarray:
    """log P(reading | columns) under CTC of each of ``readings`` (digit strings), from
    ``log_probs`` [T, 11]; compiled when numba is available, else :func:`ctc_numpy`."""
    if not readings:
        return np.zeros(0)
    labels, lengths = ctc_labels(readings)
    log_probs = np.ascontiguousarray(log_probs, np.float64)
    kernel = native.compiled("ctc")
    return kernel(log_probs, labels, lengths) if kernel is not None else ctc_numpy(log_probs, labels, lengths)


def ctc_log_likelihood(log_probs: np.ndarray, reading: str) -> float:
    """:func:`ctc_log_likelihoods` of one reading."""
    return float(ctc_log_likelihoods(log_probs, [reading])[0])


def reading_scores(logits: np.ndarray, readings: Iterable[str]) -> dict[str, float]:
    """:func:`ctc_log_likelihood` of each reading, from one blob's logits [T, 11]."""
    readings = list(readings)
    return dict(zip(readings, ctc_log_likelihoods(log_softmax(logits), readings).tolist()))
