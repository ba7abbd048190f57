"""Results per row, page and document; aggregation and the JSON/CSV forms users get.

A page or document composer is the top of its rows' *pooled* probabilities (see
``pool``). It is withheld (``composer = None``) with a reason when there is no music, or when
that pooled probability is below the abstain threshold (calibrated on dev data and stored in
the model).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .document import DAMAGED

NO_MUSIC = "no music"
UNCERTAIN = "uncertain"
DEFAULT_ABSTAIN_THRESHOLD = 0.4


@dataclass
class SystemResult:
    bbox: tuple[float, float, float, float]  # page coordinates (points), x0, y0, x1, y1
    probs: np.ndarray  # per composer, in label order
    labels: Sequence[str]
    staves: int = 2

    @property
    def top(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def composer(self) -> str:
        return self.labels[self.top]

    @property
    def confidence(self) -> float:
        return float(self.probs[self.top])

    def ranked(self, k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.probs)[:k]
        return [(self.labels[i], float(self.probs[i])) for i in order]

    def to_json(self) -> dict[str, Any]:
        return {
            "bbox": [round(float(v), 2) for v in self.bbox],
            "composer": self.composer,
            "confidence": round(self.confidence, 5),
            "composers": _prob_dict(self.labels, self.probs),
            "staves": self.staves,
        }


@dataclass(frozen=True)
class Summary:
    """Aggregate of some rows: what a page or a document reports."""

    composer: str | None
    confidence: float | None
    best_guess: str | None
    composers: dict[str, float]  # pooled probability per composer (sums to 1)
    wins: dict[str, int]  # rows won per composer
    rows: int
    reason: str | None  # why composer is None

    @property
    def abstained(self) -> bool:
        return self.composer is None


POOL_FLOOR = 1e-6  # one row's near-zero probability must not veto a composer outright


def pool(probs: np.ndarray, sharpness: float = 0.0) -> np.ndarray:
    """Combine rows' probability vectors (N x composers) into one: the normalised geometric mean,
    its log scaled by N ** ``sharpness``.

    Rows are separate evidence about one composer, so their log-probabilities add up (the
    mean keeps the result as sharp as a typical row, not N times sharper). Measured on the
    held-out test groups with the v1 model, pages were right 43.4 % of the time against
    38.2 % with the arithmetic mean, documents 50.8 % against 47.0 %.
    ``sharpness`` (the model's ``pool_sharpness``, fitted on dev pages and documents) lies between
    the mean (0: a page of many rows as sure as one row, which leaves pages and documents
    under-confident) and the full product (1: rows as independent evidence, which they are not: the
    rows of one piece share its engraving and its passages). It does not change which composer wins.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or not len(probs):
        raise ValueError("pool() needs a non-empty N x composers array")
    logp = np.log(np.maximum(probs, POOL_FLOOR)).mean(axis=0) * len(probs) ** sharpness
    e = np.exp(logp - logp.max())
    return e / e.sum()


def summarize(rows: Iterable[SystemResult], labels: Sequence[str], threshold: float,
              sharpness: float = 0.0) -> Summary:
    """Rows pooled (``pool``) into a page's or a document's breakdown; uncertain below ``threshold``."""
    rows = list(rows)
    if not rows:
        return Summary(None, None, None, {}, {}, 0, NO_MUSIC)
    probs = np.stack([r.probs for r in rows])
    pooled = pool(probs, sharpness)
    top = int(np.argmax(pooled))
    wins_arr = np.bincount(probs.argmax(axis=1), minlength=len(labels))
    wins = {labels[i]: int(n) for i, n in enumerate(wins_arr) if n}
    conf = float(pooled[top])
    composer: str | None = labels[top]
    reason = None
    if conf < threshold:
        composer, reason = None, UNCERTAIN
    return Summary(composer, conf, labels[top], _prob_dict(labels, pooled), wins, len(rows), reason)


@dataclass
class PageResult:
    page: int  # 1-based
    systems: list[SystemResult]
    summary: Summary
    width: float = 0.0  # page size in points
    height: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        """MuPDF could not read this page's content (missing from a cut file, a broken stream...)."""
        return self.error is not None and DAMAGED in self.error

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "page": self.page,
            "composer": s.composer,
            "confidence": _round(s.confidence),
            "composers": s.composers,
            "best_guess": s.best_guess,
            "reason": s.reason if self.error is None else "error",
            "rows_won": s.wins,
            "size": [round(self.width, 2), round(self.height, 2)],
            "error": self.error,
            "damaged": self.damaged,
            "notes": self.notes,
            "systems": [r.to_json() for r in self.systems],
        }


@dataclass
class DocumentResult:
    path: str
    sha256: str | None
    pages: int
    page_results: list[PageResult]
    summary: Summary
    device: str
    model_name: str | None
    model_sha256: str | None
    error: str | None = None
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def damaged_pages(self) -> list[int]:
        """Pages (1-based) of those analysed that MuPDF could not read: lost to a damaged file."""
        return [p.page for p in self.page_results if p.damaged]

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "path": self.path,
            "sha256": self.sha256,
            "pages": self.pages,
            "composer": s.composer,
            "confidence": _round(s.confidence),
            "composers": s.composers,
            "best_guess": s.best_guess,
            "reason": s.reason if self.error is None else "error",
            "rows": s.rows,
            "rows_won": s.wins,
            "device": self.device,
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "error": self.error,
            "damaged_pages": self.damaged_pages,
            "notices": self.notices,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "page_results": [p.to_json() for p in self.page_results],
        }


def document_summary(pages: Iterable[PageResult], labels: Sequence[str], threshold: float,
                     sharpness: float = 0.0) -> Summary:
    return summarize((r for p in pages for r in p.systems), labels, threshold, sharpness)


def damaged_pages_notice(damaged: list[int], analysed: int) -> str:
    """The notice of a document some of whose pages were lost: how many, and which."""
    which = ", ".join(str(n) for n in damaged[:20]) + (", …" if len(damaged) > 20 else "")
    return (f"{len(damaged)} of {analysed} pages {'is' if len(damaged) == 1 else 'are'} damaged and could not be "
            f"analysed (page{'s' if len(damaged) > 1 else ''} {which})")


def error_result(path: str, message: str, device: str = "", model_name: str | None = None,
                 model_sha256: str | None = None, sha256: str | None = None, pages: int = 0) -> DocumentResult:
    """A document that could not be analysed: kept in the report with its reason."""
    summary = Summary(None, None, None, {}, {}, 0, "error")
    return DocumentResult(path, sha256, pages, [], summary, device, model_name, model_sha256, error=message)


def _summary_from_json(d: dict[str, Any], rows: int) -> Summary:
    return Summary(d.get("composer"), d.get("confidence"), d.get("best_guess"), dict(d.get("composers") or {}),
                   dict(d.get("rows_won") or {}), rows, d.get("reason"))


def document_from_json(doc: dict[str, Any]) -> DocumentResult:
    """A DocumentResult back from its JSON form (a stored result), as ``to_json`` wrote it.

    Probabilities come back as rounded in the JSON (5 decimals); the labels are the order of each
    ``composers`` object, which is the model's label order."""
    pages = []
    for p in doc.get("page_results") or []:
        systems = []
        for s in p.get("systems") or []:
            labels = list(s["composers"])
            probs = np.array([s["composers"][k] for k in labels], dtype=np.float64)
            systems.append(SystemResult(tuple(s["bbox"]), probs, labels, int(s.get("staves", 2))))
        summary = _summary_from_json(p, len(systems))
        if p.get("error"):
            summary = Summary(None, None, None, {}, {}, 0, "error")
        w, h = (p.get("size") or [0.0, 0.0])[:2]
        pages.append(PageResult(int(p["page"]), systems, summary, float(w), float(h), p.get("error"),
                                list(p.get("notes") or [])))
    model = doc.get("model") or {}
    return DocumentResult(doc.get("path") or "", doc.get("sha256"), int(doc.get("pages") or 0), pages,
                          _summary_from_json(doc, int(doc.get("rows") or 0)), doc.get("device") or "",
                          model.get("name"), model.get("sha256"), doc.get("error"), list(doc.get("notices") or []),
                          float(doc.get("seconds") or 0.0), bool(doc.get("cancelled")))


CSV_FIELDS = ("path", "pages", "rows", "composer", "confidence", "best_guess", "reason", "device", "model",
              "error", "damaged_pages")


def csv_row(doc: dict[str, Any], labels: Sequence[str] = ()) -> dict[str, Any]:
    """One flat CSV row from a document's JSON form, with a ``p_<composer>`` column per label."""
    row = {
        "path": doc.get("path"),
        "pages": doc.get("pages"),
        "rows": doc.get("rows"),
        "composer": doc.get("composer") or "",
        "confidence": "" if doc.get("confidence") is None else doc["confidence"],
        "best_guess": doc.get("best_guess") or "",
        "reason": doc.get("reason") or "",
        "device": doc.get("device"),
        "model": (doc.get("model") or {}).get("name"),
        "error": doc.get("error") or "",
        # Pages lost to a damaged file, space-separated: a spreadsheet filter finds partial results.
        "damaged_pages": " ".join(str(n) for n in doc.get("damaged_pages") or ()),
    }
    for c in labels:
        row[f"p_{c}"] = doc.get("composers", {}).get(c, "")
    return row


def to_csv(docs: Sequence[dict[str, Any]], labels: Sequence[str] = ()) -> str:
    """Documents as CSV: one line per document, a column per composer's pooled probability."""
    labels = list(labels) or sorted({k for d in docs for k in d.get("composers", {})})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS) + [f"p_{c}" for c in labels])
    writer.writeheader()
    for d in docs:
        writer.writerow(csv_row(d, labels))
    return buf.getvalue()


# Characters json.dumps(ensure_ascii=False) leaves raw but that must not be: lone surrogates
# (a Linux file name that is not UTF-8 cannot be written as UTF-8), DEL and C1 controls (a
# terminal may act on them) and U+2028/2029 (str.splitlines() breaks a JSON line on them).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def dumps(doc: dict[str, Any]) -> str:
    """A document as one JSON line. File names are data: never interpreted, only escaped.

    Such characters only occur inside JSON strings, so escaping them as \\uXXXX keeps the value:
    ``json.loads`` gives back the exact name (``os.fsencode`` the exact bytes)."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _prob_dict(labels: Sequence[str], probs: np.ndarray) -> dict[str, float]:
    return {lab: round(float(p), 5) for lab, p in zip(labels, probs)}


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 5)
