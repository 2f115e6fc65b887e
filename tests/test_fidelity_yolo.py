"""YOLO parsers against the port of their C++ (tests/reference/yolo.py) on the same tensors.

The tensors are hand-built so that every branch shows: boxes across the network's edges, boxes under a
pixel, scores on both sides of per-class thresholds.
"""

import dataclasses

import numpy as np
import pytest

from reference import nvdsinfer as ref_nvds
from reference import yolo as ref
from runner.pipeline.cluster import ClassParams
from runner.pipeline.parsers import NetworkInfo, resolve_bbox_parser
from runner.pipeline.parsers.yolo import parse_yolo, parse_yolo_cuda, parse_yolo_e

NET = NetworkInfo(96, 64)
THRESHOLDS = [0.3, 0.5, 0.2, 0.6]


def _params(thresholds=THRESHOLDS):
    return dataclasses.replace(ClassParams.uniform(len(thresholds)), pre_cluster_threshold=np.array(thresholds))


def _corners(rng, n, b):
    x1 = rng.uniform(-20, NET.width + 10, (n, b))
    y1 = rng.uniform(-20, NET.height + 10, (n, b))
    w = rng.choice([0.2, 0.9, 1.0, 5.0, 40.0, -3.0], (n, b))
    h = rng.choice([0.5, 1.0, 7.0, 30.0, -2.0], (n, b))
    return x1, y1, x1 + w, y1 + h


def _scores_classes(rng, n, b, n_cls=4):
    return rng.uniform(0, 1, (n, b)).round(2), rng.integers(0, n_cls, (n, b)).astype(np.float32)


def _table(objs):
    return np.column_stack([objs.frame, objs.class_id, objs.confidence, objs.xyxy]).astype(np.float64)


def _ref_table(per_item):
    rows = [(i, o["classId"], o["detectionConfidence"], o["left"], o["top"], o["left"] + o["width"],
             o["top"] + o["height"]) for i, objs in enumerate(per_item) for o in objs]
    return np.array(rows, np.float64).reshape(-1, 7)


def _assert_same(got, expected):
    assert len(expected) > 10
    assert got.shape == expected.shape, f"dsrun {len(got)} boxes, DeepStream {len(expected)}"
    np.testing.assert_array_equal(got[:, :2], expected[:, :2])
    np.testing.assert_allclose(got[:, 2:], expected[:, 2:], rtol=1e-6, atol=1e-4)


def test_nvdsinferparseyolo_reads_one_output_as_x1_y1_x2_y2_score_class():
    rng = np.random.default_rng(1)
    x1, y1, x2, y2 = _corners(rng, 3, 60)
    score, cls = _scores_classes(rng, 3, 60)
    out = np.stack([x1, y1, x2, y2, score, cls], -1).astype(np.float32)
    got = _table(parse_yolo({"output": out}, NET, _params()))
    expected = _ref_table([ref.decode_tensor_yolo(out[i], NET.width, NET.height, THRESHOLDS) for i in range(3)])
    _assert_same(got, expected)


@pytest.mark.parametrize("name, corners", [("NvDsInferParseYolo", False), ("NvDsInferParseYoloE", True)])
def test_2023_2024_exports_with_three_outputs_keep_their_box_layout(name, corners):
    rng = np.random.default_rng(2)
    x1, y1, x2, y2 = _corners(rng, 2, 80)
    boxes = np.stack([x1, y1, x2, y2] if corners else [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
    boxes = boxes.astype(np.float32)
    score, cls = _scores_classes(rng, 2, 80)
    outputs = {"boxes": boxes, "scores": score[..., None].astype(np.float32), "classes": cls[..., None]}
    parser = resolve_bbox_parser(type("Cfg", (), {"parse_bbox_func_name": name, "custom_lib_path": None})())
    assert parser is (parse_yolo_e if corners else parse_yolo)
    got = _table(parser(outputs, NET, _params()))
    expected = _ref_table([ref.decode_tensor_yolo_2023(boxes[i], score[i], cls[i], NET.width, NET.height,
                                                       THRESHOLDS, corners) for i in range(2)])
    _assert_same(got, expected)


def test_nvdsinferparseyolocuda_keeps_boxes_under_a_pixel():
    rng = np.random.default_rng(3)
    x1, y1, x2, y2 = _corners(rng, 2, 70)
    score, cls = _scores_classes(rng, 2, 70)
    out = np.stack([x1, y1, x2, y2, score, cls], -1).astype(np.float32)
    got = _table(parse_yolo_cuda({"output": out}, NET, _params()))
    # nvinfer's preClusteringThreshold drops the rows the kernel set to confidence 0
    expected = _ref_table([ref_nvds.pre_clustering_threshold(
        ref.decode_tensor_yolo_cuda(out[i], NET.width, NET.height, THRESHOLDS), THRESHOLDS) for i in range(2)])
    assert ((expected[:, 5] - expected[:, 3]) < 1).any()
    _assert_same(got, expected)
