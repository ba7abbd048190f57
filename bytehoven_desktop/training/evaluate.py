"""``bytehoven evaluate``: the released model measured on works it has never seen.

Rows of the held-out split are cut from the corpus exactly as the app cuts them (same
detector, crop straight to the model's input size) and classified by the ONNX model
through the app's own ``Classifier``. Reported per row (top-1, top-3, macro-F1), per page
and per document (rows pooled as the app pools them, ``report.pool``), ECE before and after temperature scaling,
a confusion matrix (PNG), separately for engraved sources and for real scans.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import cv2
import numpy as np

from ..classifier import Classifier, softmax
from .calibration import ece, pooled_groups
from .dataset import Task, plan, run_task


def _extract(tasks: list[Task], work: Path, height: int, width: int, jobs: int) -> dict[str, np.ndarray]:
    parts = work / f"parts-{height}x{width}"
    parts.mkdir(parents=True, exist_ok=True)
    with mp.get_context("spawn").Pool(jobs) as pool:
        list(pool.imap_unordered(run_task, [(t, parts, height, width) for t in tasks]))
    out = {}
    for t in tasks:
        p = parts / f"{t.key}.npz"
        if p.exists():
            with np.load(p) as z:
                out[t.key] = (z["rows"].copy(), z["pages"].copy())
    return out


def macro_f1(y: np.ndarray, pred: np.ndarray, n: int) -> float:
    f1s = []
    for c in range(n):
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        if tp + fn == 0:
            continue  # composer absent from this split
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def _metrics(probs: np.ndarray, raw: np.ndarray, y: np.ndarray, page_key: list[str], doc_key: list[str],
             labels: list[str]) -> dict:
    n = len(labels)
    res: dict = {"rows": int(len(y))}
    if not len(y):
        return res
    top3 = np.argsort(-probs, axis=1)[:, :3]
    res["row_top1"] = float((probs.argmax(1) == y).mean())
    res["row_top3"] = float((top3 == y[:, None]).any(1).mean())
    res["row_macro_f1"] = macro_f1(y, probs.argmax(1), n)
    res["ece_before"] = ece(softmax(raw), y)
    res["ece_after"] = ece(probs, y)
    for name, keys in (("page", page_key), ("document", doc_key)):
        mp_, my = pooled_groups(probs, y, keys)
        res[f"{name}s"] = int(len(my))
        res[f"{name}_top1"] = float((mp_.argmax(1) == my).mean())
        res[f"{name}_top3"] = float((np.argsort(-mp_, 1)[:, :3] == my[:, None]).any(1).mean())
        res[f"{name}_macro_f1"] = macro_f1(my, mp_.argmax(1), n)
    per = {}
    for c, lab in enumerate(labels):
        m = y == c
        if m.any():
            per[lab] = {"rows": int(m.sum()), "row_top1": float((probs[m].argmax(1) == c).mean())}
    res["per_composer"] = per
    return res


def confusion_png(y: np.ndarray, pred: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a heat map with counts (drawn with OpenCV)."""
    n = len(labels)
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (y, pred), 1)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    cell, left, top = 44, 130, 150
    img = np.full((top + n * cell + 20, left + n * cell + 20, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (10, 24), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        for j in range(n):
            v = norm[i, j]
            color = tuple(int(255 - v * c) for c in (120, 200, 255))  # white → dark red
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell, y0 + cell), color, -1)
            if cm[i, j]:
                cv2.putText(img, str(cm[i, j]), (x0 + 4, y0 + 27), font, 0.4,
                            (255, 255, 255) if v > 0.5 else (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, labels[i], (8, top + i * cell + 27), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for j in range(n):
        org = (left + j * cell + 28, top - 6)
        text = np.full((cell, 140, 3), 255, np.uint8)
        cv2.putText(text, labels[j], (2, 28), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        rot = cv2.rotate(text, cv2.ROTATE_90_COUNTERCLOCKWISE)
        h = rot.shape[0]
        img[org[1] - h: org[1], org[0] - cell + 10: org[0] + 10] = np.minimum(
            img[org[1] - h: org[1], org[0] - cell + 10: org[0] + 10], rot)
    cv2.putText(img, "true (rows) / predicted (columns)", (10, 48), font, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def evaluate(corpus: Path, model: Path | None, data: Path | None, work: Path, out: Path, split: str = "test",
             threads: int | None = None, jobs: int = 2) -> dict:
    clf = Classifier(model, device="cpu", threads=threads, batch_size=64)
    labels = list(clf.labels)
    h, w = clf.input_size
    tasks, _ = plan(corpus)
    held = [t for t in tasks if t.split == split or (t.source.kind == "scan" and t.split in ("dev", "test"))]
    rows_by_task = _extract(held, work, h, w, jobs)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": {"name": clf.info.name, "sha256": clf.info.sha256}, "split": split,
                    "temperature": clf.info.temperature}
    for subset, keep in (("engraved", lambda t: t.split == split and t.source.kind != "scan"),
                         ("scans", lambda t: t.source.kind == "scan")):
        xs, ys, pages, docs = [], [], [], []
        for t in held:
            if not keep(t) or t.key not in rows_by_task or t.source.composer not in labels:
                continue
            rows, pg = rows_by_task[t.key]
            if not len(rows):
                continue
            xs.append(rows)
            ys.extend([labels.index(t.source.composer)] * len(rows))
            pages.extend(f"{t.key}#{p}" for p in pg)
            docs.extend([t.key] * len(rows))
        if not xs:
            report[subset] = {"rows": 0}
            continue
        x = np.concatenate(xs)
        y = np.array(ys)
        raw = clf.logits(x)
        probs = softmax(raw / clf.info.temperature)
        report[subset] = _metrics(probs, raw, y, pages, docs, labels)
        # The raw logits, so other aggregations or calibrations can be studied without rerunning.
        np.savez_compressed(out / f"logits-{subset}.npz", logits=raw, y=y, pages=np.array(pages), docs=np.array(docs))
        confusion_png(y, probs.argmax(1), labels, out / f"confusion-{subset}.png",
                      f"{clf.info.name}: {subset}, {split} split, {len(y)} rows")
        print(f"[evaluate] {subset}: " + ", ".join(f"{k} {v:.4f}" for k, v in report[subset].items()
                                                     if isinstance(v, float)), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"[evaluate] wrote {out / 'report.json'}", flush=True)
    return report
