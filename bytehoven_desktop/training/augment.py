"""Row augmentation: vary geometry a little and degrade like a scan.

Rows arrive at STORE_SCALE x the model size (an exact crop of the detected box); the
output is the model size. Heavy degradations happen after the resize, where they look like
the model's own view of a bad scan.
"""

from __future__ import annotations

import cv2
import numpy as np


def center(row: np.ndarray, height: int, width: int) -> np.ndarray:
    """The un-augmented model input: the stored crop resized (what inference does)."""
    return cv2.resize(row, (width, height), interpolation=cv2.INTER_AREA)


def augment(row: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    h, w = row.shape
    img = row
    # Stroke weight: thicker or thinner ink (different engravers, over/under-exposed scans).
    r = rng.random()
    if r < 0.2:
        img = cv2.erode(img, np.ones((2, 2), np.uint8))
    elif r < 0.35:
        img = cv2.dilate(img, np.ones((2, 1), np.uint8))
    # Geometry: crop jitter (a detector's box is never exact), scale, a slight rotation.
    sx, sy = rng.uniform(0.93, 1.07), rng.uniform(0.9, 1.1)
    ang = rng.normal(0, 0.5)
    tx, ty = rng.uniform(-0.04, 0.04) * w, rng.uniform(-0.06, 0.06) * h
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
    m[0, :2] *= sx
    m[1, :2] *= sy
    m[0, 2] += tx + (1 - sx) * w / 2
    m[1, 2] += ty + (1 - sy) * h / 2
    img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.1))
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    # Paper tone and ink level.
    ink, paper = rng.uniform(0, 70), rng.uniform(185, 255)
    img = ink + (paper - ink) * img / 255.0
    # Uneven lighting: a gentle gradient across the row.
    if rng.random() < 0.4:
        gx = np.linspace(-1, 1, width, dtype=np.float32)[None, :] * rng.uniform(-25, 25)
        gy = np.linspace(-1, 1, height, dtype=np.float32)[:, None] * rng.uniform(-15, 15)
        img = img + gx + gy
    if rng.random() < 0.5:
        img = img + rng.normal(0, rng.uniform(2, 14), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    r = rng.random()
    if r < 0.3:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        if ok:
            img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    elif r < 0.42:
        # Binarised scan (1-bit TIFFs, photocopies).
        thr = rng.uniform(0.45, 0.65) * (ink + paper)
        img = np.where(img < thr, 0, 255).astype(np.uint8)
    return img


def cutmix_rows(xb: np.ndarray, yb: np.ndarray, n_classes: int, rng: np.random.Generator,
                p: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal CutMix between the rows of a batch: a span of measures from another row.

    A row is music read left to right, so the cut is a full-height band (a few bars of
    another piece pasted in), not a square patch; the target is the two composers in
    proportion to the band's width. It keeps a model from naming a composer from one
    local figure or from a look that covers a whole row. ``xb``: (N, H, W) uint8 model
    inputs; returns the mixed batch and (N, n_classes) float32 targets.
    """
    n, _, width = xb.shape
    targets = np.zeros((n, n_classes), np.float32)
    targets[np.arange(n), yb] = 1.0
    out = xb.copy()
    partner = rng.permutation(n)
    for i in np.flatnonzero(rng.random(n) < p):
        j = partner[i]
        if j == i:
            continue
        cut = int(round(rng.uniform(0.2, 0.5) * width))
        x0 = int(rng.integers(0, width - cut + 1))
        out[i, :, x0:x0 + cut] = xb[j, :, x0:x0 + cut]
        lam = cut / width
        targets[i] *= 1.0 - lam
        targets[i, yb[j]] += lam
    return out, targets
