"""SORT-class tracker (NvSORT; also what NvDCF / NvDeepSORT configs run here): a constant-velocity
Kalman filter per target on (cx, cy, w, h), IoU association against the *predicted* boxes.

The filter runs for all targets at once ((n, 8) states, (n, 8, 8) covariances). Noise variances come
from ``StateEstimator`` (``processNoiseVar4Loc``, ``processNoiseVar4Size``, ``processNoiseVar4Vel``,
``measurementNoiseVar4Detector``, in pixels²); zeros take dsrun's defaults below.

>>> import numpy as np
>>> from runner.pipeline.tracker.common import IdSource, TrackerParams
>>> t = SortTracker(TrackerParams(probation_age=0), IdSource())
>>> for x in range(0, 50, 10):   # a box moving 10 px per frame
...     out = t.update(np.array([[x, 0, x + 20, 20.]]), np.array([0]), np.array([0.9]), True)
>>> round(float(t.update(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0), False).pred_box[0, 0]))
50
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.tracker.iou import IouTracker

DEFAULT_NOISE = {"loc": 2.0, "size": 2.0, "vel": 1.0, "meas": 4.0}

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


def _xyxy_to_z(b: np.ndarray) -> np.ndarray:
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


def _z_to_xyxy(z: np.ndarray) -> np.ndarray:
    w, h = np.maximum(z[:, 2], 1e-3), np.maximum(z[:, 3], 1e-3)
    return np.stack([z[:, 0] - w / 2, z[:, 1] - h / 2, z[:, 0] + w / 2, z[:, 1] + h / 2], 1)


class SortTracker(IouTracker):
    def __init__(self, params, ids) -> None:
        super().__init__(params, ids)
        loc = params.process_noise_loc or DEFAULT_NOISE["loc"]
        size = params.process_noise_size or DEFAULT_NOISE["size"]
        vel = params.process_noise_vel or DEFAULT_NOISE["vel"]
        self.Q = np.diag([loc, loc, size, size, vel, vel, vel, vel])
        self.R = np.eye(4) * (params.measurement_noise or DEFAULT_NOISE["meas"])
        self.x = np.zeros((0, 8))
        self.P = np.zeros((0, 8, 8))

    def predict(self) -> None:
        if not len(self.x):
            return
        self.x = self.x @ _F.T
        self.P = _F @ self.P @ _F.T + self.Q
        self.tracks.box = _z_to_xyxy(self.x[:, :4])

    def corrected(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        if not len(rows):
            return
        z = _xyxy_to_z(np.asarray(boxes, np.float64))
        P = self.P[rows]
        S = P[:, :4, :4] + self.R
        K = P[:, :, :4] @ np.linalg.inv(S)
        y = z - self.x[rows, :4]
        self.x[rows] = self.x[rows] + np.einsum("nij,nj->ni", K, y)
        self.P[rows] = P - K @ P[:, :4, :]
        self.tracks.box[rows] = _z_to_xyxy(self.x[rows, :4])

    def created(self, n: int) -> None:
        z = _xyxy_to_z(self.tracks.box[-n:])
        x = np.hstack([z, np.zeros((n, 4))])
        P = np.tile(np.diag([10.0, 10.0, 10.0, 10.0, 1e3, 1e3, 1e3, 1e3]), (n, 1, 1))
        self.x = np.concatenate([self.x, x])
        self.P = np.concatenate([self.P, P])

    def removed(self, keep: np.ndarray) -> None:
        self.x, self.P = self.x[keep], self.P[keep]
