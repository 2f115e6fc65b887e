"""YOLO parsers: DeepStream-Yolo's ``NvDsInferParseYolo`` / ``NvDsInferParseYoloE`` layouts and raw
YOLOv5 / YOLOv8 heads, vectorised over the batch.

DeepStream-Yolo exports either three outputs — boxes (n, B, 4), scores (n, B[, 1]), classes
(n, B[, 1]) — or one (n, B, 6|7) output ``[box(4), score, class(, objectness)]``; boxes are centre
x, y, w, h for ``NvDsInferParseYolo`` and x1, y1, x2, y2 for ``NvDsInferParseYoloE``, in network pixels.
Like its parser, a candidate needs score >= the class's pre-cluster-threshold, is clamped to
``[0, net]`` and must be at least 1 pixel wide and high. Raw heads: YOLOv5 (n, B, 5 + C)
``cx, cy, w, h, objectness, class scores`` (score = objectness x best class score); YOLOv8
(n, 4 + C, B) ``cx, cy, w, h, class scores``.

>>> import numpy as np
>>> from runner.pipeline.cluster import ClassParams
>>> from runner.pipeline.parsers import NetworkInfo
>>> out = np.array([[[50, 50, 20, 10, 0.9, 1], [5, 5, 4, 4, 0.1, 0]]], np.float32)
>>> o = parse_yolo({"output": out}, NetworkInfo(64, 64), ClassParams.uniform(2))
>>> o.xyxy.tolist(), o.class_id.tolist()
([[40.0, 45.0, 60.0, 55.0]], [1])
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.parsers import NetworkInfo, ParserError


def _finish(item, cls, score, x1, y1, x2, y2, net: NetworkInfo, params) -> Objects:
    cls = cls.astype(np.int64)
    known = (cls >= 0) & (cls < params.num_classes)
    thr = np.full(len(cls), np.inf, np.float32)
    thr[known] = params.pre_cluster_threshold[cls[known]]
    keep = score >= thr
    x1, x2 = np.clip(x1, 0, net.width), np.clip(x2, 0, net.width)
    y1, y2 = np.clip(y1, 0, net.height), np.clip(y2, 0, net.height)
    keep &= (x2 - x1 >= 1) & (y2 - y1 >= 1)
    return Objects.from_columns(frame=item[keep], class_id=cls[keep], confidence=score[keep],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[keep])


def _deepstream_yolo(outputs: dict, net, params, corners: bool) -> Objects:
    arrs = [np.asarray(a, np.float32) for a in outputs.values()]
    if len(arrs) >= 3:
        boxes = arrs[0].reshape(arrs[0].shape[0], -1, 4)
        score = arrs[1].reshape(len(boxes), -1)
        cls = arrs[2].reshape(len(boxes), -1)
    elif len(arrs) == 1 and arrs[0].ndim == 3 and arrs[0].shape[2] in (6, 7):
        det = arrs[0]
        boxes, cls = det[..., :4], det[..., 5]
        score = det[..., 4] if det.shape[2] == 6 else det[..., 4] * det[..., 6]
    else:
        shapes = [a.shape for a in arrs]
        raise ParserError(f"DeepStream-Yolo layout expects boxes/scores/classes outputs or one (n, B, 6) "
                          f"output, got {shapes} — for raw YOLOv5/v8 heads set parse-bbox-func-name="
                          "NvDsInferParseYoloV5 or NvDsInferParseYoloV8")
    item = np.repeat(np.arange(len(boxes)), boxes.shape[1])
    b = boxes.reshape(-1, 4)
    if corners:
        x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    else:
        x1, y1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2
        x2, y2 = x1 + b[:, 2], y1 + b[:, 3]
    return _finish(item, cls.reshape(-1), score.reshape(-1), x1, y1, x2, y2, net, params)


def parse_yolo(outputs: dict, net: NetworkInfo, params) -> Objects:
    """DeepStream-Yolo ``NvDsInferParseYolo`` (centre x, y, w, h boxes)."""
    return _deepstream_yolo(outputs, net, params, corners=False)


def parse_yolo_e(outputs: dict, net: NetworkInfo, params) -> Objects:
    """DeepStream-Yolo ``NvDsInferParseYoloE`` (x1, y1, x2, y2 boxes)."""
    return _deepstream_yolo(outputs, net, params, corners=True)


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
