"""Staff-system ("row") detection on a grayscale page, classical and fast (OpenCV + NumPy).

1. Binarise with a local threshold (uneven lighting, grey scans).
2. Estimate staff-line thickness and the line pitch ("interline") from vertical run
   lengths, as Audiveris does: the most frequent black run is the line thickness, the
   most frequent black+white pair is the distance between two staff lines.
3. Estimate skew from long horizontal strokes and rotate it away (up to a few degrees).
4. Find staves as five equidistant peaks in the profile of long horizontal runs, with
   empty space between them, and measure each staff's horizontal extent.
5. Join vertically neighbouring staves into one system when a barline or a brace links
   them; a lone staff is a system of its own.

Everything is in pixels of the image given; callers convert to page coordinates.
A page with no staves yields no systems.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]

# Bumped whenever the boxes this module returns change: stored results cut by another detector are outdated.
DETECTOR_VERSION = "3"


@dataclass(frozen=True)
class StaffMetrics:
    line_thickness: float  # pixels
    interline: float  # distance between two neighbouring staff lines, pixels


@dataclass(frozen=True)
class Staff:
    line_ys: tuple[float, ...]  # the five line centres, top to bottom
    x0: float
    x1: float

    @property
    def top(self) -> float:
        return self.line_ys[0]

    @property
    def bottom(self) -> float:
        return self.line_ys[-1]


@dataclass(frozen=True)
class System:
    staves: tuple[Staff, ...]
    lines_box: Box  # staff lines only: top line of the top staff to bottom line of the bottom staff
    box: Box  # lines_box with room for ledger lines, brace and clefs: what a row image shows
    frame: int = 0  # index into PageSystems.frames: the (deskewed) part of the page the boxes refer to

    @property
    def staff_count(self) -> int:
        return len(self.staves)


@dataclass(frozen=True)
class Frame:
    """A vertical part of the page (all of it, or one page of a two-page spread) and its skew."""

    x0: int
    x1: int
    skew_deg: float = 0.0  # rotate(part, skew_deg) levels its staff lines


@dataclass(frozen=True)
class PageSystems:
    """Result of detection on one image: the systems, each in the deskewed frame of its part."""

    systems: list[System]
    metrics: StaffMetrics | None
    frames: list[Frame]
    size: tuple[int, int] = (0, 0)  # (height, width) of the image

    @property
    def skew_deg(self) -> float:
        return self.frames[0].skew_deg if self.frames else 0.0

    def frame_image(self, gray: np.ndarray, index: int = 0) -> np.ndarray:
        """The (deskewed) part of the image that the boxes of frame ``index`` refer to."""
        f = self.frames[index]
        part = gray[:, f.x0: f.x1]
        return rotate(part, f.skew_deg) if f.skew_deg else part

    def deskew(self, gray: np.ndarray) -> np.ndarray:
        return self.frame_image(gray, 0)

    def original_box(self, system: System | Box) -> Box:
        """Axis-aligned box in the original image holding ``system``'s box (or a box of frame 0)."""
        box, f = (system.box, self.frames[system.frame]) if isinstance(system, System) else (system, self.frames[0])
        if f.skew_deg:
            h, w = self.size[0], f.x1 - f.x0
            m = cv2.invertAffineTransform(_rotation_matrix(w, h, f.skew_deg))
            pts = np.array([[box[0], box[1], 1], [box[2], box[1], 1], [box[0], box[3], 1], [box[2], box[3], 1]],
                           dtype=np.float64)
            xy = pts @ m.T
            box = (float(max(0.0, xy[:, 0].min())), float(max(0.0, xy[:, 1].min())),
                   float(min(w, xy[:, 0].max())), float(min(h, xy[:, 1].max())))
        return (box[0] + f.x0, box[1], box[2] + f.x0, box[3])


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------------------
def binarize(gray: np.ndarray) -> np.ndarray:
    """Ink mask (uint8, 255 = ink) robust to uneven lighting and paper tone."""
    h, w = gray.shape
    block = max(15, (min(h, w) // 40) | 1)
    local = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 18)
    # Also require darkness relative to the page: kills speckle on dark paper blotches.
    paper = float(np.percentile(gray[:: max(1, h // 200), :: max(1, w // 200)], 90))
    dark = gray < paper * 0.85
    return np.where(dark, local, 0).astype(np.uint8)


def estimate_metrics(ink: np.ndarray, column_step: int = 3) -> list[StaffMetrics]:
    """Candidate staff metrics from vertical run lengths, most likely first (empty if none)."""
    h, w = ink.shape
    cols = ink[:, ::column_step].T > 0
    if cols.size == 0:
        return []
    padded = np.zeros((cols.shape[0], h + 2), np.int8)
    padded[:, 1:-1] = cols
    d = np.diff(padded, axis=1)
    r_s, c_s = np.nonzero(d == 1)
    r_e, c_e = np.nonzero(d == -1)
    if len(c_s) < 50:
        return []
    black = c_e - c_s
    same = r_s[1:] == r_s[:-1]
    white = c_s[1:] - c_e[:-1]
    # A staff line (thin black run) followed by a space: its pitch is black + white.
    thick_hist = np.bincount(black, minlength=64)[:64]
    thickness = int(np.argmax(thick_hist[1:]) + 1)
    thin = (black[:-1] <= max(2 * thickness, thickness + 2)) & same
    pitch = (black[:-1] + white)[thin]
    pitch = pitch[(pitch >= 4) & (pitch < min(h // 4, 200))]
    if len(pitch) < 30:
        return []
    hist = np.bincount(pitch).astype(np.float64)
    smooth = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
    out: list[StaffMetrics] = []
    for _ in range(3):
        peak = int(np.argmax(smooth))
        if smooth[peak] <= 0:
            break
        lo, hi = max(0, peak - 1), min(len(hist), peak + 2)
        weights = hist[lo:hi]
        interline = float((np.arange(lo, hi) * weights).sum() / max(weights.sum(), 1e-9))
        out.append(StaffMetrics(float(thickness), interline))
        smooth[max(0, peak - 2): peak + 3] = 0
    return out


def estimate_skew(ink: np.ndarray, interline: float) -> float:
    """Page skew in degrees (positive: lines fall to the right), from long horizontal strokes."""
    k = max(5, int(round(2 * interline)))
    lines = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    if n <= 1:
        return 0.0
    widths = stats[:, cv2.CC_STAT_WIDTH].astype(np.float64)
    heights = stats[:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    keep = (widths >= 6 * interline) & (heights <= widths * 0.08 + 2 * interline)
    keep[0] = False
    if keep.sum() < 3:
        return 0.0
    # Line fits need only the kept components' pixels.
    ys, xs = np.nonzero(keep[labels])
    lab = labels[ys, xs]
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    sx = np.bincount(lab, xs, minlength=n)
    sy = np.bincount(lab, ys, minlength=n)
    sxx = np.bincount(lab, xs.astype(np.float64) ** 2, minlength=n)
    sxy = np.bincount(lab, xs.astype(np.float64) * ys, minlength=n)
    denom = cnt * sxx - sx * sx
    slope = np.where(denom > 0, (cnt * sxy - sx * sy) / np.maximum(denom, 1e-9), 0.0)
    angles = np.degrees(np.arctan(slope[keep]))
    w = widths[keep]
    order = np.argsort(angles)
    cum = np.cumsum(w[order])
    median = float(angles[order][np.searchsorted(cum, cum[-1] / 2)])
    return median if abs(median) >= 0.05 else 0.0


def _rotation_matrix(w: int, h: int, skew_deg: float) -> np.ndarray:
    return cv2.getRotationMatrix2D((w / 2.0, h / 2.0), skew_deg, 1.0)


def rotate(img: np.ndarray, skew_deg: float, border: int = 255) -> np.ndarray:
    """Rotate so that lines falling by ``skew_deg`` become horizontal (same size, white border)."""
    h, w = img.shape[:2]
    return cv2.warpAffine(img, _rotation_matrix(w, h, skew_deg), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


# --------------------------------------------------------------------------------------
def _find_staves(ink: np.ndarray, m: StaffMetrics) -> list[Staff]:
    h, w = ink.shape
    il = m.interline
    k = max(5, int(round(3 * il)))
    hmask = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    profile = (hmask > 0).sum(axis=1).astype(np.float32)
    r = max(1, int(round(0.15 * il + m.line_thickness / 2)))
    pooled = cv2.dilate(profile.reshape(-1, 1), np.ones((2 * r + 1, 1), np.uint8)).ravel()
    n = int(h - 4 * il - 1)
    if n <= 0:
        return []
    ys = np.arange(n, dtype=np.float64)
    line_vals = np.stack([pooled[np.round(ys + j * il).astype(int)] for j in range(5)])
    mid_vals = np.stack([profile[np.round(ys + (j + 0.5) * il).astype(int)] for j in range(4)])
    score = line_vals.min(axis=0)
    ok = (score >= 6 * il) & (mid_vals.max(axis=0) < 0.5 * score) & (score >= 0.45 * line_vals.max(axis=0))
    candidates = np.nonzero(ok)[0]
    if len(candidates) == 0:
        return []
    order = candidates[np.argsort(-score[candidates], kind="stable")]
    taken: list[int] = []
    for y in order:
        if all(abs(int(y) - t) > 3.5 * il for t in taken):
            taken.append(int(y))
    staves: list[Staff] = []
    band = max(1, r)
    for y in sorted(taken):
        # Staff lines are equidistant: fit the best regular grid (start, pitch) to the profile
        # rather than placing each line on its own peak, which beams and chords can pull away.
        # All (pitch, start) pairs at once; argmax keeps the first best, pitch-major.
        line_ys = [float(y + j * il) for j in range(5)]
        pitches = np.arange(0.9 * il, 1.1 * il + 1e-9, 0.125)
        starts = np.arange(max(0, y - band), y + band + 1)
        idx = np.round(starts[None, :, None] + pitches[:, None, None] * np.arange(5)).astype(int).reshape(-1, 5)
        inside = idx[:, -1] < h
        if inside.any():
            fits = np.where(inside, profile[np.minimum(idx, h - 1)].sum(axis=1), -np.inf)
            line_ys = [float(v) for v in idx[int(np.argmax(fits))]]
        # Columns where at least three of the five lines have a long horizontal run.
        present = np.zeros(w, np.int32)
        for ly in line_ys:
            lo, hi = max(0, int(ly) - band), min(h, int(ly) + band + 1)
            present += hmask[lo:hi].max(axis=0) > 0
        cols = present >= 3
        # Bridge short interruptions (dense chords, beams or a clef change can break the
        # lines' long runs); staves side by side are separated by far more than this.
        for x0, x1 in _runs(cols, max_gap=int(4 * il)):
            if x1 - x0 >= 6 * il:
                staves.append(Staff(tuple(line_ys), float(x0), float(x1)))
    return staves


def _runs(mask: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """Runs of True (as [start, end) column pairs), bridging gaps up to ``max_gap``."""
    idx = np.nonzero(mask)[0]
    if len(idx) == 0:
        return []
    breaks = np.nonzero(np.diff(idx) > max_gap + 1)[0]
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return list(zip(starts.tolist(), ends.tolist()))


def _linked(ink: np.ndarray, a: Staff, b: Staff, m: StaffMetrics) -> bool:
    """Is there a barline or brace joining staff ``a`` to the staff ``b`` below it?"""
    il = m.interline
    y0, y1 = int(round(a.bottom + m.line_thickness + 1)), int(round(b.top - m.line_thickness - 1))
    if y1 - y0 < 2:
        return True
    x0 = int(max(0, min(a.x0, b.x0) - 0.5 * il))
    x1 = int(min(ink.shape[1], max(a.x1, b.x1) + 0.5 * il))
    gap = ink[y0:y1, x0:x1] > 0
    # Barline: a column inked over (almost) the whole gap; one pixel of slack for residual skew.
    gap_wide = gap.copy()
    gap_wide[:, 1:] |= gap[:, :-1]
    gap_wide[:, :-1] |= gap[:, 1:]
    if (gap_wide.mean(axis=0) >= 0.92).any():
        return True
    # Brace (curved): left of the staves every row of the gap has some ink.
    bx0 = int(max(0, min(a.x0, b.x0) - 3 * il))
    bx1 = int(min(a.x0, b.x0) + 0.3 * il)
    if bx1 - bx0 >= 2:
        rows = (ink[y0:y1, bx0:bx1] > 0).any(axis=1)
        if rows.mean() >= 0.97:
            return True
    return False


def _group(ink: np.ndarray, staves: list[Staff], m: StaffMetrics) -> list[list[Staff]]:
    staves = sorted(staves, key=lambda s: (s.top, s.x0))
    parent = list(range(len(staves)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    below: list[tuple[int, int, float]] = []  # (upper, lower, gap) for vertically neighbouring staves
    for i, a in enumerate(staves):
        for j in range(i + 1, len(staves)):
            b = staves[j]
            overlap = min(a.x1, b.x1) - max(a.x0, b.x0)
            if overlap < 0.5 * min(a.x1 - a.x0, b.x1 - b.x0):
                continue
            # b is the next staff below a in the same column of the page.
            if b.top - a.bottom < 30 * m.interline:
                below.append((i, j, b.top - a.bottom))
                if _linked(ink, a, b, m):
                    parent[find(j)] = find(i)
            break
    _pair_by_spacing(below, parent, find)
    groups: dict[int, list[Staff]] = {}
    for i, s in enumerate(staves):
        groups.setdefault(find(i), []).append(s)
    return sorted(groups.values(), key=lambda g: (g[0].top, g[0].x0))


def _pair_by_spacing(below: list[tuple[int, int, float]], parent: list[int], find) -> None:
    """Old prints often have no brace and broken barlines: join two lone staves when their gap
    is as small as the gap inside the page's linked systems (or, with no links at all, when the
    gaps clearly alternate small/large as grand staves do)."""
    linked = [g for i, j, g in below if find(i) == find(j)]
    sizes: dict[int, int] = {}
    for k in range(len(parent)):
        sizes[find(k)] = sizes.get(find(k), 0) + 1

    def lone(k: int) -> bool:
        return sizes[find(k)] == 1

    if linked:
        limit = 1.25 * float(np.median(linked))
        gaps_of = {i: g for i, _, g in below}
        for i, j, g in below:
            if lone(i) and lone(j) and g <= limit:
                before = [gg for ii, jj, gg in below if jj == i]
                after = gaps_of.get(j)
                if all(g < x for x in before) and (after is None or g < after):
                    parent[find(j)] = find(i)
                    sizes[find(i)] = 2
    elif len(below) >= 3:
        gaps = np.array([g for _, _, g in below])
        small, large = gaps[0::2], gaps[1::2]
        chain = all(below[k][1] == below[k + 1][0] for k in range(len(below) - 1))
        if chain and len(large) and small.max() * 1.3 < large.min():
            for i, j, _ in below[0::2]:
                parent[find(j)] = find(i)


def _row_boxes(groups: list[list[Staff]], m: StaffMetrics, h: int, w: int) -> list[System]:
    il = m.interline
    lines = [(min(s.x0 for s in g), g[0].top, max(s.x1 for s in g), g[-1].bottom) for g in groups]
    systems = []
    for i, (g, lb) in enumerate(zip(groups, lines)):
        top = lb[1] - 2.5 * il
        bottom = lb[3] + 2.5 * il
        # Never reach past half-way to a neighbouring system in the same page column.
        for j, other in enumerate(lines):
            if j == i or min(lb[2], other[2]) - max(lb[0], other[0]) <= 0:
                continue
            if other[3] <= lb[1]:
                top = max(top, (other[3] + lb[1]) / 2)
            elif other[1] >= lb[3]:
                bottom = min(bottom, (lb[3] + other[1]) / 2)
        box = (max(0.0, lb[0] - 2.0 * il), max(0.0, top), min(float(w), lb[2] + 0.5 * il), min(float(h), bottom))
        systems.append(System(tuple(g), (float(lb[0]), float(lb[1]), float(lb[2]), float(lb[3])), box))
    return systems


def _detect(gray: np.ndarray, deskew: bool, frame: int = 0, x0: int = 0) -> tuple[list[System], StaffMetrics | None, Frame]:
    h, w = gray.shape
    none = Frame(x0, x0 + w, 0.0)
    if h < 40 or w < 40:
        return [], None, none
    ink = binarize(gray)
    candidates = estimate_metrics(ink)
    if not candidates:
        return [], None, none
    best: tuple[list[Staff], StaffMetrics, float, np.ndarray] | None = None
    for m in candidates:
        if m.interline < 4 or m.interline > h / 8:
            continue
        skew = estimate_skew(ink, m.interline) if deskew else 0.0
        image = rotate(ink, skew, border=0) if skew else ink
        staves = _find_staves(image, m)
        if staves and (best is None or len(staves) > len(best[0])):
            best = (staves, m, skew, image)
        if best is not None and best[1] is m:
            break  # the most frequent pitch found staves: trust it
    if best is None:
        return [], candidates[0], none
    staves, m, skew, image = best
    # Staves of another size on the same page (ossia, cue-size or a smaller engraving):
    # keep those that do not overlap the ones found at the main size.
    for other in candidates:
        if other is m or not 4 <= other.interline <= h / 8 or abs(other.interline / m.interline - 1) < 0.2:
            continue
        for st in _find_staves(image, other):
            if all(st.bottom < t.top - m.interline or st.top > t.bottom + m.interline or
                   st.x1 < t.x0 or st.x0 > t.x1 for t in staves):
                staves.append(st)
    groups = _group(image, staves, m)
    systems = [System(sy.staves, sy.lines_box, sy.box, frame) for sy in _row_boxes(groups, m, h, w)]
    return systems, m, Frame(x0, x0 + w, skew)


def _gutter(gray: np.ndarray) -> int:
    """The emptiest column near the middle: where a two-page spread folds."""
    h, w = gray.shape
    lo, hi = int(w * 0.38), int(w * 0.62)
    ink = (gray[:, lo:hi] < 128).sum(axis=0).astype(np.float32)
    ink = np.convolve(ink, np.ones(9, np.float32) / 9, mode="same")
    return lo + int(np.argmin(ink))


def detect_systems(gray: np.ndarray, deskew: bool = True) -> PageSystems:
    """Find the staff systems of a grayscale page (uint8, white paper)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("detect_systems expects a 2-D uint8 grayscale image")
    h, w = gray.shape
    systems, metrics, frame = _detect(gray, deskew)
    if w > 1.15 * h and metrics is not None:
        # A landscape page may be a two-page spread scanned at once; each half then has its
        # own skew and curvature. Unless a staff runs across the fold, detect the halves apart.
        g = _gutter(gray)
        crosses = any(st.x0 < g - 5 * metrics.interline and st.x1 > g + 5 * metrics.interline
                      for s in systems for st in s.staves)
        if not crosses:
            left, lm, lf = _detect(gray[:, :g], deskew, 0, 0)
            right, rm, rf = _detect(gray[:, g:], deskew, 1, g)
            if left and right:
                return PageSystems(left + right, lm or rm, [lf, rf], (h, w))
    return PageSystems(systems, metrics, [frame], (h, w))
