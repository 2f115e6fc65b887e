"""nvdsanalytics' geometry, vectorised over objects: the helpers of src/utils/nvds_analytics/nvds_analytics.cpp.

Each function follows its C++ namesake's arithmetic, including the integer truncations (``int`` point
tests, ``int32_t`` side-of-line values), because those decide borderline crossings:

- :func:`in_polygon` — ``NvDsAnalytics_CheckObjInROI``: a ray from x=0 to the point, counting polygon
  edges whose (integer, truncated) intercept lies in ``[0, x]``; odd = inside;
- :func:`line_abc` — ``get_line_abc``: the unit-normal form a·x + b·y + c = 0 of the line p1→p2;
- :func:`direction_ok` — ``CheckDirection``: cosine between the motion and a unit vector >= ``sim``;
- :func:`crosses` — ``CheckLineCrossing``: moving the right way and the (truncated) side changes;
- :func:`on_segment` — ``check_if_intersection_on_segment``: the motion line meets the line between
  its two end points.

>>> import numpy as np
>>> square = [(0, 0), (100, 0), (100, 100), (0, 100)]
>>> in_polygon(square, np.array([50, 150, 50]), np.array([50, 50, 100])).tolist()
[True, False, False]
"""

from __future__ import annotations

import numpy as np

__all__ = ["in_polygon", "line_abc", "unit_vector", "direction_ok", "crosses", "on_segment", "intersection",
           "arrow_head"]


def _c_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C integer division (truncation toward zero)."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def in_polygon(points, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each (x, y) is inside the polygon ``points`` (the C function's ray count)."""
    pts = np.asarray(points, np.int64)
    x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
    hits = np.zeros(len(x), np.int64)
    for k in range(len(pts)):  # O(edges): a handful per polygon
        px, py = pts[k]
        cx, cy = pts[(k + 1) % len(pts)]
        spans = ((y >= py) & (y < cy)) | ((y < py) & (y >= cy))
        a, b, c = py - cy, cx - px, cy * px - cx * py
        if a == 0:
            continue
        xicp = _c_div(-1 * (b * y + c), np.full_like(y, a))
        hits += spans & (xicp >= 0) & (xicp <= x)
    return hits % 2 == 1


def line_abc(x1, y1, x2, y2) -> np.ndarray:
    """(a, b, c) of the line through (x1, y1), (x2, y2), divided by |(a, b)| (``get_line_abc``).
    Arrays broadcast; a zero-length line gives NaNs, as the C division does."""
    a = np.subtract(y1, y2, dtype=np.float64)
    b = np.subtract(x2, x1, dtype=np.float64)
    c = np.multiply(x1, y2, dtype=np.float64) - np.multiply(x2, y1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.sqrt(a * a + b * b)
        return np.stack([a / mag, b / mag, c / mag])


def unit_vector(x1, y1, x2, y2) -> tuple[float, float]:
    """``get_dir_vec``: the unit vector from (x1, y1) to (x2, y2), (0, 0) for a point."""
    mag = float(np.sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2))
    if mag < 1e-9:
        return 0.0, 0.0
    return (x2 - x1) / mag, (y2 - y1) / mag


def direction_ok(unit: tuple[float, float], px, py, cx, cy, sim: float) -> np.ndarray:
    """``CheckDirection`` on int coordinates: motion (c - p) within acos(sim) of ``unit``."""
    dx = np.asarray(cx, np.int64) - np.asarray(px, np.int64)
    dy = np.asarray(cy, np.int64) - np.asarray(py, np.int64)
    moved = (dx != 0) | (dy != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (unit[0] * dx + unit[1] * dy) / np.sqrt((dx * dx + dy * dy).astype(np.float64))
    return moved & ~(cos < sim)


def crosses(unit: tuple[float, float], abc: np.ndarray, px, py, cx, cy, sim: float) -> np.ndarray:
    """``CheckLineCrossing``: right direction, and the sides (as int32, truncated) differ in sign."""
    a, b, c = abc
    prev = np.trunc(a * np.asarray(px, np.float64) + b * np.asarray(py, np.float64) + c)
    curr = np.trunc(a * np.asarray(cx, np.float64) + b * np.asarray(cy, np.float64) + c)
    flipped = ((curr > 0) & (prev < 0)) | ((curr < 0) & (prev > 0))
    return direction_ok(unit, px, py, cx, cy, sim) & flipped


def intersection(abc1: np.ndarray, abc2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``get_intersection_point``: (ok, x, y) where the lines meet; ok False for |det| < 1e-5."""
    with np.errstate(divide="ignore", invalid="ignore"):
        l1 = abc1 / np.sqrt(abc1[0] ** 2 + abc1[1] ** 2)
        l2 = abc2 / np.sqrt(abc2[0] ** 2 + abc2[1] ** 2)
        det = l1[0] * l2[1] - l1[1] * l2[0]
        ok = ~(np.abs(det) < 1e-5)
        xi = (-l1[2] * l2[1] + l1[1] * l2[2]) / det
        yi = (-l1[0] * l2[2] + l1[2] * l2[0]) / det
    return ok, xi, yi


def on_segment(xp, yp, xc, yc, line_abc_: np.ndarray, end_points) -> np.ndarray:
    """``check_if_intersection_on_segment``: the motion line p→c meets the line strictly between
    ``end_points`` A and B (projection on AB positive and shorter than AB)."""
    (ax, ay), (bx, by) = end_points
    ok, xi, yi = intersection(line_abc(xp, yp, xc, yc), line_abc_[:, None] if np.ndim(xp) else line_abc_)
    v1x, v1y = xi - ax, yi - ay
    v2x, v2y = float(bx - ax), float(by - ay)
    with np.errstate(invalid="ignore"):
        return ok & (v1x * v2x + v1y * v2y > 0) & (v2x * v2x + v2y * v2y > v1x * v1x + v1y * v1y)


def arrow_head(x1: int, y1: int, x2: int, y2: int) -> tuple[int, int, int, int]:
    """``get_arrow_head`` (gstnvdsanalytics.cpp): the two barbs of an arrow ending at (x2, y2),
    15° either side, 0.15 of its length (truncated to int as the C assignment does).

    >>> arrow_head(0, 0, 100, 0)
    (85, 3, 85, -3)
    """
    theta = 15 * np.pi / 180.0
    dx, dy = x1 - x2, y1 - y2
    cos, sin = np.cos(theta), np.sin(theta)
    return (int(x2 + 0.15 * (dx * cos + dy * sin)), int(y2 + 0.15 * (dy * cos - dx * sin)),
            int(x2 + 0.15 * (dx * cos - dy * sin)), int(y2 + 0.15 * (dy * cos + dx * sin)))
