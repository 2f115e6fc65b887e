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


def noise(params) -> tuple[np.ndarray, np.ndarray]:
    """(Q, R): process and measurement noise from ``StateEstimator`` (zeros take the defaults)."""
    loc = params.process_noise_loc or DEFAULT_NOISE["loc"]
    size = params.process_noise_size or DEFAULT_NOISE["size"]
    vel = params.process_noise_vel or DEFAULT_NOISE["vel"]
    Q = np.diag([loc, loc, size, size, vel, vel, vel, vel])
    return Q, np.eye(4) * (params.measurement_noise or DEFAULT_NOISE["meas"])


def kalman_predict(x: np.ndarray, P: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every state one frame ahead (constant velocity). Row by row: a row's result does not depend
    on the other rows, so one stream's targets or every stream's give the same numbers."""
    return x @ _F.T, _F @ P @ _F.T + Q


def kalman_correct(x: np.ndarray, P: np.ndarray, R: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States and covariances updated with measured ``boxes`` (xyxy), row by row."""
    z = _xyxy_to_z(np.asarray(boxes, np.float64))
    S = P[:, :4, :4] + R
    K = P[:, :, :4] @ np.linalg.inv(S)
    y = z - x[:, :4]
    return x + np.einsum("nij,nj->ni", K, y), P - K @ P[:, :4, :]


def kalman_start(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States (at rest) and covariances of new targets first seen at ``boxes``."""
    n = len(boxes)
    x = np.hstack([_xyxy_to_z(boxes), np.zeros((n, 4))])
    P = np.tile(np.diag([10.0, 10.0, 10.0, 10.0, 1e3, 1e3, 1e3, 1e3]), (n, 1, 1))
    return x, P


class SortTracker(IouTracker):
    def __init__(self, params, ids) -> None:
        super().__init__(params, ids)
        self.Q, self.R = noise(params)
        self.x = np.zeros((0, 8))
        self.P = np.zeros((0, 8, 8))

    def predict(self) -> None:
        if not len(self.x):
            return
        self.x, self.P = kalman_predict(self.x, self.P, self.Q)
        self.tracks.box = _z_to_xyxy(self.x[:, :4])

    def corrected(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        if not len(rows):
            return
        self.x[rows], self.P[rows] = kalman_correct(self.x[rows], self.P[rows], self.R, boxes)
        self.tracks.box[rows] = _z_to_xyxy(self.x[rows, :4])

    def created(self, n: int) -> None:
        x, P = kalman_start(self.tracks.box[-n:])
        self.x = np.concatenate([self.x, x])
        self.P = np.concatenate([self.P, P])

    def removed(self, keep: np.ndarray) -> None:
        self.x, self.P = self.x[keep], self.P[keep]
