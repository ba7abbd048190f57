"""Make a clean engraved page look like a library scan of a printed copy.

Used in two places: the training data (every composer's engraved pages pass through the same
random scan look, so that looking scanned says nothing about the composer) and the detection
benchmark (named distortions, with the true system boxes carried through the same geometry).

Geometry (rotation, curl) moves ink; ``PageWarp.boxes`` maps boxes of the clean page to boxes of
the distorted one. Everything else (light, paper, noise, blur, ink spread, 1-bit, JPEG) only
changes grey values. All functions take and return uint8 grey pages, white paper 255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

Box = tuple[float, float, float, float]

# The named distortions of the detection benchmark (issue: "rotation ±0.5–3°, curl, light
# gradient, noise, blur, JPEG 50, 1-bit at 200 dpi").
DISTORTIONS = ("rotate", "curl", "light", "noise", "blur", "jpeg", "bitonal")


@dataclass(frozen=True)
class PageWarp:
    """A rotation about the page centre followed by a vertical curl.

    Curl: each column is shifted down by ``curl_px * (2u - 1)^2 - curl_px`` with u = x / width,
    so staff lines bow like a book page lifted off the scanner glass: unmoved at the left and right
    edges, ``curl_px`` higher in the middle."""

    width: int
    height: int
    angle_deg: float = 0.0  # positive: lines fall to the right after the warp
    curl_px: float = 0.0

    def _rot(self) -> np.ndarray:
        return cv2.getRotationMatrix2D((self.width / 2.0, self.height / 2.0), -self.angle_deg, 1.0)

    def _curl(self, x: np.ndarray) -> np.ndarray:
        u = x / max(1.0, float(self.width))
        return self.curl_px * ((2 * u - 1) ** 2 - 1)

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Clean-page points (N x 2) → distorted-page points."""
        m = self._rot()
        out = np.c_[xy, np.ones(len(xy))] @ m.T
        out[:, 1] += self._curl(out[:, 0])
        return out

    def boxes(self, boxes: Sequence[Box], samples: int = 24) -> list[Box]:
        """Axis-aligned boxes holding each clean box after the warp (edges sampled densely)."""
        out: list[Box] = []
        t = np.linspace(0.0, 1.0, samples)
        for x0, y0, x1, y1 in boxes:
            xs = np.concatenate([x0 + (x1 - x0) * t, x0 + (x1 - x0) * t, np.full(samples, x0), np.full(samples, x1)])
            ys = np.concatenate([np.full(samples, y0), np.full(samples, y1), y0 + (y1 - y0) * t, y0 + (y1 - y0) * t])
            p = self.points(np.c_[xs, ys])
            out.append((float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())))
        return out

    def apply(self, gray: np.ndarray, paper: int = 255) -> np.ndarray:
        h, w = gray.shape
        img = gray
        if self.angle_deg:
            img = cv2.warpAffine(img, self._rot(), (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=paper)
        if self.curl_px:
            # remap reads each output pixel from its source: y_src = y - curl(x).
            xs = np.arange(w, dtype=np.float32)
            map_x = np.broadcast_to(xs, (h, w))
            map_y = (np.arange(h, dtype=np.float32)[:, None] - self._curl(xs).astype(np.float32)[None, :])
            img = cv2.remap(img, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=paper)
        return img


# ---------------------------------------------------------------------------------------------
# Grey-value effects


def light_gradient(gray: np.ndarray, rng: np.random.Generator, strength: float = 0.45) -> np.ndarray:
    """Uneven light: paper darkening towards one side/corner (as at a book's spine)."""
    h, w = gray.shape
    yy, xx = np.mgrid[0:h:8, 0:w:8].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(a) * xx / w + np.sin(a) * yy / h)
    ramp = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
    shade = 1.0 - strength * ramp ** rng.uniform(1.0, 2.5)
    shade = cv2.resize(shade, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(gray.astype(np.float32) * shade, 0, 255).astype(np.uint8)


def paper(gray: np.ndarray, rng: np.random.Generator, tone: float | None = None, texture: float = 6.0) -> np.ndarray:
    """Paper tone (yellowed grey) and low-frequency texture; ink stays dark."""
    h, w = gray.shape
    tone = float(rng.uniform(200, 245)) if tone is None else tone
    small = rng.normal(0, texture, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
    tex = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (w, h), interpolation=cv2.INTER_LINEAR)
    g = gray.astype(np.float32) / 255.0
    ink = float(rng.uniform(10, 50))
    out = ink + (tone - ink) * g + tex * g
    return np.clip(out, 0, 255).astype(np.uint8)


def show_through(gray: np.ndarray, other: np.ndarray, rng: np.random.Generator, strength: float = 0.12) -> np.ndarray:
    """The facing page's print seen through the paper: mirrored, blurred and faint."""
    h, w = gray.shape
    back = cv2.resize(other, (w, h), interpolation=cv2.INTER_AREA)[:, ::-1]
    back = cv2.GaussianBlur(back, (0, 0), rng.uniform(1.0, 2.5)).astype(np.float32)
    dark = (255.0 - back) * strength
    return np.clip(gray.astype(np.float32) - dark, 0, 255).astype(np.uint8)


def noise(gray: np.ndarray, rng: np.random.Generator, sigma: float = 18.0, speckle: float = 0.002) -> np.ndarray:
    """Sensor noise and dust: gaussian grain plus sparse black and white specks."""
    out = gray.astype(np.float32) + rng.normal(0, sigma, gray.shape).astype(np.float32)
    if speckle > 0:
        m = rng.random(gray.shape, dtype=np.float32)
        out[m < speckle / 2] = 0
        out[m > 1 - speckle / 2] = 255
    return np.clip(out, 0, 255).astype(np.uint8)


def blur(gray: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    return cv2.GaussianBlur(gray, (0, 0), sigma)


def ink_spread(gray: np.ndarray, rng: np.random.Generator, px: int | None = None) -> np.ndarray:
    """Ink that spread (thicker strokes) or a worn plate (thinner, broken strokes)."""
    px = int(rng.choice([-1, 1])) if px is None else px
    k = np.ones((2, 2), np.uint8)
    if px > 0:
        return cv2.erode(gray, k, iterations=px)  # erode white = grow ink
    out = cv2.dilate(gray, k, iterations=-px)
    # Broken strokes: punch small paper-coloured holes into the ink.
    holes = rng.random((max(1, gray.shape[0] // 3), max(1, gray.shape[1] // 3))) < 0.015
    holes = cv2.resize(holes.astype(np.uint8), (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
    out[holes > 0] = np.maximum(out[holes > 0], 230)
    return out


def jpeg(gray: np.ndarray, quality: int = 50) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def bitonal(gray: np.ndarray, dpi: float, target_dpi: float = 200.0) -> np.ndarray:
    """A 1-bit scan at ``target_dpi`` (fixed threshold, as most library scanners do), shown at ``dpi``."""
    h, w = gray.shape
    k = target_dpi / dpi
    small = cv2.resize(gray, (max(1, int(round(w * k))), max(1, int(round(h * k)))), interpolation=cv2.INTER_AREA)
    bits = np.where(small < 150, 0, 255).astype(np.uint8)
    return cv2.resize(bits, (w, h), interpolation=cv2.INTER_NEAREST)


# ---------------------------------------------------------------------------------------------
# Named distortions (benchmark) and the random scan look (training data)


def distort(gray: np.ndarray, kind: str, rng: np.random.Generator, dpi: float) -> tuple[np.ndarray, PageWarp]:
    """One named distortion of DISTORTIONS at a random strength in the benchmark's range."""
    h, w = gray.shape
    warp = PageWarp(w, h)
    if kind == "rotate":
        warp = PageWarp(w, h, angle_deg=float(rng.choice([-1, 1]) * rng.uniform(0.5, 3.0)))
        return warp.apply(gray), warp
    if kind == "curl":
        # Up to one staff space (~1.75 mm) across the page, plus a slight skew.
        warp = PageWarp(w, h, angle_deg=float(rng.uniform(-0.5, 0.5)), curl_px=float(rng.uniform(0.5, 1.0) *
                                                                                      1.75 / 25.4 * dpi))
        return warp.apply(gray), warp
    if kind == "light":
        return light_gradient(paper(gray, rng), rng, strength=float(rng.uniform(0.3, 0.6))), warp
    if kind == "noise":
        return noise(gray, rng, sigma=float(rng.uniform(12, 30)), speckle=0.003), warp
    if kind == "blur":
        return blur(gray, sigma=float(rng.uniform(0.8, 1.6)) * dpi / 300.0), warp
    if kind == "jpeg":
        return jpeg(paper(gray, rng), 50), warp
    if kind == "bitonal":
        return bitonal(gray, dpi, 200.0), warp
    raise ValueError(f"unknown distortion {kind!r}; choose from {DISTORTIONS}")


def scan_look(gray: np.ndarray, rng: np.random.Generator, dpi: float,
              facing: np.ndarray | None = None) -> tuple[np.ndarray, PageWarp]:
    """A random library-scan look for training: geometry, paper, light, ink, noise, 1-bit or grey, JPEG.

    ``facing``: another page to show through the paper (None: no show-through)."""
    h, w = gray.shape
    warp = PageWarp(w, h, angle_deg=float(rng.normal(0, 0.8)),
                    curl_px=float(rng.uniform(0, 0.8) * 1.75 / 25.4 * dpi) if rng.random() < 0.4 else 0.0)
    img = warp.apply(gray)
    if rng.random() < 0.5:
        img = ink_spread(img, rng)
    if rng.random() < 0.35:
        # A 1-bit scan: no paper tone survives, but the threshold eats thin strokes.
        img = bitonal(blur(img, 0.6) if rng.random() < 0.5 else img, dpi, float(rng.uniform(200, 400)))
        if rng.random() < 0.3:
            img = noise(img, rng, sigma=0.0, speckle=float(rng.uniform(0.0005, 0.003)))
        return img, warp
    img = paper(img, rng)
    if facing is not None and rng.random() < 0.5:
        img = show_through(img, facing, rng, strength=float(rng.uniform(0.04, 0.15)))
    if rng.random() < 0.6:
        img = light_gradient(img, rng, strength=float(rng.uniform(0.1, 0.45)))
    if rng.random() < 0.6:
        img = blur(img, float(rng.uniform(0.3, 1.2)) * dpi / 300.0)
    if rng.random() < 0.7:
        img = noise(img, rng, sigma=float(rng.uniform(2, 14)), speckle=float(rng.uniform(0, 0.001)))
    if rng.random() < 0.7:
        img = jpeg(img, int(rng.integers(35, 90)))
    return img, warp
