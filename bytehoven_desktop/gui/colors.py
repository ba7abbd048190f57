"""One fixed colour per composer id, their display names, and the activation-map colour ramp.

Colours are fixed (not assigned in label order) so that Chopin is the same green in every
document, every model and every screenshot. They follow Kelly's colours of maximum contrast,
re-ordered so the composers most often confused have clearly different hues."""

from __future__ import annotations

import zlib

import numpy as np
from PySide6.QtGui import QColor, QImage

PALETTE: dict[str, str] = {
    "bach": "#0067a5",
    "beethoven": "#be0032",
    "chopin": "#008856",
    "mozart": "#f38400",
    "liszt": "#875692",
    "brahms": "#882d17",
    "debussy": "#36a9d6",
    "schumann": "#e68fac",
    "haydn": "#b59f55",
    "scarlatti": "#2b3d26",
    "joplin": "#8db600",
    "grieg": "#00a5a5",
    "bach_cpe": "#604e97",
    "kozeluch": "#f99379",
    "schubert": "#b3446c",
    "czerny": "#654522",
    "tchaikovsky": "#e25822",
    "medtner": "#5a6f8c",
    "handel": "#d4a900",
    "paderewski": "#c05ad0",
}

# For ids the palette does not know (a future model): picked by a stable hash of the id.
EXTRA = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1f78b4", "#b2182b")

# Rows and pages without a composer ("uncertain", "no music", errors).
NEUTRAL = "#8a8f98"

NAMES: dict[str, str] = {
    "bach": "J. S. Bach",
    "bach_cpe": "C. P. E. Bach",
    "kozeluch": "Koželuch",
}


def composer_color(composer: str | None) -> QColor:
    """The composer's colour; grey for None (no composer named)."""
    if not composer:
        return QColor(NEUTRAL)
    hex_ = PALETTE.get(composer)
    if hex_ is None:
        hex_ = EXTRA[zlib.crc32(composer.encode("utf-8")) % len(EXTRA)]
    return QColor(hex_)


def display_name(composer: str | None) -> str:
    """How a composer id is shown to people: 'bach_cpe' -> 'C. P. E. Bach', 'chopin' -> 'Chopin'."""
    if not composer:
        return "—"
    if composer in NAMES:
        return NAMES[composer]
    return " ".join(part.capitalize() for part in composer.replace("_", " ").split())


def text_color_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background`` (relative luminance)."""
    r, g, b = background.redF(), background.greenF(), background.blueF()
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return QColor("#000000") if lum > 0.55 else QColor("#ffffff")


# A perceptually ordered ramp (dark purple -> orange -> yellow, like matplotlib's 'inferno'),
# sampled at a few stops and interpolated: readable on white paper and for colour-blind users.
_RAMP = np.array([
    (0.00, 0, 0, 4), (0.15, 40, 11, 84), (0.30, 101, 21, 110), (0.45, 159, 42, 99),
    (0.60, 212, 72, 66), (0.75, 245, 125, 21), (0.90, 250, 193, 39), (1.00, 252, 255, 164),
], dtype=np.float32)


def heatmap_image(cam: np.ndarray, max_alpha: int = 170) -> QImage:
    """An RGBA image of a 0..1 activation map: colour from the ramp, weak areas transparent,
    so the notes under the map stay readable."""
    v = np.clip(np.nan_to_num(cam.astype(np.float32)), 0.0, 1.0)
    rgba = np.empty(v.shape + (4,), np.uint8)
    for c in range(3):
        rgba[..., c] = np.interp(v, _RAMP[:, 0], _RAMP[:, c + 1]).astype(np.uint8)
    rgba[..., 3] = (np.clip((v - 0.15) / 0.85, 0.0, 1.0) ** 0.8 * max_alpha).astype(np.uint8)
    h, w = v.shape
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return img.copy()  # own the pixels: ``rgba`` is freed when we return
