"""Detector post-processing per ``[class-attrs-*]``: thresholds, clustering and the frame-space filter.

Follows nvinfer (``nvdsinfer_context_impl_output_parsing.cpp`` and ``attach_metadata_detector``):

* every candidate below ``pre-cluster-threshold`` of its class, or of a class >= num-detected-classes,
  is dropped first;
* ``cluster-mode`` 0 is NMS with topk 20 and IoU 0.5 in stock DeepStream (the GIE passes mode 2 and
  those parameters: ``NvInferConfig.cluster_mode_run``); here mode 0 is what an nvdsinfer built
  ``WITH_OPENCV=1`` runs (``dsrun-opencv-clustering=1``): OpenCV ``groupRectangles`` semantics (integer
  rectangles, ``eps``, ``group-threshold``; skipped when group-threshold is 0; confidence becomes -0.1
  as in ``clusterAndFillDetectionOutputCV``); 1 DBSCAN (``eps``, ``minBoxes``, ``dbscan-min-score``, then ``post-cluster-threshold``
  and ``topk``); 2 NMS (``nms-iou-threshold``; kept boxes must be *above* ``post-cluster-threshold``;
  then ``topk``); 3 hybrid (DBSCAN keeps clustered boxes without merging them, then NMS); 4 none
  (``topk`` only);
* after scaling to frame pixels, ``detected-min-w/h``, ``detected-max-w/h`` (0 = no limit),
  ``roi-top-offset`` and ``roi-bottom-offset`` drop (or, with ``crop-objects-to-roi-boundary``, clip)
  boxes — :func:`frame_filter`.

NVIDIA's DBSCAN is closed source; dsrun's is the textbook algorithm on the distance ``1 - IoU``
(neighbours when ``1 - IoU <= eps``; a core box has >= ``minBoxes`` neighbours, itself included,
whose confidences sum to >= ``dbscan-min-score``), a cluster becomes its confidence-weighted mean box
with the highest member confidence, and the area-to-hit-ratio filter nvinfer enables
(``sqrt(area) / members > 60`` drops the cluster) is applied.

All work is vectorised numpy within one (frame, class) group; Python loops only over groups — and for
NMS (mode 2) not even that: :func:`runner.pipeline.nms.cluster_nms` suppresses every group of the
batch in one pass (on the GPU when there is one).

>>> import numpy as np
>>> from runner.pipeline.batch import Objects
>>> params = ClassParams.uniform(1, pre_cluster_threshold=0.2, nms_iou_threshold=0.5)
>>> objs = Objects.from_columns(frame=[0, 0, 0], class_id=0, confidence=[0.9, 0.8, 0.1],
...                             xyxy=[[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]])
>>> cluster(objs, 2, params).confidence.tolist()  # the overlapping 0.8 is suppressed, 0.1 < 0.2
[0.8999999761581421]
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from runner.pipeline.batch import Objects
from runner.pipeline.nms import cluster_nms, iou_matrix, nms_keep

__all__ = ["ClassParams", "cluster", "frame_filter", "iou_matrix"]  # iou_matrix: defined in nms.py

ATHR_THRESHOLD = 60.0  # nvinfer enables the area-to-hit-ratio filter with this threshold
GROUP_RECTANGLES_CONFIDENCE = -0.1  # what nvinfer reports for cluster-mode=0 boxes

# field → (config attribute names to try, nvinfer default from gstnvinfer_property_parser.h)
_DEFAULTS = {
    "pre_cluster_threshold": (("pre_cluster_threshold", "threshold"), 0.2),
    "post_cluster_threshold": (("post_cluster_threshold",), 0.0),
    "eps": (("eps",), 0.0),
    "group_threshold": (("group_threshold",), 0),
    "min_boxes": (("min_boxes", "minBoxes", "minboxes"), 0),
    "dbscan_min_score": (("dbscan_min_score",), 0.0),
    "nms_iou_threshold": (("nms_iou_threshold",), 0.3),
    "topk": (("topk",), -1),
    "detected_min_w": (("detected_min_w",), 0),
    "detected_min_h": (("detected_min_h",), 0),
    "detected_max_w": (("detected_max_w",), 0),
    "detected_max_h": (("detected_max_h",), 0),
    "roi_top_offset": (("roi_top_offset",), 0),
    "roi_bottom_offset": (("roi_bottom_offset",), 0),
}


@dataclass(frozen=True, slots=True)
class ClassParams:
    """Per-class detection parameters as arrays indexed by class id (length num-detected-classes)."""

    pre_cluster_threshold: np.ndarray
    post_cluster_threshold: np.ndarray
    eps: np.ndarray
    group_threshold: np.ndarray
    min_boxes: np.ndarray
    dbscan_min_score: np.ndarray
    nms_iou_threshold: np.ndarray
    topk: np.ndarray
    detected_min_w: np.ndarray
    detected_min_h: np.ndarray
    detected_max_w: np.ndarray
    detected_max_h: np.ndarray
    roi_top_offset: np.ndarray
    roi_bottom_offset: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.pre_cluster_threshold)

    @classmethod
    def uniform(cls, num_classes: int, **values) -> "ClassParams":
        """Same parameters for every class; unnamed ones take nvinfer's defaults."""
        unknown = set(values) - set(_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown class parameter(s): {sorted(unknown)}")
        return cls(**{name: np.full(num_classes, values.get(name, default))
                      for name, (_, default) in _DEFAULTS.items()})

    @classmethod
    def from_class_attrs(cls, attrs: list) -> "ClassParams":
        """From one ClassAttrs-like object per class (``NvInferConfig.class_attrs(c)``)."""
        columns = {}
        for name, (aliases, default) in _DEFAULTS.items():
            col = []
            for a in attrs:
                value = None
                for alias in aliases:
                    value = getattr(a, alias, None)
                    if value is not None:
                        break
                col.append(default if value is None else value)
            columns[name] = np.asarray(col, dtype=np.float64 if isinstance(default, float) else np.int64)
        return cls(**columns)

    def __eq__(self, other):  # arrays make the generated __eq__ ambiguous
        return isinstance(other, ClassParams) and all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


def _topk(order_conf: np.ndarray, k: int) -> np.ndarray:
    """Positions of the top ``k`` (stable, descending) of ``order_conf``; all when k < 0."""
    ranked = np.argsort(-order_conf, kind="stable")
    return ranked if k < 0 else ranked[:k]


def _group_rectangles(rects: np.ndarray, threshold: int, eps: float) -> np.ndarray:
    """OpenCV ``groupRectangles`` on integer (x, y, w, h) rectangles; returns grouped rectangles."""
    if threshold <= 0 or len(rects) == 0:
        return rects
    x, y, w, h = (rects[:, i].astype(np.float64) for i in range(4))
    delta = eps * (np.minimum(w[:, None], w[None, :]) + np.minimum(h[:, None], h[None, :])) * 0.5
    similar = ((np.abs(x[:, None] - x[None, :]) <= delta) & (np.abs(y[:, None] - y[None, :]) <= delta)
               & (np.abs((x + w)[:, None] - (x + w)[None, :]) <= delta)
               & (np.abs((y + h)[:, None] - (y + h)[None, :]) <= delta))
    n_cls, labels = connected_components(csr_matrix(similar), directed=False)
    counts = np.bincount(labels, minlength=n_cls)
    sums = np.stack([np.bincount(labels, weights=rects[:, i], minlength=n_cls) for i in range(4)], 1)
    avg = np.rint(sums.astype(np.float32) * (np.float32(1.0) / counts[:, None].astype(np.float32)))
    avg = avg.astype(np.int64)
    # drop clusters with too few members and clusters lying inside a much stronger one
    ok = counts > threshold
    ax, ay, aw, ah = (avg[:, i] for i in range(4))
    dx = np.rint(aw * eps).astype(np.int64)
    dy = np.rint(ah * eps).astype(np.int64)
    inside = ((ax[:, None] >= ax[None, :] - dx[None, :]) & (ay[:, None] >= ay[None, :] - dy[None, :])
              & ((ax + aw)[:, None] <= (ax + aw + dx)[None, :]) & ((ay + ah)[:, None] <= (ay + ah + dy)[None, :]))
    n1, n2 = counts[:, None], counts[None, :]
    stronger = (n2 > np.maximum(3, n1)) | (n1 < 3)
    swallowed = inside & stronger & ok[None, :] & ~np.eye(n_cls, dtype=bool)
    keep = ok & ~swallowed.any(axis=1)
    return avg[keep]


def _dbscan(xyxy, conf, eps, min_boxes, min_score):
    """Cluster labels per box (-1 for noise) on the distance 1 - IoU."""
    near = (1.0 - iou_matrix(xyxy, xyxy)) <= eps
    core = (near.sum(1) >= min_boxes) & (near.astype(np.float64) @ conf >= min_score)
    labels = np.full(len(conf), -1, np.int64)
    if not core.any():
        return labels
    core_idx = np.flatnonzero(core)
    _, comp = connected_components(csr_matrix(near[np.ix_(core_idx, core_idx)]), directed=False)
    labels[core_idx] = comp
    border = ~core & near[:, core].any(1)
    if border.any():  # a border box joins the cluster of its best-scoring core neighbour
        cand = np.where(near[np.ix_(border, core_idx)], conf[core_idx][None, :], -np.inf)
        labels[border] = comp[cand.argmax(1)]
    return labels


def _dbscan_merge(xyxy, conf, labels):
    """Confidence-weighted mean box and max confidence per cluster; ATHR filter applied."""
    valid = labels >= 0
    if not valid.any():
        return np.zeros((0, 4)), np.zeros(0)
    lab, xy, cf = labels[valid], xyxy[valid].astype(np.float64), conf[valid].astype(np.float64)
    n = int(lab.max()) + 1
    wsum = np.bincount(lab, weights=cf, minlength=n)
    boxes = np.stack([np.bincount(lab, weights=xy[:, i] * cf, minlength=n) for i in range(4)], 1)
    boxes /= np.where(wsum > 0, wsum, 1)[:, None]
    best = np.full(n, -np.inf)
    np.maximum.at(best, lab, cf)
    members = np.bincount(lab, minlength=n)
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = np.sqrt(area) / np.maximum(members, 1) <= ATHR_THRESHOLD
    return boxes[keep], best[keep]


def _cluster_group(xyxy, conf, mode: int, c: int, p: ClassParams):
    """One (frame, class) group → (boxes, confidences) in output order."""
    if mode == 0:
        rects = np.stack([xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], 1)
        grouped = _group_rectangles(np.trunc(rects).astype(np.int64), int(p.group_threshold[c]), float(p.eps[c]))
        boxes = np.stack([grouped[:, 0], grouped[:, 1], grouped[:, 0] + grouped[:, 2],
                          grouped[:, 1] + grouped[:, 3]], 1).astype(np.float64)
        return boxes, np.full(len(boxes), GROUP_RECTANGLES_CONFIDENCE)
    if mode == 4:
        pick = _topk(conf, int(p.topk[c])) if p.topk[c] >= 0 else np.arange(len(conf))
        return xyxy[pick], conf[pick]
    if mode in (1, 3) and p.min_boxes[c] > 0:
        labels = _dbscan(xyxy, conf, float(p.eps[c]), int(p.min_boxes[c]), float(p.dbscan_min_score[c]))
        if mode == 1:
            xyxy, conf = _dbscan_merge(xyxy, conf, labels)
        else:
            xyxy, conf = xyxy[labels >= 0], conf[labels >= 0]
    if mode == 1:
        keep = conf >= p.post_cluster_threshold[c]
        xyxy, conf = xyxy[keep], conf[keep]
        pick = _topk(conf, int(p.topk[c]))
        return xyxy[pick], conf[pick]
    # mode 2 (and the NMS half of 3)
    kept = nms_keep(xyxy, conf, float(p.nms_iou_threshold[c]))
    kept = kept[conf[kept] > p.post_cluster_threshold[c]]
    if p.topk[c] >= 0:
        kept = kept[_topk(conf[kept], int(p.topk[c]))]
    return xyxy[kept], conf[kept]


def cluster(objs: Objects, mode: int, params: ClassParams) -> Objects:
    """Threshold and cluster raw detector candidates (network pixels), per frame and class.

    ``objs.frame`` is the item index in the inference batch. Output is ordered by frame, then class,
    then as nvinfer emits each class's boxes; ``gie_id``/``parent`` of the result are left unset.
    """
    n_cls = params.num_classes
    cls_id = objs.class_id
    valid = (cls_id >= 0) & (cls_id < n_cls)
    if valid.all():  # (the built-in parsers threshold already: usually every candidate is valid)
        valid = objs.confidence >= params.pre_cluster_threshold[cls_id]
    else:
        valid[valid] = objs.confidence[valid] >= params.pre_cluster_threshold[cls_id[valid]]
    if not valid.all():
        objs = objs[valid]
    if len(objs) == 0:
        return Objects.empty()
    if int(mode) == 2:
        return cluster_nms(objs, params)
    key = objs.frame.astype(np.int64) * n_cls + objs.class_id
    order = np.argsort(key, kind="stable")
    keys, starts = np.unique(key[order], return_index=True)
    bounds = np.append(starts, len(order))
    out_frame, out_cls, out_conf, out_box = [], [], [], []
    for g, k in enumerate(keys):  # one iteration per (frame, class) group
        rows = order[bounds[g]:bounds[g + 1]]
        f, c = divmod(int(k), n_cls)
        boxes, conf = _cluster_group(objs.xyxy[rows].astype(np.float64),
                                     objs.confidence[rows].astype(np.float64), int(mode), c, params)
        out_frame.append(np.full(len(conf), f, np.int32))
        out_cls.append(np.full(len(conf), c, np.int32))
        out_conf.append(conf)
        out_box.append(np.asarray(boxes, np.float64).reshape(-1, 4))
    return Objects.from_columns(frame=np.concatenate(out_frame), class_id=np.concatenate(out_cls),
                                confidence=np.concatenate(out_conf), xyxy=np.concatenate(out_box))


def frame_filter(xyxy: np.ndarray, class_id: np.ndarray, params: ClassParams, frame_height: np.ndarray,
                 frame_width: np.ndarray, *, filter_out_class_ids=(), crop_to_roi: bool = False):
    """nvinfer's filter on boxes already scaled to frame pixels (``attach_metadata_detector``); returns
    ``(keep_mask, boxes)``.

    Negative left/top are clamped to 0 first (width and height kept), as nvinfer does before filtering.
    With ``crop_to_roi`` a box reaching below the ROI from a top inside it keeps its top and may come out
    with y2 < y1 when it starts below the ROI's bottom — DeepStream attaches it so, and so does dsrun.
    """
    box = np.asarray(xyxy, np.float64).copy()
    w = box[:, 2] - box[:, 0]
    h = box[:, 3] - box[:, 1]
    box[:, 0] = np.maximum(box[:, 0], 0)
    box[:, 1] = np.maximum(box[:, 1], 0)
    box[:, 2] = box[:, 0] + w
    box[:, 3] = box[:, 1] + h
    c = np.clip(class_id, 0, params.num_classes - 1)
    keep = ~np.isin(class_id, np.asarray(list(filter_out_class_ids), np.int64)) if len(filter_out_class_ids) \
        else np.ones(len(box), bool)
    keep &= (w >= params.detected_min_w[c]) & (h >= params.detected_min_h[c])
    keep &= (params.detected_max_w[c] <= 0) | (w <= params.detected_max_w[c])
    keep &= (params.detected_max_h[c] <= 0) | (h <= params.detected_max_h[c])
    top_limit = params.roi_top_offset[c].astype(np.float64)
    bottom_limit = frame_height - params.roi_bottom_offset[c].astype(np.float64)
    if crop_to_roi:  # attach_metadata_detector: top moves down keeping the height, then the
        # right edge (when >= the frame width) and the bottom are clipped; nothing is dropped here
        moved = np.maximum(box[:, 1], top_limit) - box[:, 1]
        box[:, 1] += moved
        box[:, 3] += moved
        box[:, 2] = np.where(box[:, 2] >= frame_width, frame_width, box[:, 2])
        box[:, 3] = np.where(box[:, 3] > bottom_limit, bottom_limit, box[:, 3])
    else:
        keep &= (box[:, 1] >= top_limit) & (box[:, 3] <= bottom_limit)
    return keep, box
