"""dsrun's trackers for one stream: the IOU tracker and the base every tracker shares.

:class:`IouTracker` associates detections with the targets' last boxes (NvMultiObjectTracker's IOU
tracker); between detector runs targets stay where they were last seen.

>>> import numpy as np
>>> from runner.pipeline.tracker.common import IdSource, TrackerParams
>>> t = IouTracker(TrackerParams(probation_age=0), IdSource())
>>> t.update(np.array([[0, 0, 10, 10.]]), np.array([0]), np.array([0.9]), True).det_track_id.tolist()
[0]
>>> t.update(np.array([[1, 0, 11, 10.]]), np.array([0]), np.array([0.9]), True).det_track_id.tolist()
[0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runner.pipeline.tracker.common import (CONFIRMED, IdSource, TrackerParams, Tracks, age, match,
                                            new_target_mask)


@dataclass(slots=True)
class TrackOutput:
    """Per detection: its track id (-1: not reported). On frames without detection: predicted targets."""

    det_track_id: np.ndarray
    det_tracker_conf: np.ndarray
    pred_id: np.ndarray
    pred_box: np.ndarray
    pred_cls: np.ndarray
    pred_conf: np.ndarray


class IouTracker:
    def __init__(self, params: TrackerParams, ids: IdSource) -> None:
        self.p = params
        self.ids = ids
        self.tracks = Tracks()

    # hooks for motion models
    def predict(self) -> None:
        """Advance every target one frame (the IOU tracker does not move them)."""

    def corrected(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        self.tracks.box[rows] = boxes

    def created(self, n: int) -> None:
        """New targets were appended to the table."""

    def removed(self, keep: np.ndarray) -> None:
        """Targets outside ``keep`` were dropped."""

    def associate(self, boxes, cls, conf):
        """Detections below minDetectorConfidence are not considered for tracking."""
        return match(self.p, self.tracks, boxes, cls, det_rows=np.flatnonzero(conf >= self.p.min_detector_confidence))

    def update(self, boxes: np.ndarray, cls: np.ndarray, conf: np.ndarray, detected: bool) -> TrackOutput:
        """One frame. ``detected``: the detector ran on it (``boxes`` may then be empty)."""
        self.predict()
        t = self.tracks
        n = len(boxes)
        det_id = np.full(n, -1, np.int64)
        det_conf = np.full(n, -1.0, np.float32)
        if not detected:  # shadow-tracked targets (missed at the last detection) are not reported
            rep = (t.state == CONFIRMED) & (t.misses == 0)
            return TrackOutput(det_id, det_conf, t.id[rep], t.box[rep].copy(), t.cls[rep], t.conf[rep])
        tr, dr = self.associate(boxes, cls, conf)
        matched = np.zeros(len(t), bool)
        matched[tr] = True
        self.corrected(tr, boxes[dr])
        t.cls[tr], t.conf[tr] = cls[dr], conf[dr]
        det_of_track = np.full(len(t), -1, np.int64)
        det_of_track[tr] = dr
        survivors = age(self.p, t, matched)  # may drop targets
        self.removed(survivors)
        det_of_track = det_of_track[survivors]
        unmatched = np.ones(n, bool)
        unmatched[dr] = False
        new = new_target_mask(self.p, t, boxes, conf, unmatched)
        if new.any():
            k = int(new.sum())
            t.add(self.ids.take(k), boxes[new].astype(np.float64), cls[new], conf[new])
            self.created(k)
            det_of_track = np.concatenate([det_of_track, np.flatnonzero(new)])
            if self.p.probation_age <= 1:
                t.state[-k:] = CONFIRMED
        rep = (t.state == CONFIRMED) & (det_of_track >= 0)
        det_id[det_of_track[rep]] = t.id[rep]
        det_conf[det_of_track[rep]] = 1.0
        return TrackOutput(det_id, det_conf, np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, np.int32),
                           np.zeros(0, np.float32))
