"""The ONNX session: metadata-driven inputs, providers, batching, and model faults."""

import json
from pathlib import Path

import numpy as np
import pytest

from bytehoven_desktop.classifier import Classifier, ModelError, get_classifier
from model_factory import LABELS, make_model


def test_metadata_drives_everything(tiny_model: Path) -> None:
    clf = Classifier(tiny_model, device="cpu", threads=1, batch_size=3)
    assert clf.labels == LABELS
    assert clf.input_size == (32, 192)
    assert clf.device == "cpu" and clf.notice is None
    rows = np.random.default_rng(0).integers(0, 256, (7, 32, 192), dtype=np.uint8)
    probs = clf.predict(rows)
    assert probs.shape == (7, len(LABELS))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    # Batching does not change results.
    clf.batch_size = 7
    np.testing.assert_allclose(clf.predict(rows), probs, rtol=1e-5, atol=1e-6)


def test_temperature_from_metadata_softens(tmp_path: Path) -> None:
    rows = np.random.default_rng(1).integers(0, 256, (4, 32, 192), dtype=np.uint8)
    sharp = Classifier(make_model(tmp_path / "a.onnx"), device="cpu").predict(rows)
    soft = Classifier(make_model(tmp_path / "b.onnx", metadata={"temperature": "5.0"}), device="cpu").predict(rows)
    assert soft.max(1).mean() < sharp.max(1).mean()
    assert (soft.argmax(1) == sharp.argmax(1)).all()


def test_pool_sharpness_from_metadata(tmp_path: Path) -> None:
    assert Classifier(make_model(tmp_path / "a.onnx"), device="cpu").info.pool_sharpness == 0.0
    info = Classifier(make_model(tmp_path / "b.onnx", metadata={"pool_sharpness": "0.27"}), device="cpu").info
    assert info.pool_sharpness == pytest.approx(0.27)
    with pytest.raises(ModelError, match="pool_sharpness"):
        Classifier(make_model(tmp_path / "c.onnx", metadata={"pool_sharpness": "1.5"}), device="cpu")


def test_cuda_requested_falls_back_to_cpu_with_notice(tiny_model: Path, capfd: pytest.CaptureFixture) -> None:
    clf = Classifier(tiny_model, device="cuda")
    # The device reported is the one the session really uses (first provider), never the one asked for.
    used = clf.session.get_providers()[0]
    assert clf.device == ("cuda" if used == "CUDAExecutionProvider" else "cpu")
    if clf.device == "cpu":
        assert clf.notice and "CPU" in clf.notice
    assert "[E:onnxruntime" not in capfd.readouterr().err


def test_cam_output(tiny_model: Path) -> None:
    clf = Classifier(tiny_model, device="cpu")
    assert clf.has_cam
    probs, cam = clf.explain(np.full((32, 192), 200, np.uint8))
    assert probs.shape == (len(LABELS),) and cam.shape == (32, 192)
    assert 0.0 <= cam.min() and cam.max() <= 1.0


def test_one_session_per_process(tiny_model: Path) -> None:
    assert get_classifier(tiny_model, "cpu", 1) is get_classifier(tiny_model, "cpu", 1)


@pytest.mark.parametrize("case", ["missing", "corrupt", "no-metadata", "bad-labels", "label-count"])
def test_model_faults_name_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.onnx"
    if case == "corrupt":
        path.write_bytes(b"not an onnx file at all")
    elif case == "no-metadata":
        make_model(path, metadata={"labels": None, "input_height": None})
    elif case == "bad-labels":
        make_model(path, metadata={"labels": "{not json"})
    elif case == "label-count":
        make_model(path, labels=LABELS, n_outputs=len(LABELS) + 2, metadata={"labels": json.dumps(list(LABELS))})
    with pytest.raises(ModelError) as err:
        clf = Classifier(path, device="cpu")
        clf.predict(np.zeros((1, 32, 192), np.uint8))
    assert str(path) in str(err.value)


def test_row_views_trim_the_row_and_keep_its_size() -> None:
    from bytehoven_desktop.rowimage import MAX_VIEWS, row_views

    rows = np.random.default_rng(0).integers(0, 256, (3, 40, 256)).astype(np.uint8)
    assert row_views(rows, 1) is rows
    views = row_views(rows, MAX_VIEWS).reshape(3, MAX_VIEWS, 40, 256)
    assert np.array_equal(views[:, 0], rows)  # the first view is the row itself
    for v in range(1, MAX_VIEWS):
        assert not np.array_equal(views[:, v], rows)
    with pytest.raises(ValueError):
        row_views(rows, MAX_VIEWS + 1)


def test_scanned_rows_use_the_scan_temperature(tmp_path: Path) -> None:
    from bytehoven_desktop.classifier import softmax

    rows = np.random.default_rng(1).integers(0, 256, (6, 32, 192), dtype=np.uint8)
    clf = Classifier(make_model(tmp_path / "s.onnx", metadata={"temperature": "2.0", "scan_temperature": "0.5"}),
                     device="cpu")
    z = clf.logits(rows)
    np.testing.assert_allclose(clf.predict(rows), softmax(z / 2.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.predict(rows, scanned=True), softmax(z / 0.5), rtol=1e-5, atol=1e-6)
    assert clf.explain(rows[0], scanned=True)[0].max() > clf.explain(rows[0])[0].max()
    # A model without one calibrates scans as engravings.
    plain = Classifier(make_model(tmp_path / "p.onnx", metadata={"temperature": "2.0"}), device="cpu")
    assert plain.info.scan_temperature is None
    np.testing.assert_allclose(plain.predict(rows, scanned=True), plain.predict(rows), rtol=1e-6)
