"""SORT-class tracker (NvSORT; also what NvDCF / NvDeepSORT configs run here): NvMultiObjectTracker's
Kalman state estimator per target (:mod:`.kalman`: the 6-state simple KF for ``stateEstimatorType: 1``,
the 8-state regular KF otherwise), IoU association against the *predicted* boxes.

The filter runs for all targets of the stream at once. On frames the detector skipped, confirmed
targets are reported at their predicted boxes; on detection frames, the detection's own box.

>>> import numpy as np
>>> from runner.pipeline.tracker.common import IdSource, TrackerParams
>>> t = SortTracker(TrackerParams(probation_age=0, state_estimator=1), IdSource())
>>> for x in range(0, 100, 10):   # a box moving 10 px per frame
...     out = t.update(np.array([[x, 0, x + 20, 20.]]), np.array([0]), np.array([0.9]), True)
>>> box = t.update(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0), False).pred_box[0]
>>> round(float(box[0])), round(float(box[2] - box[0]))   # moved on; the simple KF keeps the size
(100, 20)
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.tracker.iou import IouTracker
from runner.pipeline.tracker.kalman import KalmanRows


class SortTracker(KalmanRows, IouTracker):
    def __init__(self, params, ids) -> None:
        super().__init__(params, ids)
        self.init_states(params)

    def predict(self) -> None:
        if not len(self.x):
            return
        self.x, self.P = self.kf.predict(self.x, self.P)
        self.tracks.box = self.kf.boxes(self.x)

    def corrected(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        self.correct_states(rows, boxes)

    def created(self, n: int) -> None:
        self.add_states(n)

    def removed(self, keep: np.ndarray) -> None:
        self.x, self.P = self.x[keep], self.P[keep]
