"""ByteTrack (dsrun's own tracker option): SORT's Kalman filter with ByteTrack's two-stage association
— high-confidence detections (>= :data:`TRACK_THRESH`) against all targets first, then the
low-confidence ones (>= :data:`LOW_THRESH`) against the targets still unmatched, with a stricter IoU.
Only high-confidence detections start targets (>= :data:`NEW_TRACK_THRESH`).
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.tracker.common import match
from runner.pipeline.tracker.sort import SortTracker

TRACK_THRESH = 0.5
LOW_THRESH = 0.1
NEW_TRACK_THRESH = 0.6
LOW_IOU = 0.5


class ByteTracker(SortTracker):
    def associate(self, boxes, cls, conf):
        high = np.flatnonzero(conf >= TRACK_THRESH)
        low = np.flatnonzero((conf >= LOW_THRESH) & (conf < TRACK_THRESH))
        tr1, dr1 = match(self.p, self.tracks, boxes, cls, det_rows=high)
        rest = np.setdiff1d(np.arange(len(self.tracks)), tr1)
        tr2, dr2 = match(self.p, self.tracks, boxes, cls, track_rows=rest, det_rows=low, iou_floor=LOW_IOU)
        return np.concatenate([tr1, tr2]), np.concatenate([dr1, dr2])


def bytetrack_params(params):
    """ByteTrack's own thresholds on top of the YAML's ages."""
    from dataclasses import replace

    return replace(params, min_detector_confidence=max(params.min_detector_confidence, NEW_TRACK_THRESH),
                   min_iou_diff_new_target=0.0)
