"""YOLO parsers by the names DeepStream configs use, vectorised over the batch.

* ``NvDsInferParseYolo`` — marcoslucianops/DeepStream-Yolo ``nvdsparsebbox_Yolo.cpp``. Since its
  November 2024 export format (``utils/export_*.py``, ``decodeTensorYolo``) the model has one output
  (n, B, 6): ``x1, y1, x2, y2, score, class`` in network pixels. Exports from June 2023 to November
  2024 had three outputs — boxes (n, B, 4) centre ``x, y, w, h``, scores (n, B[, 1]), classes
  (n, B[, 1]) — and are still read that way when the model has three outputs. (Exports of May 2023
  had one (n, B, 6) output with centre boxes; nothing in the model tells them from today's, so they
  are read as today's: re-export them.)
* ``NvDsInferParseYoloE`` (DeepStream-Yolo before November 2024): the three outputs with corner boxes
  (one (n, B, 6) output reads as ``NvDsInferParseYolo``).
* ``NvDsInferParseYoloCuda`` (``nvdsparsebbox_Yolo_cuda.cu``): the (n, B, 6) layout without the
  1-pixel minimum size.

Like DeepStream-Yolo's ``addBBoxProposal``: a candidate needs score >= its class's pre-cluster-threshold
(``decodeTensorYolo``), corners are clamped to ``[0, net]`` and the box must be at least 1 pixel wide
and high. The parsers of NVIDIA's ``tools/yolo_deepstream`` (YoloV4, YoloV7/V8/V11 and their
``_cuda`` forms) are in :mod:`.yolo_nvidia`. Raw YOLOv5 / YOLOv8 heads (dsrun names, no DeepStream
counterpart): YOLOv5 (n, B, 5 + C) ``cx, cy, w, h, objectness, class scores`` (score = objectness x best
class score); YOLOv8 (n, 4 + C, B) ``cx, cy, w, h, class scores``.

>>> import numpy as np
>>> from runner.pipeline.cluster import ClassParams
>>> from runner.pipeline.parsers import NetworkInfo
>>> out = np.array([[[40, 45, 60, 55, 0.9, 1], [5, 5, 4, 4, 0.1, 0]]], np.float32)
>>> o = parse_yolo({"output": out}, NetworkInfo(64, 64), ClassParams.uniform(2))
>>> o.xyxy.tolist(), o.class_id.tolist()
([[40.0, 45.0, 60.0, 55.0]], [1])
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.parsers import NetworkInfo, ParserError


def class_threshold(cls: np.ndarray, params) -> np.ndarray:
    """Pre-cluster-threshold per candidate; +inf for a class outside num-detected-classes (nvinfer's
    ``preClusteringThreshold`` drops those after any custom parser)."""
    cls = cls.astype(np.int64)
    known = (cls >= 0) & (cls < params.num_classes)
    thr = np.full(len(cls), np.inf, np.float32)
    thr[known] = params.pre_cluster_threshold[cls[known]]
    return thr


def clamp_corners(x1, y1, x2, y2, net: NetworkInfo):
    """DeepStream-Yolo's ``convertBBox``: corners clamped to [0, net], width/height clamped to [0, net]."""
    w, h = np.float32(net.width), np.float32(net.height)
    x1, x2 = np.clip(x1, 0, w), np.clip(x2, 0, w)
    y1, y2 = np.clip(y1, 0, h), np.clip(y2, 0, h)
    return x1, y1, x1 + np.clip(x2 - x1, 0, w), y1 + np.clip(y2 - y1, 0, h)


def _finish(item, cls, score, x1, y1, x2, y2, net: NetworkInfo, params, min_size: bool = True) -> Objects:
    keep = score >= class_threshold(cls, params)
    x1, y1, x2, y2 = clamp_corners(x1, y1, x2, y2, net)
    if min_size:  # addBBoxProposal: width < 1 or height < 1 is dropped
        keep &= (x2 - x1 >= 1) & (y2 - y1 >= 1)
    return Objects.from_columns(frame=item[keep], class_id=cls.astype(np.int64)[keep], confidence=score[keep],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[keep])


def _layout_error(arrs) -> ParserError:
    shapes = [a.shape for a in arrs]
    return ParserError(f"DeepStream-Yolo layout expects one (n, B, 6) output [x1, y1, x2, y2, score, class] "
                       f"(or the 2023-2024 boxes/scores/classes outputs), got {shapes} — for raw YOLOv5/v8 "
                       "heads set parse-bbox-func-name=NvDsInferParseYoloV5 or NvDsInferParseYoloV8")


def _deepstream_yolo(outputs: dict, net, params, centre_boxes_if_three: bool, min_size: bool = True) -> Objects:
    arrs = [np.asarray(a, np.float32) for a in outputs.values()]
    if len(arrs) >= 3:  # June 2023 – November 2024 exports: boxes, scores, classes (in this order)
        boxes = arrs[0].reshape(arrs[0].shape[0], -1, 4)
        score = arrs[1].reshape(len(boxes), -1)
        cls = arrs[2].reshape(len(boxes), -1)
        centre = centre_boxes_if_three
    elif arrs and arrs[0].ndim == 3 and arrs[0].shape[2] >= 6:  # decodeTensorYolo reads outputLayersInfo[0]
        det = arrs[0]
        boxes, score, cls = det[..., :4], det[..., 4], det[..., 5]
        centre = False
    else:
        raise _layout_error(arrs)
    item = np.repeat(np.arange(len(boxes)), boxes.shape[1])
    b = boxes.reshape(-1, 4)
    if centre:  # decodeTensorYolo of 2023-2024: x1 = xc - w / 2, x2 = x1 + w
        x1, y1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2
        x2, y2 = x1 + b[:, 2], y1 + b[:, 3]
    else:
        x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return _finish(item, np.trunc(cls.reshape(-1)), score.reshape(-1), x1, y1, x2, y2, net, params, min_size)


def parse_yolo(outputs: dict, net: NetworkInfo, params) -> Objects:
    """DeepStream-Yolo ``NvDsInferParseYolo``."""
    return _deepstream_yolo(outputs, net, params, centre_boxes_if_three=True)


def parse_yolo_e(outputs: dict, net: NetworkInfo, params) -> Objects:
    """DeepStream-Yolo ``NvDsInferParseYoloE`` (2023-2024: three outputs, corner boxes)."""
    return _deepstream_yolo(outputs, net, params, centre_boxes_if_three=False)


def parse_yolo_cuda(outputs: dict, net: NetworkInfo, params) -> Objects:
    """DeepStream-Yolo ``NvDsInferParseYoloCuda`` (``decodeTensorYoloCuda``): as NvDsInferParseYolo on
    the (n, B, 6) output, but boxes narrower or lower than a pixel are kept."""
    arrs = [np.asarray(a, np.float32) for a in outputs.values()]
    if not arrs or arrs[0].ndim != 3 or arrs[0].shape[2] < 6:
        raise _layout_error(arrs)
    return _deepstream_yolo({"output": arrs[0]}, net, params, centre_boxes_if_three=False, min_size=False)


def _head(pred: np.ndarray, net, params, objectness: bool) -> Objects:
    n, b, k = pred.shape
    first = 5 if objectness else 4
    scores = pred[..., first:]
    cls = scores.argmax(-1)
    best = np.take_along_axis(scores, cls[..., None], -1)[..., 0]
    if objectness:
        best = best * pred[..., 4]
    item = np.repeat(np.arange(n), b)
    c = pred.reshape(-1, k)
    x1, y1 = c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2
    return _finish(item, cls.reshape(-1), best.reshape(-1), x1, y1, x1 + c[:, 2], y1 + c[:, 3], net, params)


def parse_yolov5_head(outputs: dict, net: NetworkInfo, params) -> Objects:
    """Raw YOLOv5 head (n, B, 5 + C)."""
    return _head(np.asarray(next(iter(outputs.values())), np.float32), net, params, objectness=True)


def parse_yolov8_head(outputs: dict, net: NetworkInfo, params) -> Objects:
    """Raw YOLOv8 head (n, 4 + C, B), as exported by Ultralytics."""
    pred = np.asarray(next(iter(outputs.values())), np.float32)
    return _head(pred.transpose(0, 2, 1), net, params, objectness=False)
