"""The IOU and SORT-class trackers run as one vectorised step per batch give, batch for batch, exactly
what the per-stream trackers give frame by frame (:class:`IouTracker`, :class:`SortTracker`, whose
behaviour tests/test_tracker.py holds against ground truth): same objects kept and dropped, same track ids, same predicted objects on
frames the detector skipped — over many streams, crowded scenes where targets compete for
detections (the Hungarian assignment), a source with two frames in one batch, sources ending, and the
life-cycle settings at their edges (probation 0/1/3, new-target overlap, maxTargetsPerStream)."""

import numpy as np
import pytest

from runner.pipeline.batch import Batch, Classifications, Objects
from runner.pipeline.tracker import TrackerStage
from runner.pipeline.tracker.common import TrackerParams
from runner.pipeline.tracker.iou import IouTracker
from runner.pipeline.tracker.iou_batched import BatchedIouTracker
from runner.pipeline.tracker.sort import SortTracker
from runner.pipeline.tracker.sort_batched import BatchedSortTracker
from runner.pipeline.tracker.stage import rounds

W, H = 640, 480


def world(rng, streams, objects):
    """Per stream: objects with a start, a velocity and a size, some crowded into one corner."""
    out = {}
    for s in streams:
        start = rng.uniform([0, 0], [W - 80, H - 80], (objects, 2))
        start[: objects // 3] = rng.uniform([100, 100], [130, 130], (objects // 3, 2))  # a crowd
        out[s] = (start, rng.uniform(-6, 6, (objects, 2)), rng.uniform([20, 30], [70, 90], (objects, 2)))
    return out


def batch_of(rng, scene, frame_no, sources, detected, classes):
    """One batch: per frame, noisy detections of the stream's objects (some missed, some false)."""
    frame_idx, boxes, conf, cls = [], [], [], []
    for i, s in enumerate(sources):
        if not detected[i]:
            n = int(rng.integers(0, 2))  # objects of another GIE on skipped frames: the tracker leaves them
        start, vel, size = scene[s]
        xy = start + vel * frame_no
        b = np.hstack([xy, xy + size]) + rng.normal(0, 3, (len(xy), 4))
        b = b[rng.random(len(b)) > 0.1]
        fp = rng.uniform(0, W - 60, (int(rng.integers(0, 3)), 2))
        b = np.vstack([b, np.hstack([fp, fp + rng.uniform(15, 60, (len(fp), 2))])])
        if not detected[i]:
            b = b[:n]
        frame_idx += [i] * len(b)
        boxes.append(b)
        conf.append(rng.uniform(0.05, 1.0, len(b)))
        cls.append(rng.integers(0, classes, len(b)))
    n = len(sources)
    objs = Objects.from_columns(frame=frame_idx, gie_id=1, class_id=np.concatenate(cls),
                                confidence=np.concatenate(conf), xyxy=np.vstack(boxes))
    order = rng.permutation(len(objs))  # detections need not arrive sorted by frame
    objs = objs[order]
    cls_rows = Classifications.from_columns(obj=np.arange(0, len(objs), 3), frame=objs.frame[::3], gie_id=2,
                                            class_id=1, confidence=0.5, label="x")
    return Batch(frames=np.broadcast_to(np.zeros(3, np.uint8), (n, H, W, 3)), source_id=np.asarray(sources, np.int32),
                 frame_num=np.full(n, frame_no, np.int64), pts=np.zeros(n, np.int64),
                 ntp_ts=np.zeros(n, np.int64), source_size=np.full((n, 2), [W, H], np.int32),
                 objects=objs, classifications=cls_rows, inferred={1: np.asarray(detected, bool)})


def copy(batch):
    return Batch(frames=batch.frames, source_id=batch.source_id.copy(), frame_num=batch.frame_num.copy(),
                 pts=batch.pts, ntp_ts=batch.ntp_ts, source_size=batch.source_size,
                 objects=batch.objects[np.arange(len(batch.objects))],
                 classifications=batch.classifications[np.arange(len(batch.classifications))],
                 inferred={k: v.copy() for k, v in batch.inferred.items()}, eos=list(batch.eos))


KINDS = {"iou": (IouTracker, BatchedIouTracker), "sort": (SortTracker, BatchedSortTracker)}


def tracker(params, batched, kind="iou"):
    stage = TrackerStage(None, operate_on_gie_id=1)
    stage.params = params
    per_stream, all_streams = KINDS[kind]
    stage.kind, stage._cls = kind, per_stream
    # batched: one table for every stream; else the per-stream, frame-by-frame path
    stage.batched = all_streams(params, stage.ids) if batched else None
    return stage


def assert_same(a, b):
    for col in ("frame", "gie_id", "class_id", "confidence", "xyxy", "track_id", "tracker_confidence", "parent"):
        np.testing.assert_array_equal(getattr(a.objects, col), getattr(b.objects, col), err_msg=col)
    for col in ("obj", "frame", "class_id"):
        np.testing.assert_array_equal(getattr(a.classifications, col), getattr(b.classifications, col), err_msg=col)


PARAMS = [
    TrackerParams(probation_age=3, early_termination_age=2, max_shadow_tracking_age=4, min_score_iou=0.1),
    TrackerParams(probation_age=0, min_iou_diff_new_target=0.3, max_targets_per_stream=6),
    TrackerParams(probation_age=1, check_class_match=False, min_detector_confidence=0.3,
                  min_score_tentative_iou=0.4, min_iou_diff_new_target=0.0, max_targets_per_stream=3),
]


SORT_PARAMS = [  # the gallery's NvSORT settings, and dsrun's default noise; the simple KF (type 1); the
    # regular KF with height-proportional noise and the aspect ratio (NVIDIA's NvSORT example)
    TrackerParams(probation_age=2, early_termination_age=1, max_shadow_tracking_age=15, min_score_iou=0.2,
                  min_score_size=0.5, min_score_overall=0.1, weight_iou=0.7, weight_size=0.3,
                  min_detector_confidence=0.3, max_targets_per_stream=64, state_estimator=2, process_noise_loc=2.0,
                  process_noise_size=1.0, process_noise_vel=0.1, measurement_noise=4.0),
    TrackerParams(probation_age=0, min_iou_diff_new_target=0.3, max_targets_per_stream=6, min_score_iou=0.1),
    TrackerParams(probation_age=1, max_shadow_tracking_age=10, min_score_iou=0.1, state_estimator=1,
                  process_noise_loc=1.5, process_noise_size=1.3, process_noise_vel=0.03, measurement_noise=3.0),
    TrackerParams(probation_age=1, max_shadow_tracking_age=10, min_score_iou=0.1, state_estimator=2,
                  noise_weight_loc=0.0301, noise_weight_vel=0.0017, use_aspect_ratio=True),
]


@pytest.mark.parametrize("kind, params", [("iou", p) for p in PARAMS] + [("sort", p) for p in SORT_PARAMS])
@pytest.mark.parametrize("seed", [0, 1])
def test_batched_tracker_equals_the_per_stream_tracker_batch_for_batch(kind, params, seed):
    rng = np.random.default_rng(seed)
    streams = list(range(12))
    scene = world(rng, streams, objects=9)
    per_stream, batched = tracker(params, False, kind), tracker(params, True, kind)
    for frame_no in range(60):
        sources = [s for s in streams if rng.random() > 0.15]  # sources missing from a batch
        if frame_no % 7 == 3:
            sources = sources[:3] + sources[:2] + sources[3:5]  # sources with two frames in the batch
        detected = [(frame_no + s) % 3 != 1 for s in sources]  # interval-like skipped frames
        b = batch_of(np.random.default_rng(seed * 1000 + frame_no), scene, frame_no, sources, detected, classes=2)
        if frame_no == 40:
            b.eos = [4, 5]  # two sources end; their ids come back later as new streams
        x, y = per_stream.process(copy(b)), batched.process(copy(b))
        assert_same(x, y)
        for stage in (per_stream, batched):  # as the graph does: on_eos after process; a batch that
            if b.eos:                         # carries only an end of stream gets on_eos alone
                stage.on_eos(b.eos)
            if frame_no == 50:
                stage.on_eos([7])
    assert batched.ids.next == per_stream.ids.next > 30  # as many ids taken, in the same order
    if kind == "sort":  # every live target's Kalman state, bit for bit
        live = {int(i): (x, P) for t in per_stream.streams.values() for i, x, P in zip(t.tracks.id, t.x, t.P)}
        table = batched.batched
        assert sorted(live) == sorted(table.tracks.id.tolist()) and len(live) > 20
        for i, x, P in zip(table.tracks.id.tolist(), table.x, table.P):
            np.testing.assert_array_equal(x, live[i][0])
            np.testing.assert_array_equal(P, live[i][1])


@pytest.mark.parametrize("base", [0, 1 << 20])  # small source ids, and ids past the lookup table's range
def test_batched_tracker_equals_the_per_stream_tracker_with_sources_coming_and_going(base):
    """Sources absent from some batches, one joining late with a high id, one ending: the lookup of a
    target's frame by source id holds whatever the ids."""
    rng = np.random.default_rng(7)
    streams = [base + s for s in (0, 3, 5, 900)]
    scene = world(rng, streams, objects=6)
    per_stream, batched = tracker(PARAMS[1], False), tracker(PARAMS[1], True)
    for frame_no in range(25):
        late = [streams[3]] if frame_no >= 10 else []
        sources = streams[:1] + [s for s in streams[1:3] if rng.random() > 0.3] + late
        b = batch_of(np.random.default_rng(frame_no), scene, frame_no, sources, [True] * len(sources), classes=1)
        assert_same(per_stream.process(copy(b)), batched.process(copy(b)))
        if frame_no == 15:
            for stage in (per_stream, batched):
                stage.on_eos([streams[1]])
    assert batched.ids.next == per_stream.ids.next > 10


@pytest.mark.parametrize("step", [1, 70_000])  # class ids 0..2, and ids too far apart to key pairs by
def test_batched_tracker_keeps_classes_apart_whatever_the_class_ids(step):
    """checkClassMatch: pairs keyed by frame and class when the ids are few, compared pair by pair when
    they are far apart — the same matches either way as the per-stream tracker's class gate."""
    rng = np.random.default_rng(8)
    streams = list(range(5))
    scene = world(rng, streams, objects=8)
    per_stream, batched = tracker(PARAMS[0], False), tracker(PARAMS[0], True)
    for frame_no in range(20):
        b = batch_of(np.random.default_rng(frame_no), scene, frame_no, streams, [True] * 5, classes=3)
        b.objects.class_id = b.objects.class_id * step
        assert_same(per_stream.process(copy(b)), batched.process(copy(b)))
    assert batched.ids.next == per_stream.ids.next > 10


def test_crowded_streams_take_the_assignment_and_still_match():
    """Two targets overlapping two detections each: the pairs compete, the Hungarian step decides."""
    params = TrackerParams(probation_age=0, min_iou_diff_new_target=0.9)
    a = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [100, 100, 120, 120.]])
    moved = a + np.array([1, 0, 1, 0.])

    def batch(boxes):
        objs = Objects.from_columns(frame=[0, 0, 1], gie_id=1, class_id=0, confidence=0.9, xyxy=boxes)
        return Batch(frames=np.broadcast_to(np.zeros(3, np.uint8), (2, H, W, 3)), source_id=np.array([0, 1], np.int32),
                     frame_num=np.zeros(2, np.int64), pts=np.zeros(2, np.int64), ntp_ts=np.zeros(2, np.int64),
                     source_size=np.full((2, 2), [W, H], np.int32), objects=objs, inferred={1: np.ones(2, bool)})

    stages = tracker(params, False), tracker(params, True)
    for boxes in (a, moved, a[[1, 0, 2]]):
        x, y = (s.process(batch(boxes)) for s in stages)
        assert_same(x, y)
    assert y.objects.track_id.tolist() == [1, 0, 2]


def test_duplicate_detections_tie_and_go_to_the_same_targets_as_per_stream():
    """Two detections with the same box (two classes, checkClassMatch off) both overlapping two of a
    stream's three targets: the two assignments score the same, and the batched tracker must pick the
    one the per-stream tracker's Hungarian step picks on the stream's own matrix (a different matrix
    can break the tie the other way: this one does when the streams' contests share one matrix)."""
    params = TrackerParams(probation_age=0, check_class_match=False, min_iou_diff_new_target=0.95)
    targets = np.array([[0, 0, 10, 10], [6, 0, 16, 10], [10, 0, 20, 10.]])
    dup = np.array([[11, 0, 21, 10], [11, 0, 21, 10.]])
    crowd = np.array([[100, 100, 120, 120], [104, 100, 124, 120], [100, 100, 120, 120.]])

    def batch(per_frame, classes):
        objs = Objects.from_columns(frame=np.repeat([0, 1], [len(b) for b in per_frame]), gie_id=1,
                                    class_id=np.concatenate(classes), confidence=0.9, xyxy=np.vstack(per_frame))
        return Batch(frames=np.broadcast_to(np.zeros(3, np.uint8), (2, H, W, 3)),
                     source_id=np.array([4, 0], np.int32), frame_num=np.zeros(2, np.int64),
                     pts=np.zeros(2, np.int64), ntp_ts=np.zeros(2, np.int64),
                     source_size=np.full((2, 2), [W, H], np.int32), objects=objs, inferred={1: np.ones(2, bool)})

    stages = tracker(params, False), tracker(params, True)
    for s in stages:  # targets; a second stream with a contest of its own, in the same batch
        s.process(batch([targets, crowd[:2]], [[0, 0, 0], [0, 0]]))
    x, y = (s.process(batch([dup, crowd[1:] + 1], [[0, 1], [0, 1]])) for s in stages)
    assert_same(x, y)
    assert sorted(y.objects.track_id[:2].tolist()) == [1, 2]  # one detection each for the two tied targets


def test_rounds_cut_the_batch_where_a_source_repeats():
    assert rounds(np.array([3, 1, 2])) == [(0, 3)]
    assert rounds(np.array([0, 1, 0, 1, 2])) == [(0, 2), (2, 5)]
    assert rounds(np.array([], np.int32)) == []
