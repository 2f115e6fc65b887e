"""NvMultiObjectTracker's state estimators (``StateEstimator``): constant-velocity Kalman filters on boxes,
every target of a stream at once ((n, d) states, (n, d, d) covariances).

What NvMultiObjectTracker documents (the Gst-nvtracker "State Estimation" section and the tracker
reference in NVIDIA/DeepStream ``skills/deepstream-dev/references/tracker_config.md``):

* ``stateEstimatorType: 1`` — the *simple* KF: 6 states ``{x, y, w, h, dx, dy}``. Only the location
  moves; the size is a random walk (no size velocity), so a box keeps its size between detections.
  Process noise variances ``processNoiseVar4Loc`` (x, y), ``processNoiseVar4Size`` (w, h),
  ``processNoiseVar4Vel`` (dx, dy); measurement noise ``measurementNoiseVar4Detector``.
* ``stateEstimatorType: 2`` — the *regular* KF: 8 states ``{x, y, w, h, dx, dy, dw, dh}``, the same
  keys (``processNoiseVar4Vel`` for all four velocities) — or, when ``noiseWeightVar4Loc`` /
  ``noiseWeightVar4Vel`` are set, noises proportional to the box height as in DeepSORT's filter
  (nwojke/deep_sort ``kalman_filter.py``, which NVIDIA names as the model): location/size std
  ``noiseWeightVar4Loc * h``, velocity std ``noiseWeightVar4Vel * h``; with ``useAspectRatio`` the
  width state is the aspect ratio ``a = w / h`` with DeepSORT's fixed noises for it.
* The measurement is the detector's box ``{x, y, w, h}``; x, y are the box centre ("process noise for
  bbox center").
* ``stateEstimatorType: 3`` (a location KF on 3-D foot points) needs camera models dsrun does not run:
  it is treated as type 1.

Not documented by NVIDIA: the covariance a new target starts with. dsrun takes DeepSORT's ratios for
both noise models: position/size std twice the measurement std, velocity std ten times the per-frame
velocity process std (so a target starts nearly still, and its velocity is learnt from several
detections rather than set by the first two — two noisy sizes three frames apart must not give a box
that keeps growing while it is shadow-tracked). A key left at 0 takes :data:`DEFAULT_NOISE`.

>>> import numpy as np
>>> kf = StateEstimator(simple=True, loc=2.0, size=1.0, vel=0.1, meas=4.0)
>>> x, P = kf.initiate(kf.measure(np.array([[0, 0, 20, 40.]])))
>>> x.round(1).tolist(), np.diag(P[0]).round(1).tolist()
([[10.0, 20.0, 20.0, 40.0, 0.0, 0.0]], [16.0, 16.0, 16.0, 16.0, 10.0, 10.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: noise variances (pixels²) for a StateEstimator key left at 0 (NvMultiObjectTracker's own defaults
#: are not published)
DEFAULT_NOISE = {"loc": 2.0, "size": 2.0, "vel": 1.0, "meas": 4.0}

# DeepSORT's fixed standard deviations for the aspect-ratio state (useAspectRatio): process position,
# process velocity, measurement
_ASPECT_STD = (1e-2, 1e-5, 1e-1)
# DeepSORT's initial covariance: position std x 2, velocity std x 10 of their per-frame noise
_INIT_POS, _INIT_VEL = 2.0, 10.0


@dataclass(frozen=True, slots=True)
class StateEstimator:
    """One ``StateEstimator`` section as matrices. ``simple``: the 6-state filter (type 1), else the
    8-state one (type 2). ``weight_loc`` / ``weight_vel`` > 0: height-proportional noises (type 2)."""

    simple: bool = False
    loc: float = DEFAULT_NOISE["loc"]
    size: float = DEFAULT_NOISE["size"]
    vel: float = DEFAULT_NOISE["vel"]
    meas: float = DEFAULT_NOISE["meas"]
    weight_loc: float = 0.0
    weight_vel: float = 0.0
    aspect_ratio: bool = False

    @classmethod
    def from_params(cls, p) -> "StateEstimator":
        """From :class:`~runner.pipeline.tracker.common.TrackerParams`."""
        simple = p.state_estimator in (1, 3)
        weights = not simple and (p.noise_weight_loc > 0 or p.noise_weight_vel > 0)
        return cls(simple=simple, loc=p.process_noise_loc or DEFAULT_NOISE["loc"],
                   size=p.process_noise_size or DEFAULT_NOISE["size"],
                   vel=p.process_noise_vel or DEFAULT_NOISE["vel"],
                   meas=p.measurement_noise or DEFAULT_NOISE["meas"],
                   weight_loc=p.noise_weight_loc if weights else 0.0,
                   weight_vel=p.noise_weight_vel if weights else 0.0,
                   aspect_ratio=bool(p.use_aspect_ratio) and not simple)

    @property
    def dim(self) -> int:
        return 6 if self.simple else 8

    @property
    def height_noise(self) -> bool:
        return self.weight_loc > 0 or self.weight_vel > 0

    @property
    def F(self) -> np.ndarray:
        """Constant velocity, one frame: x += dx, y += dy (and w += dw, h += dh in the regular KF)."""
        F = np.eye(self.dim)
        moving = 2 if self.simple else 4
        F[np.arange(moving), 4 + np.arange(moving)] = 1.0
        return F

    # -- boxes <-> measurements ------------------------------------------------------------------------

    def measure(self, xyxy: np.ndarray) -> np.ndarray:
        """(n, 4) boxes → measurements (cx, cy, w or w/h, h)."""
        b = np.asarray(xyxy, np.float64)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        third = w / np.maximum(h, 1e-6) if self.aspect_ratio else w
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, third, h], 1)

    def boxes(self, x: np.ndarray) -> np.ndarray:
        """States → (n, 4) xyxy boxes."""
        h = np.maximum(x[:, 3], 1e-3)
        w = np.maximum(x[:, 2] * h if self.aspect_ratio else x[:, 2], 1e-3)
        return np.stack([x[:, 0] - w / 2, x[:, 1] - h / 2, x[:, 0] + w / 2, x[:, 1] + h / 2], 1)

    # -- noises ------------------------------------------------------------------------------------

    def _pos_var(self, h: np.ndarray, aspect_std: float, const: np.ndarray) -> np.ndarray:
        """(n, 4) variances of the four observed states."""
        if not self.height_noise:
            return np.broadcast_to(const, (len(h), 4))
        s = self.weight_loc * h
        third = np.full_like(h, aspect_std) if self.aspect_ratio else s
        return np.stack([s, s, third, s], 1) ** 2

    def _vel_var(self, h: np.ndarray, const: float) -> np.ndarray:
        """(n, k) variances of the velocity states."""
        k = self.dim - 4
        if not self.height_noise:
            return np.full((len(h), k), const)
        s = self.weight_vel * h
        cols = [s] * k
        if self.aspect_ratio:
            cols[2] = np.full_like(h, _ASPECT_STD[1])
        return np.stack(cols, 1) ** 2

    def process_noise_var(self, x: np.ndarray) -> np.ndarray:
        """(n, d) variances on the diagonal of Q for states ``x`` (height-proportional noise uses each
        target's current height; constant noise: one (d,) row for all); Q has nothing off its diagonal."""
        if not self.height_noise:
            return np.array([self.loc, self.loc, self.size, self.size] + [self.vel] * (self.dim - 4))
        h = x[:, 3]
        pos = self._pos_var(h, _ASPECT_STD[0], np.array([self.loc, self.loc, self.size, self.size]))
        return np.hstack([pos, self._vel_var(h, self.vel)])

    def measurement_noise_var(self, x: np.ndarray) -> np.ndarray:
        """(n, 4) variances on the diagonal of R for predicted states ``x`` (constant noise: (4,))."""
        if not self.height_noise:
            return np.full(4, self.meas)
        return self._pos_var(x[:, 3], _ASPECT_STD[2], np.full(4, self.meas))

    # -- filter --------------------------------------------------------------------------------------

    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States and covariances of new targets from their first measurements."""
        x = np.hstack([z, np.zeros((len(z), self.dim - 4))])
        h = z[:, 3]
        pos = self._pos_var(h, _ASPECT_STD[0], np.full(4, self.meas)) * _INIT_POS ** 2
        if self.height_noise and self.aspect_ratio:  # DeepSORT starts the aspect ratio at its process std
            pos[:, 2] = _ASPECT_STD[0] ** 2
        vel = self._vel_var(h, self.vel) * _INIT_VEL ** 2
        if self.height_noise and self.aspect_ratio:
            vel[:, 2] = _ASPECT_STD[1] ** 2
        return x, _diag(np.hstack([pos, vel]))

    def predict(self, x: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``F x`` and ``F P F^T + Q`` for every row."""
        x, P = x.copy(), P.copy()
        self.predict_in_place(x, P)
        return x, P

    def predict_in_place(self, x: np.ndarray, P: np.ndarray) -> None:
        """:meth:`predict` into ``x`` and ``P``. F is the identity plus a 1 taking velocity ``4 + k`` into
        state ``k``, so every entry of ``F x`` and ``F P F^T`` sums at most two non-zero terms and the
        additions below give the matrix products' numbers bit for bit, for a few calls per batch
        whatever the number of targets (as do the diagonal-only Q and R)."""
        q = self.process_noise_var(x)  # the height of the state being predicted
        m = 2 if self.simple else 4
        x[:, :m] += x[:, 4:4 + m]
        P[:, :m] += P[:, 4:4 + m]  # F P
        P[:, :, :m] += P[:, :, 4:4 + m]  # (F P) F^T
        _add_to_diagonals(P, q)

    def update(self, x: np.ndarray, P: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct predicted states with measurements (one per row)."""
        S = P[:, :4, :4].copy()
        _add_to_diagonals(S, self.measurement_noise_var(x))
        K = P[:, :, :4] @ np.linalg.inv(S)
        x = x + np.einsum("nij,nj->ni", K, z - x[:, :4])
        return x, P - K @ P[:, :4, :]


def _add_to_diagonals(A: np.ndarray, v: np.ndarray) -> None:
    """``A[:, i, i] += v[..., i]`` for (n, d, d) matrices ``A`` (through a strided view when ``A`` is
    contiguous, as the filter's arrays are)."""
    if A.flags.c_contiguous:
        A.reshape(len(A), A.shape[1] * A.shape[2])[:, ::A.shape[1] + 1] += v
    else:
        d = np.arange(A.shape[1])
        A[:, d, d] += v


def _diag(v: np.ndarray) -> np.ndarray:
    """(n, d) → (n, d, d) diagonal matrices."""
    out = np.zeros(v.shape + (v.shape[1],))
    idx = np.arange(v.shape[1])
    out[:, idx, idx] = v
    return out


class KalmanRows:
    """A Kalman state ``x`` (n, d) and covariance ``P`` (n, d, d) per row of a target table whose
    ``tracks.box`` column shows each state's box — what the per-stream SORT tracker and the batched
    one (:mod:`.sort_batched`) keep beside their targets. The filter works row by row, so a row's
    numbers do not depend on the other rows."""

    def init_states(self, params) -> None:
        self.kf = StateEstimator.from_params(params)
        self.x = np.zeros((0, self.kf.dim))
        self.P = np.zeros((0, self.kf.dim, self.kf.dim))

    def correct_states(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """The rows' states corrected by their detections' ``boxes`` (xyxy)."""
        if not len(rows):
            return
        x, P = self.kf.update(self.x[rows], self.P[rows], self.kf.measure(boxes))
        self.x[rows], self.P[rows] = x, P
        self.tracks.box[rows] = self.kf.boxes(x)

    def add_states(self, n: int) -> None:
        """States for the table's last ``n`` rows (new targets), started from their boxes."""
        x, P = self.kf.initiate(self.kf.measure(self.tracks.box[-n:]))
        self.x = np.concatenate([self.x, x])
        self.P = np.concatenate([self.P, P])
