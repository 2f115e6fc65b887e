"""cluster-mode 2 over the whole batch at once gives what nvinfer's per-frame, per-class NMS gives
(tests/reference/nvdsinfer.py: preClusteringThreshold, clusterAndFillDetectionOutputNMS)."""

import numpy as np
import pytest

from reference import nvdsinfer as ref
from runner.pipeline.batch import Objects
from runner.pipeline.cluster import ClassParams, cluster


def _reference(objs: Objects, n_cls: int, topk, post: float, iou: float = 0.4) -> np.ndarray:
    """nvinfer's output, frame by frame: fillDetectionOutput with cluster-mode 2 (``topk``: one for
    every class, or one per class)."""
    params = [{"preClusterThreshold": 0.2, "postClusterThreshold": post, "topK": int(k), "nmsIOUThreshold": iou}
              for k in np.broadcast_to(topk, n_cls)]
    rows = []
    for f in np.unique(objs.frame):
        mine = objs[objs.frame == f]
        candidates = [{"classId": int(c), "detectionConfidence": np.float32(s), "left": np.float32(b[0]),
                       "top": np.float32(b[1]), "width": np.float32(b[2] - b[0]), "height": np.float32(b[3] - b[1])}
                      for c, s, b in zip(mine.class_id, mine.confidence, mine.xyxy)]
        for o in ref.fill_detection_output(candidates, ref.CLUSTER_NMS, params):
            rows.append((f, o["classId"], o["left"], o["top"], o["left"] + o["width"], o["top"] + o["height"],
                         o["detectionConfidence"]))
    return np.array(rows, np.float64).reshape(-1, 7)


def _nms_case(seed: int, topk: int, post: float):
    """400 candidates with clustered centres (many overlaps) over 6 frames and 3 classes: the objects,
    their ClassParams and what nvinfer's NMS keeps (the reference port)."""
    rng = np.random.default_rng(seed)
    n = 400
    centre = rng.uniform(0, 300, (n, 2)).round(-1)
    size = rng.uniform(10, 60, (n, 2))
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], 1).astype(np.float32)
    objs = Objects.from_columns(frame=rng.integers(0, 6, n), class_id=rng.integers(0, 3, n),
                                confidence=rng.uniform(0, 1, n).round(3), xyxy=xyxy)
    params = ClassParams.uniform(3, pre_cluster_threshold=0.2, nms_iou_threshold=0.4,
                                 topk=topk, post_cluster_threshold=post)
    return objs, params, _reference(objs, 3, topk, post)


def _table(got: Objects) -> np.ndarray:
    return np.column_stack([got.frame, got.class_id, got.xyxy, got.confidence]).astype(np.float64)


@pytest.mark.parametrize("seed, topk, post", [(0, -1, 0.0), (1, 3, 0.0), (2, 2, 0.5), (3, 5, 0.3)])
def test_batched_nms_equals_nvinfers_nms_per_frame_and_class(seed, topk, post):
    objs, params, expected = _nms_case(seed, topk, post)
    assert len(expected) > 20
    np.testing.assert_allclose(_table(cluster(objs, 2, params)), expected, rtol=1e-6, atol=1e-4)


def _crowded_case(seed: int):
    """Per frame and class, 60 boxes on one object with the highest confidences (ties among them), then
    40 scattered ones: a group's best-ranked boxes mostly suppress each other, so its first topk kept
    boxes lie far down its ranking."""
    rng = np.random.default_rng(seed)
    frame, cls, conf, xyxy = [], [], [], []
    for f in range(4):
        for c in range(3):
            centre = np.concatenate([np.tile(rng.uniform(100, 300, 2), (60, 1)) + rng.uniform(-2, 2, (60, 2)),
                                     rng.uniform(0, 600, (40, 2))])
            size = np.concatenate([rng.uniform(48, 52, (60, 2)), rng.uniform(20, 60, (40, 2))])
            xyxy.append(np.concatenate([centre - size / 2, centre + size / 2], 1))
            conf.append(np.concatenate([rng.uniform(0.8, 0.99, 60).round(2), rng.uniform(0.3, 0.79, 40).round(2)]))
            frame.append(np.full(100, f))
            cls.append(np.full(100, c))
    order = rng.permutation(1200)  # the parser's order is not the ranking
    return Objects.from_columns(frame=np.concatenate(frame)[order], class_id=np.concatenate(cls)[order],
                                confidence=np.concatenate(conf)[order],
                                xyxy=np.concatenate(xyxy).astype(np.float32)[order])


@pytest.mark.parametrize("seed", [0, 1])
def test_nms_with_topk_extends_a_groups_prefix_until_it_keeps_topk_boxes(seed, monkeypatch):
    """With topk, each group is suppressed within its best-ranked boxes first and again over a longer
    prefix while it keeps fewer than topk: the same boxes as nvinfer's NMS over the whole group (the
    reference port), on the host pass and the device pass, with topk per class (none for class 1)."""
    import dataclasses

    import runner.pipeline.nms as nms

    objs = _crowded_case(seed)
    topk = np.array([6, -1, 2])
    expected = _reference(objs, 3, topk, 0.0, iou=0.45)
    params = dataclasses.replace(ClassParams.uniform(3, pre_cluster_threshold=0.2, nms_iou_threshold=0.45),
                                 topk=topk)
    passes = []
    real = nms.grouped_nms
    monkeypatch.setattr(nms, "grouped_nms", lambda *a: passes.append(len(a[1])) or real(*a))
    paths = [("host", None)]
    for device in _devices():
        import torch

        from runner.pipeline.nms_device import grouped_nms_device
        paths.append((device, lambda *a, d=device: grouped_nms_device(torch, torch.device(d), *a)))
    for name, device_pass in paths:
        monkeypatch.setattr(nms, "_DEVICE_NMS", device_pass)
        monkeypatch.setattr(nms, "DEVICE_MIN_PAIRS", 0)
        passes.clear()
        got = cluster(objs, 2, params)
        np.testing.assert_allclose(_table(got), expected, rtol=1e-6, atol=1e-4, err_msg=name)
        assert np.array_equal(got.confidence, expected[:, 6].astype(np.float32)), name
        # the first pass: prefixes of 4 x 6 (class 0) and 16 boxes (class 2), 4 whole groups (class 1);
        # then longer prefixes for the groups that kept too few
        assert passes[0] == 4 * 24 + 4 * 16 + 4 * 100 and len(passes) >= 2 and sum(passes) < 4 * 1200, name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_nms_keeps_what_greedy_nms_keeps_group_by_group(seed, monkeypatch):
    """Every group at once (pairs of one group only), ties in confidence kept in row order, a group
    too large for the pair list taking nms_keep on its own, per-class thresholds."""
    import runner.pipeline.nms as nms

    monkeypatch.setattr(nms, "PAIRWISE_GROUP_LIMIT", 150)  # group 0 below is larger: the fallback path
    rng = np.random.default_rng(seed)
    n = 2000
    centre = rng.uniform(0, 200, (n, 2)).round(-1)
    size = rng.uniform(10, 50, (n, 2))
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], 1)
    conf = rng.uniform(0, 1, n).round(2)  # many ties
    group = np.where(rng.random(n) < 0.15, 0, rng.integers(1, 60, n))
    threshold = np.where(group % 2 == 0, 0.3, 0.6)
    keep = nms.grouped_nms(xyxy, conf, group, threshold)
    expected = np.zeros(n, bool)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        expected[rows[nms.nms_keep(xyxy[rows], conf[rows], float(threshold[rows[0]]))]] = True
    assert (group == 0).sum() > 150 and 0 < expected.sum() < n
    np.testing.assert_array_equal(keep, expected)


def _devices():
    torch = pytest.importorskip("torch")
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _device_case(seed: int, n: int = 2000):
    """Boxes with clustered centres in ~60 groups, group 0 much larger, five identical boxes (IoU exactly
    1); confidences with many ties; per-class thresholds; and what nms_keep keeps group by group."""
    import runner.pipeline.nms as nms

    rng = np.random.default_rng(seed)
    centre = rng.uniform(0, 200, (n, 2)).round(-1)
    size = rng.uniform(10, 50, (n, 2))
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], 1)
    xyxy[:5] = xyxy[5]
    conf = rng.uniform(0, 1, n).round(2)
    group = np.where(rng.random(n) < 0.15, 0, rng.integers(1, 60, n))
    threshold = np.where(group % 2 == 0, 0.3, 0.6)
    expected = np.zeros(n, bool)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        expected[rows[nms.nms_keep(xyxy[rows], conf[rows], float(threshold[rows[0]]))]] = True
    return xyxy, conf, group, threshold, expected


@pytest.mark.parametrize("seed, block", [(0, 32), (1, 32), (2, 3)])
def test_device_nms_keeps_what_greedy_nms_keeps_group_by_group(seed, block, monkeypatch):
    """runner.pipeline.nms_device (the GPU path; run here on torch's CPU device, and on CUDA where
    there is one): every group at once, block pairs in several device passes within the cell budget,
    groups of many blocks, identical boxes, ties in confidence in row order, per-class thresholds —
    equal to nms_keep."""
    import torch

    import runner.pipeline.nms_device as nd

    monkeypatch.setattr(nd, "BLOCK", block)
    monkeypatch.setattr(nd, "CELL_BUDGET", 20_000)  # 19 block pairs of 32 per device pass
    xyxy, conf, group, threshold, expected = _device_case(seed)
    assert (group == 0).sum() ** 2 > nd.CELL_BUDGET and 0 < expected.sum() < len(conf)
    for device in _devices():
        keep = nd.grouped_nms_device(torch, torch.device(device), xyxy, conf, group, threshold)
        np.testing.assert_array_equal(keep, expected, err_msg=device)
    empty = nd.grouped_nms_device(torch, torch.device("cpu"), np.zeros((0, 4)), np.zeros(0), np.zeros(0, int),
                                  np.zeros(0))
    assert empty.shape == (0,)
    alone = nd.grouped_nms_device(torch, torch.device("cpu"), xyxy[:3], conf[:3], np.arange(3), threshold[:3])
    assert alone.tolist() == [True, True, True]  # no group with a pair: nothing reaches the device


@pytest.mark.parametrize("seed, topk, post", [(0, -1, 0.0), (2, 2, 0.5)])
def test_cluster_with_the_device_nms_equals_nvinfers_nms(seed, topk, post, monkeypatch):
    """cluster-mode 2 as a GPU machine runs it (the device NMS path of nms.grouped_nms), against
    the reference port of clusterAndFillDetectionOutputNMS."""
    import torch

    import runner.pipeline.nms as nms
    from runner.pipeline.nms_device import grouped_nms_device

    for device in _devices():
        monkeypatch.setattr(nms, "_DEVICE_NMS", lambda *a, d=device: grouped_nms_device(torch, torch.device(d), *a))
        objs, params, expected = _nms_case(seed, topk, post)
        np.testing.assert_allclose(_table(cluster(objs, 2, params)), expected, rtol=1e-6, atol=1e-4, err_msg=device)


def test_device_nms_downloads_every_overlap_when_the_first_guess_has_no_room(monkeypatch):
    """The overlapping pairs come back in one download sized EDGES_PER_BOX per candidate; a batch with
    more overlaps than that takes nonzero and raises the guess for the next batches."""
    import torch

    import runner.pipeline.nms_device as nd

    monkeypatch.setattr(nd, "EDGES_PER_BOX", 0)  # room for 64 pairs: far too few
    xyxy, conf, group, threshold, expected = _device_case(3)
    for device in _devices():
        keep = nd.grouped_nms_device(torch, torch.device(device), xyxy, conf, group, threshold)
        np.testing.assert_array_equal(keep, expected, err_msg=device)
    assert nd.EDGES_PER_BOX > 0


def test_device_nms_with_empty_boxes_and_a_negative_threshold_equals_nms_keep():
    """Zero-area boxes (the DetectNet_v2 parser keeps zero-width ones) make unions of 0, which the host
    counts as IoU 0: no overlap at threshold >= 0, an overlap below 0 — on the device as on the host."""
    import torch

    import runner.pipeline.nms as nms
    import runner.pipeline.nms_device as nd

    rng = np.random.default_rng(4)
    n = 300
    x1 = rng.uniform(0, 50, n).round()
    y1 = rng.uniform(0, 50, n).round()
    w = np.where(rng.random(n) < 0.3, 0, rng.uniform(1, 20, n).round())
    xyxy = np.column_stack([x1, y1, x1 + w, y1 + np.where(w == 0, 0, 10)])
    conf = rng.uniform(0, 1, n).round(2)
    group = rng.integers(0, 4, n)
    threshold = np.where(group == 3, -0.1, 0.3)
    expected = np.zeros(n, bool)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        expected[rows[nms.nms_keep(xyxy[rows], conf[rows], float(threshold[rows[0]]))]] = True
    assert expected[group == 3].sum() == 1  # every pair "overlaps" below a negative threshold
    np.testing.assert_array_equal(nms.grouped_nms(xyxy, conf, group, threshold), expected)
    for device in _devices():
        keep = nd.grouped_nms_device(torch, torch.device(device), xyxy, conf, group, threshold)
        np.testing.assert_array_equal(keep, expected, err_msg=device)


def _torch_calls(run) -> tuple[int, int]:
    """(torch calls, calls that wait for a CUDA device: downloads, item, equal, nonzero, blocking uploads)
    of ``run()``, counted by torch's function mode."""
    import torch
    from torch.overrides import TorchFunctionMode

    calls = [0, 0]

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            calls[0] += 1
            blocking_upload = name == "to" and not kwargs.get("non_blocking", False) and any(
                isinstance(a, (torch.device, str)) for a in (*args[1:], kwargs.get("device")))
            calls[1] += name in {"cpu", "item", "tolist", "equal", "nonzero"} or blocking_upload
            return func(*args, **kwargs)

    with Count():
        run()
    return calls[0], calls[1]


def test_device_nms_costs_the_same_few_torch_calls_and_one_download_whatever_the_batch():
    """Python work per batch must not grow with frames or candidates (issue 17): a batch of 2,000
    candidates in ~60 groups and one of 400 in 6 make the same torch calls, with one call that waits
    for the device (the download of the overlapping pairs)."""
    import torch

    import runner.pipeline.nms_device as nd

    big = _device_case(5)
    small = tuple(a[:400] for a in big[:3]) + (big[3][:400],)
    small = (small[0], small[1], small[2] % 6, small[3])
    counts = {len(case[1]): _torch_calls(lambda: nd.grouped_nms_device(torch, torch.device("cpu"), *case[:4]))
              for case in (big, small)}
    (calls_big, waits_big), (calls_small, waits_small) = counts[2000], counts[400]
    assert calls_big == calls_small <= 30 and waits_big == waits_small == 1, counts


def test_grouped_nms_takes_the_device_from_device_min_pairs_on(monkeypatch):
    """Below DEVICE_MIN_PAIRS pairs in the batch the host pass is cheaper than the device's round trip;
    from there on the device pass runs — the same keep mask either way."""
    import torch

    import runner.pipeline.nms as nms
    from runner.pipeline.nms_device import grouped_nms_device

    used = []

    def device_pass(*args):
        used.append(len(args[1]))
        return grouped_nms_device(torch, torch.device("cpu"), *args)

    monkeypatch.setattr(nms, "_DEVICE_NMS", device_pass)
    xyxy, conf, group, threshold, expected = _device_case(6)
    pairs = sum(k * (k - 1) // 2 for k in np.unique(group, return_counts=True)[1])
    monkeypatch.setattr(nms, "DEVICE_MIN_PAIRS", pairs + 1)
    np.testing.assert_array_equal(nms.grouped_nms(xyxy, conf, group, threshold), expected)
    assert used == []
    monkeypatch.setattr(nms, "DEVICE_MIN_PAIRS", pairs)
    np.testing.assert_array_equal(nms.grouped_nms(xyxy, conf, group, threshold), expected)
    assert used == [len(conf)]


@pytest.fixture(scope="module")
def detector_candidates(assets):
    """Real candidates: 8 frames of the bikes clip through the assets' DetectNet_v2-shaped model (ONNX
    Runtime) and nvinfer's DetectNet_v2 parser at pre-cluster-threshold 0.2."""
    import av
    import cv2
    import onnxruntime as ort

    from runner.pipeline.parsers import NetworkInfo
    from runner.pipeline.parsers.detectnet_v2 import parse_detectnet_v2

    with av.open(str(assets.videos["bikes"])) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(8), c.decode(video=0))]
    x = np.stack([cv2.resize(f, (480, 272), interpolation=cv2.INTER_LINEAR) for f in frames]).astype(np.float32)
    session = ort.InferenceSession(str(assets.models["detectnet_small"]), providers=["CPUExecutionProvider"])
    cov, bbox = session.run(None, {session.get_inputs()[0].name: x.transpose(0, 3, 1, 2) / 255})
    return parse_detectnet_v2({"output_cov": cov, "output_bbox": bbox}, NetworkInfo(480, 272),
                              ClassParams.uniform(4, pre_cluster_threshold=0.2))


@pytest.mark.parametrize("topk, post", [(-1, 0.0), (2, 0.3)])
def test_cluster_with_the_device_nms_on_a_real_detectors_candidates_equals_nvinfers_nms(
        detector_candidates, topk, post, monkeypatch):
    """A real model's candidates on real frames (a grid of cells seeing the same things) clustered as a
    GPU machine clusters them — overlaps on the device, fixed point on the host — against the port of
    clusterAndFillDetectionOutputNMS, frame by frame."""
    import torch

    import runner.pipeline.nms as nms
    from runner.pipeline.nms_device import grouped_nms_device

    objs = detector_candidates
    expected = _reference(objs, 4, topk, post)
    assert len(objs) > 200 and len(expected) < len(objs)  # NMS suppresses some of them
    params = ClassParams.uniform(4, pre_cluster_threshold=0.2, nms_iou_threshold=0.4, topk=topk,
                                 post_cluster_threshold=post)
    monkeypatch.setattr(nms, "DEVICE_MIN_PAIRS", 0)
    for device in _devices():
        monkeypatch.setattr(nms, "_DEVICE_NMS", lambda *a, d=device: grouped_nms_device(torch, torch.device(d), *a))
        np.testing.assert_allclose(_table(cluster(objs, 2, params)), expected, rtol=1e-6, atol=1e-4, err_msg=device)


def test_group_runs_ranks_by_group_then_descending_confidence_ties_in_row_order():
    """Both NMS passes suppress in this ranking; numpy's lexsort is the reference (small keys are
    sorted by radix, large or negative ones not: both kinds)."""
    from runner.pipeline.nms_device import group_runs

    rng = np.random.default_rng(7)
    for high, low in ((50, 0), (70_000, 0), (50, -5)):
        conf = rng.uniform(0, 1, 3000).round(2)  # many ties
        conf[:3] = np.nan
        group = rng.integers(low, high, 3000)
        order, starts, sizes = group_runs(conf, group)
        np.testing.assert_array_equal(order, np.lexsort((-conf, group)))
        assert sizes.sum() == 3000 and (np.diff(group[order][starts]) > 0).all()


def test_a_failing_device_pass_hands_this_and_later_batches_to_the_host_pass(monkeypatch, caplog):
    """A torch build without one of the device pass's kernels (or a GPU out of memory) does not stop
    the run: one warning, the host pass from then on, the same boxes."""
    import logging

    import runner.pipeline.nms as nms

    calls = []

    def broken(*args):
        calls.append(len(args[1]))
        raise NotImplementedError("Could not run 'aten::nonzero_static' with arguments from the 'CUDA' backend.\nmore")

    monkeypatch.setattr(nms, "_DEVICE_NMS", nms._or_the_host_pass(broken))
    monkeypatch.setattr(nms, "DEVICE_MIN_PAIRS", 0)
    xyxy, conf, group, threshold, expected = _device_case(8)
    with caplog.at_level(logging.WARNING, logger="dsrun"):
        np.testing.assert_array_equal(nms.grouped_nms(xyxy, conf, group, threshold), expected)
        np.testing.assert_array_equal(nms.grouped_nms(xyxy, conf, group, threshold), expected)
    assert calls == [len(conf)] and nms._DEVICE_NMS is None
    assert [r.getMessage() for r in caplog.records] == [
        "NMS on the GPU failed (NotImplementedError: Could not run 'aten::nonzero_static' with arguments from "
        "the 'CUDA' backend.) — clustering on the CPU from now on, with the same results (DSRUN_DEVICE_NMS=0 "
        "starts there)"]
