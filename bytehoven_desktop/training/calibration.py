"""Confidence calibration: temperature scaling, expected calibration error, abstain threshold."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

from ..classifier import softmax
from ..report import pool

# Fewer dev scan rows than this fit no temperature of their own: scans then share the engravings'.
MIN_SCAN_ROWS = 200


def _nll(logits: np.ndarray, y: np.ndarray, t: float, w: np.ndarray) -> float:
    z = logits / t
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-(w * logp[np.arange(len(y)), y]).sum())


def _golden_min(f: Callable[[float], float], lo: float, hi: float, iterations: int) -> float:
    """Where the unimodal ``f`` is least on [lo, hi] (golden-section search)."""
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(iterations):
        if f(a) < f(b):
            hi = b
        else:
            lo = a
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    return (lo + hi) / 2


def composer_weights(y: np.ndarray) -> np.ndarray:
    """Row weights under which every composer present counts alike (summing to 1)."""
    counts = np.bincount(y)
    w = 1.0 / counts[y]
    return w / w.sum()


def fit_temperature(logits: np.ndarray, y: np.ndarray, balanced: bool = True) -> float:
    """The temperature minimising dev negative log-likelihood (golden-section search on log t).

    ``balanced``: each composer's rows weigh alike. Dev rows are dominated by the composers with many
    dev works, and a model is not equally sure of every composer; the mix of composers a user opens
    is unknown, so none is let to set the temperature for the rest (the model card has what this was
    worth on v3.2)."""
    if len(y) == 0:
        return 1.0
    w = composer_weights(y) if balanced else np.full(len(y), 1.0 / len(y))
    return float(np.exp(_golden_min(lambda u: _nll(logits, y, float(np.exp(u)), w), np.log(0.05), np.log(20.0), 60)))


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top prediction (equal-width bins)."""
    if len(y) == 0:
        return 0.0
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(right[m].mean() - conf[m].mean())
    return float(total)


def pooled_groups(probs: np.ndarray, y: np.ndarray, keys: Sequence[str], sharpness: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by key (a page, a document), pooled as the app pools them: (probabilities, labels)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    mp = (np.stack([pool(probs[ix], sharpness) for ix in groups.values()]) if groups
          else np.zeros((0, probs.shape[1])))
    my = np.array([y[ix[0]] for ix in groups.values()], np.int64)
    return mp, my


def document_of(page_key: str) -> str:
    """The document key of a page key (``document#page``, as the dataset and ``evaluate`` write them)."""
    return page_key.rsplit("#", 1)[0]


def _pooled_nll(probs: np.ndarray, y: np.ndarray, keys: Sequence[str], sharpness: float) -> float:
    mp, my = pooled_groups(probs, y, keys, sharpness)
    return float(-np.log(np.maximum(mp[np.arange(len(my)), my], 1e-12)).mean())


def fit_pool_sharpness(probs: np.ndarray, y: np.ndarray, pages: Sequence[str]) -> float:
    """The ``report.pool`` sharpness (0..1) under which the pooled breakdowns of dev pages and of dev
    documents are best calibrated: the mean of their negative log-likelihoods, minimised by golden-section
    search. Rows' own calibration (the temperatures) comes first; this only says how much surer a page
    or a document of many rows may be than one row."""
    pages = list(pages)
    if len(set(pages)) < 20:
        return 0.0
    docs = [document_of(p) for p in pages]

    def loss(s: float) -> float:
        return _pooled_nll(probs, y, pages, s) + _pooled_nll(probs, y, docs, s)

    return float(_golden_min(loss, 0.0, 1.0, 30))


def abstain_threshold(probs: np.ndarray, y: np.ndarray, pages: Sequence[str], floor: float = 0.15,
                      sharpness: float = 0.0) -> float:
    """Lowest page confidence at which the page's answer is more likely right than wrong.

    Pages (their rows' calibrated probabilities pooled as the app pools them) are sorted by confidence; the
    threshold is where the accuracy of the pages just above it (a sliding window) reaches 50 %."""
    mp, my = pooled_groups(probs, y, pages, sharpness)
    if len(my) < 20:
        return 0.4
    conf = mp.max(axis=1)
    right = (mp.argmax(axis=1) == my).astype(np.float64)
    order = np.argsort(conf)
    conf, right = conf[order], right[order]
    win = max(10, len(conf) // 20)
    for i in range(0, len(conf) - win):
        if right[i: i + win].mean() >= 0.5:
            return float(max(floor, conf[i]))
    return float(max(floor, conf[-1]))


def calibrate_dev(logits: np.ndarray, y: np.ndarray, pages: Sequence[str], scan_logits: np.ndarray,
                  scan_y: np.ndarray, scan_pages: Sequence[str], min_scan_rows: int | None = None
                  ) -> tuple[dict[str, str], dict]:
    """The calibration a model's metadata carries, fitted on dev (composers weighted alike,
    ``fit_temperature``): ``temperature`` on the rows of engraved (born-digital) pages,
    ``scan_temperature`` on the rows of real scans when there are at
    least ``min_scan_rows`` of them (the app knows a scanned page, ``document.PageImage.scanned``, and a
    model is not equally sure of both looks: one temperature cannot fit both), then ``pool_sharpness`` on
    every dev page and document, and the abstain threshold on every dev page, each calibrated and pooled
    as the app does it. Returns (metadata, report)."""
    t = fit_temperature(logits, y)
    probs = softmax(logits / t)
    meta = {"temperature": f"{t:.4f}"}
    report: dict = {"dev_rows": int(len(y)), "dev_row_top1": float((probs.argmax(1) == y).mean()) if len(y) else 0.0,
                    "temperature": t, "ece_before": ece(softmax(logits), y) if len(y) else 0.0,
                    "ece_after": ece(probs, y)}
    all_probs, all_y, all_pages = probs, y, list(pages)
    if len(scan_y) >= (MIN_SCAN_ROWS if min_scan_rows is None else min_scan_rows):
        ts = fit_temperature(scan_logits, scan_y)
        s_probs = softmax(scan_logits / ts)
        meta["scan_temperature"] = f"{ts:.4f}"
        report.update(dev_scan_rows=int(len(scan_y)), scan_temperature=ts,
                      scan_ece_before=ece(softmax(scan_logits), scan_y),
                      scan_ece_with_engraved_temperature=ece(softmax(scan_logits / t), scan_y),
                      scan_ece_after=ece(s_probs, scan_y))
        all_probs, all_y = np.concatenate([probs, s_probs]), np.concatenate([y, scan_y])
        all_pages += list(scan_pages)
    sharp = fit_pool_sharpness(all_probs, all_y, all_pages)
    meta["pool_sharpness"] = f"{sharp:.4f}"
    docs = [document_of(p) for p in all_pages]
    report.update(pool_sharpness=sharp,
                  dev_page_ece_before=ece(*pooled_groups(all_probs, all_y, all_pages)),
                  dev_page_ece_after=ece(*pooled_groups(all_probs, all_y, all_pages, sharp)),
                  dev_document_ece_before=ece(*pooled_groups(all_probs, all_y, docs)),
                  dev_document_ece_after=ece(*pooled_groups(all_probs, all_y, docs, sharp)))
    thr = abstain_threshold(all_probs, all_y, all_pages, sharpness=sharp)
    meta["abstain_threshold"] = f"{thr:.4f}"
    report["abstain_threshold"] = thr
    return meta, report
