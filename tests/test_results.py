"""realtime.results: recognize() on every kind of input, and what a Result shows and says."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from realtime.results import Result, recognize, results_jsonl
from tests.live_fixtures import photos_dir, recognizer  # noqa: F401 (fixtures)
from benchmarks.web_tools import DEMO_NUMBERS, demo_frames


def drawn_digits() -> np.ndarray:
    """A 7, a 1 and a 2 drawn with a thick pen on white, as the Draw tab sends them."""
    img = np.full((300, 620, 3), 255, np.uint8)
    cv2.polylines(img, [np.array([[60, 60], [150, 60], [90, 240]])], False, (20, 20, 20), 14, cv2.LINE_AA)
    cv2.polylines(img, [np.array([[230, 70], [255, 45], [255, 240]])], False, (20, 20, 20), 14, cv2.LINE_AA)
    cv2.polylines(img, [np.array([[350, 90], [380, 55], [430, 55], [450, 90], [440, 140], [350, 240],
                                  [460, 240]])], False, (20, 20, 20), 14, cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def demo_frame() -> np.ndarray:
    return demo_frames(1)[0]


def test_a_demo_frame_reads_its_numbers(recognizer, demo_frame):
    r = recognize(recognizer, demo_frame)
    assert DEMO_NUMBERS <= set(r.values)
    assert len(r) == len(r.detections) >= 20
    assert r.digits == [d.digit for d in r.detections]
    assert r.source == "array" and r.frame == 0 and r.ms > 0
    assert r.image is demo_frame or np.array_equal(r.image, demo_frame)


def test_array_gray_path_and_pil_give_the_same_reading(recognizer, tmp_path):
    img = drawn_digits()
    path = tmp_path / "drawn.png"
    cv2.imwrite(str(path), img)
    pil = Image.open(path)
    readings = {
        "bgr": recognize(recognizer, img),
        "gray": recognize(recognizer, cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)),
        "bgra": recognize(recognizer, cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)),
        "float": recognize(recognizer, img.astype(np.float32) / 255.0),
        "str": recognize(recognizer, str(path)),
        "path": recognize(recognizer, path),
        "pil": recognize(recognizer, pil),
        "pil-gray": recognize(recognizer, pil.convert("L")),
    }
    for kind, r in readings.items():
        assert r.digits == [7, 1, 2], kind
        assert r.values == ["712"], kind
    assert readings["str"].source == str(path)
    assert readings["pil"].source == "PIL"
    assert readings["pil"].image.shape == img.shape


def test_repr_names_digits_numbers_and_time(recognizer):
    r = recognize(recognizer, drawn_digits())
    text = repr(r)
    assert text.startswith("Result(3 digits: 7 1 2, numbers ['712'], ") and text.endswith(" ms)")
    empty = recognize(recognizer, np.full((200, 200), 255, np.uint8))
    assert len(empty) == 0 and repr(empty).startswith("Result(no digits, ")


def test_repr_of_a_full_sheet_stays_one_short_line(recognizer, demo_frame):
    text = repr(recognize(recognizer, demo_frame))
    assert "\n" not in text and "..." in text and len(text) < 200


def test_plot_draws_boxes_and_leaves_the_image_alone(recognizer, demo_frame):
    before = demo_frame.copy()
    r = recognize(recognizer, demo_frame)
    out = r.plot()
    assert out.shape == demo_frame.shape and out.dtype == np.uint8
    assert np.array_equal(demo_frame, before)
    for d in r.detections:
        x, y, w, h = d.box
        # each box's outline is drawn: its left edge differs from the frame there
        assert np.abs(out[y:y + h, x].astype(int) - before[y:y + h, x].astype(int)).max() > 40
    rgb = r.plot(rgb=True)
    assert np.array_equal(rgb[..., ::-1], out)


def test_repr_png_is_the_annotated_image(recognizer):
    r = recognize(recognizer, drawn_digits())
    png = r._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, r.plot())


def test_to_dict_is_the_live_json_line(recognizer, demo_frame):
    r = recognize(recognizer, demo_frame, source="cam", frame=7)
    d = r.to_dict()
    assert list(d) == ["frame", "source", "ms", "detections", "numbers"]
    assert d["frame"] == 7 and d["source"] == "cam"
    assert [x["digit"] for x in d["detections"]] == r.digits
    assert [n["value"] for n in d["numbers"]] == r.values
    assert all(set(x) == {"box", "digit", "confidence"} for x in d["detections"])
    assert json.loads(json.dumps(d)) == d
    line = results_jsonl([r, r])
    assert line.count("\n") == 2 and json.loads(line.splitlines()[1]) == d


def test_to_dict_probs_are_the_digit_probabilities(recognizer):
    r = recognize(recognizer, drawn_digits())
    for det, out in zip(r.detections, r.to_dict(probs=True)["detections"]):
        assert len(out["probs"]) == 10
        assert int(np.argmax(out["probs"])) == det.digit
        assert out["probs"][det.digit] == pytest.approx(det.confidence, abs=1e-3)
        assert sum(out["probs"]) <= 1.0 + 1e-3


def test_a_tracker_steadies_a_sequence(recognizer):
    from realtime.tracker import Tracker

    tracker = Tracker(min_confidence=recognizer.min_confidence)
    results = [recognize(recognizer, f, tracker=tracker, frame=i) for i, f in enumerate(demo_frames(5))]
    assert [r.frame for r in results] == list(range(5))
    assert all(DEMO_NUMBERS <= set(r.values) for r in results)
    assert len(tracker.tracks) >= 20


def test_a_real_photo(recognizer, photos_dir):
    r = recognize(recognizer, photos_dir / "sheets" / "sheet5.png")
    assert len(r) >= 20 and r.source.endswith("sheet5.png")
    assert isinstance(r, Result) and r.image.shape[:2] == (594, 410)


@pytest.mark.parametrize("bad, kind, words", [
    (3, TypeError, "not int"),
    ([[0, 255]], TypeError, "not list"),
    (b"\x89PNG", TypeError, "not bytes"),
    (np.zeros((0, 5, 3), np.uint8), ValueError, "empty"),
    (np.zeros((5, 5, 2), np.uint8), ValueError, "not shape (5, 5, 2)"),
    (np.zeros((2, 5, 5, 3), np.uint8), ValueError, "not shape (2, 5, 5, 3)"),
    (np.zeros((5, 5), np.int64), ValueError, "int64"),
    (np.full((5, 5), np.nan), ValueError, "NaN"),
])
def test_bad_inputs_raise_clear_errors(recognizer, bad, kind, words):
    with pytest.raises(kind) as err:
        recognize(recognizer, bad)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_paths_raise_value_errors(recognizer, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, words in [("missing.png", "no such file"), ("notes.png", "not an image"), ("empty.png", "empty file"),
                        ("", "not a file")]:
        with pytest.raises(ValueError, match=words):
            recognize(recognizer, tmp_path / name)
