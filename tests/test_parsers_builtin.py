"""Built-in parsers decode hand-made output tensors into the boxes/labels nvinfer would give."""

import dataclasses

import numpy as np
import pytest

from reference import nvdsinfer as ref
from runner.pipeline.cluster import ClassParams
from runner.pipeline.parsers import NetworkInfo, ParserError, resolve_bbox_parser
from runner.pipeline.parsers.classifier import ClassifierContext, parse_softmax, read_labels
from runner.pipeline.parsers.ctc import decode, model_characters
from runner.pipeline.parsers.detectnet_v2 import parse_custom_resnet, parse_detectnet_v2
from runner.pipeline.parsers.segmentation import class_map
from runner.pipeline.parsers.ssd import parse_ssd_nms, parse_tf_ssd
from runner.pipeline.parsers.yolo import parse_yolo_e, parse_yolov5_head, parse_yolov8_head


def test_detectnet_grid_cells_decode_relative_to_their_centres_per_class():
    net = NetworkInfo(64, 32)  # 4x2 grid → stride 16
    cov = np.zeros((2, 2, 2, 4), np.float32)
    bbox = np.zeros((2, 8, 2, 4), np.float32)
    cov[1, 1, 1, 2] = 0.8  # item 1, class 1, row 1, col 2: centre x (32.5)/35, y (16.5)/35
    bbox[1, 4:8, 1, 2] = [0.2, 0.1, 0.3, 0.2]  # x1 = 32.5 - 7, y1 = 16.5 - 3.5, x2 = 10.5 + 32.5...
    cov[0, 0, 0, 0] = 0.1  # below threshold 0.2
    objs = parse_detectnet_v2({"output_cov/Sigmoid": cov, "output_bbox/BiasAdd": bbox}, net,
                              ClassParams.uniform(2))
    assert objs.frame.tolist() == [1] and objs.class_id.tolist() == [1]
    np.testing.assert_allclose(objs.xyxy, [[25.5, 13.0, 43.0, 23.5]], atol=1e-4)
    res = parse_custom_resnet({"output_cov/Sigmoid": cov, "output_bbox/BiasAdd": bbox}, net,
                              ClassParams.uniform(2))
    np.testing.assert_allclose(res.xyxy, [[25.5, 13.0, 44.0, 24.5]], atol=1e-4)


def test_detectnet_boxes_are_clipped_to_the_network_and_missing_layers_are_explained():
    cov = np.ones((1, 1, 1, 1), np.float32)
    bbox = np.array([5.0, 5.0, 5.0, 5.0], np.float32).reshape(1, 4, 1, 1)
    objs = parse_detectnet_v2({"cov": cov, "bbox": bbox}, NetworkInfo(16, 16), ClassParams.uniform(1))
    np.testing.assert_allclose(objs.xyxy, [[0, 0, 15, 15]])
    with pytest.raises(ParserError, match="parse-bbox-func-name"):
        parse_detectnet_v2({"scores": cov}, NetworkInfo(16, 16), ClassParams.uniform(1))


def _detectnet_case(seed: int):
    """3 frames of a 3-channel coverage grid (7 x 5 cells, network 70 x 40: strides 10 and 8) read as 2
    classes: coverages on both sides of (and exactly at) each class's threshold, offsets that put boxes
    across every edge of the network, on its last pixel, inverted, and exactly on a cell's centre."""
    rng = np.random.default_rng(seed)
    cov = rng.choice(np.float32([0.1, 0.3, 0.5, 0.7, 0.95]), (3, 3, 5, 7))
    bbox = rng.uniform(-1.5, 2.5, (3, 12, 5, 7)).astype(np.float32)
    bbox[0, 0, 0, 0] = np.float32(0.5) / np.float32(35)  # x1 on the centre of cell (0, 0): 0 * -35
    bbox[1, 2, 4, 6] = np.float32(-0.2)  # x2 < x1: dropped by the default parser
    cov[2, 1, 2, 3] = np.float32(0.7)  # class 1, cell (row 2, col 3): x2 and y2 land on 70 and 40 exactly
    bbox[2, 6, 2, 3] = np.float32(2) - (np.float32(30) + np.float32(0.5)) / np.float32(35)  # → 69
    bbox[2, 7, 2, 3] = np.float32(40 / 35) - (np.float32(16) + np.float32(0.5)) / np.float32(35)  # → 39
    return cov, bbox, NetworkInfo(70, 40), np.float32([0.5, 0.3])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detectnet_batch_decode_equals_nvinfers_per_frame_parse_bounding_box(seed):
    cov, bbox, net, thresholds = _detectnet_case(seed)
    objs = parse_detectnet_v2({"output_cov": cov, "output_bbox": bbox}, net, _params(thresholds))
    expected = []  # (frame, class, confidence, left, top, width, height), nvinfer's order per frame
    for f in range(len(cov)):
        for o in ref.parse_bounding_box(cov[f], bbox[f], net.width, net.height, list(thresholds)):
            expected.append((f, o["classId"], o["detectionConfidence"], o["left"], o["top"], o["width"], o["height"]))
    x1, y1, x2, y2 = objs.xyxy.T
    got = list(zip(objs.frame.tolist(), objs.class_id.tolist(), objs.confidence, x1, y1, x2 - x1, y2 - y1))
    assert len(got) == len(expected) > 20
    assert _bits(got) == _bits(expected)  # bit for bit: a -0.0 left where nvinfer leaves one, too


@pytest.mark.parametrize("seed", [0, 1])
def test_custom_resnet_batch_decode_clips_to_the_network_and_adds_a_pixel(seed):
    # NvDsInferParseCustomResnet: every cell above its class's threshold, rect = CLIP(x, 0, W - 1) with
    # CLIP(a, lo, hi) = MAX(MIN(a, hi), lo) and MIN/MAX the usual ternaries (so -0.0 becomes 0.0),
    # right/bottom + 1, nothing dropped — written out cell by cell
    cov, bbox, net, thresholds = _detectnet_case(seed)
    objs = parse_custom_resnet({"output_cov": cov, "output_bbox": bbox}, net, _params(thresholds))
    norm, expected = np.float32(35), []
    for f, c, gy, gx in np.ndindex(3, 2, 5, 7):
        if cov[f, c, gy, gx] < thresholds[c]:
            continue
        cx = (np.float32(gx * 10) + np.float32(0.5)) / norm
        cy = (np.float32(gy * 8) + np.float32(0.5)) / norm
        o = bbox[f, 4 * c:4 * c + 4, gy, gx]
        box = [(o[0] - cx) * -norm, (o[1] - cy) * -norm, (o[2] + cx) * norm, (o[3] + cy) * norm]
        box = [_c_max(_c_min(v, np.float32(lim)), np.float32(0)) for v, lim in zip(box, (69, 39, 69, 39))]
        expected.append((f, c, cov[f, c, gy, gx], box[0], box[1], box[2] + 1, box[3] + 1))
    got = np.column_stack([objs.frame, objs.class_id, objs.confidence, objs.xyxy]).astype(np.float64)
    assert np.signbit(np.array(expected, np.float64)[:, 3:5]).sum() == 0  # (no -0.0 survives CLIP)
    assert _bits(got) == _bits(expected)


def _c_min(a, b):
    return a if a < b else b


def _c_max(a, b):
    return a if a > b else b


def _bits(rows) -> bytes:
    return np.asarray(rows, np.float64).tobytes()


def _params(thresholds):
    return dataclasses.replace(ClassParams.uniform(2), pre_cluster_threshold=thresholds)


def test_yolo_layouts_threshold_per_class_and_drop_sub_pixel_boxes():
    p = ClassParams.uniform(3, pre_cluster_threshold=0.5)
    boxes = np.array([[[10, 10, 30, 20], [0, 0, 0.5, 5], [5, 5, 9, 9]]], np.float32)
    scores = np.array([[[0.9], [0.9], [0.4]]], np.float32)
    classes = np.array([[[2], [0], [1]]], np.float32)
    o = parse_yolo_e({"boxes": boxes, "scores": scores, "classes": classes}, NetworkInfo(64, 64), p)
    assert o.class_id.tolist() == [2] and o.xyxy.tolist() == [[10, 10, 30, 20]]
    v5 = np.array([[[32, 32, 10, 10, 0.8, 0.1, 0.9, 0.0]]], np.float32)  # score 0.72, class 1
    o = parse_yolov5_head({"o": v5}, NetworkInfo(64, 64), p)
    assert o.class_id.tolist() == [1] and o.confidence[0] == pytest.approx(0.72)
    v8 = np.array([[[32], [32], [10], [10], [0.1], [0.2], [0.95]]], np.float32)  # (1, 4+3, 1)
    o = parse_yolov8_head({"o": v8}, NetworkInfo(64, 64), p)
    assert o.class_id.tolist() == [2] and o.xyxy.tolist() == [[27, 27, 37, 37]]


def test_ssd_parsers_respect_keep_count_and_tensorflow_box_order():
    p = ClassParams.uniform(3, pre_cluster_threshold=0.3)
    nms = np.array([[[[0, 1, 0.9, 0.1, 0.1, 0.2, 0.2]], [[0, 2, 0.9, 0.5, 0.5, 0.6, 0.6]]]], np.float32)
    o = parse_ssd_nms({"NMS": nms, "NMS_1": np.array([[1]], np.int32)}, NetworkInfo(100, 50), p)
    assert o.class_id.tolist() == [1] and o.xyxy.tolist() == [[10, 5, 21, 11]]
    tf = {"detection_boxes": np.array([[[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1]]], np.float32),
          "detection_scores": np.array([[0.8, 0.9]], np.float32),
          "detection_classes": np.array([[1, 1]], np.float32), "num_detections": np.array([[1]], np.float32)}
    o = parse_tf_ssd(tf, NetworkInfo(100, 100), p)
    np.testing.assert_allclose(o.xyxy, [[20, 10, 60, 50]])


def test_softmax_classifier_reads_multi_head_label_files(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("black;blue;red\nsedan;suv\n")
    ctx = ClassifierContext(threshold=0.51, labels=read_labels(labels))
    out = {"color": np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32),
           "type": np.array([[0.4, 0.6], [0.9, 0.1]], np.float32)}
    res = parse_softmax(out, ctx)
    assert list(zip(res.obj.tolist(), res.label.tolist())) == [(0, "red"), (0, "suv"), (1, "sedan")]


def test_segmentation_marks_pixels_below_threshold_as_minus_one_in_either_order():
    probs = np.array([[[0.1, 0.6], [0.7, 0.2]], [[0.8, 0.3], [0.2, 0.1]]], np.float32)[None]  # (1,2,2,2)
    np.testing.assert_array_equal(class_map(probs, 0.5), [[[1, 0], [0, -1]]])
    np.testing.assert_array_equal(class_map(probs.transpose(0, 2, 3, 1), 0.5, order=1), [[[1, 0], [0, -1]]])


def test_ctc_uses_the_models_own_character_list(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4])])
    m = helper.make_model(g)
    helper.set_model_props(m, {"character": "x\ny"})
    onnx.save(m, tmp_path / "rec.onnx")
    chars = model_characters(str(tmp_path / "rec.onnx"))
    assert chars == ("blank", "x", "y", " ")
    probs = np.eye(4, dtype=np.float32)[[2, 0, 2, 3, 1]][None]
    assert decode(probs, chars)[0] == ["yy x"]


def test_unknown_parser_names_are_explained():
    class Cfg:
        parse_bbox_func_name = "NvDsInferParseCustomFooBar"
        custom_lib_path = None
    with pytest.raises(ParserError, match="not a dsrun built-in parser"):
        resolve_bbox_parser(Cfg())
