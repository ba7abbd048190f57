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
