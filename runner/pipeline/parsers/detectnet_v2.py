"""nvinfer's default detector parser (DetectNet_v2 / ResNet coverage + bbox grids) and the
``NvDsInferParseCustomResnet`` variant, vectorised over the batch and the grid.

Layout: a coverage output whose name contains ``cov`` ((n, C, gh, gw)) and a bbox output whose name
contains ``bbox`` ((n, 4C, gh, gw): x1, y1, x2, y2 per class). With ``stride = ceil(net / grid)`` and
cell centres ``(i * stride + 0.5) / 35``, a cell's box is ``x1 = (centre - o_x1) * 35``,
``x2 = (o_x2 + centre) * 35`` (likewise y); cells whose coverage is >= the class's
pre-cluster-threshold become candidates. The default parser sets coordinates >= the network size to
size - 1 and negative ones to 0, and drops inverted boxes (zero-width ones stay); the ResNet variant clips and adds one pixel to width/height, as its sample code does.

>>> import numpy as np
>>> from runner.pipeline.cluster import ClassParams
>>> from runner.pipeline.parsers import NetworkInfo
>>> cov = np.zeros((1, 1, 2, 2), np.float32); cov[0, 0, 1, 1] = 0.9
>>> bbox = np.zeros((1, 4, 2, 2), np.float32)
>>> objs = parse_detectnet_v2({"output_cov": cov, "output_bbox": bbox}, NetworkInfo(32, 32),
...                           ClassParams.uniform(1))
>>> objs.xyxy.tolist()  # centre (16 + 0.5) / 35 → x1 = x2 = 16.5
[[16.5, 16.5, 16.5, 16.5]]
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.parsers import NetworkInfo, ParserError

BBOX_NORM = np.float32(35.0)


def _find(outputs: dict, part: str) -> np.ndarray:
    found = None
    for name, arr in outputs.items():  # nvinfer keeps the last output whose name matches
        if part in name:
            found = arr
    if found is None:
        raise ParserError(f"no output layer whose name contains {part!r} (outputs: {list(outputs)}) — "
                          "nvinfer's default detector parser needs DetectNet_v2 'cov' and 'bbox' outputs; "
                          "set parse-bbox-func-name (and custom-lib-path) for other models")
    return np.asarray(found, np.float32)


def _grid(outputs, net: NetworkInfo, params):
    cov = _find(outputs, "cov")
    bbox = _find(outputs, "bbox")
    if cov.ndim == 3:
        cov, bbox = cov[None], bbox[None]
    n, c_cov, gh, gw = cov.shape
    n_cls = min(c_cov, params.num_classes, bbox.shape[1] // 4)
    stride_x = -(-net.width // bbox.shape[3])
    stride_y = -(-net.height // bbox.shape[2])
    cx = (np.arange(gw, dtype=np.float32) * stride_x + np.float32(0.5)) / BBOX_NORM
    cy = (np.arange(gh, dtype=np.float32) * stride_y + np.float32(0.5)) / BBOX_NORM
    conf = cov[:, :n_cls]
    thr = np.asarray(params.pre_cluster_threshold[:n_cls], np.float32)
    item, cls, row, col = np.nonzero(conf >= thr[None, :, None, None])
    b = bbox[:, :4 * n_cls].reshape(n, n_cls, 4, gh, gw)[item, cls, :, row, col]
    x1 = (b[:, 0] - cx[col]) * -BBOX_NORM
    y1 = (b[:, 1] - cy[row]) * -BBOX_NORM
    x2 = (b[:, 2] + cx[col]) * BBOX_NORM
    y2 = (b[:, 3] + cy[row]) * BBOX_NORM
    return item, cls, conf[item, cls, row, col], x1, y1, x2, y2


def _clip_to_network(v: np.ndarray, size: int) -> np.ndarray:
    """``parseBoundingBox``'s clipping: a coordinate >= the network size becomes size - 1 (values in
    (size - 1, size) stay), then a negative one becomes 0."""
    v = np.where(v >= size, np.float32(size - 1), v)
    return np.where(v < 0, np.float32(0), v).astype(np.float32)


def parse_detectnet_v2(outputs: dict, net: NetworkInfo, params) -> Objects:
    """nvinfer's built-in ``parseBoundingBox`` (no parse-bbox-func-name)."""
    item, cls, conf, x1, y1, x2, y2 = _grid(outputs, net, params)
    x1, x2 = _clip_to_network(x1, net.width), _clip_to_network(x2, net.width)
    y1, y2 = _clip_to_network(y1, net.height), _clip_to_network(y2, net.height)
    ok = (x2 - x1 >= 0) & (y2 - y1 >= 0)  # "prevent underflows": inverted boxes are dropped
    return Objects.from_columns(frame=item[ok], class_id=cls[ok], confidence=conf[ok],
                                xyxy=np.stack([x1, y1, x2, y2], 1)[ok])


def parse_custom_resnet(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomResnet`` (libnvds_infercustomparser): clip, then width = x2 - x1 + 1."""
    item, cls, conf, x1, y1, x2, y2 = _grid(outputs, net, params)
    w1, h1 = np.float32(net.width - 1), np.float32(net.height - 1)
    left, top = np.clip(x1, 0, w1), np.clip(y1, 0, h1)
    right = np.clip(x2, 0, w1) + 1
    bottom = np.clip(y2, 0, h1) + 1
    return Objects.from_columns(frame=item, class_id=cls, confidence=conf,
                                xyxy=np.stack([left, top, right, bottom], 1))
