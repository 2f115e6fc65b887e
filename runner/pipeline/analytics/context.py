"""One stream's nvdsanalytics state: ``NvDsAnalyticCtxImpl::processSource`` (src/utils/nvds_analytics/
nvds_analytics.cpp) over columns.

Per object id the C++ keeps a ring of the last ``hist`` centres and sizes with running sums; here those
are rows of numpy arrays (one row per known id, ids kept sorted for ``searchsorted``). A frame's objects
are processed together; objects sharing an id (untracked objects all have id -1, DeepStream's
UNTRACKED_OBJECT_ID) are processed in successive waves so that each sees the state its predecessor
left, as the C++ loop does. The numbers follow the C++ types: integer centres (``left + width/2``),
float32 means and variances, integer side-of-line tests.

What it reports per frame, as DeepStream's ``NvDsAnalyticProcessParams``: per object the ROI,
overcrowding, line and direction labels and the status text (`` ROI:RF``, `` LC:Exit ``, `` DIR:North ``,
`` STOPPED ``); per rule the objects inside, the overcrowding flag, line crossings in this frame and
since the start; per class the object count, smoothed over ``obj-cnt-win-in-ms`` by
:class:`CountSmoother`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from runner.config.model_analytics import LineMode, StreamRules
from runner.pipeline.analytics import geometry as geo
from runner.pipeline.analytics.smoothing import CountSmoother

__all__ = ["StreamContext", "FrameResult", "HIST_DEFAULT", "TIMEOUT_MS"]

log = logging.getLogger("dsrun")

HIST_DEFAULT = 50  # gstnvdsanalytics.cpp: obj-cnt-win-in-ms unset -> 50 (window in ms and history length)
TIMEOUT_MS = 300  # gstnvdsanalytics.cpp passes timeOut=300: an id unseen this long is forgotten
# (displacement², frames seen, cosine similarity) per line-crossing mode — processSource's thresholds
_LINE_THRESHOLDS = {LineMode.BALANCED: (3000, 10, 0.5), LineMode.STRICT: (6000, 20, 0.8),
                    LineMode.LOOSE: (1000, 3, 0.1)}
_DIR_THRESHOLDS = (3000, 10, 0.5)  # direction detection (the C++ uses one setting whatever the mode)
USE_DIR, POS_TO_NEG, NEG_TO_POS = 0, 1, 2  # eModeDir


@dataclass
class FrameResult:
    """What one frame's analysis found (object-dtype columns over the frame's objects, dicts over rules)."""
    status: np.ndarray  # per object: objStatus text
    roi: np.ndarray  # per object: tuple of ROI labels
    overcrowding: np.ndarray  # tuple of overcrowding labels
    lines: np.ndarray  # tuple of lines crossed now
    direction: np.ndarray  # dirStatus text
    flagged: np.ndarray  # bool: the plugin attaches NvDsAnalyticsObjInfo (a status or an overcrowding ROI)
    roi_count: dict[str, int] = field(default_factory=dict)
    oc_count: dict[str, int] = field(default_factory=dict)
    oc_status: dict[str, bool] = field(default_factory=dict)
    line_now: dict[str, int] = field(default_factory=dict)
    line_total: dict[str, int] = field(default_factory=dict)
    class_count: dict[int, int] = field(default_factory=dict)


@dataclass
class _Line:
    label: str
    enable: bool
    extended: bool
    mode: str
    classes: tuple[int, ...]
    unit: tuple[float, float]
    abc: np.ndarray
    ends: tuple[tuple[int, int], tuple[int, int]]
    mode_dir: int
    configured: bool  # enable as written (reported and drawn even after an untracked object switched it off)


@dataclass
class _Direction:
    label: str
    enable: bool
    classes: tuple[int, ...]
    unit: tuple[float, float]


def _texts(n: int) -> np.ndarray:
    return np.full(n, "", object)


def _tuples(n: int) -> np.ndarray:
    out = np.empty(n, object)
    out[:] = [()] * n
    return out


def _append(column: np.ndarray, rows: np.ndarray, value) -> None:
    """``column[rows] += value`` for an object column of str (value a str) or tuples (value a tuple)."""
    if len(rows):
        box = np.empty(1, object)
        box[0] = value
        column[rows] = column[rows] + box


def _class_ok(classes: tuple[int, ...], class_id: np.ndarray) -> np.ndarray:
    """``CheckValidClass``: no list or -1 in it means every class."""
    if not classes or -1 in classes:
        return np.ones(len(class_id), bool)
    return np.isin(class_id, classes)


def _scale(v: int, f: np.float32) -> int:
    return int(np.float32(v) * f)  # int * float → float, truncated back to int


class StreamContext:
    """``NvDsAnalyticCtx`` for one stream, its rules scaled from config to frame size."""

    def __init__(self, rules: StreamRules, config_size: tuple[int, int], frame_size: tuple[int, int],
                 hist: int = HIST_DEFAULT, window_ms: int = HIST_DEFAULT, timeout_ms: int = TIMEOUT_MS) -> None:
        fx = np.float32(frame_size[0]) / np.float32(config_size[0] or 1)
        fy = np.float32(frame_size[1]) / np.float32(config_size[1] or 1)
        pt = lambda p: (_scale(p[0], fx), _scale(p[1], fy))  # noqa: E731
        self.roi = [(r.label, r.enable, r.inverse_roi, r.class_ids, [pt(p) for p in r.points]) for r in rules.roi]
        self.oc = [(r.label, r.enable, r.object_threshold, r.class_ids, [pt(p) for p in r.points])
                   for r in rules.overcrowding]
        self.dirs = [_Direction(d.label, d.enable, d.class_ids, geo.unit_vector(*pt(d.start), *pt(d.end)))
                     for d in rules.directions]
        self.lines = [self._line(r, pt) for r in rules.lines]
        self.hist, self.timeout_ms = hist, timeout_ms
        self.smoother = CountSmoother(window_ms)
        self.total = {line.label: 0 for line in self.lines}
        self._new_state()
        # rules scaled to the frame, for drawing
        self.drawn_roi = [(label, on, pts) for label, on, _, _, pts in self.roi]
        self.drawn_oc = [(label, on, pts) for label, on, _, _, pts in self.oc]
        self.drawn_dirs = [(d.label, d.enable, pt(r.start), pt(r.end)) for d, r in zip(self.dirs, rules.directions)]
        self.drawn_lines = [(r.label, r.enable, pt(r.direction[0]), pt(r.direction[1]), pt(r.line[0]),
                             pt(r.line[1])) for r in rules.lines]

    @staticmethod
    def _line(rule, pt) -> _Line:
        (xd1, yd1), (xd2, yd2) = pt(rule.direction[0]), pt(rule.direction[1])
        (xl1, yl1), (xl2, yl2) = pt(rule.line[0]), pt(rule.line[1])
        unit = geo.unit_vector(xd1, yd1, xd2, yd2)
        abc = geo.line_abc(xl1, yl1, xl2, yl2)
        mode_dir = USE_DIR
        ok, xi, yi = geo.intersection(geo.line_abc(xd1, yd1, xd2, yd2), abc)
        if ok:  # which side the direction vector starts on (the constructor's mode_dir)
            m1 = float(np.dot(geo.unit_vector(xd1, yd1, float(xi), float(yi)), unit))
            m2 = float(np.dot(geo.unit_vector(xd2, yd2, float(xi), float(yi)), unit))
            v1 = float(abc[0] * xd1 + abc[1] * yd1 + abc[2])
            v2 = float(abc[0] * xd2 + abc[1] * yd2 + abc[2])
            if (m1 > 0.99 and v1 > 1e-5) or (m1 < -0.99 and v1 < 1e-5):
                mode_dir = POS_TO_NEG
            elif (m1 < -0.99 and v1 > 1e-5) or (m1 > 0.99 and v1 < 1e-5):
                mode_dir = NEG_TO_POS
            elif (m2 > 0.99 and v2 > 0) or (m2 < -0.99 and v2 < 0):
                mode_dir = POS_TO_NEG
            elif (m2 < -0.99 and v2 > 0) or (m2 > 0.99 and v2 < 0):
                mode_dir = NEG_TO_POS
        else:
            log.warning("nvdsanalytics line-crossing-%s: the direction is parallel to the line "
                        "(DeepStream prints 'Improper direction configured')", rule.label)
        return _Line(rule.label, rule.enable, rule.extended, rule.mode, rule.class_ids, unit, abc,
                     ((xl1, yl1), (xl2, yl2)), mode_dir, rule.enable)

    def _new_state(self) -> None:
        h = self.hist
        self.ids = np.zeros(0, np.int64)
        self.curr_pts = np.zeros(0, np.int64)
        self.frm_cnt = np.zeros(0, np.int64)
        self.frm_idx = np.zeros(0, np.int64)
        self.ring = np.zeros((0, 4, h), np.int64)  # x, y, w, h per slot of the ring
        self.sums = np.zeros((0, 6), np.int64)  # Σx, Σy, Σx², Σy², Σw, Σh over the ring
        self.crossed = np.zeros((0, len(self.lines)), bool)

    def _forget(self, keep: np.ndarray) -> None:
        for name in ("ids", "curr_pts", "frm_cnt", "frm_idx", "ring", "sums", "crossed"):
            setattr(self, name, getattr(self, name)[keep])

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids`` in the state, adding rows for new ids (ids in one call are distinct)."""
        pos = np.searchsorted(self.ids, ids)
        known = (pos < len(self.ids)) & (self.ids[np.minimum(pos, len(self.ids) - 1)] == ids) \
            if len(self.ids) else np.zeros(len(ids), bool)
        new = np.sort(ids[~known])
        if len(new):
            n = len(new)
            merged = np.concatenate([self.ids, new])
            order = np.argsort(merged, kind="stable")
            grow = {"ids": new, "curr_pts": np.zeros(n, np.int64), "frm_cnt": np.zeros(n, np.int64),
                    "frm_idx": np.zeros(n, np.int64), "ring": np.zeros((n, 4, self.hist), np.int64),
                    "sums": np.zeros((n, 6), np.int64), "crossed": np.zeros((n, len(self.lines)), bool)}
            for name, extra in grow.items():
                setattr(self, name, np.concatenate([getattr(self, name), extra])[order])
            pos = np.searchsorted(self.ids, ids)
        return pos

    def process(self, pts: int, xyxy: np.ndarray, class_id: np.ndarray, track_id: np.ndarray) -> FrameResult:
        """Analyse one frame (``pts`` in ns; boxes in frame pixels) and update the state."""
        n = len(class_id)
        # ObjInf holds uint32 left/top/width/height, converted from the float rect
        left = np.maximum(np.trunc(xyxy[:, 0]), 0).astype(np.int64)
        top = np.maximum(np.trunc(xyxy[:, 1]), 0).astype(np.int64)
        width = np.maximum(np.trunc(xyxy[:, 2] - xyxy[:, 0]), 0).astype(np.int64)
        height = np.maximum(np.trunc(xyxy[:, 3] - xyxy[:, 1]), 0).astype(np.int64)
        cls = class_id.astype(np.int64)
        ids = track_id.astype(np.int64)
        res = FrameResult(status=_texts(n), roi=_tuples(n), overcrowding=_tuples(n), lines=_tuples(n),
                          direction=_texts(n), flagged=np.zeros(n, bool))
        if len(self.ids):  # ids unseen for longer than the timeout are forgotten
            seen_ms = np.trunc((pts - self.curr_pts) / 1e6)
            self._forget(~(seen_ms > self.timeout_ms))
        res.class_count = self.smoother.update(np.unique(cls, return_counts=True), pts)
        res.roi_count = {label: 0 for label, on, *_ in self.roi if on}
        res.oc_count = {label: 0 for label, on, *_ in self.oc if on}
        res.oc_status = dict.fromkeys(res.oc_count, False)
        res.line_now = {line.label: 0 for line in self.lines if line.configured}
        # rules an untracked object switches off (the C++ sets enable=false and goes on with that object)
        cut = {("dir", k): self._untracked_cut(d.enable, d.classes, cls, ids) for k, d in enumerate(self.dirs)}
        cut |= {("lc", k): self._untracked_cut(lc.enable, lc.classes, cls, ids) for k, lc in enumerate(self.lines)}
        # waves: the k-th object of each id in the frame
        order = np.lexsort((np.arange(n), ids))
        first = np.searchsorted(ids[order], ids[order])
        wave = np.empty(n, np.int64)
        wave[order] = np.arange(n) - first
        for w in range(int(wave.max()) + 1 if n else 0):
            rows = np.flatnonzero(wave == w)
            self._wave(rows, pts, left[rows], top[rows], width[rows], height[rows], cls[rows], ids[rows], cut, res)
        for key, row in cut.items():
            if row is not None:
                (self.dirs if key[0] == "dir" else self.lines)[key[1]].enable = False
        res.line_total = {label: self.total[label] for label in res.line_now}
        return res

    @staticmethod
    def _untracked_cut(enable: bool, classes, cls: np.ndarray, ids: np.ndarray) -> int | None:
        """Row of the first untracked object this rule applies to (it disables the rule), or None."""
        if not enable:
            return None
        hit = np.flatnonzero((ids == -1) & _class_ok(classes, cls))
        if len(hit):
            log.warning("nvdsanalytics: line crossing and direction need tracked objects — enable [tracker]; "
                        "the rule is switched off as DeepStream does")
            return int(hit[0])
        return None

    def _wave(self, rows, pts, left, top, width, height, cls, ids, cut, res: FrameResult) -> None:
        s = self._slots(ids)
        h = self.hist
        self.curr_pts[s] = pts
        cx, cy = left + width // 2, top + height // 2
        idx = self.frm_idx[s]
        full = self.frm_cnt[s] >= h
        old = self.ring[s, :, idx]  # (k, 4) the samples about to be overwritten
        old_terms = np.stack([old[:, 0], old[:, 1], old[:, 0] ** 2, old[:, 1] ** 2, old[:, 2], old[:, 3]], 1)
        self.sums[s] -= np.where(full[:, None], old_terms, 0)
        self.ring[s, :, idx] = np.stack([cx, cy, width, height], 1)
        self.frm_idx[s] = (idx + 1) % h
        self.sums[s] += np.stack([cx, cy, cx * cx, cy * cy, width, height], 1)
        win = np.where(self.frm_cnt[s] < h, self.frm_cnt[s] + 1, h).astype(np.float32)
        sums = self.sums[s].astype(np.float32)
        mean_h = sums[:, 5] / win
        mean_x, mean_y = sums[:, 0] / win, sums[:, 1] / win
        var_x = sums[:, 2] / win - mean_x * mean_x
        var_y = sums[:, 3] / win - mean_y * mean_y
        self.frm_cnt[s] += 1
        cnt = self.frm_cnt[s]
        half_h = mean_h.astype(np.int64) // 2  # (int)mean_h/2
        status, dir_txt = _texts(len(rows)), _texts(len(rows))
        roi_lab, oc_lab, lc_lab = _tuples(len(rows)), _tuples(len(rows)), _tuples(len(rows))
        in_oc = np.zeros(len(rows), bool)
        for label, on, inverse, classes, pts_ in self.roi:
            if not on:
                continue
            inside = geo.in_polygon(pts_, cx, cy + half_h) != inverse
            hit = np.flatnonzero(inside & _class_ok(classes, cls))
            _append(status, hit, " ROI:" + label)
            _append(roi_lab, hit, (label,))
            res.roi_count[label] += len(hit)
        for label, on, threshold, classes, pts_ in self.oc:
            if not on:
                continue
            hit = np.flatnonzero(geo.in_polygon(pts_, cx, cy + half_h) & _class_ok(classes, cls))
            _append(oc_lab, hit, (label,))
            in_oc[hit] = True
            res.oc_count[label] += len(hit)
            res.oc_status[label] = res.oc_count[label] > 0 and res.oc_count[label] >= threshold
        # the "previous" point: mean of the two oldest samples while the ring fills, else of the 4 oldest
        ring = self.ring[s]
        nxt = self.frm_idx[s]
        filling = cnt < h
        four = np.stack([ring[np.arange(len(rows)), :, (nxt + k) % h] for k in range(4)]).sum(0) // 4
        two = (ring[:, :, 0] + ring[:, :, 1]) // 2
        prev = np.where(filling[:, None], two, four)
        prev = np.where((cnt > 3)[:, None], prev, 0)
        prev_x, prev_y, prev_w, prev_h = prev[:, 0], prev[:, 1], prev[:, 2], prev[:, 3]
        diff_x = (cx - prev_x).astype(np.float32)
        diff_y = ((cy + height // 2) - (prev_y + prev_h // 2)).astype(np.float32)
        disp = (diff_x * diff_x + diff_y * diff_y).astype(np.int64)
        position = rows  # frame order, for rules an untracked object switched off
        stopped = np.zeros(len(rows), bool)
        for k, d in enumerate(self.dirs):
            row = cut[("dir", k)]
            live = (d.enable | (row is not None)) & _class_ok(d.classes, cls) & ~stopped
            if row is not None:
                live &= position <= row
            with np.errstate(divide="ignore", invalid="ignore"):
                now_stopped = live & (cnt > h) & (var_x <= 400) & ((var_y / mean_h) <= 0.01)
            _append(status, np.flatnonzero(now_stopped), " STOPPED ")
            stopped |= now_stopped
            live &= ~now_stopped
            thr, frames, sim = _DIR_THRESHOLDS
            moving = live & (disp > thr) & (cnt > frames)
            ok = moving & geo.direction_ok(d.unit, prev_x, prev_y + half_h, cx, cy + half_h, sim)
            _append(status, np.flatnonzero(ok), " DIR:" + d.label + " ")
            _append(dir_txt, np.flatnonzero(ok), " DIR:" + d.label + " ")
        for k, lc in enumerate(self.lines):
            row = cut[("lc", k)]
            live = (lc.enable | (row is not None)) & ~self.crossed[s, k] & _class_ok(lc.classes, cls)
            if row is not None:
                live &= position <= row
            thr, frames, sim = _LINE_THRESHOLDS[lc.mode]
            live &= (disp > thr) & (cnt > frames)
            if not live.any():
                continue
            if lc.mode_dir == USE_DIR or lc.mode != LineMode.LOOSE:
                hit = geo.crosses(lc.unit, lc.abc, prev_x, prev_y + half_h, cx, cy + height // 2, sim)
            else:
                a, b, c = lc.abc
                magc = a * cx + b * (cy + height // 2).astype(np.float64) + c
                magp = a * prev_x + b * (prev_y.astype(np.float32) + mean_h / np.float32(2)).astype(np.float64) + c
                hit = ((magc >= 0) & (magp < 0)) if lc.mode_dir == NEG_TO_POS else ((magc <= 0) & (magp > 0))
            hit &= live
            if not lc.extended and hit.any():
                xp, yp = prev_x.astype(np.float64), prev_y + mean_h.astype(np.float64) / 2.0
                xc, yc = cx.astype(np.float64), cy + height / 2.0
                pw, cw = prev_w // 2, width // 2
                hit &= (geo.on_segment(xp, yp, xc, yc, lc.abc, lc.ends)
                        | geo.on_segment(xp + pw, yp, xc + cw, yc, lc.abc, lc.ends)
                        | geo.on_segment(xp - pw, yp, xc - cw, yc, lc.abc, lc.ends))
            _append(status, np.flatnonzero(hit), " LC:" + lc.label + " ")
            _append(lc_lab, np.flatnonzero(hit), (lc.label,))
            self.crossed[s[hit], k] = True
            self.total[lc.label] += int(hit.sum())
            res.line_now[lc.label] = res.line_now.get(lc.label, 0) + int(hit.sum())
        res.status[rows], res.roi[rows], res.overcrowding[rows] = status, roi_lab, oc_lab
        res.lines[rows], res.direction[rows] = lc_lab, dir_txt
        res.flagged[rows] = (status != "") | in_oc
