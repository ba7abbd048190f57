"""How a detected row becomes a model input: one function shared by training and inference,
so the model sees at run time exactly the kind of image it was trained on."""

from __future__ import annotations

import cv2
import numpy as np

from .systems import Box, PageSystems, detect_systems


def crop_row(gray: np.ndarray, box: Box, height: int, width: int) -> np.ndarray:
    """Cut ``box`` (pixels of ``gray``) out and resize it to ``height`` x ``width`` (uint8, white paper)."""
    h, w = gray.shape
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.full((height, width), 255, np.uint8)
    crop = gray[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if (x1 - x0) > width else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interp)


def rows_from_page(gray: np.ndarray, height: int, width: int) -> tuple[PageSystems, np.ndarray]:
    """Detect the systems of a page and cut each into a model input (N x height x width)."""
    found = detect_systems(gray)
    if not found.systems:
        return found, np.zeros((0, height, width), np.uint8)
    frames = [found.frame_image(gray, i) for i in range(len(found.frames))]
    rows = np.stack([crop_row(frames[s.frame], s.box, height, width) for s in found.systems])
    return found, rows


# Test-time views of a model input (``row_views``): the row itself, then the row with one end, both
# ends or its top and bottom trimmed (left, right, top, bottom, as shares of the side). Training crops
# jitter by several percent, so each view is one the model knows; pooled, no single edge of the
# detected box decides the row.
VIEW_TRIMS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.0, 0.0), (0.07, 0.0, 0.0, 0.0), (0.0, 0.07, 0.0, 0.0), (0.0, 0.0, 0.05, 0.05),
    (0.035, 0.035, 0.0, 0.0))
MAX_VIEWS = len(VIEW_TRIMS)


def row_views(rows: np.ndarray, views: int) -> np.ndarray:
    """Model inputs (N x h x w uint8) → their first ``views`` test-time views (N·views x h x w), the
    views of a row adjacent (reshape to N x views x h x w)."""
    if not 1 <= views <= MAX_VIEWS:
        raise ValueError(f"views must be 1..{MAX_VIEWS}, got {views}")
    if views == 1:
        return rows
    n, h, w = rows.shape
    out = np.empty((n, views, h, w), np.uint8)
    for v, (left, right, top, bottom) in enumerate(VIEW_TRIMS[:views]):
        x0, x1 = round(left * w), w - round(right * w)
        y0, y1 = round(top * h), h - round(bottom * h)
        for i in range(n):
            out[i, v] = rows[i] if (x0, y0, x1, y1) == (0, 0, w, h) else cv2.resize(
                rows[i, y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(n * views, h, w)
