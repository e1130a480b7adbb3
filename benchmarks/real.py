"""Real photos through the recognizer: single digits, sheets of digit rows, digit-free pages.

``python -m benchmarks.real`` reads the real photo folders (``$REAL_DIR``, laid out as
``digits/labels.csv``, ``sheets/rows.json``, ``negatives/``; and ``$PHOTOS_DIR``, laid out
as ``digits/labels.csv`` and ``sheets/labels.json``) and reports, per set:

- single digits, one photo as one frame through ``detect`` (what the CLI does): the
  share of photos with exactly one detection, the written digit; how many found
  nothing, several boxes or a wrong digit; and the same photos through ``classify``;
- sheets: the character error rate (CER) of the rows in reading order (the detections
  grouped into rows as the live view groups them, each row's digits left to right,
  the rows concatenated, edit distance to the true rows over their length), overall
  and per sheet, and the share of sheets within 10%; pages turned on the desk
  (``rot`` in the file name) are reported apart;
- pages with no handwritten digits: detections per page.

These photos are for evaluation and failure analysis only: nothing is trained or tuned
on them.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

REAL_ENV = "REAL_DIR"
PHOTOS_ENV = "PHOTOS_DIR"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def rows_text(detections: Sequence[Any]) -> list[str]:
    """The digits of a frame's detections as rows in reading order, as the live view
    groups them (``realtime.numbers.reading_rows``)."""
    from realtime.numbers import reading_rows

    rows = reading_rows([d.box for d in detections])
    return ["".join(str(int(detections[i].digit)) for i in row) for row in rows]


def cer(pred_rows: Sequence[str], true_rows: Sequence[str]) -> tuple[int, int]:
    """``(edits, true characters)`` between the concatenated rows."""
    truth = "".join(true_rows)
    return edit_distance("".join(pred_rows), truth), len(truth)


@dataclass
class Photo:
    """One real photo with its truth: a digit (``label``) or rows of digits (``rows``)."""

    path: Path
    name: str
    label: int | None = None
    rows: list[str] = field(default_factory=list)
    group: str = ""


def _labelled_digits(root: Path, prefix: str) -> list[Photo]:
    labels = root / "digits" / "labels.csv"
    if not labels.is_file():
        return []
    with open(labels, newline="") as f:
        return [Photo(root / "digits" / r["path"], f"{prefix}/{r['path']}", label=int(r["label"]),
                      group=r.get("writer") or r.get("source") or "") for r in csv.DictReader(f)]


def load_sets(real_dir: Path | None, photos_dir: Path | None) -> dict[str, list[Photo]]:
    """The evaluation sets: ``digits``, ``sheets`` (upright), ``sheets_turned``, ``negatives``."""
    sets: dict[str, list[Photo]] = {"digits": [], "sheets": [], "sheets_turned": [], "negatives": []}
    for root, prefix in ((photos_dir, "photos"), (real_dir, "real")):
        if root is not None:
            sets["digits"] += _labelled_digits(root, prefix)
    if photos_dir is not None and (photos_dir / "sheets" / "labels.json").is_file():
        for name, d in json.loads((photos_dir / "sheets" / "labels.json").read_text()).items():
            sets["sheets"].append(Photo(photos_dir / "sheets" / name, f"photos/sheets/{name}", rows=list(d["rows"])))
    if real_dir is not None and (real_dir / "sheets" / "rows.json").is_file():
        for name, rows in json.loads((real_dir / "sheets" / "rows.json").read_text()).items():
            p = Photo(real_dir / "sheets" / name, f"real/sheets/{name}", rows=[r for r in rows if r])
            sets["sheets_turned" if "rot" in name else "sheets"].append(p)
    if real_dir is not None and (real_dir / "negatives").is_dir():
        for path in sorted((real_dir / "negatives").iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                sets["negatives"].append(Photo(path, f"real/negatives/{path.name}"))
    return sets


def _read(photo: Photo) -> np.ndarray:
    img = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {photo.path}")
    return img


def evaluate(rec: Any, sets: dict[str, list[Photo]], progress: Callable[[Iterable[Photo]], Iterable[Photo]] = iter,
             ) -> dict[str, Any]:
    """Every set through ``rec.detect`` (and the digits through ``rec.classify`` too)."""
    out: dict[str, Any] = {}
    ms: list[float] = []

    def detect(img: np.ndarray) -> list[Any]:
        t0 = time.perf_counter()
        dets = rec.detect(img)
        ms.append(1000 * (time.perf_counter() - t0))
        return dets

    if sets["digits"]:
        per: list[dict[str, Any]] = []
        for p in progress(sets["digits"]):
            img = _read(p)
            dets = detect(img)
            got = [int(d.digit) for d in dets]
            cls = rec.classify([img])[0][0]
            per.append({"name": p.name, "label": p.label, "group": p.group, "detected": got, "classify": cls})
        n = len(per)
        exact = sum(r["detected"] == [r["label"]] for r in per)
        out["digits"] = {
            "photos": n, "exact": exact, "exact_share": exact / n,
            "none": sum(not r["detected"] for r in per),
            "several": sum(len(r["detected"]) > 1 for r in per),
            "wrong": sum(len(r["detected"]) == 1 and r["detected"] != [r["label"]] for r in per),
            "classify": sum(r["classify"] == r["label"] for r in per),
            "classify_share": sum(r["classify"] == r["label"] for r in per) / n,
            "per_photo": per,
        }
    for key in ("sheets", "sheets_turned"):
        if not sets[key]:
            continue
        per = []
        for p in progress(sets[key]):
            dets = detect(_read(p))
            pred = rows_text(dets)
            edits, chars = cer(pred, p.rows)
            per.append({"name": p.name, "rows": p.rows, "read": pred, "edits": edits, "chars": chars,
                        "cer": edits / max(chars, 1)})
        edits, chars = sum(r["edits"] for r in per), sum(r["chars"] for r in per)
        out[key] = {"sheets": len(per), "chars": chars, "cer": edits / max(chars, 1),
                    "within_10pct": sum(r["cer"] <= 0.10 for r in per) / len(per),
                    "mean_sheet_cer": float(np.mean([r["cer"] for r in per])), "per_sheet": per}
    if sets["negatives"]:
        per = [{"name": p.name, "detections": len(detect(_read(p)))} for p in progress(sets["negatives"])]
        out["negatives"] = {"pages": len(per), "detections_per_page": sum(r["detections"] for r in per) / len(per),
                            "per_page": per}
    if ms:
        out["ms"] = {"median": float(np.median(ms)), "p90": float(np.percentile(ms, 90)), "max": float(max(ms))}
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def format_table(r: dict[str, Any], details: bool = False) -> str:
    lines = []
    if "digits" in r:
        d = r["digits"]
        lines.append(f"Single digits ({d['photos']} photos), one photo as one frame through detect: exactly the "
                     f"digit {d['exact']}/{d['photos']} = {_pct(d['exact_share'])} (nothing found {d['none']}, "
                     f"several boxes {d['several']}, one wrong digit {d['wrong']}); classify "
                     f"{d['classify']}/{d['photos']} = {_pct(d['classify_share'])}")
        if details:
            for p in d["per_photo"]:
                if p["detected"] != [p["label"]]:
                    lines.append(f"    {p['name']}: {p['label']} read {p['detected']} (classify {p['classify']})")
    for key, title in (("sheets", "Sheets (upright)"), ("sheets_turned", "Sheets turned on the desk")):
        if key in r:
            s = r[key]
            lines.append(f"{title}: {s['sheets']} sheets, {s['chars']} digits: CER {_pct(s['cer'])}, "
                         f"{_pct(s['within_10pct'])} of sheets within 10% (mean per-sheet CER "
                         f"{_pct(s['mean_sheet_cer'])})")
            if details:
                for p in s["per_sheet"]:
                    lines.append(f"    {p['cer']:6.1%} {p['name']}: {' '.join(p['read'])}  (truth "
                                 f"{' '.join(p['rows'])})")
    if "negatives" in r:
        n = r["negatives"]
        lines.append(f"Pages with no handwritten digits: {n['pages']} pages, "
                     f"{n['detections_per_page']:.2f} detections per page")
        if details:
            for p in n["per_page"]:
                lines.append(f"    {p['detections']:3d} {p['name']}")
    if "ms" in r:
        m = r["ms"]
        lines.append(f"detect time per photo: median {m['median']:.1f} ms, p90 {m['p90']:.1f} ms, "
                     f"max {m['max']:.0f} ms")
    return "\n".join(lines)


def data_dirs(real: str | None, photos: str | None) -> tuple[Path | None, Path | None]:
    """The two photo folders from the options, else the environment (``None``: not given)."""
    real = real or os.environ.get(REAL_ENV)
    photos = photos or os.environ.get(PHOTOS_ENV)
    return (Path(real) if real else None), (Path(photos) if photos else None)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.real", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--real-dir", default=None, help="real photos folder (default: $REAL_DIR)")
    p.add_argument("--photos-dir", default=None, help="the older photos folder (default: $PHOTOS_DIR)")
    p.add_argument("--weights", default=None, help="digit checkpoint (default: the recognizer's)")
    p.add_argument("--details", action="store_true", help="list every miss")
    p.add_argument("--json", default=None, help="also write the results here as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    real, photos = data_dirs(a.real_dir, a.photos_dir)
    for d, opt in ((real, "--real-dir/$REAL_DIR"), (photos, "--photos-dir/$PHOTOS_DIR")):
        if d is not None and not d.is_dir():
            print(f"error: {opt}: folder not found: {d}", file=sys.stderr)
            return 2
    if real is None and photos is None:
        print("error: give --real-dir or --photos-dir (or set $REAL_DIR / $PHOTOS_DIR)", file=sys.stderr)
        return 2
    from realtime.recognizer import Recognizer
    from training.checkpoint import CheckpointError

    try:
        rec = Recognizer.load(a.weights)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sets = load_sets(real, photos)
    progress: Callable[[Iterable[Photo]], Iterable[Photo]] = iter
    if not a.no_progress:
        from tqdm import tqdm

        def progress(items: Iterable[Photo]) -> Iterable[Photo]:
            return tqdm(list(items), unit="photo", leave=False, dynamic_ncols=True)

    r = evaluate(rec, sets, progress)
    print(format_table(r, details=a.details))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(r, indent=1) + "\n")
        print(f"results written to {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
