"""The IOU tracker of every stream at once: one table, one vectorised step per batch.

:class:`~runner.pipeline.tracker.iou.IouTracker` (one per stream, one ``update`` per frame) defines the
behaviour; :class:`BatchedIouTracker` gives the same results for a whole batch with numpy work per
batch, not per frame:

* the targets of all streams live in one columnar table with a ``stream`` column (each stream's
  targets keep their relative order, so per-stream order is the per-stream tracker's order);
* a batch is cut into *rounds*: runs of consecutive frames whose streams are distinct (usually the
  whole batch); a round's frames are independent, so they are updated together;
* association scores every (target, detection) pair of the same stream at once; a stream whose valid
  pairs form a matching (no target and no detection in two valid pairs) takes those pairs — the only
  optimum of the per-stream Hungarian assignment, where any invalid pair costs more than all scores —
  and only streams with competing pairs run the assignment, as the per-stream tracker does;
* track ids are taken in frame order, then detection order, as frame-by-frame updates take them.

>>> import numpy as np
>>> from runner.pipeline.tracker.common import IdSource, TrackerParams
>>> t = BatchedIouTracker(TrackerParams(probation_age=0), IdSource())
>>> boxes = np.array([[0, 0, 10, 10.], [50, 50, 60, 60.]])
>>> out = t.update(np.array([3, 7]), np.array([True, True]), np.array([0, 1]), boxes, np.array([0, 0]),
...                np.array([0.9, 0.8]))
>>> out.det_track_id.tolist()
[0, 1]
>>> t.update(np.array([3, 7]), np.array([True, True]), np.array([0, 1]), boxes + 1, np.array([0, 0]),
...          np.array([0.9, 0.8])).det_track_id.tolist()
[0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runner.pipeline.tracker.common import (CONFIRMED, TENTATIVE, IdSource, TrackerParams, Tracks, assign,
                                           association_score)


@dataclass(slots=True)
class RoundOutput:
    """Per detection: its track id (-1: not reported); per reported prediction on frames the detector
    skipped: the frame (index into the round's streams), id, box and class, by frame then table order."""

    det_track_id: np.ndarray
    det_tracker_conf: np.ndarray
    pred_frame: np.ndarray
    pred_id: np.ndarray
    pred_box: np.ndarray
    pred_cls: np.ndarray


class StreamTracks(Tracks):
    """:class:`Tracks` of every stream, with the stream of each target."""

    def __init__(self) -> None:
        super().__init__()
        self.stream = np.zeros(0, np.int64)

    def keep(self, mask: np.ndarray) -> None:
        super().keep(mask)
        self.stream = self.stream[mask]

    def add_for(self, streams, ids, box, cls, conf) -> None:
        self.add(ids, box, cls, conf)
        self.stream = np.concatenate([self.stream, np.asarray(streams, np.int64)])


def same_stream_pairs(a_stream: np.ndarray, b_stream: np.ndarray):
    """Every (i, j) with ``a_stream[i] == b_stream[j]``: ordered by j, then by i ascending.

    >>> same_stream_pairs(np.array([5, 6, 5]), np.array([5, 7, 6]))
    (array([0, 2, 1]), array([0, 0, 2]))
    """
    order = np.argsort(a_stream, kind="stable")
    sorted_a = a_stream[order]
    lo = np.searchsorted(sorted_a, b_stream, "left")
    count = np.searchsorted(sorted_a, b_stream, "right") - lo
    j = np.repeat(np.arange(len(b_stream)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return order[np.repeat(lo, count) + offset], j


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of rows ``a[k]`` and ``b[k]`` — :func:`runner.pipeline.cluster.iou_matrix`'s arithmetic, pairwise."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def pair_size_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`runner.pipeline.tracker.common.size_similarity`'s arithmetic, pairwise."""
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    wb, hb = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        sw = np.minimum(wa, wb) / np.maximum(wa, wb)
        sh = np.minimum(ha, hb) / np.maximum(ha, hb)
    return np.nan_to_num(sw * sh)


class BatchedIouTracker:
    """NvMultiObjectTracker's IOU tracker for every stream of the pipeline (see the module doc)."""

    def __init__(self, params: TrackerParams, ids: IdSource) -> None:
        self.p = params
        self.ids = ids
        self.tracks = StreamTracks()

    # hooks for motion models (the batched SORT tracker); the IOU tracker's targets stay where last seen
    def _predict(self, rows: np.ndarray) -> None:
        """Advance the targets ``rows`` one frame (those of the round's streams)."""

    def _corrected(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        self.tracks.box[rows] = boxes

    def _created(self, n: int) -> None:
        """``n`` new targets were appended to the table."""

    def _keep(self, mask: np.ndarray) -> None:
        self.tracks.keep(mask)

    def end_streams(self, streams) -> None:
        """Forget the targets of streams that ended."""
        if len(self.tracks):
            self._keep(~np.isin(self.tracks.stream, np.asarray(list(streams), np.int64)))

    def update(self, streams: np.ndarray, detected: np.ndarray, det_frame: np.ndarray, boxes: np.ndarray,
               cls: np.ndarray, conf: np.ndarray) -> RoundOutput:
        """One round: ``streams`` (distinct) and ``detected`` per frame; detections sorted by
        ``det_frame`` (index into ``streams``). Detections of frames the detector skipped are left alone."""
        p, t = self.p, self.tracks
        streams = np.asarray(streams, np.int64)
        n = len(boxes)
        det_id = np.full(n, -1, np.int64)
        det_conf = np.full(n, -1.0, np.float32)
        self._predict(np.flatnonzero(np.isin(t.stream, streams)))  # every frame moves its stream's targets
        pred = self._predictions(streams, detected)
        if not detected.any():
            return RoundOutput(det_id, det_conf, *pred)
        det_stream = streams[det_frame]
        live = detected[det_frame]  # detections of frames the detector ran on
        active = np.isin(t.stream, streams[detected])  # targets of those streams
        mt, md = self._associate(active, det_stream, live & (conf >= p.min_detector_confidence), boxes, cls)
        matched = np.zeros(len(t), bool)
        matched[mt] = True
        self._corrected(mt, boxes[md])
        t.cls[mt], t.conf[mt] = cls[md], conf[md]
        det_of_track = np.full(len(t), -1, np.int64)
        det_of_track[mt] = md
        # aging (common.age) on the targets of the detected streams only
        t.hits[matched] += 1
        t.misses[matched] = 0
        t.misses[active & ~matched] += 1
        confirm = active & (t.state == TENTATIVE) & (t.hits >= max(p.probation_age, 1))
        t.state[confirm] = CONFIRMED
        early = active & (t.state == TENTATIVE) & (t.misses > 0) & (t.misses >= max(p.early_termination_age, 1))
        dead = active & (t.state == CONFIRMED) & (t.misses > p.max_shadow_tracking_age)
        keep = ~(early | dead)
        self._keep(keep)
        det_of_track = det_of_track[keep]
        unmatched = live.copy()
        unmatched[md] = False
        new = self._new_targets(det_stream, boxes, conf, unmatched)
        if new.any():
            k = int(new.sum())
            t.add_for(det_stream[new], self.ids.take(k), boxes[new].astype(np.float64), cls[new], conf[new])
            self._created(k)
            det_of_track = np.concatenate([det_of_track, np.flatnonzero(new)])
            if p.probation_age <= 1:
                t.state[-k:] = CONFIRMED
        rep = (t.state == CONFIRMED) & (det_of_track >= 0)
        det_id[det_of_track[rep]] = t.id[rep]
        det_conf[det_of_track[rep]] = 1.0
        return RoundOutput(det_id, det_conf, *pred)

    def _predictions(self, streams, detected):
        """Confirmed targets seen at the last detection, for the frames the detector skipped."""
        t = self.tracks
        skipped = np.flatnonzero(~detected)
        if not len(skipped) or not len(t):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, np.int32)
        rows = np.flatnonzero((t.state == CONFIRMED) & (t.misses == 0) & np.isin(t.stream, streams[skipped]))
        by_stream = np.argsort(streams[skipped])
        frame = skipped[by_stream[np.searchsorted(streams[skipped][by_stream], t.stream[rows])]]
        order = np.argsort(frame, kind="stable")
        rows, frame = rows[order], frame[order]
        return frame, t.id[rows], t.box[rows].copy(), t.cls[rows]

    def _associate(self, active, det_stream, considered, boxes, cls):
        """(target rows, detection rows) matched, for every stream of the round at once."""
        p, t = self.p, self.tracks
        tr_all, dr_all = np.flatnonzero(active), np.flatnonzero(considered)
        ti, dj = same_stream_pairs(t.stream[tr_all], det_stream[dr_all])
        tr, dr = tr_all[ti], dr_all[dj]
        if not len(tr):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        tb, db = t.box[tr], boxes[dr]
        iou = pair_iou(tb, db)
        size = pair_size_similarity(tb, db)
        score = association_score(p, iou, size)
        valid = (iou > 0.0) & (iou >= p.min_score_iou) & (size >= p.min_score_size) & (score >= p.min_score_overall)
        valid &= (t.state[tr] != TENTATIVE) | (iou >= p.min_score_tentative_iou)
        if p.check_class_match:
            valid &= t.cls[tr] == cls[dr]
        tr, dr, score = tr[valid], dr[valid], score[valid]
        shared = (np.bincount(tr, minlength=len(t))[tr] > 1) | (np.bincount(dr, minlength=len(boxes))[dr] > 1)
        contested = np.unique(det_stream[dr[shared]])
        simple = ~np.isin(det_stream[dr], contested)
        mt, md = [tr[simple]], [dr[simple]]
        for s in contested.tolist():  # streams where targets compete for detections: the assignment
            rows_t = np.flatnonzero(active & (t.stream == s))  # the per-stream tracker's rows and columns
            rows_d = np.flatnonzero(considered & (det_stream == s))
            mine = det_stream[dr] == s
            block_valid = np.zeros((len(rows_t), len(rows_d)), bool)
            block_score = np.zeros((len(rows_t), len(rows_d)))
            at = np.searchsorted(rows_t, tr[mine]), np.searchsorted(rows_d, dr[mine])
            block_valid[at], block_score[at] = True, score[mine]
            r, c = assign(block_score, block_valid)
            mt.append(rows_t[r])
            md.append(rows_d[c])
        return np.concatenate(mt), np.concatenate(md)

    def _new_targets(self, det_stream, boxes, conf, unmatched) -> np.ndarray:
        """common.new_target_mask for every stream: unmatched, confident, not overlapping a target of
        its stream by more than minIouDiff4NewTarget, within maxTargetsPerStream (highest first)."""
        p, t = self.p, self.tracks
        ok = unmatched & (conf >= p.min_detector_confidence)
        if not ok.any():
            return ok
        cand = np.flatnonzero(ok)
        if len(t) and p.min_iou_diff_new_target > 0:
            ti, dj = same_stream_pairs(t.stream, det_stream[cand])
            overlap = np.zeros(len(cand))
            np.maximum.at(overlap, dj, pair_iou(boxes[cand][dj].astype(np.float64), t.box[ti]))
            ok[cand[overlap > p.min_iou_diff_new_target]] = False
            cand = np.flatnonzero(ok)
        streams, count = np.unique(t.stream, return_counts=True)
        have = np.zeros(len(cand), np.int64)
        found = np.searchsorted(streams, det_stream[cand])
        inside = found < len(streams)
        inside[inside] = streams[found[inside]] == det_stream[cand][inside]
        have[inside] = count[found[inside]]
        room = np.maximum(p.max_targets_per_stream - have, 0)
        order = np.lexsort((cand, -conf[cand], det_stream[cand]))  # per stream: confidence, then detection order
        s_sorted = det_stream[cand][order]
        first = np.r_[True, s_sorted[1:] != s_sorted[:-1]]
        rank_sorted = np.arange(len(order)) - np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
        rank = np.empty(len(order), np.int64)
        rank[order] = rank_sorted
        ok[cand[rank >= room]] = False
        return ok
