"""Staff-system ("row") detection on a grayscale page, classical and fast (OpenCV + NumPy).

1. Binarise against the local mean (uneven lighting, grey scans, blur).
2. Estimate staff-line thickness and the line pitch ("interline") from vertical run
   lengths, as Audiveris does: the most frequent black run is the line thickness, the
   most frequent black+white pair is the distance between two staff lines.
3. Estimate skew by projection profiles (left and right halves apart, so a bowed page does
   not tilt the estimate) and rotate it away (up to about 4 degrees).
4. Seed staves as five equidistant peaks in the row profile of long horizontal runs, of the
   whole width and of each quarter (a bent page is nearly straight in some quarter), then
   trace each staff along the page block by block, its lines allowed to rise and fall slowly
   (curl, residual skew); a staff holds its five lines through the blocks it spans.
5. Join vertically neighbouring staves into one system when a barline or a brace links
   them (or, in old prints, by their spacing); a lone staff is a system of its own.
6. A row reaches beyond the outer staff lines as far as the system's own ink goes on
   (ledger lines, high notes, beams), never into the neighbouring system.

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
    support: float = 1.0  # share of the page's line-pitch samples near this pitch


@dataclass(frozen=True)
class Staff:
    line_ys: tuple[float, ...]  # the five line centres, top to bottom, where the staff was found
    x0: float
    x1: float
    # How far the lines rise (negative) and fall (positive) from line_ys along the staff: a page
    # that bends or is not quite level after deskewing (pixels).
    drift: tuple[float, float] = (0.0, 0.0)

    @property
    def top(self) -> float:
        return self.line_ys[0]

    @property
    def bottom(self) -> float:
        return self.line_ys[-1]

    @property
    def upper(self) -> float:
        """The highest point of the top line anywhere along the staff."""
        return self.line_ys[0] + self.drift[0]

    @property
    def lower(self) -> float:
        """The lowest point of the bottom line anywhere along the staff."""
        return self.line_ys[-1] + self.drift[1]


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
# Ink is at least this much darker (grey levels) than the mean of its neighbourhood (18 lost
# blurred staff lines: distorted-page F1 on blur 96.8 % at 18, 99.0 % at 12, 99.4 % at 8).
INK_CONTRAST = 10


def binarize(gray: np.ndarray) -> np.ndarray:
    """Ink mask (uint8, 255 = ink) robust to uneven lighting and paper tone.

    Ink is darker than its neighbourhood (the mean over about a fortieth of the page, which
    follows uneven light) and than the page's paper. The neighbourhood mean is taken on a page
    shrunk four times: light changes slowly, and it costs a sixteenth."""
    h, w = gray.shape
    block = max(15, (min(h, w) // 40) | 1)
    f = 4 if min(h, w) >= 16 * 4 else 1
    small = cv2.resize(gray, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA) if f > 1 else gray
    k = max(3, block // f | 1)
    mean = cv2.blur(small, (k, k), borderType=cv2.BORDER_REPLICATE)
    if f > 1:
        mean = cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR)
    # Also require darkness relative to the page: kills speckle on dark paper blotches.
    paper = float(np.percentile(gray[:: max(1, h // 200), :: max(1, w // 200)], 90))
    limit = cv2.min(cv2.subtract(mean, INK_CONTRAST), int(paper * 0.85))  # saturating uint8 arithmetic
    return cv2.compare(gray, limit, cv2.CMP_LT)


def estimate_metrics(ink: np.ndarray, column_step: int = 5) -> list[StaffMetrics]:
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
    total = max(1.0, float(hist.sum()))
    out: list[StaffMetrics] = []
    for _ in range(3):
        peak = int(np.argmax(smooth))
        if smooth[peak] <= 0:
            break
        lo, hi = max(0, peak - 1), min(len(hist), peak + 2)
        weights = hist[lo:hi]
        interline = float((np.arange(lo, hi) * weights).sum() / max(weights.sum(), 1e-9))
        out.append(StaffMetrics(float(thickness), interline, float(weights.sum()) / total))
        smooth[max(0, peak - 2): peak + 3] = 0
    return out


def estimate_skew(ink: np.ndarray) -> float:
    """Page skew in degrees (positive: lines fall to the right), up to about ±4°.

    Projection profiles: the page is cut into vertical strips, each strip's row profile of ink is
    shifted by the drop a line of slope ``angle`` has at the strip's centre, and the angle whose
    summed profile is sharpest (largest sum of squares: staff lines pile up on a few rows) wins.
    Unlike fitting long horizontal strokes, it needs no stroke to survive a horizontal opening, so
    thin lines on a page turned by 3° count as much as level ones."""
    h, w = ink.shape
    strips = 16 if w >= 16 * 8 else max(2, w // 8)
    sw = w // strips
    if sw < 2 or h < 8:
        return 0.0
    # Row profile per strip (float32, counts of ink pixels).
    prof = (ink[:, : sw * strips] > 0).reshape(h, strips, sw).sum(axis=2, dtype=np.int32).astype(np.float32)
    centres = (np.arange(strips) + 0.5) * sw - w / 2.0

    def sharpness(angle: float, part: slice) -> float:
        shifts = np.round(centres[part] * np.tan(np.radians(angle))).astype(int)
        pad = int(np.abs(shifts).max()) + 1
        total = np.zeros(h + 2 * pad, np.float32)
        for k, d in zip(range(strips)[part], shifts):
            total[pad - d: pad - d + h] += prof[:, k]
        return float(np.dot(total, total))

    def best_angle(part: slice) -> float:
        best = 0.0
        for step, span in ((0.4, 4.0), (0.1, 0.3), (0.025, 0.075)):  # coarse to fine
            angles = np.arange(best - span, best + span + 1e-9, step)
            best = float(angles[int(np.argmax([sharpness(a, part) for a in angles]))])
        return best

    # The left and right halves apart, then their mean: on a page that bows (a book lifted off the
    # glass) the halves tilt oppositely and one angle for the whole would follow one half.
    half = strips // 2
    ink_l, ink_r = prof[:, :half].sum(), prof[:, half:].sum()
    if min(ink_l, ink_r) >= 0.2 * max(ink_l, ink_r):
        angle = (best_angle(slice(0, half)) + best_angle(slice(half, strips))) / 2
    else:
        angle = best_angle(slice(0, strips))
    # Below 0.15° a page is left as it is: rotating costs more than the 3 px such a tilt moves a
    # line across a page, which following the staves absorbs.
    return angle if abs(angle) >= 0.15 else 0.0


def _rotation_matrix(w: int, h: int, skew_deg: float) -> np.ndarray:
    return cv2.getRotationMatrix2D((w / 2.0, h / 2.0), skew_deg, 1.0)


def rotate(img: np.ndarray, skew_deg: float, border: int = 255) -> np.ndarray:
    """Rotate so that lines falling by ``skew_deg`` become horizontal (same size, white border)."""
    h, w = img.shape[:2]
    return cv2.warpAffine(img, _rotation_matrix(w, h, skew_deg), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


# --------------------------------------------------------------------------------------
def _seed_rows(profile: np.ndarray, il: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows where a staff's top line may lie in a row profile of long horizontal runs: five pooled
    peaks a staff space apart, each long enough, with little between them. (rows, scores)."""
    h = len(profile)
    pooled = cv2.dilate(profile.reshape(-1, 1), np.ones((2 * r + 1, 1), np.uint8)).ravel()
    n = int(h - 4 * il - 1)
    if n <= 0:
        return np.zeros(0, int), np.zeros(0, np.float32)
    ys = np.arange(n, dtype=np.float64)
    line_vals = np.stack([pooled[np.round(ys + j * il).astype(int)] for j in range(5)])
    mid_vals = np.stack([profile[np.round(ys + (j + 0.5) * il).astype(int)] for j in range(4)])
    score = line_vals.min(axis=0)
    # The weakest line may be much weaker than the strongest: a blurred or faint line beside dense
    # chords loses most of its long runs.
    ok = (score >= 6 * il) & (mid_vals.max(axis=0) < 0.5 * score) & (score >= 0.3 * line_vals.max(axis=0))
    rows = np.nonzero(ok)[0]
    return rows, score[rows]


def _find_staves(ink: np.ndarray, m: StaffMetrics) -> list[Staff]:
    h, w = ink.shape
    il = m.interline
    # Long horizontal runs, two staff spaces or more: longer than any note head, short enough that
    # a thin line sloping by 1/20 (the edge of a bent page) still holds such runs.
    k = max(5, int(round(2 * il)))
    hmask = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    r = max(1, int(round(0.15 * il + m.line_thickness / 2)))
    # Seeds from the whole width and from each quarter of it: on a bent page a staff's lines smear
    # in the whole page's profile, but some quarter is nearly straight. Tracing then follows the
    # whole staff from there.
    q = w // 4
    quarters = (hmask[:, : 4 * q] > 0).reshape(h, 4, q).sum(axis=2, dtype=np.int32).astype(np.float32)
    profiles = [quarters.sum(axis=1) + (hmask[:, 4 * q:] > 0).sum(axis=1)]
    if w >= 48 * il:
        profiles += [quarters[:, j].copy() for j in range(4)]
    found = [_seed_rows(p, il, r) for p in profiles]
    rows = np.concatenate([f[0] for f in found])
    if len(rows) == 0:
        return []
    # The whole width first (its scores are larger), then the quarters fill in what it missed.
    scores = np.concatenate([f[1] * (4.0 if i == 0 else 1.0) for i, f in enumerate(found)])
    which = np.concatenate([np.full(len(f[0]), i) for i, f in enumerate(found)])
    order = np.argsort(-scores, kind="stable")
    taken: list[tuple[int, int]] = []
    free = np.ones(h + 1, bool)  # rows not yet within 3.5 staff spaces of a taken seed
    span = int(3.5 * il)
    for o in order:
        y = int(rows[o])
        if free[y]:
            taken.append((y, int(which[o])))
            free[max(0, y - span): y + span + 1] = False
    band = max(1, r)
    blocks = _Blocks(hmask, il, band)
    seeds: list[list[float]] = []
    for y, source in sorted(taken):
        profile = profiles[source]
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
        seeds.append(line_ys)
    return _trace(blocks, seeds, il)


class _Blocks:
    """Long-run ink of a page summed over blocks of columns two staff spaces wide, each row pooled
    over +-band rows: what following a staff along the page needs, computed once per page."""

    def __init__(self, hmask: np.ndarray, il: float, band: int):
        h, w = hmask.shape
        self.width = max(4, int(round(2 * il)))
        self.n = w // self.width
        sums = (hmask[:, : self.n * self.width] > 0).reshape(h, self.n, self.width).sum(axis=2, dtype=np.int32)
        self.sums = cv2.dilate(sums.astype(np.float32), np.ones((2 * band + 1, 1), np.uint8))
        self.hmask, self.band = hmask, band


def _trace(blocks: _Blocks, seeds: list[list[float]], il: float) -> list[Staff]:
    """Follow each staff found at ``seeds`` (five line positions each) along the page, block by
    block, letting its lines rise or fall slowly (a bent page, residual skew), and return the
    pieces of at least six staff spaces.

    Each block gets the vertical offset whose five lines hold the most ink; a Viterbi path keeps
    neighbouring offsets within two pixels of each other, so a beam or a chord cannot pull the staff
    away. A block holds the staff where three of the five lines run through most of it. All staves
    of the page are traced at once (one pass over the blocks)."""
    hmask, band = blocks.hmask, blocks.band
    h = hmask.shape[0]
    n, bw = blocks.n, blocks.width
    if n == 0 or not seeds:
        return []
    reach = max(1, int(round(2.0 * il)))
    offs = np.arange(-reach, reach + 1)
    k = len(offs)
    ys = np.round(np.asarray(seeds)).astype(int)  # (staves, 5)
    idx = ys[:, None, :] + offs[None, :, None]  # (staves, offsets, 5)
    valid = (idx[:, :, 0] >= 0) & (idx[:, :, -1] < h)
    per_line = blocks.sums[np.clip(idx, 0, h - 1)]  # (staves, offsets, 5, blocks)
    lines_on = (per_line >= 0.6 * bw).sum(axis=2)  # (staves, offsets, blocks)
    score = np.minimum(per_line, bw).sum(axis=2) / (5.0 * bw)
    score[~valid] = -1.0
    # Viterbi: maximise the summed score while the offset changes by at most two pixels from block
    # to block (a slope of 1/10 at 10 px per staff space: a bent page's edge plus residual skew).
    steps = np.array([0, -1, 1, -2, 2])
    cost = np.array([0.0, 0.02, 0.02, 0.05, 0.05])[:, None, None]
    src = np.arange(k)[None, :] + steps[:, None]  # (steps, offsets): where each offset may come from
    inside = ((src >= 0) & (src < k))[:, None, :]
    src = np.clip(src, 0, k - 1)
    acc = score[:, :, 0].copy()  # (staves, offsets)
    back = np.zeros((len(ys), k, n), np.int16)
    cols = np.arange(k)
    for b in range(1, n):
        cand = np.where(inside, acc[:, src].transpose(1, 0, 2) - cost, -np.inf)  # (steps, staves, offsets)
        choice = np.argmax(cand, axis=0)  # (staves, offsets)
        back[:, :, b] = src[choice, cols[None, :]]
        acc = np.take_along_axis(cand, choice[None], axis=0)[0] + score[:, :, b]
    found: list[tuple[float, float, Staff]] = []  # (line ink held, where its top line runs, staff)
    for si in range(len(ys)):
        path = np.zeros(n, int)
        path[-1] = int(np.argmax(acc[si]))
        for b in range(n - 1, 0, -1):
            path[b - 1] = back[si, path[b], b]
        present = lines_on[si, path, np.arange(n)] >= 3
        for b0, b1 in _runs(present, max_gap=3):  # bridge up to three blocks (six staff spaces)
            if (b1 - b0) * bw < 6 * il:
                continue
            x0, x1 = _refine_ends(hmask, ys[si] + offs[path[b0]], ys[si] + offs[path[b1 - 1]], b0 * bw, b1 * bw, bw,
                                  band)
            if x1 - x0 < 6 * il:
                continue
            d = offs[path[b0:b1]]
            on = np.arange(b0, b1)[present[b0:b1]]
            line_cover = float(score[si, path[on], on].mean())
            # A staff's five lines run through (nearly) every block it holds (measured: 0.92-1.0 of
            # their rows on the staves of engravings and scans; pieces of text or of two staves at
            # once, 0.48-0.80 mostly).
            if line_cover < 0.85:
                continue
            found.append((float(np.median(score[si, path[b0:b1], np.arange(b0, b1)])) * (b1 - b0),
                          float(ys[si, 0] + np.median(d)),
                          Staff(tuple(float(v) for v in seeds[si]), float(x0), float(x1),
                                (float(d.min()), float(d.max())))))
    # Two seeds can lead to one staff (a seed between two staves drifts onto one of them): keep the
    # piece that holds the most line ink where pieces lie on the same lines.
    out: list[Staff] = []
    kept: list[tuple[float, Staff]] = []
    for _, y, st in sorted(found, key=lambda f: -f[0]):
        if any(abs(y - ky) < 2.5 * il and min(st.x1, o.x1) - max(st.x0, o.x0) > 0.5 * min(st.x1 - st.x0, o.x1 - o.x0)
               for ky, o in kept):
            continue
        kept.append((y, st))
        out.append(st)
    return out


def _refine_ends(hmask: np.ndarray, ys_left: np.ndarray, ys_right: np.ndarray, x0: int, x1: int, bw: int,
                 band: int) -> tuple[int, int]:
    """Column-exact ends of a staff found block by block: the first and last column inside its
    end blocks where three of the five lines have a long run."""
    h, w = hmask.shape

    def cols(ys: np.ndarray, a: int, b: int) -> np.ndarray:
        a, b = max(0, a), min(w, b)
        present = np.zeros(max(0, b - a), np.int32)
        for ly in ys:
            lo, hi = max(0, int(ly) - band), min(h, int(ly) + band + 1)
            present += hmask[lo:hi, a:b].max(axis=0) > 0 if hi > lo else 0
        return present >= 3

    left = np.nonzero(cols(ys_left, x0 - bw, x0 + bw))[0]
    right = np.nonzero(cols(ys_right, x1 - bw, x1 + bw))[0]
    nx0 = max(0, x0 - bw) + int(left[0]) if len(left) else x0
    nx1 = max(0, x1 - bw) + int(right[-1]) + 1 if len(right) else x1
    return nx0, nx1


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


# A row reaches at least this far beyond its outer staff lines (staff spaces), and further where the
# system's own ink (ledger lines, high or low notes, beams, slurs) goes on, up to REACH_MAX.
MARGIN = 2.5
REACH_MAX = 10.0


def _reach(ink: np.ndarray, x0: float, x1: float, edge: float, limit: float, il: float) -> float:
    """How far (pixels) the system's ink goes on from staff line ``edge`` towards ``limit``.

    The band is cut into columns two staff spaces wide; in each, ink is followed outwards from the
    staff until a gap of 1.3 staff spaces (ledger lines of a high note are a staff space apart, so a
    stack is never broken; a title or tempo word that stands apart from the notes is not reached)."""
    step = 1 if limit > edge else -1
    a, b = int(round(edge)), int(round(limit))
    if (b - a) * step <= 1:
        return 0.0
    lo, hi = (a, b) if step > 0 else (b + 1, a + 1)
    lo, hi = max(0, lo), min(ink.shape[0], hi)
    cx0, cx1 = max(0, int(x0)), min(ink.shape[1], int(x1))
    cw = max(2, int(round(2 * il)))
    n = (cx1 - cx0) // cw
    if n <= 0 or hi <= lo:
        return 0.0
    band = ink[lo:hi, cx0: cx0 + n * cw].reshape(hi - lo, n, cw).max(axis=2) > 0
    if step < 0:
        band = band[::-1]  # row 0 next to the staff
    gap_max = max(2, int(round(1.3 * il)))
    rows = band.shape[0]
    # The first row starting gap_max empty rows ends the search in that column; the reach is the
    # last inked row before it.
    c = np.vstack([np.zeros((1, n), np.int32), np.cumsum(band, axis=0, dtype=np.int32)])
    if rows >= gap_max:
        empty = (c[gap_max:] - c[:-gap_max]) == 0  # (rows - gap_max + 1, n): window starting at r
        stop = np.where(empty.any(axis=0), np.argmax(empty, axis=0), rows)
    else:
        stop = np.full(n, rows)
    inked = band & (np.arange(rows)[:, None] < stop[None, :])
    reach = np.where(inked.any(axis=0), rows - np.argmax(inked[::-1], axis=0), 0)
    return float(reach.max())


def _row_boxes(groups: list[list[Staff]], m: StaffMetrics, ink: np.ndarray) -> list[System]:
    h, w = ink.shape
    il = m.interline
    lines = [(min(s.x0 for s in g), min(s.upper for s in g), max(s.x1 for s in g), max(s.lower for s in g))
             for g in groups]
    # Vertical neighbours (overlapping columns): the nearest system above and below each.
    above: list[int | None] = [None] * len(lines)
    below: list[int | None] = [None] * len(lines)
    for i, lb in enumerate(lines):
        for j, other in enumerate(lines):
            if j == i or min(lb[2], other[2]) - max(lb[0], other[0]) <= 0:
                continue
            if other[3] <= lb[1] and (above[i] is None or other[3] > lines[above[i]][3]):
                above[i] = j
            elif other[1] >= lb[3] and (below[i] is None or other[1] < lines[below[i]][1]):
                below[i] = j
    # How far each system's own ink reaches (up, down), never past the neighbour's staff lines.
    ink_up, ink_down = [], []
    for i, lb in enumerate(lines):
        up_limit = max(0.0, lb[1] - REACH_MAX * il) if above[i] is None else lines[above[i]][3]
        down_limit = min(float(h - 1), lb[3] + REACH_MAX * il) if below[i] is None else lines[below[i]][1]
        pad = m.line_thickness  # start just outside the outer staff line
        ink_up.append(_reach(ink, lb[0], lb[2], lb[1] - pad, up_limit, il) + pad)
        ink_down.append(_reach(ink, lb[0], lb[2], lb[3] + pad, down_limit, il) + pad)
    margin = MARGIN * il
    tops = [lb[1] - max(margin, r) for lb, r in zip(lines, ink_up)]
    bottoms = [lb[3] + max(margin, r) for lb, r in zip(lines, ink_down)]
    # Between two systems each keeps what its own ink needs. Where both inks reach into the same
    # space they meet half-way through the overlap; otherwise the fixed margins may fill the free
    # space between the inks up to its middle. Neither row holds the other's notes.
    for i, j in enumerate(below):
        if j is None:
            continue
        ink_bottom, ink_top = lines[i][3] + ink_down[i], lines[j][1] - ink_up[j]
        if ink_bottom > ink_top:
            meet = (max(ink_top, lines[i][3]) + min(ink_bottom, lines[j][1])) / 2
            bottoms[i], tops[j] = meet, meet
        else:
            mid = (ink_bottom + ink_top) / 2
            bottoms[i] = min(bottoms[i], max(ink_bottom, mid))
            tops[j] = max(tops[j], min(ink_top, mid))
    systems = []
    for i, (g, lb) in enumerate(zip(groups, lines)):
        top, bottom = tops[i], bottoms[i]
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
        skew = estimate_skew(ink) if deskew else 0.0
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
        if other.support < 0.15 * m.support:
            continue  # too few line pitches of that size for a staff: a stray peak, not worth a search
        for st in _find_staves(image, other):
            if all(st.bottom < t.top - m.interline or st.top > t.bottom + m.interline or
                   st.x1 < t.x0 or st.x0 > t.x1 for t in staves):
                staves.append(st)
    groups = _group(image, staves, m)
    systems = [System(sy.staves, sy.lines_box, sy.box, frame) for sy in _row_boxes(groups, m, image)]
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
