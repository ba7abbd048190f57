"""The synthetic score builder (tests/fixtures.py) gives what the other tests count on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bytehoven_desktop.document import Document, DocumentError
from bytehoven_desktop.systems import detect_systems
from fixtures import make_corrupt_pdf, make_encrypted_pdf, make_score_pdf, make_score_png, make_text_pdf


@pytest.mark.parametrize("systems", [1, 3, 5, 8])
def test_score_pdf_systems_are_detected_exactly(tmp_path: Path, systems: int) -> None:
    path = make_score_pdf(tmp_path / "s.pdf", pages=2, systems_per_page=systems, seed=systems)
    with Document(path) as doc:
        assert doc.page_count == 2
        for i in range(doc.page_count):
            found = detect_systems(doc.render(i, 150).gray)
            assert len(found.systems) == systems
            assert all(s.staff_count == 2 for s in found.systems)  # grand staves, joined


def test_score_pdf_is_deterministic(tmp_path: Path) -> None:
    a = make_score_pdf(tmp_path / "a.pdf", pages=1, seed=7)
    b = make_score_pdf(tmp_path / "b.pdf", pages=1, seed=7)
    with Document(a) as da, Document(b) as db:
        assert (da.render(0, 72).gray == db.render(0, 72).gray).all()


def test_score_png_is_a_scan_with_systems(tmp_path: Path) -> None:
    path = make_score_png(tmp_path / "scan.png", systems=4)
    with Document(path) as doc:
        assert doc.kind == "image"
        assert len(detect_systems(doc.render(0, 150).gray).systems) == 4


def test_text_pdf_has_no_music(tmp_path: Path) -> None:
    with Document(make_text_pdf(tmp_path / "t.pdf")) as doc:
        assert detect_systems(doc.render(0, 150).gray).systems == []


def test_corrupt_and_encrypted_pdfs_are_refused_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="damaged PDF"):
        Document(make_corrupt_pdf(tmp_path / "bad.pdf"))
    with pytest.raises(DocumentError, match="encrypted"):
        Document(make_encrypted_pdf(tmp_path / "locked.pdf"))


def test_rejects_impossible_layouts(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_score_pdf(tmp_path / "x.pdf", systems_per_page=12)
