"""A model file calibrated afresh on the dev rows of a dataset, its weights untouched.

``export`` calibrates a checkpoint as it turns it into a model; this does the same for a model whose
checkpoint is gone (a released file), e.g. to give it the scan temperature a newer app reads. The
logits come from ONNX Runtime, as the app computes them (the model's own test-time views), for the dev rows
of a built dataset or, with ``corpus``, for the dev groups of the corpus alone, engraved and cut as
``evaluate`` cuts the test groups (clean engravings and real scans, rows cropped as the app crops them:
no full build needed)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

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


def corpus_dev_logits(clf: Classifier, corpus: Path, work: Path, jobs: int = 2, limit: int | None = None,
                      engraver_limits: Mapping[str, int] | None = None) -> list:
    """``calibrate_dev``'s inputs from the dev groups of ``corpus`` (engravings, then real scans): for each,
    the rows' logits, labels and page keys (``document#page``)."""
    from .evaluate import held_out_rows

    labels = list(clf.labels)
    held, rows_by_task, _ = held_out_rows(corpus, work, "dev", *clf.input_size, jobs=jobs, limit=limit,
                                          engraver_limits=engraver_limits, scan_splits=("dev",))
    fitted: list = []
    for scans in (False, True):
        use = [t for t in held if (t.source.kind == "scan") == scans and t.source.composer in labels
               and t.key in rows_by_task and len(rows_by_task[t.key][0])]
        rows = [rows_by_task[t.key][0] for t in use]
        logits = clf.logits(np.concatenate(rows)) if rows else np.zeros((0, len(labels)), np.float32)
        y = np.array([labels.index(t.source.composer) for t, r in zip(use, rows) for _ in r], np.int64)
        pages = [f"{t.key}#{p}" for t in use for p in rows_by_task[t.key][1]]
        fitted += [logits, y, pages]
    return fitted


def recalibrate(model: Path, data_dir: Path | None, out: Path, command: str = "", threads: int | None = None,
                name: str | None = None, corpus: Path | None = None, jobs: int = 2,
                limit: int | None = None, engraver_limits: Mapping[str, int] | None = None) -> dict:
    """Fit the temperatures, the pool sharpness and the abstain threshold of ``model`` on the dev rows of
    ``data_dir`` (``calibration.calibrate_dev``) and write the model with that metadata (and ``name``,
    when given) to ``out``. With ``corpus``, on its dev groups instead, ``data_dir`` (default data/eval)
    being the work folder whose engravings are reused, as in ``evaluate``."""
    import onnx

    clf = Classifier(model, device="cpu", threads=threads, batch_size=64)
    labels = list(clf.labels)
    if corpus is not None:
        fitted = corpus_dev_logits(clf, corpus, data_dir or Path("data/eval"), jobs, limit, engraver_limits)
    elif data_dir is not None:
        data = load_data(data_dir, in_memory=False).at_size(clf.input_size)
        fitted = []
        for scans in (False, True):
            idx, y = data.dev_rows(labels, scans)
            fitted += [onnx_logits(clf, data, idx), y, data.page_keys(idx)]
    else:
        raise ValueError("recalibrate needs a dataset or a corpus")
    if not len(fitted[1]):
        raise SystemExit(f"{corpus or data_dir}: no dev rows of engraved or symbolic sources to calibrate on")
    meta, report = calibrate_dev(*fitted)
    before = {k: clf.info.metadata.get(k) for k in ("temperature", "scan_temperature", "pool_sharpness",
                                                    "abstain_threshold")}
    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update(meta)
    if "scan_temperature" not in meta:
        props.pop("scan_temperature", None)  # one fitted on other data would not match this calibration
    props["calibration_command"] = command
    if name:
        props["name"] = name
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
