"""``bytehoven evaluate``: the released model measured on works it has never seen.

Rows of the held-out split are cut from the corpus exactly as the app cuts them (same
detector, crop straight to the model's input size) and classified by the ONNX model
through the app's own ``Classifier``. Reported per row (top-1, top-3, macro-F1), per page
and per document (rows pooled as the app pools them, ``report.pool``), ECE before and after temperature
scaling, a confusion matrix (PNG): for all engraved sources, **per engraver** (verovio, LilyPond,
MuseScore engravings of the test scores, the corpus's other engraved PDFs) and for real scans (dev and
test groups). Engravings are clean here (no synthetic scan look): the scans measure that domain.

The sink rate measures the shortcut a model takes when it learns looks instead of styles: for each
composer, the share of its held-out scan rows given to the single most frequent wrong composer (v1
called 177 of 210 held-out Tchaikovsky scan rows Medtner). ``report.md`` has the tables.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from ..classifier import Classifier, softmax
from .calibration import ece, pooled_groups
from .dataset import ENGRAVER_KINDS, PDF_ENGRAVERS, Task, engrave_tasks, plan, run_task

SINK_TARGET = 0.15  # the bar: no wrong composer wins more than this share of another's scan rows


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


def held_out_rows(corpus: Path, work: Path, split: str, height: int, width: int, jobs: int = 2,
                  engravers: Sequence[str] = ("verovio", *PDF_ENGRAVERS), limit: int | None = None,
                  engraver_limits: Mapping[str, int] | None = None, scan_splits: Sequence[str] = ("dev", "test"),
                  ) -> tuple[list[Task], dict[str, tuple[np.ndarray, np.ndarray]], list]:
    """The tasks of ``split`` (and the real scans of ``scan_splits``), engraved into ``work`` and cut as the
    app cuts them: (tasks, {task key: (rows, page numbers)}, engraving failures)."""
    tasks, _ = plan(corpus, engravers=engravers, limit=limit, engraver_limits=engraver_limits)
    held = [t for t in tasks if (t.split == split and t.source.kind != "scan")
            or (t.source.kind == "scan" and t.split in scan_splits)]
    held, failures = engrave_tasks(held, work / "engraved", jobs)
    return held, _extract(held, work, height, width, jobs), failures


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
             labels: list[str], sharpness: float = 0.0) -> dict:
    """``probs`` calibrated; pages and documents pooled with the model's ``sharpness`` (``report.pool``)."""
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
        mp_, my = pooled_groups(probs, y, keys, sharpness)
        res[f"{name}s"] = int(len(my))
        res[f"{name}_ece"] = ece(mp_, my)  # of the breakdown a user reads for a page, a document
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


def sink_rates(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Per composer of ``y``: its rows, top-1, and the wrong composer given most of its rows (the sink)
    with the share of its rows it got; plus the largest such share over all composers."""
    per: dict[str, dict] = {}
    for c in np.unique(y):
        mine = pred[y == c]
        wrong = np.bincount(mine[mine != c], minlength=len(labels))
        sink = int(wrong.argmax()) if wrong.any() else None
        per[labels[c]] = {"rows": int(len(mine)), "row_top1": float((mine == c).mean()),
                          "sink": labels[sink] if sink is not None else None,
                          "sink_rows": int(wrong[sink]) if sink is not None else 0,
                          "sink_rate": float(wrong[sink] / len(mine)) if sink is not None else 0.0}
    worst = max(per, key=lambda k: per[k]["sink_rate"], default=None)
    return {"max_sink_rate": per[worst]["sink_rate"] if worst else 0.0, "worst_composer": worst,
            "worst_sink": per[worst]["sink"] if worst else None, "target": SINK_TARGET,
            "composers_over_target": sorted(k for k, v in per.items() if v["sink_rate"] > SINK_TARGET),
            "per_composer": per}


def subset_metrics(probs: np.ndarray, raw: np.ndarray, y: np.ndarray, pages: Sequence[str], docs: Sequence[str],
                   groups: Sequence[str], labels: list[str], order: Sequence[str] = ENGRAVER_KINDS,
                   sharpness: float = 0.0) -> dict:
    """``_metrics`` for the rows of each value of ``groups`` (an engraver per row), in ``order``."""
    groups = np.asarray(groups)
    pages, docs = np.asarray(pages), np.asarray(docs)
    out = {}
    for g in [g for g in order if g in set(groups.tolist())]:
        m = groups == g
        out[g] = _metrics(probs[m], raw[m], y[m], pages[m].tolist(), docs[m].tolist(), labels, sharpness)
    return out


def report_markdown(report: dict) -> str:
    """The accuracy table (rows / pages / documents, top-1 and top-3) and the sink rates."""
    scans = report.get("scan_splits", "dev + test")
    extra = "".join(f", {k.replace('_', ' ')} {report[k]}" for k in ("input", "test_views") if k in report)
    lines = [f"Model {report['model']['name']}{extra}, {report['split']} groups (scans: {scans} groups).", "",
             "| subset | rows | row top-1 | row top-3 | pages | page top-1 | page top-3 | documents | doc top-1 | doc top-3 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    eces, pooled_eces = [], []
    for name in ("engraved", *ENGRAVER_KINDS[:-1], "scans", "scans-test"):
        r = report.get(name)
        if not r or not r.get("rows"):
            continue
        pct = lambda k: f"{100 * r[k]:.1f} %" if k in r else "–"  # noqa: E731
        lines.append(f"| {name} | {r['rows']} | {pct('row_top1')} | {pct('row_top3')} | {r.get('pages', 0)} | "
                     f"{pct('page_top1')} | {pct('page_top3')} | {r.get('documents', 0)} | {pct('document_top1')} | "
                     f"{pct('document_top3')} |")
        if "ece_after" in r:
            eces.append(f"{name} {pct('ece_before')} → {pct('ece_after')}")
        if "page_ece" in r:
            pooled_eces.append(f"{name} {pct('page_ece')} / {pct('document_ece')}")
    if eces:
        lines += ["", "Row ECE before → after calibration: " + "; ".join(eces) + "."]
    if pooled_eces:
        lines += ["", f"Page / document ECE (pool sharpness {report.get('pool_sharpness', 0.0):g}): "
                  + "; ".join(pooled_eces) + "."]
    sink = report.get("sink")
    if sink:
        lines += ["", f"Sink rate (scan rows of a composer given to its most frequent wrong composer): max "
                      f"{100 * sink['max_sink_rate']:.1f} % ({sink['worst_composer']} → {sink['worst_sink']}); "
                      f"target ≤ {100 * sink['target']:.0f} %.", "",
                  "| composer | scan rows | row top-1 | sink | sink rate |", "|---|---:|---:|---|---:|"]
        for c, v in sorted(sink["per_composer"].items(), key=lambda kv: -kv[1]["sink_rate"]):
            lines.append(f"| {c} | {v['rows']} | {100 * v['row_top1']:.1f} % | {v['sink'] or '–'} | "
                         f"{100 * v['sink_rate']:.1f} % |")
    return "\n".join(lines) + "\n"


def evaluate(corpus: Path, model: Path | None, data: Path | None, work: Path, out: Path, split: str = "test",
             threads: int | None = None, jobs: int = 2, engravers: Sequence[str] = ("verovio", *PDF_ENGRAVERS),
             limit: int | None = None, engraver_limits: Mapping[str, int] | None = None) -> dict:
    """``data``: a dataset folder whose engravings are reused (it becomes the work folder); ``limit`` and
    ``engraver_limits`` choose the sources as ``bytehoven dataset`` does, so the held-out sources of
    a limited build are measured."""
    clf = Classifier(model, device="cpu", threads=threads, batch_size=64)
    labels = list(clf.labels)
    h, w = clf.input_size
    if data is not None:
        work = data
    held, rows_by_task, failures = held_out_rows(corpus, work, split, h, w, jobs, engravers, limit, engraver_limits)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": {"name": clf.info.name, "sha256": clf.info.sha256}, "split": split,
                    "temperature": clf.info.temperature, "scan_temperature": clf.info.scan_temperature,
                    "pool_sharpness": clf.info.pool_sharpness,
                    "engravers": list(engravers),
                    "engrave_failures": len(failures)}
    # Every row is classified once, though "scans-test" repeats rows of "scans".
    usable = [t for t in held if t.key in rows_by_task and t.source.composer in labels
              and len(rows_by_task[t.key][0])]
    logits_by_task: dict[str, np.ndarray] = {}
    if usable:
        raw_all = clf.logits(np.concatenate([rows_by_task[t.key][0] for t in usable]))
        ends = np.cumsum([len(rows_by_task[t.key][0]) for t in usable])
        logits_by_task = {t.key: part for t, part in zip(usable, np.split(raw_all, ends[:-1]))}
    # "scans-test": the scans of the split alone, whose calibration no dev scan has seen (the scan
    # temperature is fitted on dev scans, which "scans" holds too, there being few scans).
    for subset, keep in (("engraved", lambda t: t.split == split and t.source.kind != "scan"),
                         ("scans", lambda t: t.source.kind == "scan"),
                         ("scans-test", lambda t: t.source.kind == "scan" and t.split == split)):
        parts, ys, pages, docs, kinds = [], [], [], [], []
        for t in held:
            if not keep(t) or t.key not in logits_by_task:
                continue
            rows, pg = rows_by_task[t.key]
            parts.append(logits_by_task[t.key])
            ys.extend([labels.index(t.source.composer)] * len(rows))
            pages.extend(f"{t.key}#{p}" for p in pg)
            docs.extend([t.key] * len(rows))
            kinds.extend([t.engraver] * len(rows))
        if not parts:
            report[subset] = {"rows": 0}
            continue
        raw = np.concatenate(parts)
        y = np.array(ys)
        probs = clf.info.calibrated(raw, scanned=subset != "engraved")  # as the app calibrates a scanned page
        report[subset] = _metrics(probs, raw, y, pages, docs, labels, clf.info.pool_sharpness)
        if subset == "engraved":
            report.update(subset_metrics(probs, raw, y, pages, docs, kinds, labels, ENGRAVER_KINDS[:-1],
                                         clf.info.pool_sharpness))
        elif subset == "scans":
            report["sink"] = sink_rates(y, probs.argmax(1), labels)
        # The raw logits, so other aggregations or calibrations can be studied without rerunning.
        np.savez_compressed(out / f"logits-{subset}.npz", logits=raw, y=y, pages=np.array(pages), docs=np.array(docs),
                            engravers=np.array(kinds))
        confusion_png(y, probs.argmax(1), labels, out / f"confusion-{subset}.png",
                      f"{clf.info.name}: {subset}, {split} split, {len(y)} rows")
        print(f"[evaluate] {subset}: " + ", ".join(f"{k} {v:.4f}" for k, v in report[subset].items()
                                                     if isinstance(v, float)), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(report_markdown(report))
    print(report_markdown(report), flush=True)
    print(f"[evaluate] wrote {out / 'report.json'}", flush=True)
    return report


def evaluate_checkpoint(model: Path, data_dir: Path, out: Path, split: str = "test", views: int | None = None) -> dict:
    """A training checkpoint (or an ONNX model) measured on the held-out rows of a built dataset: per
    engraver, scans and the sink rate, as ``evaluate`` reports the released model, but without
    exporting (checkpoints uncalibrated; engraved rows without the synthetic scan look, as in
    ``evaluate``). The leave-one-engraver-out runs, the input-size pilots (a dataset serves any input
    size: its stored crops are resized) and test-time views (``views``) are compared this way, on dev."""
    from .train import RowData, evaluate_rows, load_data

    if model.suffix == ".onnx":
        from .recalibrate import onnx_logits

        clf = Classifier(model, device="cpu", batch_size=64, views=views)
        labels, size, name, views = list(clf.labels), clf.input_size, clf.info.name, clf.views

        def logits_of(data: RowData, idx: np.ndarray) -> np.ndarray:
            return onnx_logits(clf, data, idx)
    else:
        from .export import load_checkpoint

        net, state = load_checkpoint(model)
        labels, size, name, views = state["labels"], (state["height"], state["width"]), str(model), views or 1

        def logits_of(data: RowData, idx: np.ndarray) -> np.ndarray:
            return evaluate_rows(net, data, idx, labels, views=views)[1]
    data = load_data(data_dir, in_memory=False).at_size(size)
    # Choices made on dev see only dev scans; the test report has dev and test scans, as ``evaluate``.
    scan_splits = ("dev",) if split == "dev" else ("dev", "test")
    report: dict = {"model": {"name": name, "sha256": ""}, "split": split, "data": str(data_dir),
                    "input": f"{size[0]}x{size[1]}", "test_views": views, "scan_splits": " + ".join(scan_splits)}
    subsets = (("engraved", lambda m: m["split"] == split and m["kind"] != "scan" and m.get("scan_look", "0") != "1"),
               ("scans", lambda m: m["kind"] == "scan" and m["split"] in scan_splits))
    out.mkdir(parents=True, exist_ok=True)
    for subset, keep in subsets:
        idx = np.array([i for i, m in enumerate(data.meta) if keep(m) and m["composer"] in labels], np.int64)
        if not len(idx):
            report[subset] = {"rows": 0}
            continue
        raw = logits_of(data, idx)
        meta = [data.meta[i] for i in idx]
        y = np.array([labels.index(m["composer"]) for m in meta])
        docs, pages = data.document_keys(idx), data.page_keys(idx)
        probs = softmax(raw)
        report[subset] = _metrics(probs, raw, y, pages, docs, labels)
        if subset == "engraved":
            report.update(subset_metrics(probs, raw, y, pages, docs, [m.get("engraver", "verovio") for m in meta],
                                         labels, ENGRAVER_KINDS[:-1]))
        else:
            report["sink"] = sink_rates(y, probs.argmax(1), labels)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(report_markdown(report))
    print(report_markdown(report), flush=True)
    return report
