"""Colours, the bar chart, legend, banner, overlays and the About text, drawn off screen."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage, QPainter

from bytehoven_desktop.gui.about import about_html
from bytehoven_desktop.gui.banner import Banner
from bytehoven_desktop.gui.breakdown import Bar, BreakdownChart, row_bars, summary_bars, summary_message
from bytehoven_desktop.gui.colors import PALETTE, composer_color, display_name, heatmap_image, text_color_on
from bytehoven_desktop.gui.legend import LegendWidget
from bytehoven_desktop.gui.overlays import paint_rows
from bytehoven_desktop.gui.thumbnails import page_caption
from bytehoven_desktop.report import PageResult, Summary, SystemResult

CORPUS_LABELS = ("bach", "beethoven", "brahms", "chopin", "grieg", "liszt", "mozart", "haydn", "scarlatti", "schumann",
                 "debussy", "joplin", "bach_cpe", "kozeluch", "schubert", "czerny", "tchaikovsky", "medtner", "handel",
                 "paderewski")


def test_every_corpus_composer_has_its_own_fixed_colour() -> None:
    assert set(CORPUS_LABELS) <= set(PALETTE)
    colors = [composer_color(c).name() for c in CORPUS_LABELS]
    assert len(set(colors)) == len(colors)
    assert composer_color("chopin") == QColor(PALETTE["chopin"])  # fixed, not by label order
    assert composer_color("rachmaninoff") == composer_color("rachmaninoff")  # unknown: stable
    assert composer_color(None).name() not in colors  # no composer: neutral grey


def test_display_names() -> None:
    assert display_name("bach_cpe") == "C. P. E. Bach"
    assert display_name("chopin") == "Chopin"
    assert display_name("some_new_one") == "Some New One"
    assert display_name(None) == "—"
    assert text_color_on(QColor("#ffffff")) == QColor("#000000")
    assert text_color_on(QColor("#0067a5")) == QColor("#ffffff")


def test_heatmap_image_is_transparent_where_the_map_is_weak() -> None:
    cam = np.zeros((8, 20), np.float32)
    cam[:, 10:] = 1.0
    img = heatmap_image(cam)
    assert (img.width(), img.height()) == (20, 8)
    assert img.pixelColor(2, 4).alpha() == 0
    strong = img.pixelColor(15, 4)
    assert strong.alpha() > 100 and strong.red() > 200  # the bright end of the ramp


def _summary(reason: str | None = None) -> Summary:
    composers = {"chopin": 0.6, "bach": 0.25, "mozart": 0.1, "liszt": 0.05}
    return Summary("chopin" if reason is None else None, 0.6 if reason != "no music" else None, "chopin",
                   composers if reason != "no music" else {}, {"chopin": 4, "bach": 1} if reason != "no music" else {},
                   5 if reason != "no music" else 0, reason)


def test_summary_bars_and_messages() -> None:
    bars = summary_bars(_summary(), k=2)
    assert [b.composer for b in bars] == ["chopin", "bach", None]  # the rest as "others"
    assert bars[0].count == 4 and bars[2].value == pytest.approx(0.15)
    assert summary_message(_summary()) is None
    assert summary_message(_summary("no music")) == "No music found on this page."
    assert "Uncertain" in summary_message(_summary("uncertain")) and "Chopin" in summary_message(_summary("uncertain"))
    system = SystemResult((0, 0, 10, 10), np.array([0.1, 0.5, 0.25, 0.15]), ["a", "b", "c", "d"])
    assert [b.composer for b in row_bars(system, 3)] == ["b", "c", "d"]


def test_chart_paints_bars_in_composer_colours(qtbot) -> None:
    chart = BreakdownChart()
    qtbot.addWidget(chart)
    chart.resize(320, 120)
    chart.set_data([Bar("chopin", 1.0, 3), Bar("bach", 0.5, 1)], None)
    assert chart.heightForWidth(320) >= 2 * 24
    img = chart.grab().toImage()
    colors = {img.pixelColor(x, y).name() for x in range(0, img.width(), 2) for y in range(0, img.height(), 2)}
    assert PALETTE["chopin"] in colors and PALETTE["bach"] in colors
    chart.set_data([], "No music found on this page.")
    assert chart.heightForWidth(320) > 0  # the words take room: they are shown, not hidden


def test_legend_wraps_to_its_width(qtbot) -> None:
    legend = LegendWidget()
    qtbot.addWidget(legend)
    legend.set_labels(CORPUS_LABELS)
    assert legend.heightForWidth(200) > legend.heightForWidth(800) > 0
    assert "Chopin" in legend.toolTip()


def test_banner_kinds_and_action(qtbot) -> None:
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show()
    hits: list[int] = []
    banner.show_message("warning", "Model missing", "Choose…", lambda: hits.append(1))
    assert banner.isVisible() and banner.kind == "warning" and banner.message() == "Model missing"
    banner.button.click()
    assert hits == [1]
    banner.show_message("info", "Just so you know")
    assert banner.button.isHidden()
    banner.close_button.click()
    assert not banner.isVisible() and banner.message() == ""


def test_rows_are_tinted_and_outlined_in_their_colour() -> None:
    img = QImage(200, 100, QImage.Format.Format_RGB32)
    img.fill(QColor("white"))
    labels = ["bach", "chopin"]
    systems = [SystemResult((10, 10, 90, 40), np.array([0.1, 0.9]), labels),
               SystemResult((10, 50, 90, 90), np.array([0.8, 0.2]), labels)]
    p = QPainter(img)
    paint_rows(p, systems, 2.0, QPointF(0, 0), label_px=0)
    p.end()
    edge = img.pixelColor(20, 20)  # the top edge of row 1 at scale 2
    inside = img.pixelColor(100, 50)
    assert edge.green() > edge.red()  # chopin's green
    assert inside != QColor("white") and inside.green() > inside.red()  # tinted
    assert img.pixelColor(199, 99) == QColor("white")


def test_thumbnail_captions() -> None:
    assert page_caption(None) == ("…", None)
    ok = PageResult(1, [], _summary())
    assert page_caption(ok) == ("Chopin", "chopin")
    assert page_caption(PageResult(1, [], _summary("no music"))) == ("no music", None)
    assert page_caption(PageResult(1, [], _summary("uncertain")))[0] == "uncertain (Chopin?)"
    assert page_caption(PageResult(1, [], _summary(), error="boom"))[0] == "error"


def test_about_text_names_model_device_and_credits(tiny_model_classifier) -> None:
    text = about_html(tiny_model_classifier, None, None)
    assert "tiny-test-model" in text and "CPU" in text and "ONNX Runtime" in text and "PyMuPDF" in text
    assert "not loaded" in about_html(None, None, None) or "No model" in about_html(None, None, None)
    assert "file not found" in about_html(None, "x.onnx: model file not found", None)


@pytest.fixture
def tiny_model_classifier(tmp_path):  # type: ignore[no-untyped-def]
    from bytehoven_desktop.classifier import get_classifier
    from model_factory import make_model

    return get_classifier(make_model(tmp_path / "m.onnx"), "cpu", 1, 4)


def test_theme_follows_the_system_scheme(qapp) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QPalette

    from bytehoven_desktop.gui.theme import apply_theme, is_dark

    hints = QGuiApplication.styleHints()
    apply_theme(qapp, "dark")
    assert is_dark() and qapp.palette().color(QPalette.ColorRole.Window).lightness() < 100
    apply_theme(qapp, "light")
    assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 150
    apply_theme(qapp, "system")
    try:
        hints.setColorScheme(Qt.ColorScheme.Dark)  # what the desktop does when the user switches
        qapp.processEvents()
        if hints.colorScheme() == Qt.ColorScheme.Dark:  # a platform that lets the scheme be set
            assert qapp.palette().color(QPalette.ColorRole.Window).lightness() < 100
        hints.setColorScheme(Qt.ColorScheme.Light)
        qapp.processEvents()
        if hints.colorScheme() == Qt.ColorScheme.Light:
            assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 150
    finally:
        hints.unsetColorScheme()
        apply_theme(qapp, "light")
