"""The YOLO parsers NVIDIA ships with DeepStream 9.1's ``tools/yolo_deepstream`` sample
(``deepstream_yolo/nvdsinfer_custom_impl_Yolo/nvdsparsebbox_Yolo.cpp`` and ``nvdsparsebbox_Yolo_cuda.cu``),
vectorised over the batch. Each reads the first output layer (YoloV4: the layers by name):

* ``NvDsInferParseCustomYoloV4`` — TensorRT BatchedNMS outputs ``num_detections``, ``nmsed_boxes``
  (x1, y1, x2, y2 in 0..1), ``nmsed_scores``, ``nmsed_classes``: the first ``num_detections`` boxes
  whose class is configured and whose score is *above* its pre-cluster-threshold.
* ``NvDsInferParseCustomYoloV7`` — rows ``cx, cy, w, h, objectness, 80 class scores``; the confidence is
  the objectness alone and the class the best of the 80 scores (none above 0: class 0).
* ``NvDsInferParseCustomYoloV8`` — rows ``cx, cy, w, h, 80 class scores`` (the model transposed by
  ``append_transpose_yolov8_v9.py``); the confidence is the best class score.
* ``NvDsInferParseYoloV11`` — the untransposed (4 + C, anchors) head; best of C scores, which must
  reach the class's pre-cluster-threshold.
* ``NvDsInferParseCustomYoloV7_cuda`` / ``V8_cuda`` / ``V11_cuda`` — the GPU kernel on the first
  25200 / 8400 / 9261 rows of the transposed layout: a row is kept when its score (objectness x best
  class score for V7, best class score otherwise) reaches the *smallest* pre-cluster-threshold of all
  classes; no 1-pixel minimum size; width/height clamped before the corners are. (Rows below that
  threshold get confidence 0 in the C and keep stale box values; nvinfer drops them unless a
  pre-cluster-threshold is 0 — dsrun drops them always.)

Boxes are clamped to the network input and (except the ``_cuda`` ones) must be at least 1 pixel wide
and high. Where the C reads 80 class scores from a row with fewer, it reads the next row's values;
dsrun reads the row's own scores (``NUM_CLASSES_YOLO`` is 80 in the C).
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.parsers import NetworkInfo, ParserError
from runner.pipeline.parsers.yolo import class_threshold, clamp_corners

NUM_CLASSES_YOLO = 80  # nvdsparsebbox_Yolo.cpp
CUDA_LIST_SIZE = {"v7": 25200, "v8": 8400, "v11": 9261}  # OBJECTLISTSIZEV7 / V8 / V11


def _first(outputs: dict, name: str) -> np.ndarray:
    if not outputs:
        raise ParserError(f"{name}: the model has no output layer")
    arr = np.asarray(next(iter(outputs.values())), np.float32)
    return arr.reshape(arr.shape[0], -1, arr.shape[-1])  # (n, rows, dims): inferDims d[1] per row


def _best_of_80(scores: np.ndarray):
    """The C loop ``if (score > maxScore)`` from maxScore = 0 over NUM_CLASSES_YOLO scores."""
    scores = scores[..., :NUM_CLASSES_YOLO]
    cls = scores.argmax(-1)
    best = np.take_along_axis(scores, cls[..., None], -1)[..., 0]
    positive = best > 0
    return np.where(positive, cls, 0), np.where(positive, best, np.float32(0)).astype(np.float32)


def _rows(item, cls, score, c, net) -> Objects:
    """addBBoxProposalYoloV7: centre boxes clamped, 1 pixel minimum; no threshold (nvinfer's
    preClusteringThreshold drops what is below pre-cluster-threshold afterwards)."""
    x1, y1 = c[:, 0] - c[:, 2] / np.float32(2), c[:, 1] - c[:, 3] / np.float32(2)
    x1, y1, x2, y2 = clamp_corners(x1, y1, x1 + c[:, 2], y1 + c[:, 3], net)
    keep = (x2 - x1 >= 1) & (y2 - y1 >= 1)
    return Objects.from_columns(frame=item[keep], class_id=cls[keep], confidence=score[keep],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[keep])


def parse_yolov7(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomYoloV7``."""
    d = _first(outputs, "NvDsInferParseCustomYoloV7")
    cls, _ = _best_of_80(d[..., 5:])
    item = np.repeat(np.arange(d.shape[0]), d.shape[1])
    return _rows(item, cls.reshape(-1), d[..., 4].reshape(-1), d.reshape(-1, d.shape[-1]), net)


def parse_yolov8(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomYoloV8`` (transposed model: rows of 4 + 80)."""
    d = _first(outputs, "NvDsInferParseCustomYoloV8")
    cls, best = _best_of_80(d[..., 4:])
    item = np.repeat(np.arange(d.shape[0]), d.shape[1])
    return _rows(item, cls.reshape(-1), best.reshape(-1), d.reshape(-1, d.shape[-1]), net)


def parse_yolov11(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseYoloV11`` (decodeYoloV11Tensor): (n, 4 + C, anchors), not transposed."""
    arr = np.asarray(next(iter(outputs.values())), np.float32)
    if arr.ndim != 3 or arr.shape[1] <= 4:
        raise ParserError(f"NvDsInferParseYoloV11: expects one (n, 4 + classes, anchors) output, got {arr.shape}")
    d = arr.transpose(0, 2, 1)
    scores = d[..., 4:]
    cls = scores.argmax(-1)
    best = np.take_along_axis(scores, cls[..., None], -1)[..., 0]
    cls = np.where(best > 0, cls, 0)
    best = np.where(best > 0, best, np.float32(0)).astype(np.float32)
    c = d.reshape(-1, d.shape[-1])
    half_w, half_h = c[:, 2] * np.float32(0.5), c[:, 3] * np.float32(0.5)
    item = np.repeat(np.arange(d.shape[0]), d.shape[1])
    cls, best = cls.reshape(-1), best.reshape(-1)
    keep = best >= class_threshold(cls, params)
    w, h = np.float32(net.width), np.float32(net.height)
    x1, x2 = np.clip(c[:, 0] - half_w, 0, w), np.clip(c[:, 0] + half_w, 0, w)
    y1, y2 = np.clip(c[:, 1] - half_h, 0, h), np.clip(c[:, 1] + half_h, 0, h)
    keep &= (x2 - x1 >= 1) & (y2 - y1 >= 1)
    return Objects.from_columns(frame=item[keep], class_id=cls[keep], confidence=best[keep],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[keep])


def _cuda(outputs: dict, net: NetworkInfo, params, version: str) -> Objects:
    """``decodeYoloTensor_cuda`` + ``NvDsInferParseYolo_cuda``."""
    d = _first(outputs, f"NvDsInferParseCustomYolo{version.upper()}_cuda")[:, :CUDA_LIST_SIZE[version]]
    threshold = np.float32(np.min(params.pre_cluster_threshold))
    v7 = version == "v7"
    cls, best = _best_of_80(d[..., 5:] if v7 else d[..., 4:])
    score = d[..., 4] * best if v7 else best
    keep = score >= threshold
    if v7:
        keep &= d[..., 4] >= threshold
    keep = keep.reshape(-1)
    item = np.repeat(np.arange(d.shape[0]), d.shape[1])[keep]
    c = d.reshape(-1, d.shape[-1])[keep]
    cls, score = cls.reshape(-1)[keep], score.reshape(-1)[keep]
    w, h = np.float32(net.width), np.float32(net.height)
    x0, y0 = c[:, 0] - c[:, 2] / np.float32(2), c[:, 1] - c[:, 3] / np.float32(2)
    x1, y1 = x0 + c[:, 2], y0 + c[:, 3]
    left, top = np.clip(x0, 0, w), np.clip(y0, 0, h)
    width, height = np.clip(x1 - x0, 0, w), np.clip(y1 - y0, 0, h)
    return Objects.from_columns(frame=item, class_id=cls, confidence=score,
                                xyxy=np.stack([left, top, left + width, top + height], 1))


def parse_yolov7_cuda(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomYoloV7_cuda``."""
    return _cuda(outputs, net, params, "v7")


def parse_yolov8_cuda(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomYoloV8_cuda``."""
    return _cuda(outputs, net, params, "v8")


def parse_yolov11_cuda(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomYoloV11_cuda`` (the transposed layout, as V8)."""
    return _cuda(outputs, net, params, "v11")


def parse_yolov4(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomYoloV4`` (decodeYoloV4Tensor)."""
    need = ("num_detections", "nmsed_boxes", "nmsed_scores", "nmsed_classes")
    missing = [name for name in need if name not in outputs]
    if missing:
        raise ParserError(f"NvDsInferParseCustomYoloV4: the model has no output {', '.join(missing)} "
                          f"(outputs: {list(outputs)}) — it reads TensorRT BatchedNMS outputs by name")
    num = np.asarray(outputs["num_detections"]).reshape(len(outputs["num_detections"]), -1)[:, 0].astype(np.int64)
    boxes = np.asarray(outputs["nmsed_boxes"], np.float32)
    boxes = boxes.reshape(boxes.shape[0], -1, 4)
    n, k = boxes.shape[:2]
    scores = np.asarray(outputs["nmsed_scores"], np.float32).reshape(n, k)
    classes = np.asarray(outputs["nmsed_classes"], np.float32).reshape(n, k)
    valid = np.arange(k)[None, :] < num[:, None]
    cls = np.trunc(classes).astype(np.int64)
    known = (cls >= 0) & (cls < params.num_classes)
    thr = np.full(cls.shape, np.inf, np.float32)
    thr[known] = params.pre_cluster_threshold[cls[known]]
    keep = (valid & known & (scores > thr)).reshape(-1)
    b = boxes.reshape(-1, 4) * np.array([net.width, net.height, net.width, net.height], np.float32)
    x1, y1, x2, y2 = clamp_corners(b[:, 0], b[:, 1], b[:, 2], b[:, 3], net)
    keep &= (x2 - x1 >= 1) & (y2 - y1 >= 1)
    item = np.repeat(np.arange(n), k)
    return Objects.from_columns(frame=item[keep], class_id=cls.reshape(-1)[keep], confidence=scores.reshape(-1)[keep],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[keep])
