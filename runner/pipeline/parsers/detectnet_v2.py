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

import functools

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


@functools.lru_cache(maxsize=32)
def _centres(cells_y: int, cells_x: int, stride_y: int, stride_x: int) -> np.ndarray:
    """``(cells_y * cells_x, 4)`` float32, per grid cell (row-major): ``-cx, -cy, cx, cy`` with
    ``cx = (col * stride_x + 0.5) / 35`` — what a cell's four bbox offsets are added to before the
    ``* (-35, -35, 35, 35)`` of :data:`_SIGN_NORM` (``(o - c) * -35`` is ``(o + -c) * -35`` exactly).
    Made once per grid and stride, read-only."""
    cx = (np.arange(cells_x, dtype=np.float32) * stride_x + np.float32(0.5)) / BBOX_NORM
    cy = (np.arange(cells_y, dtype=np.float32) * stride_y + np.float32(0.5)) / BBOX_NORM
    col = np.tile(cx, cells_y)
    row = np.repeat(cy, cells_x)
    table = np.stack([-col, -row, col, row], 1)
    table.flags.writeable = False
    return table


_SIGN_NORM = np.array([-BBOX_NORM, -BBOX_NORM, BBOX_NORM, BBOX_NORM], np.float32)


def _grid(outputs, net: NetworkInfo, params):
    """Every cell whose coverage is >= its class's pre-cluster-threshold, decoded for the whole batch
    at once: ``(item, class, confidence, xyxy (k, 4) float32)`` in (item, class, row, col) order —
    the order nvinfer's loops visit them. A few numpy calls per batch, none per frame or class."""
    cov = _find(outputs, "cov")
    bbox = _find(outputs, "bbox")
    if cov.ndim == 3:
        cov, bbox = cov[None], bbox[None]
    n, c_cov, gh, gw = cov.shape
    n_cls = min(c_cov, params.num_classes, bbox.shape[1] // 4)
    cells = gh * gw
    conf = np.ascontiguousarray(cov[:, :n_cls]).reshape(n * n_cls, cells)  # a view when n_cls = c_cov
    thr = np.asarray(params.pre_cluster_threshold[:n_cls], np.float32)
    if len(thr) and (thr == thr[0]).all():
        flat = np.flatnonzero(conf >= thr[0])
    else:
        flat = np.flatnonzero(conf.reshape(n, n_cls, cells) >= thr[None, :, None])
    group, cell = np.divmod(flat, cells)  # group = item * n_cls + class
    boxes = bbox[:, :4 * n_cls].reshape(n * n_cls, 4, cells)[group, :, cell]
    centres = _centres(gh, gw, -(-net.height // bbox.shape[2]), -(-net.width // bbox.shape[3]))
    xyxy = np.add(boxes, np.take(centres, cell, axis=0), out=boxes)
    xyxy *= _SIGN_NORM
    item, cls = np.divmod(group, n_cls)
    return item, cls, conf.reshape(-1)[flat], xyxy


def parse_detectnet_v2(outputs: dict, net: NetworkInfo, params) -> Objects:
    """nvinfer's built-in ``parseBoundingBox`` (no parse-bbox-func-name): a coordinate >= the network
    size becomes size - 1 (values in (size - 1, size) stay), then a negative one becomes 0; inverted
    boxes are dropped ("prevent underflows"; zero-width ones stay)."""
    item, cls, conf, xyxy = _grid(outputs, net, params)
    size = np.array([net.width, net.height, net.width, net.height], np.float32)
    np.copyto(xyxy, size - 1, where=xyxy >= size)
    np.copyto(xyxy, np.float32(0), where=xyxy < 0)
    ok = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]) >= 0  # NaN: dropped, as in nvinfer
    if not ok.all():
        item, cls, conf, xyxy = item[ok], cls[ok], conf[ok], xyxy[ok]
    return Objects.from_columns(frame=item, class_id=cls, confidence=conf, xyxy=xyxy)


def parse_custom_resnet(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomResnet`` (libnvds_infercustomparser): clip, then width = x2 - x1 + 1. Its
    ``CLIP`` is ``MAX(MIN(a, hi), lo)`` with ternaries, so a -0.0 comes out 0.0, as ``np.clip`` gives."""
    item, cls, conf, xyxy = _grid(outputs, net, params)
    np.clip(xyxy, 0, np.array([net.width - 1, net.height - 1] * 2, np.float32), out=xyxy)
    xyxy[:, 2:] += 1
    return Objects.from_columns(frame=item, class_id=cls, confidence=conf, xyxy=xyxy)
