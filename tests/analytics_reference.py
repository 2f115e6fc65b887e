"""A line-by-line reference port of DeepStream 9.1's nvdsanalytics core, for tests.

Follows src/utils/nvds_analytics/nvds_analytics.cpp: ``NvDsAnalyticCtxImpl`` (constructor: scaling and
``mode_dir``), ``processSource`` (object by object, in frame order, with the C++ integer and float32
arithmetic), ``NvDsAnalytics_CheckObjInROI``, ``CheckDirection``, ``CheckLineCrossing``,
``check_if_intersection_on_segment``. Scalar Python on purpose: it shares no code with
runner/pipeline/analytics, whose vectorised version it checks. Per-class count smoothing is left out
(tested on its own).
"""

from __future__ import annotations

import math

import numpy as np

F = np.float32
UNTRACKED = -1


def c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def dir_vec(x1, y1, x2, y2):
    mag = math.sqrt((x1 - x2) * (x1 - x2) + (y1 - y2) * (y1 - y2))
    if mag < 1e-9:
        return (0.0, 0.0)
    return ((x2 - x1) / mag, (y2 - y1) / mag)


def line_abc(x1, y1, x2, y2):
    a, b, c = (y1 - y2), (x2 - x1), (x1 * y2 - x2 * y1)
    mag = math.sqrt(a * a + b * b)
    if mag == 0:
        return [math.nan] * 3
    return [a / mag, b / mag, c / mag]


def intersection(l1, l2):
    m1, m2 = math.hypot(l1[0], l1[1]), math.hypot(l2[0], l2[1])
    if not m1 or not m2 or math.isnan(m1) or math.isnan(m2):
        return None
    l1, l2 = [v / m1 for v in l1], [v / m2 for v in l2]
    det = l1[0] * l2[1] - l1[1] * l2[0]
    if abs(det) < 1e-5:
        return None
    return ((-l1[2] * l2[1] + l1[1] * l2[2]) / det, (-l1[0] * l2[2] + l1[2] * l2[0]) / det)


def on_segment(xp, yp, xc, yc, lc, pts):
    hit = intersection(line_abc(xp, yp, xc, yc), lc)
    if hit is None:
        return False
    v1 = (hit[0] - pts[2][0], hit[1] - pts[2][1])
    v2 = (pts[3][0] - pts[2][0], pts[3][1] - pts[2][1])
    return v1[0] * v2[0] + v1[1] * v2[1] > 0 and v2[0] * v2[0] + v2[1] * v2[1] > v1[0] * v1[0] + v1[1] * v1[1]


def in_roi(pts, cgx, cgy):
    total = 0
    prev_x, prev_y = pts[0]
    for k in range(len(pts)):
        cur_x, cur_y = pts[k + 1] if k < len(pts) - 1 else pts[0]
        if (prev_y <= cgy < cur_y) or (cur_y <= cgy < prev_y):
            a, b, c = prev_y - cur_y, cur_x - prev_x, cur_y * prev_x - cur_x * prev_y
            if a != 0:
                xicp = c_div(-1 * (b * cgy + c), a)
                if 0 <= xicp <= cgx:
                    total += 1
        prev_x, prev_y = cur_x, cur_y
    return total % 2 == 1


def check_direction(d, px, py, cx, cy, sim):
    x, y = cx - px, cy - py
    if x == 0 and y == 0:
        return False
    return (d[0] * x + d[1] * y) / math.sqrt(x * x + y * y) >= sim


def check_crossing(d, lc, px, py, cx, cy, sim):
    if not check_direction(d, px, py, cx, cy, sim):
        return False
    prev = math.trunc(lc[0] * px + lc[1] * py + lc[2])
    curr = math.trunc(lc[0] * cx + lc[1] * cy + lc[2])
    return (curr > 0 and prev < 0) or (curr < 0 and prev > 0)


def valid_class(classes, cid):
    return not classes or -1 in classes or cid in classes


class Obj:
    def __init__(self, hist):
        self.x, self.y, self.w, self.h = [0] * hist, [0] * hist, [0] * hist, [0] * hist
        self.ix = self.iy = self.sx = self.sy = self.iw = self.ih = 0
        self.cnt = self.idx = 0
        self.curr_pts = 0
        self.crossed: set[str] = set()


class ReferenceContext:
    """``NvDsAnalyticCtxImpl`` for one stream; rules as dicts of scaled values."""

    def __init__(self, rules, config_size, frame_size, hist=50, timeout_ms=300):
        fx = F(frame_size[0]) / F(config_size[0])
        fy = F(frame_size[1]) / F(config_size[1])
        sc = lambda p: (int(F(p[0]) * fx), int(F(p[1]) * fy))  # noqa: E731
        self.hist, self.timeout = hist, timeout_ms
        self.roi = [dict(label=r.label, on=r.enable, inv=r.inverse_roi, cls=r.class_ids,
                         pts=[sc(p) for p in r.points]) for r in rules.roi]
        self.oc = [dict(label=r.label, on=r.enable, thr=r.object_threshold, cls=r.class_ids,
                        pts=[sc(p) for p in r.points]) for r in rules.overcrowding]
        self.dirs = [dict(label=d.label, on=d.enable, cls=d.class_ids, v=dir_vec(*sc(d.start), *sc(d.end)))
                     for d in rules.directions]
        self.lines = []
        for r in rules.lines:
            d1, d2, l1, l2 = sc(r.direction[0]), sc(r.direction[1]), sc(r.line[0]), sc(r.line[1])
            lc_dir = dir_vec(*d1, *d2)
            lc = line_abc(*l1, *l2)
            mode_dir = "use_dir"
            hit = intersection(line_abc(*d1, *d2), line_abc(*l1, *l2))
            if hit is not None:
                m1 = sum(a * b for a, b in zip(dir_vec(*d1, *hit), lc_dir))
                m2 = sum(a * b for a, b in zip(dir_vec(*d2, *hit), lc_dir))
                v1 = lc[0] * d1[0] + lc[1] * d1[1] + lc[2]
                v2 = lc[0] * d2[0] + lc[1] * d2[1] + lc[2]
                if (m1 > 0.99 and v1 > 1e-5) or (m1 < -0.99 and v1 < 1e-5):
                    mode_dir = "pos_to_neg"
                elif (m1 < -0.99 and v1 > 1e-5) or (m1 > 0.99 and v1 < 1e-5):
                    mode_dir = "neg_to_pos"
                elif (m2 > 0.99 and v2 > 0) or (m2 < -0.99 and v2 < 0):
                    mode_dir = "pos_to_neg"
                elif (m2 < -0.99 and v2 > 0) or (m2 > 0.99 and v2 < 0):
                    mode_dir = "neg_to_pos"
            self.lines.append(dict(label=r.label, on=r.enable, ext=r.extended, mode=r.mode, cls=r.class_ids,
                                   dir=lc_dir, lc=lc, pts=[d1, d2, l1, l2], mode_dir=mode_dir))
        self.objs: dict[int, Obj] = {}
        self.totals: dict[str, int] = {}

    def process(self, pts, objects):
        """``objects``: (left, top, width, height, object id, class id) ints in frame order →
        (status per object, roi counts, lines crossed per object, totals)."""
        for oid in [k for k, o in self.objs.items() if math.trunc((pts - o.curr_pts) / 1e6) > self.timeout]:
            del self.objs[oid]
        statuses, roi_count, lc_per_obj = [], {}, []
        h = self.hist
        for left, top, width, height, oid, cid in objects:
            cx, cy = left + width // 2, top + height // 2
            o = self.objs.setdefault(oid, Obj(h))
            o.curr_pts = pts
            status, crossed = "", []
            i = o.idx
            if o.cnt >= h:
                o.ix -= o.x[i]; o.iy -= o.y[i]; o.sx -= o.x[i] * o.x[i]; o.sy -= o.y[i] * o.y[i]  # noqa: E702
                o.iw -= o.w[i]; o.ih -= o.h[i]  # noqa: E702
            o.x[i], o.y[i], o.w[i], o.h[i] = cx, cy, width, height
            o.idx = (i + 1) % h
            o.ix += cx; o.iy += cy; o.iw += width; o.ih += height; o.sx += cx * cx; o.sy += cy * cy  # noqa: E702
            win = F(h if o.cnt >= h else o.cnt + 1)
            mean_h = F(o.ih) / win
            mn_x, mn_y = F(o.ix) / win, F(o.iy) / win
            std_x = F(o.sx) / win - mn_x * mn_x
            std_y = F(o.sy) / win - mn_y * mn_y
            o.cnt += 1
            half = int(mean_h) // 2
            for r in self.roi:
                if not r["on"] or not valid_class(r["cls"], cid):
                    continue
                if in_roi(r["pts"], cx, cy + half) != r["inv"]:
                    status += " ROI:" + r["label"]
                    roi_count[r["label"]] = roi_count.get(r["label"], 0) + 1
            px = py = ph = pw = 0
            if o.cnt > 3:
                if o.cnt < h:
                    px, py = (o.x[0] + o.x[1]) // 2, (o.y[0] + o.y[1]) // 2
                    ph, pw = (o.h[0] + o.h[1]) // 2, (o.w[0] + o.w[1]) // 2
                else:
                    k = [(o.idx + j) % h for j in range(4)]
                    px, py = sum(o.x[j] for j in k) // 4, sum(o.y[j] for j in k) // 4
                    ph, pw = sum(o.h[j] for j in k) // 4, sum(o.w[j] for j in k) // 4
            diff_x, diff_y = F(cx - px), F((cy + height // 2) - (py + ph // 2))
            disp = int(diff_x * diff_x + diff_y * diff_y)
            for d in self.dirs:
                if not d["on"] or not valid_class(d["cls"], cid):
                    continue
                if oid == UNTRACKED:
                    d["on"] = False
                with np.errstate(divide="ignore", invalid="ignore"):
                    if o.cnt > h and std_x <= 400 and std_y / mean_h <= 0.01:
                        status += " STOPPED "
                        break
                if disp > 3000 and o.cnt > 10 and check_direction(d["v"], px, py + half, cx, cy + half, 0.5):
                    status += " DIR:" + d["label"] + " "
            for r in self.lines:
                if not r["on"] or r["label"] in o.crossed or not valid_class(r["cls"], cid):
                    continue
                if oid == UNTRACKED:
                    r["on"] = False
                thr, frames, sim = {"strict": (6000, 20, 0.8), "loose": (1000, 3, 0.1)}.get(r["mode"], (3000, 10, 0.5))
                if not (disp > thr and o.cnt > frames):
                    continue
                if r["mode_dir"] == "use_dir" or r["mode"] != "loose":
                    ok = check_crossing(r["dir"], r["lc"], px, py + half, cx, cy + height // 2, sim)
                else:
                    lc = r["lc"]
                    magc = lc[0] * cx + lc[1] * (cy + height // 2) + lc[2]
                    magp = lc[0] * px + lc[1] * float(F(py) + mean_h / F(2)) + lc[2]
                    ok = (magc >= 0 and r["mode_dir"] == "neg_to_pos" and magp < 0) or \
                         (magc <= 0 and r["mode_dir"] == "pos_to_neg" and magp > 0)
                if not r["ext"] and ok:
                    xp, yp = float(px), py + float(mean_h) / 2.0
                    xc, yc = float(cx), cy + height / 2.0
                    ok = any(on_segment(xp + s * (pw // 2), yp, xc + s * (width // 2), yc, r["lc"], r["pts"])
                             for s in (0, 1, -1))
                if ok:
                    status += " LC:" + r["label"] + " "
                    o.crossed.add(r["label"])
                    self.totals[r["label"]] = self.totals.get(r["label"], 0) + 1
                    crossed.append(r["label"])
            statuses.append(status)
            lc_per_obj.append(tuple(crossed))
        return statuses, roi_count, lc_per_obj, dict(self.totals)
