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


# -- NVIDIA's tools/yolo_deepstream parsers and the TAO post-processor ---------------------------------

THRESH80 = [0.25 + 0.005 * (c % 7) for c in range(80)]


def _resolve(name):
    return resolve_bbox_parser(type("Cfg", (), {"parse_bbox_func_name": name, "custom_lib_path": "lib.so"})())


def _rows_with_scores(rng, n, rows, n_scores, objectness):
    x1, y1, x2, y2 = _corners(rng, n, rows)
    cols = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    if objectness:
        cols.append(rng.uniform(0, 1, (n, rows)))
    scores = rng.uniform(-0.2, 1, (n, rows, n_scores)) ** 3  # some rows with no positive score
    return np.concatenate([np.stack(cols, -1), scores], -1).astype(np.float32)


def _after_nvinfer(objs_per_item, thresholds):
    """Reference: the parser's objects after nvinfer's preClusteringThreshold and cluster-mode 4."""
    params = [{"topK": -1}] * len(thresholds)
    return [ref_nvds.fill_unclustered_output(ref_nvds.pre_clustering_threshold(objs, thresholds), params)
            for objs in objs_per_item]


def _dsrun_after_nvinfer(objs, params):
    """dsrun: the parser's objects through the GIE's threshold and cluster-mode 4."""
    from runner.pipeline.cluster import cluster
    return _table(cluster(objs, 4, params))


@pytest.mark.parametrize("name", ["NvDsInferParseCustomYoloV7", "NvDsInferParseCustomYoloV8"])
def test_tools_yolo_deepstream_v7_v8_parsers(name):
    rng = np.random.default_rng(21)
    v7 = name.endswith("V7")
    out = _rows_with_scores(rng, 2, 300, 80, objectness=v7)
    params = _params(THRESH80)
    got = _dsrun_after_nvinfer(_resolve(name)({"output": out}, NET, params), params)
    fn = ref.nvds_infer_parse_yolov7 if v7 else ref.nvds_infer_parse_yolov8
    expected = _after_nvinfer([fn(out[i], NET.width, NET.height) for i in range(2)], THRESH80)
    _assert_same(got, _ref_table(expected))


def test_nvdsinferparseyolov11_reads_the_untransposed_head():
    rng = np.random.default_rng(22)
    out = _rows_with_scores(rng, 2, 250, 6, objectness=False).transpose(0, 2, 1).copy()  # (n, 4 + 6, anchors)
    thresholds = [0.1, 0.3, 0.2, 0.4, 0.15, 0.5]
    got = _table(_resolve("NvDsInferParseYoloV11")({"output0": out}, NET, _params(thresholds)))
    expected = _ref_table([ref.decode_yolov11_tensor(out[i], NET.width, NET.height, thresholds) for i in range(2)])
    _assert_same(got, expected)


@pytest.mark.parametrize("name, version, size", [("NvDsInferParseCustomYoloV7_cuda", True, 25200),
                                                 ("NvDsInferParseCustomYoloV8_cuda", False, 8400),
                                                 ("NvDsInferParseCustomYoloV11_cuda", False, 9261)])
def test_tools_yolo_deepstream_cuda_parsers(name, version, size):
    rng = np.random.default_rng(23)
    rows = 300
    out = _rows_with_scores(rng, 2, rows, 80, objectness=version)
    got = _dsrun_after_nvinfer(_resolve(name)({"output": out}, NET, _params(THRESH80)), _params(THRESH80))
    expected = _after_nvinfer([ref.decode_yolo_tensor_cuda(out[i], NET.width, NET.height, THRESH80, version, size)
                               for i in range(2)], THRESH80)
    _assert_same(got, _ref_table(expected))


def test_nvdsinferparsecustomyolov4_reads_batched_nms_outputs_by_name():
    rng = np.random.default_rng(24)
    n, k = 3, 40
    boxes = np.sort(rng.uniform(-0.1, 1.1, (n, k, 2, 2)), axis=2).reshape(n, k, 4)  # x1, y1, x2, y2
    outputs = {"num_detections": np.array([[40], [17], [0]], np.int32),
               "nmsed_boxes": boxes.astype(np.float32),
               "nmsed_scores": rng.uniform(0, 1, (n, k)).astype(np.float32),
               "nmsed_classes": rng.integers(0, 6, (n, k)).astype(np.float32)}  # 4 and 5 not configured
    got = _table(_resolve("NvDsInferParseCustomYoloV4")(outputs, NET, _params()))
    expected = _ref_table([ref.decode_yolov4_tensor(int(outputs["num_detections"][i, 0]), outputs["nmsed_boxes"][i],
                                                    outputs["nmsed_scores"][i], outputs["nmsed_classes"][i],
                                                    NET.width, NET.height, THRESHOLDS) for i in range(n)])
    _assert_same(got, expected)


def test_nvdsinferparsecustomddetrtao_keeps_one_box_per_confidence_the_200_best_without_background():
    rng = np.random.default_rng(25)
    n, q, c = 2, 300, 4
    logits = rng.normal(0, 2, (n, q, c)).astype(np.float32)
    logits[:, 10] = logits[:, 3]  # equal confidences: the later query replaces the earlier one
    boxes = rng.uniform(-0.1, 1.1, (n, q, 4)).astype(np.float32)
    thresholds = [0.3, 0.2, 0.25, 0.35]
    got = _table(_resolve("NvDsInferParseCustomDDETRTAO")({"pred_boxes": boxes, "pred_logits": logits}, NET,
                                                           _params(thresholds)))
    expected = _ref_table([ref.nvds_infer_parse_custom_ddetr_tao(boxes[i], logits[i], NET.width, NET.height,
                                                                  thresholds) for i in range(n)])
    assert len(expected) < n * 200  # the top-200 cut and background removal both bite
    _assert_same(got, expected)


def test_nvdsinferparsecustomsegformertao_returns_the_int64_class_map():
    from runner.pipeline.parsers import resolve_segmentation_parser
    rng = np.random.default_rng(26)
    out = rng.integers(0, 19, (2, 1, NET.height, NET.width)).astype(np.int64)
    parser = resolve_segmentation_parser(type("Cfg", (), {"parse_segmentation_func_name":
                                                          "NvDsInferParseCustomSegformerTAO"})())
    got = parser({"output": out}, NET)
    for i in range(2):
        np.testing.assert_array_equal(got[i], ref.nvds_infer_parse_custom_segformer_tao(out[i], NET.width, NET.height))


# -- a real YOLO on real video ---------------------------------------------------------------------------

def test_real_yolov4_tiny_on_street_video_gives_what_deepstream_yolo_and_nvinfer_give(tmp_path, assets):
    """YOLOv4-tiny (Darknet cfg + weights, converted to DeepStream-Yolo's (n, B, 6) output) on real street
    frames through a primary GIE with NvDsInferParseYolo and NMS; the raw outputs it saw (output-tensor-meta)
    through the port of decodeTensorYolo, fillDetectionOutput and attach_metadata_detector."""
    import av

    from infer_models import yolov4_tiny_stage
    from reference import gstnvinfer as ref_gst
    from runner.pipeline.batch import Batch

    stage = yolov4_tiny_stage(assets, tmp_path, extra="output-tensor-meta=1\n")
    with av.open(str(assets.videos["street"])) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(8), c.decode(video=0))])
    n, fh, fw = frames.shape[:3]
    batch = stage.process(Batch(frames=frames, source_id=np.zeros(n, np.int32), frame_num=np.arange(n),
                                pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                                source_size=np.tile([fw, fh], (n, 1)).astype(np.int32)))
    out = next(iter(batch.tensors[1].values()))
    params = [{"preClusterThreshold": 0.25, "postClusterThreshold": 0.0, "topK": 300, "nmsIOUThreshold": 0.45}] * 80
    filt = [{"detectionMinWidth": 0, "detectionMinHeight": 0, "detectionMaxWidth": 0, "detectionMaxHeight": 0,
             "roiTopOffset": 0, "roiBottomOffset": 0}] * 80
    net_w, net_h = stage.net.width, stage.net.height
    rows = []
    for i in range(n):
        objs = ref.decode_tensor_yolo(out[i], net_w, net_h, [0.25] * 80)
        clustered = ref_nvds.fill_detection_output(objs, 2, params)
        attached = ref_gst.attach_metadata_detector(
            [{"classIndex": o["classId"], "confidence": o["detectionConfidence"], "left": o["left"],
              "top": o["top"], "width": o["width"], "height": o["height"]} for o in clustered],
            fw, fh, filt, False, scale_x=net_w / fw, scale_y=net_h / fh)
        rows += [(i, a["classIndex"], a["confidence"], a["left"], a["top"], a["left"] + a["width"],
                  a["top"] + a["height"]) for a in attached]
    expected = np.array(rows, np.float64)
    got = _table(batch.objects)
    print(f"\nYOLOv4-tiny on {n} street frames: {len(got)} objects, DeepStream {len(expected)}")
    assert len(expected) >= 2 * n  # people and cars on every frame
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got[:, :2], expected[:, :2])
    np.testing.assert_allclose(got[:, 2], expected[:, 2], rtol=1e-6)
    np.testing.assert_allclose(got[:, 3:], expected[:, 3:], atol=2e-3)
