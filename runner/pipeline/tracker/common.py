"""What every dsrun tracker shares: parameters from the NvMultiObjectTracker YAML, the columnar track
table, the target life cycle and the association step.

Life cycle (NvMultiObjectTracker's target management): an unmatched detection whose confidence is
>= ``minDetectorConfidence`` starts a *tentative* target unless it overlaps an existing target by
more than ``minIouDiff4NewTarget`` (or the stream has ``maxTargetsPerStream``). A tentative target
becomes *confirmed* after ``probationAge`` matched frames and is dropped if it misses
``earlyTerminationAge`` frames first. A confirmed target that misses detections is shadow-tracked
(not reported) for up to ``maxShadowTrackingAge`` frames, then terminated. Only confirmed targets are
reported. Frames on which the detector did not run (``interval``) count as neither hit nor miss:
targets are predicted forward and reported at their predicted place, keeping their ids.

Association: score = ``matchingScoreWeight4Iou`` x IoU + ``matchingScoreWeight4SizeSimilarity`` x
size similarity, gated by ``minMatchingScore4Iou`` (> 0 overlap always required),
``minMatchingScore4SizeSimilarity``, ``minMatchingScore4Overall``, ``minMatchingScore4TentativeIou``
for tentative targets and ``checkClassMatch``; the best global assignment (Hungarian) wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from runner.pipeline.cluster import iou_matrix

TENTATIVE, CONFIRMED = 0, 1


@dataclass(frozen=True, slots=True)
class TrackerParams:
    """NvMultiObjectTracker keys dsrun's trackers use. Defaults are those of NVIDIA's sample
    ``config_tracker_IOU.yml`` (used when ``[tracker]`` names no ll-config-file)."""

    min_detector_confidence: float = 0.0
    check_class_match: bool = True
    max_targets_per_stream: int = 150
    min_iou_diff_new_target: float = 0.5
    probation_age: int = 4
    max_shadow_tracking_age: int = 38
    early_termination_age: int = 2
    min_score_overall: float = 0.0
    min_score_size: float = 0.0
    min_score_iou: float = 0.0
    min_score_tentative_iou: float = 0.0
    weight_iou: float = 0.6
    weight_size: float = 0.4
    # StateEstimator (runner.pipeline.tracker.kalman): 1 simple KF, 2 regular KF; a noise of 0 means
    # "dsrun's default" (kalman.DEFAULT_NOISE)
    state_estimator: int = 0
    process_noise_loc: float = 0.0
    process_noise_size: float = 0.0
    process_noise_vel: float = 0.0
    measurement_noise: float = 0.0
    noise_weight_loc: float = 0.0
    noise_weight_vel: float = 0.0
    use_aspect_ratio: bool = False

    @classmethod
    def from_ll_config(cls, ll) -> "TrackerParams":
        """From ``runner.config.NvMultiObjectTrackerConfig`` (None → the IOU sample's values)."""
        if ll is None:
            return cls()
        base, tm, da, se = ll.BaseConfig, ll.TargetManagement, ll.DataAssociator, ll.StateEstimator
        nvdcf = getattr(ll, "NvDCF", None)
        src = nvdcf if nvdcf is not None else tm
        return cls(
            min_detector_confidence=float((nvdcf or base).minDetectorConfidence),
            check_class_match=bool(da.checkClassMatch and base.checkClassMatch),
            max_targets_per_stream=int(src.maxTargetsPerStream),
            min_iou_diff_new_target=float(tm.minIouDiff4NewTarget),
            probation_age=int(src.probationAge),
            max_shadow_tracking_age=int(src.maxShadowTrackingAge),
            early_termination_age=int(src.earlyTerminationAge),
            min_score_overall=float(da.minMatchingScore4Overall),
            min_score_size=float(da.minMatchingScore4SizeSimilarity),
            min_score_iou=float(da.minMatchingScore4Iou),
            min_score_tentative_iou=float(da.minMatchingScore4TentativeIou),
            weight_iou=float(da.matchingScoreWeight4Iou),
            weight_size=float(da.matchingScoreWeight4SizeSimilarity),
            state_estimator=int(se.stateEstimatorType),
            process_noise_loc=float(se.processNoiseVar4Loc), process_noise_size=float(se.processNoiseVar4Size),
            process_noise_vel=float(se.processNoiseVar4Vel),
            measurement_noise=float(se.measurementNoiseVar4Detector),
            noise_weight_loc=float(se.noiseWeightVar4Loc), noise_weight_vel=float(se.noiseWeightVar4Vel),
            use_aspect_ratio=bool(se.useAspectRatio))


class IdSource:
    """Track ids, unique across every stream of the pipeline (shared by the per-stream trackers)."""

    def __init__(self, start: int = 0) -> None:
        self.next = start

    def take(self, n: int) -> np.ndarray:
        ids = np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return ids


def size_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min/max of widths times min/max of heights, every box of ``a`` against every box of ``b``."""
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    wb, hb = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        sw = np.minimum(wa[:, None], wb[None]) / np.maximum(wa[:, None], wb[None])
        sh = np.minimum(ha[:, None], hb[None]) / np.maximum(ha[:, None], hb[None])
    return np.nan_to_num(sw * sh)


#: what a pair that may not match costs in the assignment: more than all scores together, so the
#: assignment first matches as many valid pairs as it can, then the best scores
INVALID_COST = 1e6


def assign(score: np.ndarray, valid: np.ndarray):
    """Best one-to-one assignment on ``score`` among ``valid`` pairs → (rows, cols)."""
    if not valid.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cost = np.where(valid, -score, INVALID_COST)
    rows, cols = linear_sum_assignment(cost)
    ok = valid[rows, cols]
    return rows[ok], cols[ok]


class Tracks:
    """Columnar targets of one stream."""

    def __init__(self) -> None:
        self.id = np.zeros(0, np.int64)
        self.box = np.zeros((0, 4))
        self.cls = np.zeros(0, np.int32)
        self.conf = np.zeros(0, np.float32)  # last detector confidence
        self.state = np.zeros(0, np.int8)
        self.hits = np.zeros(0, np.int32)
        self.misses = np.zeros(0, np.int32)  # shadow-tracking age

    def __len__(self) -> int:
        return len(self.id)

    def keep(self, mask: np.ndarray) -> None:
        for name in ("id", "box", "cls", "conf", "state", "hits", "misses"):
            setattr(self, name, getattr(self, name)[mask])

    def add(self, ids, box, cls, conf) -> None:
        n = len(ids)
        self.id = np.concatenate([self.id, ids])
        self.box = np.concatenate([self.box, box])
        self.cls = np.concatenate([self.cls, cls])
        self.conf = np.concatenate([self.conf, conf])
        self.state = np.concatenate([self.state, np.full(n, TENTATIVE, np.int8)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int32)])
        self.misses = np.concatenate([self.misses, np.zeros(n, np.int32)])


def association_score(p, iou: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The weighted match score of track/detection pairs (IoU and size similarity, NvMultiObjectTracker's
    ``matchingScoreWeight4Iou`` / ``4SizeSimilarity``), any array shape."""
    wsum = p.weight_iou + p.weight_size
    return (p.weight_iou * iou + p.weight_size * size) / (wsum if wsum > 0 else 1.0)


def match(p: TrackerParams, tracks: Tracks, boxes: np.ndarray, cls: np.ndarray,
          track_rows: np.ndarray | None = None, det_rows: np.ndarray | None = None, iou_floor: float = 0.0):
    """Associate ``tracks`` (optionally a subset of rows) with detections → (track rows, det rows)."""
    tr = np.arange(len(tracks)) if track_rows is None else track_rows
    dr = np.arange(len(boxes)) if det_rows is None else det_rows
    if not len(tr) or not len(dr):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    tb, db = tracks.box[tr], boxes[dr]
    iou = iou_matrix(tb, db)
    size = size_similarity(tb, db)
    score = association_score(p, iou, size)
    valid = (iou > max(0.0, iou_floor)) & (iou >= p.min_score_iou) & (size >= p.min_score_size)
    valid &= score >= p.min_score_overall
    tentative = tracks.state[tr] == TENTATIVE
    valid &= ~tentative[:, None] | (iou >= p.min_score_tentative_iou)
    if p.check_class_match:
        valid &= tracks.cls[tr][:, None] == cls[dr][None, :]
    r, c = assign(score, valid)
    return tr[r], dr[c]


def new_target_mask(p: TrackerParams, tracks: Tracks, boxes, conf, unmatched: np.ndarray) -> np.ndarray:
    """Unmatched detections that may start targets."""
    ok = unmatched & (conf >= p.min_detector_confidence)
    if len(tracks) and p.min_iou_diff_new_target > 0 and ok.any():
        overlap = iou_matrix(boxes, tracks.box).max(1)
        ok &= overlap <= p.min_iou_diff_new_target
    room = p.max_targets_per_stream - len(tracks)
    if ok.sum() > room:
        idx = np.flatnonzero(ok)
        ok[idx[np.argsort(-conf[idx], kind="stable")[max(room, 0):]]] = False
    return ok


def age(p: TrackerParams, tracks: Tracks, matched: np.ndarray) -> np.ndarray:
    """After association on a detection frame: hits, misses, confirmation and termination.
    Returns the mask of targets kept (over the table as it was)."""
    tracks.hits[matched] += 1
    tracks.misses[matched] = 0
    tracks.misses[~matched] += 1
    confirm = (tracks.state == TENTATIVE) & (tracks.hits >= max(p.probation_age, 1))
    tracks.state[confirm] = CONFIRMED
    early = (tracks.state == TENTATIVE) & (tracks.misses > 0) & (tracks.misses >= max(p.early_termination_age, 1))
    dead = (tracks.state == CONFIRMED) & (tracks.misses > p.max_shadow_tracking_age)
    keep = ~(early | dead)
    tracks.keep(keep)
    return keep
