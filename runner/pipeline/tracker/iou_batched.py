"""The IOU tracker of every stream at once: one table, one vectorised step per batch.

:class:`~runner.pipeline.tracker.iou.IouTracker` (one per stream, one ``update`` per frame) defines the
behaviour; :class:`BatchedIouTracker` gives the same results for a whole batch with numpy work per
batch, not per frame:

* the targets of all streams live in one columnar table with a ``stream`` column (each stream's
  targets keep their relative order, so per-stream order is the per-stream tracker's order);
* a batch is cut into *rounds*: runs of consecutive frames whose streams are distinct (usually the
  whole batch); a round's frames are independent, so they are updated together;
* association scores every (target, detection) pair of the same stream (and class, with
  checkClassMatch) at once, and :func:`~runner.pipeline.tracker.pairs.assign_pairs` gives each
  stream's Hungarian assignment for all of them in one step;
* track ids are taken in frame order, then detection order, as frame-by-frame updates take them.

Every step is a fixed number of numpy calls per round, whatever the number of streams, targets or
detections (scripts/bench_tracker.py counts them).

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

from runner.pipeline.tracker.common import CONFIRMED, TENTATIVE, IdSource, TrackerParams, Tracks, association_score
from runner.pipeline.tracker.pairs import assign_pairs, box_terms, frame_pairs, pair_iou, pair_size_similarity


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


#: source ids below this map to frames through a lookup table (larger ones: a sorted search); pairs
#: are keyed by (frame, class) while there are fewer keys than this
_DENSE_STREAM_IDS = _DENSE_KEYS = 1 << 16


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


class BatchedIouTracker:
    """NvMultiObjectTracker's IOU tracker for every stream of the pipeline (see the module doc)."""

    def __init__(self, params: TrackerParams, ids: IdSource) -> None:
        self.p = params
        self.ids = ids
        self.tracks = StreamTracks()
        self._stream_bound = 0  # above every stream id seen (so above those in the table)
        # what does not change between batches
        self._confirm_hits = max(params.probation_age, 1)
        self._early_misses = max(params.early_termination_age, 1)
        # minMatchingScore4Overall can reject a pair (scores are >= 0 when both weights are)
        self._gate_overall = params.min_score_overall > 0 or params.weight_iou < 0 or params.weight_size < 0

    # hooks for motion models (the batched SORT tracker); the IOU tracker's targets stay where last seen
    def _predict(self, mask: np.ndarray) -> None:
        """Advance the targets in ``mask`` one frame (those of the round's streams)."""

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
        frames = len(streams)
        n = len(boxes)
        boxes = np.asarray(boxes, np.float64)
        det_id = np.full(n, -1, np.int64)
        det_conf = np.full(n, -1.0, np.float32)
        tf = self._target_frames(streams)
        in_round = tf >= 0
        self._predict(in_round)  # every frame moves its stream's targets
        pred = self._predictions(tf, in_round, detected)
        if not detected.any():
            return RoundOutput(det_id, det_conf, *pred)
        live = detected[det_frame]  # detections of frames the detector ran on
        active = in_round & detected[tf]  # targets of those frames' streams
        considered = live & (conf >= p.min_detector_confidence)
        mt, md = self._associate(active, tf, considered, det_frame, boxes, cls, frames)
        self._corrected(mt, boxes[md])
        t.cls[mt], t.conf[mt] = cls[md], conf[md]
        # aging (common.age) on the targets of the detected streams only
        t.hits[mt] += 1
        t.misses[active] += 1
        t.misses[mt] = 0
        t.state[active & (t.state == TENTATIVE) & (t.hits >= self._confirm_hits)] = CONFIRMED
        early = (t.state == TENTATIVE) & (t.misses > 0) & (t.misses >= self._early_misses)
        dead = (t.state == CONFIRMED) & (t.misses > p.max_shadow_tracking_age)
        keep = ~((early | dead) & active)
        unmatched = live.copy()
        unmatched[md] = False
        new = self._new_targets(tf, active & keep, det_frame, boxes, conf, unmatched, frames)
        # matched targets report their detection once confirmed
        shown = (t.state[mt] == CONFIRMED) & keep[mt]
        det_id[md[shown]] = t.id[mt[shown]]
        det_conf[md[shown]] = 1.0
        if not keep.all():
            self._keep(keep)
        if new.any():
            rows = np.flatnonzero(new)
            k = len(rows)
            ids = self.ids.take(k)
            t.add_for(streams[det_frame[rows]], ids, boxes[rows], cls[rows], conf[rows])
            self._created(k)
            if p.probation_age <= 1:
                t.state[-k:] = CONFIRMED
                det_id[rows] = ids
                det_conf[rows] = 1.0
        return RoundOutput(det_id, det_conf, *pred)

    def _target_frames(self, streams: np.ndarray) -> np.ndarray:
        """The round's frame of each target's stream (-1: its stream has no frame in this round)."""
        stream = self.tracks.stream
        bound = self._stream_bound = max(self._stream_bound, int(np.max(streams, initial=-1)) + 1)
        if bound <= _DENSE_STREAM_IDS:  # source ids are small numbers: a lookup table
            frame_of = np.full(bound, -1, np.int64)
            frame_of[streams] = np.arange(len(streams))
            return frame_of[stream]
        order = np.argsort(streams)
        at = np.minimum(np.searchsorted(streams[order], stream), len(streams) - 1)
        return np.where(streams[order][at] == stream, order[at], -1) if len(streams) else np.full(len(stream), -1)

    def _predictions(self, tf, in_round, detected):
        """Confirmed targets seen at the last detection, for the frames the detector skipped: by frame,
        then table order."""
        t = self.tracks
        if detected.all() or not len(t):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, np.int32)
        rows = np.flatnonzero((t.state == CONFIRMED) & (t.misses == 0) & in_round & ~detected[tf])
        frame = tf[rows]
        order = np.argsort(frame, kind="stable")
        rows = rows[order]
        return frame[order], t.id[rows], t.box[rows], t.cls[rows]

    def _associate(self, active, tf, considered, det_frame, boxes, cls, frames):
        """(target rows, detection rows) matched, for every stream of the round at once."""
        p, t = self.p, self.tracks
        tr_all, dr_all = np.flatnonzero(active), np.flatnonzero(considered)
        t_key, d_key, keys = tf[tr_all], det_frame[dr_all], frames
        class_gate = p.check_class_match and len(tr_all) and len(dr_all)
        if class_gate:  # pairs of one frame and one class only: the class is part of the key
            tc, dc = t.cls[tr_all], cls[dr_all]
            lo = min(int(tc.min()), int(dc.min()))
            classes = max(int(tc.max()), int(dc.max())) + 1 - lo
            if frames * classes <= _DENSE_KEYS:  # (else: class ids far apart, compared pair by pair below)
                t_key, d_key, keys = t_key * classes + (tc - lo), d_key * classes + (dc - lo), frames * classes
                class_gate = False
        i, j = frame_pairs(t_key, d_key, keys)
        if not len(i):
            return i, j
        tb, db = box_terms(t.box[tr_all]), box_terms(boxes[dr_all])
        # IoU > 0 needs the boxes to overlap in x: the other pairs are dropped before their scores
        near = np.minimum(tb[2][i], db[2][j]) > np.maximum(tb[0][i], db[0][j])
        if class_gate:
            near &= tc[i] == dc[j]
        near = np.flatnonzero(near)
        i, j = i[near], j[near]
        tr, dr = tr_all[i], dr_all[j]
        a, b = tb[:, i], db[:, j]
        iou = pair_iou(a, b)
        size = pair_size_similarity(a, b)
        valid = iou >= p.min_score_iou if p.min_score_iou > 0 else iou > 0.0
        if p.min_score_size > 0:
            valid &= size >= p.min_score_size
        if p.min_score_tentative_iou > 0:
            valid &= (t.state[tr] != TENTATIVE) | (iou >= p.min_score_tentative_iou)
        v = np.flatnonzero(valid)
        score = association_score(p, iou[v], size[v])
        if self._gate_overall:
            ok = score >= p.min_score_overall
            v, score = v[ok], score[ok]
        return assign_pairs(tr[v], dr[v], score, np.where(active, tf, -1), np.where(considered, det_frame, -1))

    def _new_targets(self, tf, present, det_frame, boxes, conf, unmatched, frames) -> np.ndarray:
        """common.new_target_mask for every stream: unmatched, confident, not overlapping a target of
        its stream (``present``: kept, of the detected frames; boxes as corrected) by more than
        minIouDiff4NewTarget, within maxTargetsPerStream (highest confidence first)."""
        p, t = self.p, self.tracks
        ok = unmatched & (conf >= p.min_detector_confidence)
        if not ok.any():
            return ok
        rows = np.flatnonzero(present)
        if p.min_iou_diff_new_target > 0 and len(rows):
            cand = np.flatnonzero(ok)
            i, j = frame_pairs(tf[rows], det_frame[cand], frames)
            overlap = pair_iou(box_terms(t.box[rows[i]]), box_terms(boxes[cand[j]]))
            ok[cand[j[overlap > p.min_iou_diff_new_target]]] = False
        # maxTargetsPerStream: the kept targets of a stream and its new ones
        have = np.bincount(tf[rows], minlength=frames)
        if (have + np.bincount(det_frame[ok], minlength=frames) <= p.max_targets_per_stream).all():
            return ok
        cand = np.flatnonzero(ok)
        room = np.maximum(p.max_targets_per_stream - have[det_frame[cand]], 0)
        order = np.lexsort((cand, -conf[cand], det_frame[cand]))  # per stream: confidence, then detection order
        s_sorted = det_frame[cand][order]
        first = np.r_[True, s_sorted[1:] != s_sorted[:-1]]
        rank_sorted = np.arange(len(order)) - np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
        rank = np.empty(len(order), np.int64)
        rank[order] = rank_sorted
        ok[cand[rank >= room]] = False
        return ok
