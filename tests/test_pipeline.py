"""Document → rows → report, end to end on generated scores with a tiny model."""

import threading
from pathlib import Path

import numpy as np
import pytest

from bytehoven_desktop.classifier import Classifier
from bytehoven_desktop.document import Document
from bytehoven_desktop.pipeline import AnalysisOptions, Started, analyze, analyze_document
from bytehoven_desktop.report import NO_MUSIC, DocumentResult, PageResult, pool
from bytehoven_desktop.systems import detect_systems
from fixtures import make_corrupt_pdf, make_scanned_pdf, make_score_pdf, make_score_png, make_text_pdf


@pytest.fixture(scope="module")
def clf(tiny_model: Path) -> Classifier:
    return Classifier(tiny_model, device="cpu", threads=1, batch_size=4)


def test_rows_per_page_and_report_schema(tmp_path: Path, clf: Classifier) -> None:
    pdf = make_score_pdf(tmp_path / "score.pdf", pages=3, systems_per_page=5)
    events = list(analyze_document(pdf, clf))
    assert isinstance(events[0], Started) and events[0].pages == 3
    pages = [e for e in events if isinstance(e, PageResult)]
    assert [p.page for p in pages] == [1, 2, 3]
    doc = events[-1]
    assert isinstance(doc, DocumentResult)
    j = doc.to_json()
    for key in ("path", "sha256", "pages", "composer", "confidence", "composers", "device", "model", "error",
                "page_results"):
        assert key in j
    assert j["pages"] == 3 and j["error"] is None and j["device"] == "cpu"
    assert set(j["model"]) >= {"name", "sha256"}
    assert abs(sum(j["composers"].values()) - 1.0) < 1e-3
    for p in j["page_results"]:
        assert len(p["systems"]) == 5
        for s in p["systems"]:
            x0, y0, x1, y1 = s["bbox"]
            assert 0 <= x0 < x1 <= 612 and 0 <= y0 < y1 <= 792  # PDF points of a Letter page
            assert s["composer"] in s["composers"]
    # Document probabilities pool all its rows' (not the pages').
    rows = np.stack([s.probs for p in doc.page_results for s in p.systems])
    np.testing.assert_allclose([doc.summary.composers[c] for c in clf.labels], pool(rows), atol=1e-4)


def test_boxes_match_the_detector(tmp_path: Path, clf: Classifier) -> None:
    pdf = make_score_pdf(tmp_path / "score.pdf", pages=1, systems_per_page=4)
    with Document(pdf) as d:
        img = d.render(0, 150)
    expected = [img.to_page(s.box) for s in detect_systems(img.gray).systems]
    got = analyze(pdf, clf).page_results[0].systems
    assert len(got) == len(expected)
    for s, e in zip(got, expected):
        assert np.allclose(s.bbox, e, atol=3.0)


def test_scale_invariance_image_scan(tmp_path: Path, clf: Classifier) -> None:
    # The same page as a 300 dpi image scan gives the same number of rows.
    png = make_score_png(tmp_path / "scan.png", systems=4, dpi=300)
    res = analyze(png, clf)
    assert res.error is None and len(res.page_results[0].systems) == 4


def test_scanned_pages_are_calibrated_as_scans(tmp_path: Path) -> None:
    from model_factory import make_model

    vector = make_score_pdf(tmp_path / "vector.pdf", pages=1, systems_per_page=4)
    scans = [make_score_png(tmp_path / "scan.png", systems=4), make_scanned_pdf(tmp_path / "scan.pdf"),
             make_scanned_pdf(tmp_path / "strips.pdf", strips=3)]
    with Document(vector) as d:
        assert not d.render(0).scanned
    for path in scans:
        with Document(path) as d:
            assert d.render(0).scanned, path.name
    plain = Classifier(make_model(tmp_path / "plain.onnx", metadata={"temperature": "2.0"}), device="cpu")
    apart = Classifier(make_model(tmp_path / "apart.onnx", metadata={"temperature": "2.0", "scan_temperature": "0.5"}),
                       device="cpu")

    def probs(path: Path, clf: Classifier) -> np.ndarray:
        res = analyze(path, clf)
        assert res.error is None and len(res.page_results[0].systems) == 4, path.name
        return np.stack([s.probs for s in res.page_results[0].systems])

    np.testing.assert_allclose(probs(vector, apart), probs(vector, plain), rtol=1e-5, atol=1e-6)
    for path in scans:
        sharp, soft = probs(path, apart), probs(path, plain)
        # Same logits, the scan temperature (0.5) in place of 2: the same composers, surer.
        assert (sharp.argmax(1) == soft.argmax(1)).all() and (sharp.max(1) > soft.max(1)).all(), path.name


def test_pages_and_documents_pool_with_the_models_sharpness(tmp_path: Path) -> None:
    from model_factory import make_model

    pdf = make_score_pdf(tmp_path / "score.pdf", pages=2, systems_per_page=4)
    plain = analyze(pdf, Classifier(make_model(tmp_path / "plain.onnx"), device="cpu"))
    sharp = analyze(pdf, Classifier(make_model(tmp_path / "sharp.onnx", metadata={"pool_sharpness": "0.6"}),
                                    device="cpu"))
    labels = list(plain.summary.composers)
    for a, b in zip(plain.page_results, sharp.page_results):
        rows = np.stack([s.probs for s in b.systems])
        np.testing.assert_allclose([s.probs for s in a.systems], rows, rtol=1e-5)  # rows are untouched
        np.testing.assert_allclose([b.summary.composers[c] for c in labels], pool(rows, 0.6), atol=1e-4)
        assert b.summary.best_guess == a.summary.best_guess and b.summary.confidence > a.summary.confidence
    every = np.stack([s.probs for p in sharp.page_results for s in p.systems])
    np.testing.assert_allclose([sharp.summary.composers[c] for c in labels], pool(every, 0.6), atol=1e-4)


def test_no_music_abstains(tmp_path: Path, clf: Classifier) -> None:
    res = analyze(make_text_pdf(tmp_path / "t.pdf", pages=2), clf)
    assert res.error is None
    assert res.summary.composer is None and res.summary.reason == NO_MUSIC
    assert all(p.summary.reason == NO_MUSIC and not p.systems for p in res.page_results)
    assert res.to_json()["confidence"] is None


def test_uncertain_abstains_with_threshold(tmp_path: Path, clf: Classifier) -> None:
    pdf = make_score_pdf(tmp_path / "s.pdf", pages=1, systems_per_page=3)
    res = analyze(pdf, clf, AnalysisOptions(threshold=0.999))
    assert res.summary.composer is None and res.summary.reason == "uncertain"
    assert res.summary.best_guess in clf.labels and res.summary.confidence is not None


def test_bad_document_is_an_error_not_an_exception(tmp_path: Path, clf: Classifier) -> None:
    res = analyze(make_corrupt_pdf(tmp_path / "bad.pdf"), clf)
    assert res.error and "bad.pdf" in res.error
    res = analyze(tmp_path / "missing.pdf", clf)
    assert res.error and "not found" in res.error


def test_cancel_stops_early(tmp_path: Path, clf: Classifier) -> None:
    pdf = make_score_pdf(tmp_path / "long.pdf", pages=30, systems_per_page=6)
    cancel = threading.Event()
    seen = 0
    final = None
    for ev in analyze_document(pdf, clf, cancel=cancel):
        if isinstance(ev, PageResult):
            seen += 1
            if seen == 2:
                cancel.set()
        final = ev
    assert isinstance(final, DocumentResult) and final.cancelled
    assert len(final.page_results) < 30
