"""``bytehoven evaluate``'s measures on synthetic logits: the sink rate (the share of a composer's scan
rows given to its most frequent wrong composer) and accuracy per engraver."""

from __future__ import annotations

import numpy as np
import pytest

from bytehoven_desktop.training.evaluate import report_markdown, sink_rates, subset_metrics

LABELS = ["bach", "chopin", "medtner", "tchaikovsky"]


def _logits(pred: list[int], n: int = 4, margin: float = 4.0) -> np.ndarray:
    out = np.zeros((len(pred), n))
    out[np.arange(len(pred)), pred] = margin
    return out


def test_sink_rate_finds_the_composer_that_swallows_another() -> None:
    # Tchaikovsky's 10 scan rows: 6 called Medtner, 2 Bach, 2 right. Bach's 5: 4 right, 1 Chopin.
    y = np.array([3] * 10 + [0] * 5)
    pred = np.array([2] * 6 + [0] * 2 + [3] * 2 + [0] * 4 + [1])
    s = sink_rates(y, pred, LABELS)
    t = s["per_composer"]["tchaikovsky"]
    assert (t["rows"], t["sink"], t["sink_rows"]) == (10, "medtner", 6)
    assert t["sink_rate"] == pytest.approx(0.6) and t["row_top1"] == pytest.approx(0.2)
    b = s["per_composer"]["bach"]
    assert b["sink"] == "chopin" and b["sink_rate"] == pytest.approx(0.2)
    assert s["max_sink_rate"] == pytest.approx(0.6) and s["worst_composer"] == "tchaikovsky"
    assert s["worst_sink"] == "medtner" and s["composers_over_target"] == ["bach", "tchaikovsky"]
    assert set(s["per_composer"]) == {"bach", "tchaikovsky"}  # only composers that have scan rows


def test_sink_rate_of_a_perfect_model_is_zero() -> None:
    y = np.array([0, 1, 2, 3, 3])
    s = sink_rates(y, y.copy(), LABELS)
    assert s["max_sink_rate"] == 0.0 and s["composers_over_target"] == []
    assert all(v["sink"] is None and v["row_top1"] == 1.0 for v in s["per_composer"].values())


def test_accuracy_per_engraver_on_synthetic_logits() -> None:
    # Verovio rows all right; LilyPond rows right at top-3 only; MuseScore half right.
    y = np.array([0, 1, 2, 3] * 3)
    right = y.tolist()
    second = [(c + 1) % 4 for c in right]
    pred = right[:4] + second[4:8] + right[8:10] + second[10:12]
    raw = _logits(pred)
    raw[np.arange(4, 8), y[4:8]] = 2.0  # the true composer is second best for the LilyPond rows
    probs = np.exp(raw) / np.exp(raw).sum(1, keepdims=True)
    engr = ["verovio"] * 4 + ["lilypond"] * 4 + ["musescore"] * 4
    pages = [f"{e}-p{i // 2}" for i, e in enumerate(engr)]
    docs = [f"{e}-doc" for e in engr]
    m = subset_metrics(probs, raw, y, pages, docs, engr, LABELS)
    assert list(m) == ["verovio", "lilypond", "musescore"]  # in ENGRAVER_KINDS order
    assert m["verovio"]["rows"] == 4 and m["verovio"]["row_top1"] == 1.0
    assert m["lilypond"]["row_top1"] == 0.0 and m["lilypond"]["row_top3"] == 1.0
    assert m["musescore"]["row_top1"] == pytest.approx(0.5)
    assert m["verovio"]["pages"] == 2 and m["verovio"]["documents"] == 1
    text = report_markdown({"model": {"name": "m"}, "split": "test", **m,
                            "sink": sink_rates(y, np.array(pred), LABELS)})
    assert "| lilypond | 4 | 0.0 % | 100.0 % |" in text and "Sink rate" in text
