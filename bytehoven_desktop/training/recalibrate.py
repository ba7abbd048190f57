"""A model file calibrated afresh on the dev rows of a dataset, its weights untouched.

``export`` calibrates a checkpoint as it turns it into a model; this does the same for a model whose
checkpoint is gone (a released file), e.g. to give it the scan temperature a newer app reads. The
logits come from ONNX Runtime, as the app computes them (the model's own test-time views)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..classifier import Classifier
from .augment import center
from .calibration import calibrate_dev
from .train import RowData, load_data


def onnx_logits(clf: Classifier, data: RowData, idx: np.ndarray, chunk: int = 512) -> np.ndarray:
    """The model's logits for rows ``idx`` of a dataset (each stored crop centred at the input size)."""
    size = clf.input_size
    if not len(idx):
        return np.zeros((0, len(clf.labels)), np.float32)
    return np.concatenate([clf.logits(np.stack([center(data.rows[j], *size) for j in idx[i: i + chunk]]))
                           for i in range(0, len(idx), chunk)])


def recalibrate(model: Path, data_dir: Path, out: Path, command: str = "", threads: int | None = None) -> dict:
    """Fit the temperatures and the abstain threshold of ``model`` on the dev rows of ``data_dir``
    (``calibration.calibrate_dev``) and write the model with that metadata to ``out``."""
    import onnx

    clf = Classifier(model, device="cpu", threads=threads, batch_size=64)
    labels = list(clf.labels)
    data = load_data(data_dir, in_memory=False).at_size(clf.input_size)
    fitted = []
    for scans in (False, True):
        idx, y = data.dev_rows(labels, scans)
        fitted += [onnx_logits(clf, data, idx), y, data.page_keys(idx)]
    if not len(fitted[1]):
        raise SystemExit(f"{data_dir}: no dev rows of engraved or symbolic sources to calibrate on")
    meta, report = calibrate_dev(*fitted)
    before = {k: clf.info.metadata.get(k) for k in ("temperature", "scan_temperature", "abstain_threshold")}
    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update(meta)
    if "scan_temperature" not in meta:
        props.pop("scan_temperature", None)  # one fitted on other data would not match this calibration
    props["calibration_command"] = command
    del proto.metadata_props[:]
    for k, v in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.part")
    os.close(fd)
    onnx.save(proto, tmp)
    os.replace(tmp, out)  # ``out`` may be ``model`` itself: never half-written
    report.update(model=str(model), out=str(out), test_views=clf.views, before=before)
    return report
