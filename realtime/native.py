"""Numba-compiled kernels for the per-frame hot paths that are loops over small things.

A 640x480 frame has ~30 candidates and ~50 crops. Done with numpy and OpenCV, each crop
costs tens of microseconds of call overhead (mask, threshold, two counts, an erosion,
maybe a dilation, resize, moments, placement), and so do each wide blob's cut lattice
and the pairwise fragment merging. Compiled, these run in one call per frame or blob:

- ``prepare`` and ``place``: masking, stroke width, stroke correction, area-averaged
  reduction (OpenCV's own algorithm, float32 sums in its order) and centring of all
  crops (:func:`realtime.normalize.to_mnist_batch`); enlarged crops and reductions by
  whole-number factors, which OpenCV computes by other paths, still go to ``cv2.resize``;
- ``lattice``: a blob's cut points and parts (:func:`realtime.segment.cut_lattice`);
- ``merge`` and ``group_masks``: fragment merging and candidate masks
  (:func:`realtime.segment.find_candidates`);
- ``squeeze8``: the 8x squeezes line removal starts with, counted a 64-bit word (8
  pixels) at a time instead of in several numpy passes;
- ``steps``: the brightness profiles across the sheet's border
  (:func:`realtime.segment.paper_mask`);
- ``ctc``: the number reader's likelihood of each reading a blob's chains spell
  (:func:`realtime.sequences.ctc_log_likelihoods`).

Every kernel gives exactly what the numpy/OpenCV code beside it gives (tests compare
them on rendered frames); that code stays the route taken when numba is not
installed, fails, or ``DIGITS_NO_JIT=1``. Kernels compile on first use (~15 s once;
cached on disk when the package folder is writable, after which loading takes a
fraction of a second); ``Recognizer`` calls :func:`warm_up` at load time, ahead of the
first frame.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

import cv2
import numpy as np

log = logging.getLogger(__name__)

try:  # optional: everything works without it, slower
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

ENABLED = numba is not None and os.environ.get("DIGITS_NO_JIT", "") not in ("1", "true", "yes")

# the largest correction kernel in the table; crops longer than this (close-ups of one
# digit) take the OpenCV route, as their erosion could need a larger one
MAX_KERNEL = 255
# C's DBL_EPSILON, OpenCV's test for a whole-number resize factor
_DBL_EPSILON = float(np.finfo(np.float64).eps)


@lru_cache(maxsize=1)
def ellipse_table(max_kernel: int = MAX_KERNEL) -> np.ndarray:
    """``table[k, i]``: half-width of row ``i`` of OpenCV's ``k`` x ``k`` elliptic
    structuring element (odd ``k``; rows are symmetric about the centre column). Read
    from OpenCV itself, so the kernels dilate and erode with exactly its shapes."""
    table = np.zeros((max_kernel + 1, max_kernel), np.int64)
    for k in range(1, max_kernel + 1, 2):
        rows = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)).sum(axis=1)
        table[k, :k] = (rows.astype(np.int64) - 1) // 2
    return table


def _masked(ink, boxes, mflat, moff, cflat):
    """Each crop of ``ink`` (``boxes``: x, y, w, h) with the pixels outside its mask
    zeroed, packed into ``cflat`` at offsets ``moff`` (as its mask is in ``mflat``)."""
    for n in range(len(boxes)):
        x, y, w, h = boxes[n, 0], boxes[n, 1], boxes[n, 2], boxes[n, 3]
        o = moff[n]
        for r in range(h):
            src = ink[y + r, x : x + w]
            m = mflat[o + r * w : o + (r + 1) * w]
            dst = cflat[o + r * w : o + (r + 1) * w]
            for c in range(w):
                dst[c] = src[c] if m[c] else np.uint8(0)


def _stroke_width(crop, row3):
    # 2 * area / boundary of the pixels above 127, as realtime.normalize.stroke_width:
    # a pixel is inner when its whole 3x3 neighbourhood is (outside the crop is not).
    # row3[r, c]: pixels c - 1, c, c + 1 of row r are all above 127
    h, w = crop.shape
    area = 0
    for r in range(h):
        for c in range(w):
            area += crop[r, c] > 127
    if area == 0:
        return 0.0
    row3[:h, :w] = 0
    for r in range(h):
        for c in range(1, w - 1):
            row3[r, c] = (crop[r, c - 1] > 127) & (crop[r, c] > 127) & (crop[r, c + 1] > 127)
    inner = 0
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            inner += row3[r - 1, c] & row3[r, c] & row3[r + 1, c]
    return 2.0 * area / max(area - inner, 1)


def _morph(crop, k, table, grow, out, pad):
    # grey dilation (grow; out is crop padded by k // 2 on every side, as cv2.dilate
    # of the zero-padded crop) or erosion (out has crop's size; outside the crop does
    # not erode, OpenCV's default border) with the k x k ellipse. ``pad``: scratch,
    # one row of crop with k // 2 neutral values on each side.
    h, w = crop.shape
    r = k // 2
    oh, ow = out.shape
    off = r if grow else 0  # out row / column of crop's first row / column
    neutral = np.uint8(0) if grow else np.uint8(255)
    out[:, :] = neutral
    row = pad[: w + 2 * r]
    row[:] = neutral
    for sy in range(h):
        row[r : r + w] = crop[sy]
        for i in range(k):
            y = sy + off + r - i  # the out row that kernel row i brings this row to
            if y < 0 or y >= oh:
                continue
            hw = table[k, i]
            dst = out[y]
            # out column x takes the extreme of padded-row entries x + d - r over the
            # kernel row's columns (d - r is the shift), one shift at a time
            for d in range(r - hw - off + r, r + hw - off + r + 1):
                lo = max(0, r - d)
                hi = min(ow, w + 2 * r - d + r)
                src = row[lo + d - r : hi + d - r]
                seg = dst[lo:hi]
                if grow:
                    for x in range(hi - lo):
                        seg[x] = max(seg[x], src[x])
                else:
                    for x in range(hi - lo):
                        seg[x] = min(seg[x], src[x])


def _area_table(ssize, dsize, di, si, alpha):
    """OpenCV's ``computeResizeAreaTab`` (resize.cpp) for one axis: which source pixels
    feed each output pixel, with which float32 weight, in OpenCV's order. Returns the
    number of entries written to ``di``, ``si``, ``alpha``."""
    scale = ssize / dsize
    k = 0
    for dx in range(dsize):
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, ssize - fsx1)
        sx1, sx2 = int(np.ceil(fsx1)), int(np.floor(fsx2))
        sx2 = min(sx2, ssize - 1)
        sx1 = min(sx1, sx2)
        if sx1 - fsx1 > 1e-3:
            di[k], si[k], alpha[k] = dx, sx1 - 1, np.float32((sx1 - fsx1) / cell)
            k += 1
        for sx in range(sx1, sx2):
            di[k], si[k], alpha[k] = dx, sx, np.float32(1.0 / cell)
            k += 1
        if fsx2 - sx2 > 1e-3:
            di[k], si[k], alpha[k] = dx, sx2, np.float32(min(min(fsx2 - sx2, 1.0), cell) / cell)
            k += 1
    return k


def _resize_area(src, nw, nh, dst):
    """``cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA)`` for uint8 when both
    factors are above 1 and not both whole numbers (OpenCV's generic area path, with its
    float32 sums in its order and its rounding), into ``dst[:nh, :nw]``."""
    h, w = src.shape
    xdi = np.empty(2 * w + 2, np.int64)
    xsi = np.empty(2 * w + 2, np.int64)
    xal = np.empty(2 * w + 2, np.float32)
    nx = _area_table(w, nw, xdi, xsi, xal)
    ydi = np.empty(2 * h + 2, np.int64)
    ysi = np.empty(2 * h + 2, np.int64)
    yal = np.empty(2 * h + 2, np.float32)
    ny = _area_table(h, nh, ydi, ysi, yal)
    # each source row's horizontal pass once (OpenCV redoes it for each output row the
    # source row feeds; the values are the same)
    rows = np.zeros((h, nw), np.float32)
    for r in range(h):
        row, out = src[r], rows[r]
        for k in range(nx):
            out[xdi[k]] += np.float32(row[xsi[k]]) * xal[k]
    acc = np.zeros(nw, np.float32)
    prev = ydi[0]
    for j in range(ny):
        beta, dy, buf = yal[j], ydi[j], rows[ysi[j]]
        if dy != prev:
            for dx in range(nw):
                dst[prev, dx] = min(max(np.rint(acc[dx]), 0), 255)
                acc[dx] = beta * buf[dx]
            prev = dy
        else:
            for dx in range(nw):
                acc[dx] += beta * buf[dx]
    for dx in range(nw):
        dst[prev, dx] = min(max(np.rint(acc[dx]), 0), 255)


def _area_generic(h, w, nh, nw):
    """Whether OpenCV resizes ``h`` x ``w`` to ``nh`` x ``nw`` with INTER_AREA by its
    generic path (both factors at least 1, not both whole numbers: those take an
    integer-averaging path with other rounding, left to OpenCV)."""
    sx, sy = w / nw, h / nh
    if sx < 1 or sy < 1:
        return False
    whole = abs(sx - np.round(sx)) < _DBL_EPSILON and abs(sy - np.round(sy)) < _DBL_EPSILON
    return not whole


def _prepare(ink, boxes, mflat, moff, stroke, box, table):
    """Masked, stroke-corrected crops of one frame, packed: ``(flat, shapes [N, 2]
    (h, w), offsets [N + 1], resized sizes [N, 2] (w, h), smalls [N, box, box],
    resized [N])``: ``smalls[i, :h, :w]`` holds crop ``i`` scaled to its size where
    ``resized[i]`` (longer than ``box`` and on OpenCV's generic area path); the others
    are left to ``cv2.resize``."""
    n = len(boxes)
    cflat = np.empty(moff[n], np.uint8)
    _masked(ink, boxes, mflat, moff, cflat)
    mode = np.zeros(n, np.int64)  # 0 keep, 1 dilated, 2 eroded
    kern = np.zeros(n, np.int64)
    shapes = np.empty((n, 2), np.int64)
    trim = np.zeros((n, 4), np.int64)  # eroded crops: y0, y1, x0, x1
    eflat = np.empty(moff[n], np.uint8)
    maxh, maxw = 1, 1
    for i in range(n):
        maxh, maxw = max(maxh, boxes[i, 3]), max(maxw, boxes[i, 2])
    row3 = np.empty((maxh, maxw), np.uint8)
    pad = np.empty(maxw + 2 * MAX_KERNEL, np.uint8)  # a padded row, for dilation and erosion
    for i in range(n):
        w, h = boxes[i, 2], boxes[i, 3]
        crop = cflat[moff[i] : moff[i + 1]].reshape(h, w)
        shapes[i, 0], shapes[i, 1] = h, w
        if stroke <= 0:
            continue
        sw = _stroke_width(crop, row3)
        want = stroke * max(h, w) / box
        grow_by = int(np.rint(want - sw))
        shrink_by = int(np.rint((sw - want) / 4))
        if 0 < sw < 0.7 * want and grow_by >= 2:
            k = grow_by | 1
            mode[i], kern[i] = 1, k
            shapes[i, 0], shapes[i, 1] = h + 2 * (k // 2), w + 2 * (k // 2)
        elif sw > 1.6 * want and shrink_by >= 1:
            k = 2 * shrink_by + 1
            er = eflat[moff[i] : moff[i + 1]].reshape(h, w)
            _morph(crop, k, table, False, er, pad)
            # never erode a digit away: keep the original if too little ink remains
            if er.astype(np.int64).sum() > 0.25 * crop.astype(np.int64).sum():
                y0, y1, x0, x1 = h, -1, w, -1
                for r in range(h):
                    for c in range(w):
                        if er[r, c] > 12:
                            y0, y1 = min(y0, r), max(y1, r)
                            x0, x1 = min(x0, c), max(x1, c)
                if y1 >= 0:
                    mode[i] = 2
                    trim[i, 0], trim[i, 1], trim[i, 2], trim[i, 3] = y0, y1 + 1, x0, x1 + 1
                    shapes[i, 0], shapes[i, 1] = y1 + 1 - y0, x1 + 1 - x0
    ooff = np.zeros(n + 1, np.int64)
    for i in range(n):
        ooff[i + 1] = ooff[i] + shapes[i, 0] * shapes[i, 1]
    out = np.empty(ooff[n], np.uint8)
    sizes = np.empty((n, 2), np.int64)
    smalls = np.zeros((n, box, box), np.uint8)
    resized = np.zeros(n, np.bool_)
    for i in range(n):
        w, h = boxes[i, 2], boxes[i, 3]
        crop = cflat[moff[i] : moff[i + 1]].reshape(h, w)
        oh, ow = shapes[i, 0], shapes[i, 1]
        dst = out[ooff[i] : ooff[i + 1]].reshape(oh, ow)
        if mode[i] == 1:
            _morph(crop, kern[i], table, True, dst, pad)
        elif mode[i] == 2:
            er = eflat[moff[i] : moff[i + 1]].reshape(h, w)
            dst[:, :] = er[trim[i, 0] : trim[i, 1], trim[i, 2] : trim[i, 3]]
        else:
            dst[:, :] = crop
        scale = box / max(oh, ow)
        nw, nh = max(1, int(np.rint(ow * scale))), max(1, int(np.rint(oh * scale)))
        sizes[i, 0], sizes[i, 1] = nw, nh
        if max(oh, ow) > box and _area_generic(oh, ow, nh, nw):
            _resize_area(dst, nw, nh, smalls[i])
            resized[i] = True
    return out, shapes, ooff, sizes, smalls, resized


def _place(smalls, sizes, fields):
    """Each resized crop (``smalls[i, :h, :w]``) into its field with its centre of
    mass at the centre, as ``realtime.normalize._place`` (exact integer moments)."""
    size = fields.shape[1]
    for i in range(len(smalls)):
        nw, nh = sizes[i, 0], sizes[i, 1]
        m00 = 0
        m10 = 0
        m01 = 0
        for r in range(nh):
            for c in range(nw):
                v = np.int64(smalls[i, r, c])
                m00 += v
                m10 += v * c
                m01 += v * r
        cx = m10 / m00 if m00 > 0 else nw / 2
        cy = m01 / m00 if m00 > 0 else nh / 2
        ox = min(max(int(np.rint(size / 2 - cx)), 0), size - nw)
        oy = min(max(int(np.rint(size / 2 - cy)), 0), size - nh)
        fields[i, oy : oy + nh, ox : ox + nw] = smalls[i, :nh, :nw]


def _lattice(mask, proj, part_min_height, max_cuts):
    """``realtime.segment.cut_lattice`` of a blob's mask (uint8 0/1) and its smoothed
    column profile ``proj`` (float64): ``(n_points, segments [K, 6]: i, j, x0, y0, x1,
    y1)``, boxes in the mask's pixels."""
    h, w = mask.shape
    col = np.zeros(w, np.int64)
    top = np.full(w, h, np.int64)
    bottom = np.full(w, -1, np.int64)
    for r in range(h):
        for c in range(w):
            if mask[r, c]:
                col[c] += 1
                bottom[c] = r
    for c in range(w):
        for r in range(h):
            if mask[r, c]:
                top[c] = r
                break
    margin = max(2, int(0.1 * h))
    # true local minima of the inner columns (lower than or level with both neighbours),
    # taken lowest first, then leftmost, a stroke's width apart
    nmin = 0
    minima = np.empty(max(w, 1), np.int64)
    for c in range(margin, w - margin):
        if proj[c] <= proj[c - 1] and proj[c] <= proj[c + 1]:
            minima[nmin] = c
            nmin += 1
    keys = np.empty(nmin, np.float64)
    for k in range(nmin):
        keys[k] = proj[minima[k]]
    order = np.argsort(keys, kind="mergesort")  # stable: equal depths leftmost first
    spacing = max(2, int(0.12 * h))
    cuts = np.empty(max_cuts + 2, np.int64)
    ncut = 0
    for k in range(nmin):
        if ncut >= max_cuts:
            break
        c = minima[order[k]]
        ok = True
        for o in range(ncut):
            if abs(c - cuts[o]) < spacing:
                ok = False
        if ok:
            cuts[ncut] = c
            ncut += 1
    points = np.empty(ncut + 2, np.int64)
    points[0] = 0
    points[1 : ncut + 1] = np.sort(cuts[:ncut])
    points[ncut + 1] = w
    npts = ncut + 2
    # nearest ink column at or after / at or before each column
    next_ink = np.full(w + 1, w, np.int64)
    for c in range(w - 1, -1, -1):
        next_ink[c] = c if col[c] > 0 else next_ink[c + 1]
    prev_ink = np.full(w, -1, np.int64)
    for c in range(w):
        prev_ink[c] = c if col[c] > 0 else (prev_ink[c - 1] if c > 0 else -1)
    min_w = max(2, int(0.1 * h))
    max_w = 1.25 * h
    segs = np.empty((npts * npts, 6), np.int64)
    n = 0
    for i in range(npts):
        a = points[i]
        y0, y1 = h, -1
        c = a
        for j in range(i + 1, npts):
            b = points[j]
            if b - a > max_w:
                break
            while c < b:
                y0 = min(y0, top[c])
                y1 = max(y1, bottom[c])
                c += 1
            if b - a < min_w or (i == 0 and j == npts - 1):
                continue  # the whole blob is read as it is anyway
            if y1 < 0 or y1 + 1 - y0 < part_min_height * h:
                continue
            segs[n, 0], segs[n, 1] = i, j
            segs[n, 2], segs[n, 3] = next_ink[a], y0
            segs[n, 4], segs[n, 5] = prev_ink[b - 1] + 1, y1 + 1
            n += 1
    return npts, segs[:n]


def _group_masks(labels, group, ox, oy, boxes, ink, peak):
    """Masks of the kept component groups of ``realtime.segment.find_candidates``, packed:
    ``(flat bool, offsets [K], dark [K])``. ``group[label]``: the group's row in
    ``boxes`` (x0, y0, x1, y1 in frame pixels), -1 for others; ``labels`` start at frame
    pixel (``ox``, ``oy``). ``dark``: the group reaches ``peak`` in ``ink``."""
    k = len(boxes)
    offsets = np.zeros(k + 1, np.int64)
    for g in range(k):
        offsets[g + 1] = offsets[g] + (boxes[g, 2] - boxes[g, 0]) * (boxes[g, 3] - boxes[g, 1])
    flat = np.zeros(offsets[k], np.bool_)
    dark = np.zeros(k, np.bool_)
    for g in range(k):
        x0, y0, x1, y1 = boxes[g, 0], boxes[g, 1], boxes[g, 2], boxes[g, 3]
        w = x1 - x0
        best = -1
        for r in range(y0, y1):
            lab = labels[r - oy]
            base = offsets[g] + (r - y0) * w - x0
            for c in range(x0, x1):
                if group[lab[c - ox]] == g:
                    flat[base + c] = True
                    if peak >= 0 and ink[r, c] > best:
                        best = ink[r, c]
        dark[g] = peak < 0 or best >= peak
    return flat, offsets[:k], dark


def _merge(x, y, w, h, area, use_area, merge_overlap, merge_height):
    """``realtime.segment._merge_fragments`` on float64 box columns and areas: each
    fragment's group root, the same pairs tested in the same order."""
    n = len(x)
    parent = np.arange(n)
    if n < 2:
        return parent
    pairs_i = np.empty(n * (n - 1) // 2, np.int64)
    pairs_j = np.empty(n * (n - 1) // 2, np.int64)
    gaps = np.empty(n * (n - 1) // 2, np.float64)
    m = 0
    for i in range(n):
        for j in range(i + 1, n):
            ox = min(x[i] + w[i], x[j] + w[j]) - max(x[i], x[j])
            overlap = ox / max(min(w[i], w[j]), 1.0)
            taller = max(h[i], h[j])
            merged_h = max(y[i] + h[i], y[j] + h[j]) - min(y[i], y[j])
            gap = max(y[i], y[j]) - min(y[i] + h[i], y[j] + h[j])
            if not (overlap >= merge_overlap and merged_h <= merge_height * taller and gap <= 0.35 * taller):
                continue
            if use_area:
                narrow = min(w[i], w[j]) / max(max(w[i], w[j]), 1.0)
                if not (min(area[i], area[j]) >= 0.05 * max(area[i], area[j]) or narrow >= 0.4):
                    continue
            pairs_i[m], pairs_j[m], gaps[m] = i, j, gap
            m += 1
    g_top = y.copy()
    g_bottom = y + h
    g_tall = h.copy()
    for k in np.argsort(gaps[:m], kind="mergesort"):
        ri = pairs_i[k]
        while parent[ri] != ri:
            ri = parent[ri]
        rj = pairs_j[k]
        while parent[rj] != rj:
            rj = parent[rj]
        if ri == rj:
            continue
        t, b, tall = min(g_top[ri], g_top[rj]), max(g_bottom[ri], g_bottom[rj]), max(g_tall[ri], g_tall[rj])
        if b - t > merge_height * tall:
            continue
        r, o = min(ri, rj), max(ri, rj)
        parent[o] = r
        g_top[r], g_bottom[r], g_tall[r] = t, b, tall
    roots = np.empty(n, np.int64)
    for i in range(n):
        r = i
        while parent[r] != r:
            r = parent[r]
        roots[i] = r
    return roots


def _squeeze8(words, horizontal, at_least):
    """``realtime.segment._squeeze_count`` with a squeeze of 8, on a 0/255 mask viewed as
    uint64 words of 8 pixels ([h, w / 8]): per word, the count of set pixels in its 8
    columns (horizontal) or in 8 rows of each column (eight words added lane by lane),
    255 where it reaches ``at_least``."""
    h, n = words.shape
    low = np.uint64(0x0101010101010101)
    if horizontal:
        out = np.empty((h, n), np.uint8)
        for r in range(h):
            for j in range(n):
                count = (((words[r, j] >> np.uint64(7)) & low) * low) >> np.uint64(56)
                out[r, j] = 255 if count >= at_least else 0
        return out
    out = np.empty((h // 8, n * 8), np.uint8)
    lanes = out.view(np.uint64)
    # a lane (0..8) plus 128 - at_least has its top bit set exactly when lane >= at_least
    bias = low * np.uint64(128 - at_least)
    for b in range(h // 8):
        for j in range(n):
            acc = np.uint64(0)
            for k in range(8):
                acc += (words[8 * b + k, j] >> np.uint64(7)) & low
            lanes[b, j] = (((acc + bias) & (low << np.uint64(7))) >> np.uint64(7)) * np.uint64(255)
    return out


def _steps(gray, xy, fx, fy, min_step, half):
    # as realtime.segment._border_steps, one profile at a time
    H, W = gray.shape
    k = xy.shape[0]
    shares = np.zeros(k)
    counts = np.zeros(k, np.int64)
    cx = 0.0
    cy = 0.0
    for e in range(k):
        cx += xy[e, 0]
        cy += xy[e, 1]
    cx /= k
    cy /= k
    n = 2 * half + 1
    prof = np.empty(n)
    ends = np.empty(8)
    for e in range(k):
        f = (e + 1) % k
        x0, y0, x1, y1 = xy[e, 0], xy[e, 1], xy[f, 0], xy[f, 1]
        vx, vy = x1 - x0, y1 - y0
        length = np.hypot(vx, vy)
        border = (max(x0, x1) <= fx or max(y0, y1) <= fy or min(x0, x1) >= W - fx or min(y0, y1) >= H - fy)
        if border or not length >= 1:
            continue
        m = max(1, int(length / 12)) + 1
        counts[e] = m
        dl = max(length, 1e-9)
        nx, ny = vy / dl, -(vx / dl)
        ox, oy = (x0 + x1) / 2 - cx, (y0 + y1) / 2 - cy
        if ox * nx + oy * ny < 0:
            nx, ny = nx * -1.0, ny * -1.0
        good = 0
        for i in range(m):
            s = 0.1 + 0.8 * (i / max(m - 1, 1))
            mx, my = x0 + s * vx, y0 + s * vy
            for j in range(n):
                t = float(j - half)
                px = min(max(np.rint(mx + t * nx), 0.0), W - 1.0)
                py = min(max(np.rint(my + t * ny), 0.0), H - 1.0)
                prof[j] = float(gray[int(py), int(px)])
            ends[:] = np.sort(prof[:8])
            ins = (ends[3] + ends[4]) / 2
            ends[:] = np.sort(prof[n - 8 :])
            out = (ends[3] + ends[4]) / 2
            rise = ins - out
            r = max(rise, 1.0)
            width = 0
            for j in range(n):
                a = prof[j] - out
                if a > 0.2 * r and a < 0.8 * r:
                    width += 1
            if rise >= min_step and width <= half // 2:
                good += 1
        shares[e] = good / m
    return shares, counts


def _lae(a, b):
    # log(exp(a) + exp(b)), as realtime.sequences._logaddexp writes it
    m = max(a, b)
    if m == -np.inf:
        return -np.inf
    return m + np.log1p(np.exp(-abs(a - b)))


def _ctc(log_probs, labels, lengths):
    """CTC log-likelihood of each reading (``labels`` [R, L] padded, ``lengths`` [R])
    under ``log_probs`` [T, C], the blank last (realtime.sequences.ctc_numpy)."""
    t_max, blank = log_probs.shape[0], log_probs.shape[1] - 1
    out = np.empty(labels.shape[0])
    ext = np.empty(2 * labels.shape[1] + 1, np.int64)
    alpha = np.empty(ext.shape[0])
    nxt = np.empty(ext.shape[0])
    for r in range(labels.shape[0]):
        s = 2 * lengths[r] + 1
        for i in range(s):
            ext[i] = labels[r, i // 2] if i % 2 == 1 else blank
        for i in range(s):
            alpha[i] = -np.inf
        alpha[0] = log_probs[0, blank]
        if s > 1:
            alpha[1] = log_probs[0, ext[1]]
        for t in range(1, t_max):
            for i in range(s):
                # adding exp(-inf) is exact (log1p(0) = 0), so the numpy route's sums
                # with the missing neighbours need no counterpart here
                v = alpha[i]
                if i >= 1:
                    v = _lae(v, alpha[i - 1])
                if i >= 2 and ext[i] != blank and ext[i] != ext[i - 2]:
                    v = _lae(v, alpha[i - 2])
                nxt[i] = v + log_probs[t, ext[i]]
            for i in range(s):
                alpha[i] = nxt[i]
        out[r] = _lae(alpha[s - 1], alpha[s - 2] if s > 1 else -np.inf)
    return out


_KERNELS = (_masked, _stroke_width, _morph, _area_table, _resize_area, _area_generic, _prepare, _place, _lattice,
            _group_masks, _merge, _squeeze8, _steps, _lae, _ctc)
if numba is not None:
    # lazily compiled on first call; every kernel calls the others' compiled versions
    _njit = numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")
    (_masked, _stroke_width, _morph, _area_table, _resize_area, _area_generic, _prepare, _place, _lattice,
     _group_masks, _merge, _squeeze8, _steps, _lae, _ctc) = (_njit(f) for f in _KERNELS)


def _examples() -> dict[str, tuple]:
    """A tiny valid call of each public kernel, with the argument types real calls use."""
    ink = np.zeros((8, 8), np.uint8)
    ink[2:6, 3:5] = 255
    labels = (ink > 0).astype(np.int32)
    col = np.array([0.0, 0.0, 5.0])
    return {
        "prepare": (ink, np.array([[3, 2, 2, 4]], np.int64), np.ones(8, np.uint8), np.array([0, 8], np.int64),
                    2.4, 20, ellipse_table()),
        "place": (np.zeros((1, 20, 20), np.uint8), np.array([[5, 10]], np.int64), np.zeros((1, 28, 28), np.uint8)),
        "lattice": (np.ones((10, 25), np.uint8), np.full(25, 10.0), 0.5, 4),
        "group_masks": (labels, np.array([-1, 0], np.int64), 0, 0, np.array([[3, 2, 5, 6]], np.int64), ink, 100.0),
        "merge": (col, col, col + 4, col + 9, col + 20, True, 0.5, 1.45),
        "squeeze8": (np.zeros((8, 1), np.uint64), True, 2),
        "steps": (np.zeros((64, 64), np.uint8), np.array([[8.0, 8.0], [56.0, 8.0], [56.0, 56.0]]), 8.0, 8.0, 20.0, 20),
        "ctc": (np.full((4, 11), -np.log(11.0)), np.array([[1, 7]], np.int64), np.array([2], np.int64)),
    }


@lru_cache(maxsize=None)
def compiled(name: str):  # noqa: ANN201 - a numba dispatcher
    """The compiled kernel ``name`` (``prepare``, ``place``, ``lattice``, ``group_masks``,
    ``merge``, ``squeeze8``, ``steps`` or ``ctc``), compiled or loaded from the disk cache and tried once on a tiny input;
    ``None`` when numba is unavailable, disabled (``DIGITS_NO_JIT=1``) or fails, and the
    caller takes its numpy/OpenCV route."""
    if not ENABLED:
        return None
    kernel = globals()["_" + name]
    try:
        kernel(*_examples()[name])
    except Exception as err:  # noqa: BLE001 - any numba trouble falls back to numpy/OpenCV
        log.warning("numba kernel %s unavailable (%s); using numpy/OpenCV", name, err)
        return None
    return kernel


def warm_up() -> bool:
    """Compile (or load) every kernel now, ahead of the first frame; True when all work."""
    return all(compiled(name) is not None for name in _examples())
