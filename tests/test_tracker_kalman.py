"""The SORT-class tracker's Kalman filter against OpenCV's ``cv2.KalmanFilter`` configured by hand with
NvMultiObjectTracker's documented state estimators, on YOLOv4-tiny's detections of the street clip
(OpenCV's vtest.avi), the detector run on every third frame (``interval=2``).

The documented models (Gst-nvtracker "State Estimation"; NVIDIA/DeepStream
``skills/deepstream-dev/references/tracker_config.md``, StateEstimator):

* type 1, simple KF: states {x, y, w, h, dx, dy} — constant velocity for the centre, a random walk for
  the size; Q = diag(processNoiseVar4Loc x2, processNoiseVar4Size x2, processNoiseVar4Vel x2),
  R = measurementNoiseVar4Detector I;
* type 2, regular KF: states {x, y, w, h, dx, dy, dw, dh}, the same keys — or noises proportional to the
  box height (noiseWeightVar4Loc / noiseWeightVar4Vel, as DeepSORT's kalman_filter.py), with the aspect
  ratio a = w / h in place of w (useAspectRatio).

The initial covariance is not published by NVIDIA; dsrun documents DeepSORT's ratios (docs/inference.md):
std 2x the measurement std for position and size, 10x the per-frame velocity std for velocities.

Each tracked target's detections (on detector frames the tracker reports the detection's own box) feed
one cv2.KalmanFilter from the target's first frame: predict every frame, correct on the frames where the
target has a detection. On the frames the detector skipped, the boxes the tracker reports must be the
filter's predictions, clipped to the frame as gst-nvtracker clips the low-level tracker's boxes.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as NS

import av
import cv2
import numpy as np
import pytest

from infer_models import yolov4_tiny_stage
from runner.config import load_tracker
from runner.pipeline.batch import Batch, Objects
from runner.pipeline.tracker import TrackerStage

FRAMES = 150
INTERVAL = 2
CONFORMANCE_2D = ("deepstream/src/apps/reference_apps/deepstream-tracker-3d-multi-view/config_templates/"
                  "config_tracker_2d.yml")
# NVIDIA's NvSORT example (NVIDIA/DeepStream skills/deepstream-dev/references/tracker_config.md, "NvSORT
# Tracker"): regular KF, height-proportional noise, aspect ratio. probationAge 1 (NVIDIA: 5) so that a
# target is reported from its first detection and its whole measurement history is visible here.
NVSORT = """%YAML:1.0
BaseConfig:
  minDetectorConfidence: 0.1345
TargetManagement:
  enableBboxUnClipping: 0
  maxTargetsPerStream: 300
  minIouDiff4NewTarget: 0.5780
  minTrackerConfidence: 0.8216
  probationAge: 1
  maxShadowTrackingAge: 26
  earlyTerminationAge: 1
TrajectoryManagement:
  useUniqueID: 0
DataAssociator:
  dataAssociatorType: 0
  associationMatcherType: 1
  checkClassMatch: 1
  minMatchingScore4Overall: 0.2543
  minMatchingScore4SizeSimilarity: 0.4019
  minMatchingScore4Iou: 0.2159
  matchingScoreWeight4SizeSimilarity: 0.1365
  matchingScoreWeight4Iou: 0.3836
  tentativeDetectorConfidence: 0.2331
  minMatchingScore4TentativeIou: 0.2867
StateEstimator:
  stateEstimatorType: 2
  noiseWeightVar4Loc: 0.0301
  noiseWeightVar4Vel: 0.0017
  useAspectRatio: 1
"""


@pytest.fixture(scope="module")
def street_detections(assets, tmp_path_factory):
    """{frame: (boxes, classes, confidences)} of YOLOv4-tiny (DeepStream-Yolo's config, as the test2 sample)
    on the detector frames 0, 3, 6 … of the street clip at its own size (768x576)."""
    stage = yolov4_tiny_stage(assets, tmp_path_factory.mktemp("kalman"))
    with av.open(str(assets.videos["street"])) as c:
        pictures = [f.to_ndarray(format="rgb24") for _, f in zip(range(FRAMES), c.decode(video=0))]
    detected = list(range(0, FRAMES, INTERVAL + 1))
    out = {}
    for s in range(0, len(detected), 4):
        nums = detected[s:s + 4]
        x = np.stack([pictures[f] for f in nums])
        n, h, w = x.shape[:3]
        o = stage.process(Batch(frames=x, source_id=np.zeros(n, np.int32), frame_num=np.array(nums),
                                pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                                source_size=np.tile([w, h], (n, 1)).astype(np.int32))).objects
        for i, f in enumerate(nums):
            m = o.frame == i
            out[f] = (o.xyxy[m].astype(np.float64), o.class_id[m], o.confidence[m])
    assert sum(len(v[0]) for v in out.values()) > 5 * len(detected)  # people on every frame
    return out


def track(ll_config_path: Path, detections) -> dict[int, dict[int, tuple[np.ndarray, bool]]]:
    """Run the [tracker] stage frame by frame → {track id: {frame: (box, on a detector frame)}}."""
    stage = TrackerStage(NS(ll_config=load_tracker(ll_config_path), ll_lib_file=None, enable=True,
                            operate_on_class_ids=()))
    assert stage.kind == "sort"
    tracks: dict[int, dict[int, tuple[np.ndarray, bool]]] = {}
    for f in range(FRAMES):
        inferred = f in detections
        boxes, cls, conf = detections[f] if inferred else (np.zeros((0, 4)), np.zeros(0, int), np.zeros(0))
        objs = Objects.from_columns(frame=np.zeros(len(boxes), int), gie_id=1, class_id=cls, confidence=conf,
                                    xyxy=boxes)
        b = stage.process(Batch(frames=np.broadcast_to(np.zeros(3, np.uint8), (1, 576, 768, 3)),
                                source_id=np.zeros(1, np.int32),
                                frame_num=np.array([f]), pts=np.zeros(1, np.int64), ntp_ts=np.zeros(1, np.int64),
                                source_size=np.array([[768, 576]], np.int32), objects=objs,
                                inferred={1: np.array([inferred])}))
        o = b.objects
        for tid, box, c in zip(o.track_id.tolist(), o.xyxy.astype(np.float64), o.confidence.tolist()):
            assert inferred == (c != pytest.approx(-0.1))  # detections on detector frames, predictions between
            tracks.setdefault(tid, {})[f] = (box, inferred)
    return tracks


# -- the filters, written from the documentation with OpenCV's KalmanFilter doing the algebra ---------------


def _z(box, aspect):
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, w / h if aspect else w, h])


def _box(state, aspect):
    cx, cy, third, h = state[:4]
    w = third * h if aspect else third
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def constant_noise_filter(z0, dim, loc, size, vel, meas):
    """Types 1 (dim 6) and 2 (dim 8) with processNoiseVar4* / measurementNoiseVar4Detector."""
    kf = cv2.KalmanFilter(dim, 4, 0, cv2.CV_64F)
    F = np.eye(dim)
    for i in range(dim - 4):  # x += dx, y += dy (and w += dw, h += dh)
        F[i, 4 + i] = 1
    kf.transitionMatrix = F
    kf.measurementMatrix = np.eye(4, dim)
    kf.processNoiseCov = np.diag([loc, loc, size, size] + [vel] * (dim - 4))
    kf.measurementNoiseCov = np.eye(4) * meas
    kf.statePost = np.r_[z0, np.zeros(dim - 4)].reshape(-1, 1)
    kf.errorCovPost = np.diag([4 * meas] * 4 + [100 * vel] * (dim - 4))  # (2 x meas std)², (10 x vel std)²
    return kf, lambda kf: None, lambda kf: None


def height_noise_filter(z0, w_loc, w_vel):
    """Type 2 with noiseWeightVar4Loc/Vel and useAspectRatio: DeepSORT's filter on (cx, cy, a, h)."""
    kf = cv2.KalmanFilter(8, 4, 0, cv2.CV_64F)
    F = np.eye(8)
    F[range(4), range(4, 8)] = 1
    kf.transitionMatrix = F
    kf.measurementMatrix = np.eye(4, 8)
    h = z0[3]
    kf.statePost = np.r_[z0, np.zeros(4)].reshape(-1, 1)
    kf.errorCovPost = np.diag(np.square([2 * w_loc * h, 2 * w_loc * h, 1e-2, 2 * w_loc * h,
                                         10 * w_vel * h, 10 * w_vel * h, 1e-5, 10 * w_vel * h]))

    def before_predict(kf):  # noise from the height of the state being predicted
        h = kf.statePost[3, 0]
        kf.processNoiseCov = np.diag(np.square([w_loc * h, w_loc * h, 1e-2, w_loc * h,
                                                w_vel * h, w_vel * h, 1e-5, w_vel * h]))

    def before_correct(kf):  # measurement noise from the predicted height
        h = kf.statePre[3, 0]
        kf.measurementNoiseCov = np.diag(np.square([w_loc * h, w_loc * h, 1e-1, w_loc * h]))

    return kf, before_predict, before_correct


def clip_bbox(box, frame_w=768, frame_h=576):
    """gst-nvtracker's NvTrackerProc::clipBBox (nvtracker_proc.cpp) on an xyxy box: None when nothing of
    it is inside the frame (the object is not reported)."""
    left, top, width, height = box[0], box[1], box[2] - box[0], box[3] - box[1]
    if left < 0:
        width += left
        left = 0
    if top < 0:
        height += top
        top = 0
    if left >= frame_w or top >= frame_h or width <= 0 or height <= 0:
        return None
    width = min(width, frame_w - left)
    height = min(height, frame_h - top)
    return np.array([left, top, left + width, top + height])


def check_predictions(tracks, make_filter, aspect=False):
    """Every box reported on a skipped frame equals the hand-built filter's prediction, clipped to the
    frame as gst-nvtracker clips it → (boxes checked, boxes the clipping changed, the largest ratio of a
    predicted height to the target's last detected height)."""
    checked, clipped, growth = 0, 0, 1.0
    for tid, seen in tracks.items():
        frames = sorted(seen)
        first, last = frames[0], frames[-1]
        assert seen[first][1], tid  # a target starts on a detector frame
        kf, before_predict, before_correct = make_filter(_z(seen[first][0], aspect))
        last_h = seen[first][0][3] - seen[first][0][1]
        for f in range(first + 1, last + 1):
            before_predict(kf)
            predicted = _box(kf.predict().ravel(), aspect)
            if f in seen and seen[f][1]:
                before_correct(kf)
                kf.correct(_z(seen[f][0], aspect).reshape(-1, 1))
                last_h = seen[f][0][3] - seen[f][0][1]
            elif f in seen:  # reported at the prediction (float32 metadata: 1e-7 relative)
                expected = clip_bbox(predicted)
                assert expected is not None, (tid, f, predicted)
                np.testing.assert_allclose(seen[f][0], expected, rtol=1e-7, atol=1e-4, err_msg=f"track {tid} frame {f}")
                growth = max(growth, (predicted[3] - predicted[1]) / last_h)
                checked += 1
                clipped += not np.array_equal(expected, predicted)
    return checked, clipped, growth


def test_simple_kf_of_a_conformance_nvdcf_config_keeps_box_sizes_between_detections(conformance,
                                                                                     street_detections):
    """NVIDIA's 2-D multi-view tracker config: stateEstimatorType 1, processNoiseVar4Loc 6497.75,
    processNoiseVar4Vel 8035.86, measurementNoiseVar4Detector 100, no processNoiseVar4Size (dsrun's
    default 2.0). The simple KF has no size velocity: a predicted box keeps the size the filter holds."""
    tracks = track(conformance / CONFORMANCE_2D, street_detections)
    checked, clipped, growth = check_predictions(
        tracks, lambda z0: constant_noise_filter(z0, 6, 6497.75224242603, 2.0, 8035.858212054732, 100.0))
    print(f"\nsimple KF: {len(tracks)} tracks, {checked} predicted boxes equal OpenCV's KalmanFilter "
          f"({clipped} clipped to the frame); largest predicted/last detected height {growth:.3f}")
    assert checked >= 200 and clipped >= 5
    assert growth < 1.1


def test_regular_kf_with_height_proportional_noise_follows_deepsorts_filter(tmp_path, street_detections):
    path = tmp_path / "nvsort.yml"
    path.write_text(NVSORT)
    tracks = track(path, street_detections)
    checked, clipped, growth = check_predictions(tracks, lambda z0: height_noise_filter(z0, 0.0301, 0.0017),
                                                 aspect=True)
    print(f"\nregular KF (height noise, aspect ratio): {len(tracks)} tracks, {checked} predicted boxes equal "
          f"OpenCV's KalmanFilter ({clipped} clipped to the frame); largest predicted/last detected height "
          f"{growth:.3f}")
    assert checked >= 200 and clipped >= 5
    assert growth < 1.2


def test_regular_kf_of_the_test2_sample_does_not_grow_boxes_on_the_street(tmp_path, repo_root, street_detections):
    """The test2 / multistream samples' tracker (stateEstimatorType 2 with constant noises; probationAge
    set to 1 here to see every measurement): boxes reported between detections are the filter's
    predictions, and stay within 20 % of the target's last detected height (dsrun's former filter, whose
    velocities started at variance 1000, had shadow targets growing from ~85 px to over 200 px)."""
    text = (repo_root / "samples/test2/config_tracker.yml").read_text()
    assert "probationAge: 2" in text and "stateEstimatorType: 2" in text
    path = tmp_path / "tracker.yml"
    path.write_text(text.replace("probationAge: 2", "probationAge: 1"))
    tracks = track(path, street_detections)
    checked, clipped, growth = check_predictions(tracks, lambda z0: constant_noise_filter(z0, 8, 2.0, 1.0, 0.1, 4.0))
    print(f"\nregular KF (constant noise): {len(tracks)} tracks, {checked} predicted boxes equal OpenCV's "
          f"KalmanFilter ({clipped} clipped to the frame); largest predicted/last detected height {growth:.3f}")
    assert checked >= 200 and clipped >= 5
    assert growth < 1.2


@pytest.mark.parametrize("estimator", [dict(simple=True, loc=1.5, size=1.3, vel=0.03, meas=3.0),
                                       dict(loc=2.0, size=1.0, vel=0.1, meas=4.0),
                                       dict(weight_loc=0.0301, weight_vel=0.0017, aspect_ratio=True)])
def test_predict_and_update_are_the_kalman_matrix_formulas_bit_for_bit(estimator):
    """The filter's predict (written as additions, a few calls per batch) gives exactly the textbook
    products x' = F x, P' = F P F^T + Q, and its update the textbook S = H P H^T + R, over many targets
    after some corrections (covariances with off-diagonal terms)."""
    from runner.pipeline.tracker.kalman import StateEstimator

    kf = StateEstimator(**estimator)
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 500, (200, 2))
    x, P = kf.initiate(kf.measure(np.hstack([xy, xy + rng.uniform(20, 90, (200, 2))])))
    for _ in range(4):
        F, Q = kf.F, np.zeros_like(P)
        Q[:, range(kf.dim), range(kf.dim)] = kf.process_noise_var(x)
        want_x, want_P = x @ F.T, F @ P @ F.T + Q
        x, P = kf.predict(x, P)
        assert np.array_equal(x, want_x) and np.array_equal(P, want_P)
        z = kf.measure(kf.boxes(x) + rng.normal(0, 3, (200, 4)))
        R = np.zeros((200, 4, 4))
        R[:, range(4), range(4)] = kf.measurement_noise_var(x)
        S = P[:, :4, :4] + R
        K = P[:, :, :4] @ np.linalg.inv(S)
        want_x, want_P = x + np.einsum("nij,nj->ni", K, z - x[:, :4]), P - K @ P[:, :4, :]
        x, P = kf.update(x, P, z)
        assert np.array_equal(x, want_x) and np.array_equal(P, want_P)
    assert (np.abs(P[:, 0, 4]) > 0).all()  # position and velocity correlated: F P F^T had work to do
