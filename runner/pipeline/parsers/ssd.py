"""SSD parsers: ``NvDsInferParseCustomSSD`` (TensorRT NMS plugin output) and
``NvDsInferParseCustomTfSSD`` (TensorFlow object-detection API outputs).

``NvDsInferParseCustomSSD``: ``NMS`` (n, [1,] keepTopK, 7) rows of
``image_id, label, confidence, x1, y1, x2, y2`` (normalised) and ``NMS_1`` (n, 1) the keep count.
As the sample parser does, coordinates are truncated to whole pixels, clipped to ``[0, net - 1]`` and
width/height get one pixel added. ``NvDsInferParseCustomTfSSD``: ``detection_boxes`` (y1, x1, y2, x2
normalised), ``detection_scores``, ``detection_classes`` and optional ``num_detections``.

>>> import numpy as np
>>> from runner.pipeline.cluster import ClassParams
>>> from runner.pipeline.parsers import NetworkInfo
>>> nms = np.array([[[0, 1, 0.8, 0.1, 0.2, 0.5, 0.6]]], np.float32)
>>> o = parse_ssd_nms({"NMS": nms, "NMS_1": np.array([[1]], np.int32)}, NetworkInfo(100, 100),
...                   ClassParams.uniform(2))
>>> o.xyxy.tolist()
[[10.0, 20.0, 51.0, 61.0]]
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.parsers import NetworkInfo, ParserError


def _named(outputs: dict, name: str, fallback: int):
    if name in outputs:
        return np.asarray(outputs[name])
    values = list(outputs.values())
    if fallback < len(values):
        return np.asarray(values[fallback])
    raise ParserError(f"output {name!r} not found (outputs: {list(outputs)})")


def _thresholded(cls, conf, params):
    known = (cls >= 0) & (cls < params.num_classes)
    thr = np.full(len(cls), np.inf, np.float32)
    thr[known] = params.pre_cluster_threshold[cls[known]]
    return known & (conf >= thr)


def parse_ssd_nms(outputs: dict, net: NetworkInfo, params) -> Objects:
    det = _named(outputs, "NMS", 0).astype(np.float32)
    det = det.reshape(det.shape[0], -1, 7)
    keep_count = _named(outputs, "NMS_1", 1).reshape(det.shape[0], -1)[:, 0].astype(np.int64)
    n, k, _ = det.shape
    valid = np.arange(k)[None, :] < keep_count[:, None]
    item = np.repeat(np.arange(n), k)[valid.reshape(-1)]
    d = det.reshape(-1, 7)[valid.reshape(-1)]
    cls = d[:, 1].astype(np.int64)
    ok = _thresholded(cls, d[:, 2], params)
    px = np.trunc(np.maximum(d[:, [3, 5]] * net.width, 0))
    py = np.trunc(np.maximum(d[:, [4, 6]] * net.height, 0))
    x1, x2 = np.clip(px[:, 0], 0, net.width - 1), np.clip(px[:, 1], 0, net.width - 1) + 1
    y1, y2 = np.clip(py[:, 0], 0, net.height - 1), np.clip(py[:, 1], 0, net.height - 1) + 1
    return Objects.from_columns(frame=item[ok], class_id=cls[ok], confidence=d[ok, 2],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[ok])


def parse_tf_ssd(outputs: dict, net: NetworkInfo, params) -> Objects:
    for name in ("detection_boxes", "detection_scores", "detection_classes"):
        if name not in outputs:
            raise ParserError(f"NvDsInferParseCustomTfSSD needs output {name!r} (outputs: {list(outputs)})")
    boxes = np.asarray(outputs["detection_boxes"], np.float32)
    n = boxes.shape[0]
    boxes = boxes.reshape(n, -1, 4)
    scores = np.asarray(outputs["detection_scores"], np.float32).reshape(n, -1)
    classes = np.asarray(outputs["detection_classes"], np.float32).reshape(n, -1)
    k = scores.shape[1]
    count = np.full(n, k)
    if "num_detections" in outputs:
        count = np.clip(np.asarray(outputs["num_detections"]).reshape(n, -1)[:, 0].astype(np.int64), 0, k)
    valid = (np.arange(k)[None, :] < count[:, None]).reshape(-1)
    item = np.repeat(np.arange(n), k)[valid]
    b, conf = boxes.reshape(-1, 4)[valid], scores.reshape(-1)[valid]
    cls = classes.reshape(-1)[valid].astype(np.int64)
    x1 = np.clip(b[:, 1] * net.width, 0, net.width - 1)
    x2 = np.clip(b[:, 3] * net.width, 0, net.width - 1)
    y1 = np.clip(b[:, 0] * net.height, 0, net.height - 1)
    y2 = np.clip(b[:, 2] * net.height, 0, net.height - 1)
    ok = _thresholded(cls, conf, params) & (x2 > x1) & (y2 > y1)
    return Objects.from_columns(frame=item[ok], class_id=cls[ok], confidence=conf[ok],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[ok])
