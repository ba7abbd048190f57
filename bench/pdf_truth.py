"""True staff systems of an engraved PDF page, read from its vector drawings (any engraver).

Staff lines are long horizontal strokes, five to a staff at equal distances; ledger lines are short
horizontal strokes a whole number of staff spaces above or below a staff; two staves belong to one
system when a vertical stroke (a barline or the system's start line) runs from one to the other.
verovio (through cairosvg), LilyPond and MuseScore all draw these as vector lines or thin filled
rectangles, never as font glyphs, so the same reading serves all three.

The true box of a system (issue: "the box of its staff lines and ledger lines") spans the staff
lines of all its staves and every ledger line attached to them, in PDF points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pymupdf

Box = tuple[float, float, float, float]


@dataclass
class TrueStaff:
    lines: list[float]  # y of the five lines, top to bottom
    x0: float
    x1: float
    top: float = 0.0  # with ledger lines
    bottom: float = 0.0

    @property
    def space(self) -> float:
        return (self.lines[-1] - self.lines[0]) / 4


@dataclass
class TrueSystem:
    staves: list[TrueStaff] = field(default_factory=list)

    @property
    def box(self) -> Box:
        return (min(s.x0 for s in self.staves), min(s.top for s in self.staves),
                max(s.x1 for s in self.staves), max(s.bottom for s in self.staves))

    @property
    def lines_box(self) -> Box:
        return (min(s.x0 for s in self.staves), self.staves[0].lines[0],
                max(s.x1 for s in self.staves), self.staves[-1].lines[-1])


def _segments(page: pymupdf.Page) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical strokes as rows (x0, y0, x1, y1, thickness)."""
    hor, ver = [], []
    for d in page.get_drawings():
        width = float(d.get("width") or 0.0)
        stroked = "s" in (d.get("type") or "")
        for it in d["items"]:
            # Lines of a filled outline are the edges of a shape (a beam, a glyph), not strokes.
            if it[0] == "l" and stroked:
                (ax, ay), (bx, by) = (it[1].x, it[1].y), (it[2].x, it[2].y)
                if abs(ay - by) < 0.05 * max(1e-6, abs(ax - bx)) + 0.2:
                    hor.append((min(ax, bx), (ay + by) / 2, max(ax, bx), (ay + by) / 2, width))
                elif abs(ax - bx) < 0.05 * abs(ay - by) + 0.2:
                    ver.append(((ax + bx) / 2, min(ay, by), (ax + bx) / 2, max(ay, by), width))
            elif it[0] == "re":
                r = it[1]
                if r.width >= 3 * r.height:
                    hor.append((r.x0, (r.y0 + r.y1) / 2, r.x1, (r.y0 + r.y1) / 2, r.height + width))
                elif r.height >= 3 * r.width:
                    ver.append(((r.x0 + r.x1) / 2, r.y0, (r.x0 + r.x1) / 2, r.y1, r.width + width))
            elif it[0] == "qu":
                r = it[1].rect
                if r.width >= 3 * r.height:
                    hor.append((r.x0, (r.y0 + r.y1) / 2, r.x1, (r.y0 + r.y1) / 2, r.height + width))
                elif r.height >= 3 * r.width:
                    ver.append(((r.x0 + r.x1) / 2, r.y0, (r.x0 + r.x1) / 2, r.y1, r.width + width))
    return np.array(hor, float).reshape(-1, 5), np.array(ver, float).reshape(-1, 5)


def _merge_collinear(hor: np.ndarray, tol_y: float = 0.4, gap: float = 2.0) -> list[tuple[float, float, float]]:
    """Horizontal strokes on one line whose x ranges touch, merged: (y, x0, x1)."""
    rows = sorted(hor.tolist(), key=lambda r: r[1])
    out: list[tuple[float, float, float]] = []
    k = 0
    while k < len(rows):
        j = k
        while j + 1 < len(rows) and rows[j + 1][1] - rows[k][1] <= tol_y:
            j += 1
        band = sorted(rows[k: j + 1], key=lambda r: r[0])  # strokes at (nearly) one height
        lengths = np.array([r[2] - r[0] for r in band]) + 1e-6
        y = float(np.average([r[1] for r in band], weights=lengths))  # the long strokes decide
        cur = [band[0][0], band[0][2]]
        for x0, _, x1, _, _ in band[1:]:
            if x0 <= cur[1] + gap:
                cur[1] = max(cur[1], x1)
            else:
                out.append((y, cur[0], cur[1]))
                cur = [x0, x1]
        out.append((y, cur[0], cur[1]))
        k = j + 1
    return out


def _staves(lines: list[tuple[float, float, float]], min_len: float) -> list[TrueStaff]:
    long = sorted((l for l in lines if l[2] - l[1] >= min_len), key=lambda l: (l[0], l[1]))
    staves: list[TrueStaff] = []
    used = [False] * len(long)
    for i, (y, x0, x1) in enumerate(long):
        if used[i]:
            continue
        group = [i]
        for j in range(i + 1, len(long)):
            if len(group) == 5:
                break
            yj, a, b = long[j]
            if used[j] or min(b, x1) - max(a, x0) < 0.9 * max(b - a, x1 - x0):
                continue
            d = yj - long[group[-1]][0]
            if d < 0.5:
                continue
            if len(group) >= 2:
                pitch = long[group[1]][0] - long[group[0]][0]
                if abs(d - pitch) > 0.15 * pitch:
                    if d > 1.15 * pitch:
                        break
                    continue
            elif d > 40:
                break
            group.append(j)
        if len(group) == 5:
            for k in group:
                used[k] = True
            ys = [long[k][0] for k in group]
            staves.append(TrueStaff(ys, min(long[k][1] for k in group), max(long[k][2] for k in group), ys[0], ys[-1]))
    return staves


def page_systems(page: pymupdf.Page) -> list[TrueSystem]:
    """The staff systems of one engraved page, top to bottom, left to right (PDF points)."""
    hor, ver = _segments(page)
    if not len(hor):
        return []
    lines = _merge_collinear(hor)
    staves = _staves(lines, min_len=0.12 * page.rect.width)
    if not staves:
        return []
    # Ledger lines: short thin strokes k staff spaces beyond a staff, inside its width (one between
    # two staves belongs to the nearer), in stacks: the k-th overlaps a (k-1)-th, the first touches the staff.
    cand: dict[tuple[int, int], list[tuple[int, float, float, float]]] = {}
    for x0, y, x1, _, thick in hor.tolist():
        length = x1 - x0
        best: tuple[float, int, int] | None = None
        for n, st in enumerate(staves):
            sp = st.space
            if not (0.8 * sp <= length <= 4.5 * sp) or thick > 0.4 * sp or x1 < st.x0 - sp or x0 > st.x1 + sp:
                continue
            for edge, sign in ((st.lines[0], -1), (st.lines[-1], 1)):
                k = (y - edge) * sign / sp
                if 0.7 <= k <= 12.5 and abs(k - round(k)) < 0.25 and (best is None or k < best[0]):
                    best = (k, n, sign)
        if best is not None:
            cand.setdefault((best[1], best[2]), []).append((int(round(best[0])), x0, x1, y))
    for (n, sign), items in cand.items():
        st = staves[n]
        reached = [(x0, x1) for k, x0, x1, _ in items if k == 1]
        ys = [y for k, _, _, y in items if k == 1]
        for level in range(2, 13):
            nxt = [(x0, x1, y) for k, x0, x1, y in items if k == level
                   and any(min(x1, b) - max(x0, a) > 0 for a, b in reached)]
            if not nxt:
                break
            reached = [(a, b) for a, b, _ in nxt]
            ys += [y for _, _, y in nxt]
        if ys:
            if sign < 0:
                st.top = min(st.top, min(ys))
            else:
                st.bottom = max(st.bottom, max(ys))
    # Links: a vertical stroke across the gap from staff a to staff b.
    staves.sort(key=lambda s: (s.lines[0], s.x0))
    parent = list(range(len(staves)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(staves):
        for j in range(i + 1, len(staves)):
            b = staves[j]
            lo, hi = max(a.x0, b.x0), min(a.x1, b.x1)
            if hi - lo < 0.5 * min(a.x1 - a.x0, b.x1 - b.x0):
                continue
            sp = a.space
            # Barlines through both staves, or the system's start line through all of them.
            ok = ((ver[:, 0] >= lo - sp) & (ver[:, 0] <= hi + sp) & (ver[:, 1] <= a.lines[-1] + 0.5 * sp)
                  & (ver[:, 3] >= b.lines[0] - 0.5 * sp)) if len(ver) else np.zeros(0, bool)
            if ok.any():
                parent[find(j)] = find(i)
            break  # only the next staff below in the same column
    # What lies off the page is not on it (an engraving whose lines run past the edge).
    r = page.rect
    for st in staves:
        st.x0, st.x1 = max(st.x0, r.x0), min(st.x1, r.x1)
        st.top, st.bottom = max(st.top, r.y0), min(st.bottom, r.y1)
    groups: dict[int, TrueSystem] = {}
    for i, st in enumerate(staves):
        groups.setdefault(find(i), TrueSystem()).staves.append(st)
    return sorted(groups.values(), key=lambda s: (s.staves[0].lines[0], s.staves[0].x0))
