"""Row detection on generated pages: clean, skewed, noisy, unevenly lit, JPEG'd, and text-only."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from bytehoven_desktop.document import Document
from bytehoven_desktop.systems import box_iou, detect_systems, rotate
from fixtures import make_score_pdf, make_text_pdf


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    pdf = make_score_pdf(tmp_path_factory.mktemp("s") / "score.pdf", pages=1, systems_per_page=5)
    with Document(pdf) as d:
        return d.render(0, 150).gray


def test_clean_page_finds_every_grand_staff(page: np.ndarray) -> None:
    found = detect_systems(page)
    assert len(found.systems) == 5
    assert all(s.staff_count == 2 for s in found.systems)
    tops = [s.lines_box[1] for s in found.systems]
    assert tops == sorted(tops)
    # Boxes of neighbouring rows never overlap.
    for a, b in zip(found.systems, found.systems[1:]):
        assert a.box[3] <= b.box[1] + 1e-6
    assert 6 < found.metrics.interline < 20


@pytest.mark.parametrize("angle", [-3.0, -1.5, 2.0, 3.0])
def test_skew_up_to_three_degrees(page: np.ndarray, angle: float) -> None:
    skewed = rotate(page, angle)
    found = detect_systems(skewed)
    assert len(found.systems) == 5
    assert abs(found.skew_deg + angle) < 0.5  # rotating back by the same angle levels it
    for s in found.systems:
        x0, y0, x1, y1 = found.original_box(s)
        assert 0 <= x0 < x1 <= page.shape[1] and 0 <= y0 < y1 <= page.shape[0]


def test_noise_lighting_and_jpeg(page: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    h, w = page.shape
    light = np.linspace(0.55, 1.0, w, dtype=np.float32)[None, :] * np.linspace(0.8, 1.0, h, dtype=np.float32)[:, None]
    img = page.astype(np.float32) * light + rng.normal(0, 12, page.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 35])
    img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    assert len(detect_systems(img).systems) == 5


def test_text_only_page_has_no_rows(tmp_path: Path) -> None:
    pdf = make_text_pdf(tmp_path / "text.pdf")
    with Document(pdf) as d:
        assert detect_systems(d.render(0, 150).gray).systems == []


def test_blank_and_tiny_pages_have_no_rows() -> None:
    assert detect_systems(np.full((1000, 800), 255, np.uint8)).systems == []
    assert detect_systems(np.zeros((1000, 800), np.uint8)).systems == []
    assert detect_systems(np.full((10, 10), 255, np.uint8)).systems == []


def _staves_image(gaps: list[int], il: int = 10) -> np.ndarray:
    """A page of single staves with the given gaps (pixels) between them, plus a few notes."""
    img = np.full((1600, 1200), 255, np.uint8)
    y = 100
    rng = np.random.default_rng(0)
    for k in range(len(gaps) + 1):
        for j in range(5):
            cv2.line(img, (100, y + j * il), (1100, y + j * il), 0, 1)
        for x in rng.integers(150, 1050, 12):
            cv2.ellipse(img, (int(x), int(y + rng.integers(0, 9) * il // 2)), (6, 4), -20, 0, 360, 0, -1)
        y += 4 * il + (gaps[k] if k < len(gaps) else 0)
    return img


def test_evenly_spaced_lone_staves_are_rows_of_their_own() -> None:
    found = detect_systems(_staves_image([90] * 5))
    assert len(found.systems) == 6
    assert all(s.staff_count == 1 for s in found.systems)


def test_unjoined_grand_staves_pair_by_spacing(tmp_path: Path) -> None:
    # Old prints: no brace, broken barlines. The spacing (small inside a grand staff, large
    # between systems) still says which staves belong together.
    pdf = make_score_pdf(tmp_path / "s.pdf", pages=1, systems_per_page=3)
    with Document(pdf) as d:
        gray = d.render(0, 150).gray.copy()
    for s in detect_systems(gray).systems:
        a, b = s.staves
        gray[int(a.bottom) + 3: int(b.top) - 2, :] = 255
        gray[:, : int(s.lines_box[0]) + 2] = 255  # and the brace
    found = detect_systems(gray)
    assert [s.staff_count for s in found.systems] == [2, 2, 2]


def test_verovio_engraving_matches_its_own_system_boxes() -> None:
    music21 = pytest.importorskip("music21")
    pytest.importorskip("verovio")
    from bytehoven_desktop.training.engrave.verovio import RenderStyle, render_pages

    score = Path(music21.__file__).parent / "corpus" / "joplin" / "maple_leaf_rag.mxl"
    for rendered in render_pages(score, RenderStyle(), px_per_staff_space=10.0, pages=[1, 2]):
        found = detect_systems(rendered.gray)
        assert len(found.systems) == len(rendered.systems)
        for s, gt in zip(found.systems, rendered.systems):
            assert box_iou(s.lines_box, gt) > 0.8


def _covered(row: tuple, true: tuple) -> float:
    ix = max(0.0, min(row[2], true[2]) - max(row[0], true[0]))
    iy = max(0.0, min(row[3], true[3]) - max(row[1], true[1]))
    return ix * iy / ((true[2] - true[0]) * (true[3] - true[1]))


@pytest.mark.parametrize("curl_spaces, angle", [(1.0, 0.0), (-1.0, 0.0), (0.8, -1.2)])
def test_bent_page_keeps_every_grand_staff_whole(page: np.ndarray, curl_spaces: float, angle: float) -> None:
    """A page that bows by up to a staff space (a book lifted off the glass), also tilted: every
    grand staff is still one row, and each row holds its whole system (lines carried through the
    same warp)."""
    from bytehoven_desktop.training.scan_look import PageWarp

    clean = detect_systems(page)
    il = clean.metrics.interline
    h, w = page.shape
    warp = PageWarp(w, h, angle_deg=angle, curl_px=curl_spaces * il)
    found = detect_systems(warp.apply(page))
    assert len(found.systems) == 5
    assert all(s.staff_count == 2 for s in found.systems)
    truth = warp.boxes([s.lines_box for s in clean.systems])
    rows = [found.original_box(s) for s in found.systems]
    for row, true in zip(rows, truth):
        assert _covered(row, true) >= 0.97


def test_row_holds_ledger_lines_above_the_staff(page: np.ndarray) -> None:
    """A right hand high above the staff (five ledger lines and a note on the top one): the row
    reaches above it, and still not into the system above."""
    clean = detect_systems(page)
    il = clean.metrics.interline
    upper, target = clean.systems[1], clean.systems[2]
    img = page.copy()
    x = int((target.lines_box[0] + target.lines_box[2]) / 2)
    top_line = target.lines_box[1]
    for k in range(1, 6):
        y = int(round(top_line - k * il))
        cv2.line(img, (x - int(il), y), (x + int(il), y), 0, 2)
    highest = int(round(top_line - 5.5 * il))
    cv2.ellipse(img, (x, highest + int(il / 2)), (int(0.6 * il), int(0.45 * il)), -20, 0, 360, 0, -1)
    assert target.box[1] > highest  # the fixed margin alone would cut the note off
    found = detect_systems(img)
    assert len(found.systems) == 5
    row = found.systems[2].box
    assert row[1] <= highest
    assert row[1] >= upper.lines_box[3]  # never into the staff lines of the system above


def test_sideways_text_page_has_no_rows(tmp_path: Path) -> None:
    """The app turns a page without rows sideways to look again; text turned sideways is no score."""
    from bytehoven_desktop.pipeline import prepare_page

    pdf = make_text_pdf(tmp_path / "text.pdf", pages=2)
    with Document(pdf) as d:
        for i in range(d.page_count):
            prepared, _ = prepare_page(d, i, 40, 256)
            assert prepared.boxes == [] and prepared.turn == 0


def test_scan_look_carries_boxes_through_its_geometry() -> None:
    """A dot drawn on the clean page lies inside its box mapped through the warp."""
    from bytehoven_desktop.training.scan_look import PageWarp, scan_look

    clean = np.full((600, 400), 255, np.uint8)
    cv2.circle(clean, (320, 80), 4, 0, -1)
    warp = PageWarp(400, 600, angle_deg=2.5, curl_px=12.0)
    img = warp.apply(clean)
    ys, xs = np.nonzero(img < 128)
    (x0, y0, x1, y1), = warp.boxes([(316.0, 76.0, 324.0, 84.0)])
    assert x0 - 1 <= xs.min() and xs.max() <= x1 + 1 and y0 - 1 <= ys.min() and ys.max() <= y1 + 1
    look, _ = scan_look(clean, np.random.default_rng(3), dpi=150.0)
    assert look.shape == clean.shape and look.dtype == np.uint8
