"""The SORT-class tracker of every stream at once: :class:`~runner.pipeline.tracker.sort.SortTracker`'s
Kalman filter on the batched table of :mod:`.iou_batched`.

Each target's state and covariance are rows of one ``(n, d)`` / ``(n, d, d)`` pair beside the
target table (d: 6 or 8, :mod:`.kalman`); a round predicts the targets of its streams, associates every
stream's predicted boxes with its detections at once, corrects the matched rows and starts the new ones.
The filter works row by row (:class:`~runner.pipeline.tracker.kalman.StateEstimator`, shared with the
per-stream tracker), so a target's numbers do not depend on which other targets share the call: the
results equal the per-stream tracker's frame by frame (tests/test_tracker_batched.py).

>>> import numpy as np
>>> from runner.pipeline.tracker.common import IdSource, TrackerParams
>>> t = BatchedSortTracker(TrackerParams(probation_age=0), IdSource())
>>> for x in range(0, 50, 10):   # a box moving 10 px per frame in stream 4
...     out = t.update(np.array([4]), np.array([True]), np.array([0]), np.array([[x, 0, x + 20, 20.]]),
...                    np.array([0]), np.array([0.9]))
>>> out = t.update(np.array([4]), np.array([False]), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0, int),
...                np.zeros(0))
>>> round(float(out.pred_box[0, 0]))
50
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.tracker.common import IdSource, TrackerParams
from runner.pipeline.tracker.iou_batched import BatchedIouTracker
from runner.pipeline.tracker.kalman import KalmanRows


class BatchedSortTracker(KalmanRows, BatchedIouTracker):
    """NvSORT (and what NvDCF / NvDeepSORT configs run here) for every stream of the pipeline."""

    def __init__(self, params: TrackerParams, ids: IdSource) -> None:
        super().__init__(params, ids)
        self.init_states(params)

    def _predict(self, mask: np.ndarray) -> None:
        if mask.all():  # every stream has a frame in the round (the usual batch): no gather, no scatter
            self.kf.predict_in_place(self.x, self.P)
            self.tracks.box = self.kf.boxes(self.x)
        elif mask.any():
            rows = np.flatnonzero(mask)
            self.x[rows], self.P[rows] = self.kf.predict(self.x[rows], self.P[rows])
            self.tracks.box[rows] = self.kf.boxes(self.x[rows])

    def _corrected(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        self.correct_states(rows, boxes)

    def _created(self, n: int) -> None:
        self.add_states(n)

    def _keep(self, mask: np.ndarray) -> None:
        super()._keep(mask)
        self.x, self.P = self.x[mask], self.P[mask]
