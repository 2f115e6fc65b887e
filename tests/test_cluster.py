"""Clustering and filtering per [class-attrs-*], against hand-computed nvinfer behaviour."""

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.cluster import ClassParams, cluster, frame_filter
from runner.pipeline.nms import iou_matrix, nms_keep


def _objs(frame, cls, conf, boxes):
    n = len(conf)
    return Objects.from_columns(frame=np.broadcast_to(frame, n), class_id=np.broadcast_to(cls, n),
                                confidence=conf, xyxy=boxes)


def _greedy_nms(boxes, scores, thr):
    order = np.argsort(-scores, kind="stable")
    kept = []
    for i in order:
        if all(iou_matrix(boxes[i:i + 1], boxes[k:k + 1])[0, 0] <= thr for k in kept):
            kept.append(i)
    return np.array(kept, int)


def test_vectorised_nms_equals_the_greedy_loop_on_random_crowds():
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(1, 60))
        xy = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(5, 40, (n, 2))
        boxes = np.hstack([xy, xy + wh])
        scores = rng.choice([0.3, 0.5, 0.7, 0.9], n) if rng.random() < 0.3 else rng.random(n)
        thr = float(rng.uniform(0.1, 0.8))
        np.testing.assert_array_equal(nms_keep(boxes, scores, thr), _greedy_nms(boxes, scores, thr))


def test_nms_keeps_only_boxes_strictly_above_post_cluster_threshold_then_topk_per_class():
    p = ClassParams.uniform(2, pre_cluster_threshold=0.3, post_cluster_threshold=0.5,
                            nms_iou_threshold=0.5, topk=1)
    objs = _objs([0, 0, 0, 0, 1], [0, 0, 0, 1, 1], [0.9, 0.5, 0.8, 0.6, 0.25],
                 [[0, 0, 10, 10], [40, 40, 50, 50], [1, 0, 11, 10], [0, 0, 10, 10], [0, 0, 5, 5]])
    out = cluster(objs, 2, p)
    # class 0: 0.8 suppressed by 0.9 (IoU 0.82), 0.5 is not > 0.5; class 1: 0.6 kept; frame 1: 0.25 < pre
    assert out.frame.tolist() == [0, 0] and out.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(out.confidence, [0.9, 0.6])


def test_group_rectangles_averages_similar_integer_rects_and_drops_small_groups():
    p = ClassParams.uniform(1, pre_cluster_threshold=0.1, eps=0.2, group_threshold=1)
    boxes = [[10, 10, 30, 30], [12.7, 11, 31, 31], [11, 9, 29, 30],  # 3 similar → one group
             [100, 100, 120, 120]]  # alone: 1 member is not > group-threshold 1
    out = cluster(_objs(0, 0, [0.9, 0.8, 0.7, 0.9], boxes), 0, p)
    # rects (x,y,w,h) truncated: (10,10,20,20) (12,11,18,20) (11,9,18,21) → mean (11,10,18.67,20.33) → round
    np.testing.assert_array_equal(out.xyxy, [[11, 10, 30, 30]])
    assert out.confidence.tolist() == [np.float32(-0.1)]
    # group-threshold 0 leaves every (integer) rectangle as it is
    p0 = ClassParams.uniform(1, pre_cluster_threshold=0.1, eps=0.2, group_threshold=0)
    assert len(cluster(_objs(0, 0, [0.9, 0.8, 0.7, 0.9], boxes), 0, p0)) == 4


def test_dbscan_merges_dense_clusters_weighted_by_confidence_and_drops_noise():
    p = ClassParams.uniform(1, pre_cluster_threshold=0.1, eps=0.3, min_boxes=3, dbscan_min_score=1.0,
                            post_cluster_threshold=0.2)
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10],  # dense trio
             [50, 50, 60, 60], [51, 50, 61, 60]]  # only two: noise with minBoxes=3
    conf = [0.5, 0.5, 1.0, 0.9, 0.9]
    out = cluster(_objs(0, 0, conf, boxes), 1, p)
    np.testing.assert_allclose(out.xyxy, [[0.5, 0, 10.5, 10]])  # (0*.5+0*.5+1*1)/2 = 0.5
    np.testing.assert_allclose(out.confidence, [1.0])
    # dbscan-min-score above the trio's confidence sum (2.0) leaves nothing
    strict = ClassParams.uniform(1, pre_cluster_threshold=0.1, eps=0.3, min_boxes=3, dbscan_min_score=2.5)
    assert len(cluster(_objs(0, 0, conf, boxes), 1, strict)) == 0


def test_hybrid_removes_dbscan_noise_then_runs_nms_and_none_keeps_all_with_topk():
    boxes = [[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]]
    conf = [0.5, 0.6, 0.7, 0.9]
    hybrid = ClassParams.uniform(1, pre_cluster_threshold=0.1, eps=0.3, min_boxes=2, nms_iou_threshold=0.5)
    out = cluster(_objs(0, 0, conf, boxes), 3, hybrid)
    np.testing.assert_allclose(out.confidence, [0.7])  # the lone 0.9 box is noise, NMS keeps the best of 3
    none = ClassParams.uniform(1, pre_cluster_threshold=0.55, topk=2)
    out = cluster(_objs(0, 0, conf, boxes), 4, none)
    np.testing.assert_allclose(out.confidence, [0.9, 0.7])


def test_pre_cluster_threshold_is_per_class_and_unknown_classes_are_dropped():
    p = ClassParams.from_class_attrs([type("A", (), {"pre_cluster_threshold": 0.5})(),
                                      type("A", (), {"threshold": 0.1})()])
    out = cluster(_objs(0, [0, 1, 2], [0.4, 0.4, 0.9], [[0, 0, 5, 5]] * 3), 4, p)
    assert out.class_id.tolist() == [1]
    assert p.nms_iou_threshold.tolist() == [0.3, 0.3] and p.topk.tolist() == [-1, -1]


def test_frame_filter_applies_size_limits_and_roi_offsets_or_clips_to_them():
    p = ClassParams.uniform(1, detected_min_w=10, detected_max_h=50, roi_top_offset=20, roi_bottom_offset=10)
    boxes = np.array([[0, 30, 20, 60],  # ok
                      [0, 30, 5, 60],  # too narrow
                      [0, 25, 20, 90],  # too tall (65 > 50)
                      [0, 10, 20, 40],  # top above roi-top-offset
                      [0, 60, 20, 95],  # bottom below 100 - 10
                      [-5, 30, 15, 60]])  # left clamped to 0, width kept
    keep, out = frame_filter(boxes, np.zeros(6, int), p, np.full(6, 100), np.full(6, 200))
    assert keep.tolist() == [True, False, False, False, False, True]
    np.testing.assert_allclose(out[5], [0, 30, 20, 60])
    keep, out = frame_filter(boxes, np.zeros(6, int), p, np.full(6, 100), np.full(6, 200), crop_to_roi=True)
    assert keep.tolist() == [True, False, False, True, True, True]
    # attach_metadata_detector: the top moves to roi-top keeping the height (30), then the bottom is cut
    np.testing.assert_allclose(out[3], [0, 20, 20, 50])
    np.testing.assert_allclose(out[4], [0, 60, 20, 90])
    # a box below the ROI's bottom keeps its top: DeepStream attaches it with a negative height
    keep, out = frame_filter(np.array([[0, 95, 20, 99]]), np.zeros(1, int), p, np.full(1, 100), np.full(1, 200),
                             crop_to_roi=True)
    assert keep.tolist() == [True] and out[0].tolist() == [0, 95, 20, 90]
    keep, _ = frame_filter(boxes, np.zeros(6, int), p, np.full(6, 100), np.full(6, 200), filter_out_class_ids=[0])
    assert not keep.any()
