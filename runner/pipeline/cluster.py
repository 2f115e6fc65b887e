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
NMS (mode 2) not even that: :func:`grouped_nms` suppresses every group of the batch in one pass
(on the GPU when there is one).

>>> import numpy as np
>>> from runner.pipeline.batch import Objects
>>> params = ClassParams.uniform(1, pre_cluster_threshold=0.2, nms_iou_threshold=0.5)
>>> objs = Objects.from_columns(frame=[0, 0, 0], class_id=0, confidence=[0.9, 0.8, 0.1],
...                             xyxy=[[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]])
>>> cluster(objs, 2, params).confidence.tolist()  # the overlapping 0.8 is suppressed, 0.1 < 0.2
[0.8999999761581421]
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from runner.pipeline.batch import Objects
from runner.pipeline.nms_device import greedy_keep, group_runs

__all__ = ["ClassParams", "cluster", "frame_filter", "grouped_nms", "iou_matrix", "nms_keep"]

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


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4 xyxy) with every box in ``b`` (m, 4); 0 where the union is 0."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms_keep(xyxy: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS (descending score, stable), in pick order.

    Computed without a per-box loop: the greedy result is the unique fixed point of "a box is kept
    unless a kept, higher-ranked box overlaps it by more than ``threshold``", reached by iterating
    that rule on the whole IoU matrix (at most as many rounds as the longest suppression chain).
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    if len(order) <= 1:
        return order
    iou = iou_matrix(xyxy[order], xyxy[order])
    suppresses = np.triu(iou > threshold, k=1)  # row i (ranked higher) may suppress column j
    keep = np.ones(len(order), bool)
    while True:
        new_keep = ~(suppresses & keep[:, None]).any(axis=0)
        if np.array_equal(new_keep, keep):
            return order[keep]
        keep = new_keep


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


def grouped_nms(xyxy: np.ndarray, conf: np.ndarray, group: np.ndarray, threshold: np.ndarray,
                runs=None) -> np.ndarray:
    """Greedy NMS within each group (bool keep mask per row); ``threshold`` is per row (per class);
    ``runs``: :func:`group_runs`'s answer when the caller has it already.

    Both passes rank every group of the batch at once (:func:`group_runs`), find the overlapping
    pairs, and run :func:`nms_keep`'s fixed-point rule on that pair list (:func:`greedy_keep`) — the
    same result as :func:`nms_keep` group by group, with no loop over groups.

    With a CUDA GPU and at least :data:`DEVICE_MIN_PAIRS` pairs in the batch, the pairs are found on
    the device (runner.pipeline.nms_device: 12 kernels and one host sync per batch). Otherwise on the
    host: the overlaps of every pair of boxes of one group are computed together, in about half
    :func:`nms_keep`'s time; groups of more than :data:`PAIRWISE_GROUP_LIMIT` boxes take
    :func:`nms_keep` on their own. ``DSRUN_DEVICE_NMS=0`` takes the host pass on a GPU machine.

    (The benchmark's ~8,600 candidates per batch of 32 are ~380 k pairs: ~80 ms on the host pass on a
    loaded 2-core machine; ``scripts/bench_nms.py`` measures both passes.)
    """
    n = len(conf)
    keep = np.zeros(n, bool)
    if n == 0:
        return keep
    runs = order, starts, sizes = runs if runs is not None else group_runs(conf, np.asarray(group, np.int64))
    device_nms = _device_nms()
    if device_nms is not None and int((sizes * (sizes - 1)).sum()) // 2 >= DEVICE_MIN_PAIRS:
        on_device = device_nms(xyxy, conf, group, threshold, runs)
        if on_device is not None:
            return on_device
    big = sizes > PAIRWISE_GROUP_LIMIT
    for s, size in zip(starts[big].tolist(), sizes[big].tolist()):  # rare: one loop step per huge group
        members = order[s:s + size]
        keep[members[nms_keep(xyxy[members], conf[members], float(threshold[members[0]]))]] = True
    pos = _prefix_positions(starts[~big], sizes[~big])  # positions (in ``order``) of boxes in pairwise groups
    if not len(pos):
        return keep
    # every pair (a, b), a ranked before b, of one group: b = a + 1 .. the group's last position
    later = np.repeat((starts + sizes)[~big], sizes[~big]) - pos - 1  # boxes ranked after each box in its group
    a = np.repeat(pos, later)
    b = _prefix_positions(pos + 1, later)
    columns = np.empty((6, n))  # by rank: x1, y1, x2, y2, area, threshold
    columns[:4] = np.asarray(xyxy, np.float64)[order].T
    x1, y1, x2, y2 = columns[:4]
    np.multiply(x2 - x1, y2 - y1, out=columns[4])
    columns[5] = np.asarray(threshold, np.float64)[order]
    ax1, ay1, ax2, ay2, a_area, a_thr = np.take(columns, a, axis=1)
    bx1, by1, bx2, by2, b_area, _ = np.take(columns, b, axis=1)
    iw = np.minimum(ax2, bx2)
    iw -= np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    inter = np.clip(iw, 0, None, out=iw)
    inter *= np.clip(ih, 0, None, out=ih)
    union = a_area + b_area
    union -= inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)  # 0 where the union is empty
    edge = iou > a_thr
    alive = greedy_keep(a[edge], b[edge], n)  # indexed by position in ``order``
    keep[order[pos[alive[pos]]]] = True
    return keep


def _prefix_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``starts[g], starts[g] + 1, …, starts[g] + lengths[g] - 1`` for every g, concatenated."""
    first = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) + np.repeat(starts - first, lengths)


PAIRWISE_GROUP_LIMIT = 2048  # a group's pairs: n(n-1)/2 — 2 M pairs at this size
# fewer pairs in a batch: the host pass (~2 ms at this size on the 2-core CI machine, ~25 numpy calls,
# whose loops run without the interpreter lock). The device pass takes ~0.5 ms more or less whatever
# the size but gives the lock away at each of its ~30 torch calls and ~40 more numpy ones: with ~70
# threads wanting the lock, each costs far more than its work (scripts/bench_pgie_post.py counts them;
# scripts/bench_nms.py times both passes). The benchmark's batch with topk 3 is ~15 k pairs (prefixes).
DEVICE_MIN_PAIRS = 32768


def _device_nms():
    """``(xyxy, conf, group, thr, runs) -> keep mask`` on the GPU (runner.pipeline.nms_device), or None
    without a CUDA torch or with ``DSRUN_DEVICE_NMS=0``."""
    global _DEVICE_NMS
    if _DEVICE_NMS is False:
        try:
            import torch
        except ImportError:
            _DEVICE_NMS = None
        else:
            if not torch.cuda.is_available() or os.environ.get("DSRUN_DEVICE_NMS", "1").strip() == "0":
                _DEVICE_NMS = None  # DSRUN_DEVICE_NMS=0: the host pass even on a GPU machine
            else:
                from runner.pipeline.nms_device import grouped_nms_device

                def run(xyxy, conf, group, thr, runs):
                    return grouped_nms_device(torch, torch.device("cuda", torch.cuda.current_device()),
                                              xyxy, conf, group, thr, runs)
                _DEVICE_NMS = _or_the_host_pass(run)
    return _DEVICE_NMS


def _or_the_host_pass(device_pass):
    """``device_pass`` that answers None — the host pass, for this batch and every later one — when the
    device fails (a torch build without one of its kernels on this GPU, memory): the same boxes either
    way, so the run goes on, with one warning."""
    def run(*args):
        global _DEVICE_NMS
        try:
            return device_pass(*args)
        except (RuntimeError, NotImplementedError) as exc:
            logging.getLogger("dsrun").warning(
                "NMS on the GPU failed (%s: %s) — clustering on the CPU from now on, with the same results "
                "(DSRUN_DEVICE_NMS=0 starts there)", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            _DEVICE_NMS = None
            return None
    return run


_DEVICE_NMS = False  # not looked up yet


# with topk, a group's NMS first runs on the TOPK_PREFIX * topk (at least MIN_PREFIX) best-ranked boxes
TOPK_PREFIX, MIN_PREFIX = 4, 16


def _cluster_nms(objs: Objects, params: ClassParams) -> Objects:
    """cluster-mode 2 for every (frame, class) group at once: NMS, then boxes strictly above
    post-cluster-threshold, then ``topk`` per group; ordered by frame, class, descending confidence.

    With ``topk``, a group's output is its first ``topk`` kept boxes in rank order, and whether a box
    is kept depends only on the boxes ranked before it: NMS on a group's best-ranked prefix keeps the
    same boxes of that prefix as NMS on the whole group. So each group is suppressed within a prefix
    (:data:`TOPK_PREFIX` times its topk, at least :data:`MIN_PREFIX` boxes), and only a group whose
    prefix keeps fewer than topk boxes again, with a prefix four times as long, until it keeps enough
    or is whole — the same output, for the overlaps of a few boxes per group instead of all of them
    (the benchmark's batch, topk 3: ~11 k pairs instead of ~380 k; scripts/bench_pgie_post.py)."""
    n_cls = params.num_classes
    cls = objs.class_id.astype(np.int64)
    conf = objs.confidence.astype(np.float64)
    key = objs.frame.astype(np.int64) * n_cls + cls
    # nvinfer suppresses among all candidates, then keeps kept boxes above post-cluster-threshold
    # (clusterAndFillDetectionOutputNMS). A box at or below it is never output and can only suppress
    # boxes ranked after it, at or below it too: suppressing among the boxes above gives the same output.
    above = conf > params.post_cluster_threshold[cls]
    if above.all():
        ranked, starts, sizes = group_runs(conf, key)
    else:
        rows = np.flatnonzero(above)
        order, starts, sizes = group_runs(conf[rows], key[rows])
        ranked = rows[order]  # by frame, class, descending confidence (ties: the parser's order)
    topk = params.topk[cls[ranked[starts]]]  # per group
    limit = np.where(topk < 0, sizes, np.minimum(sizes, np.maximum(MIN_PREFIX, TOPK_PREFIX * topk)))
    keep = np.zeros(len(ranked), bool)  # by rank
    todo = np.flatnonzero(limit > 0)  # groups to suppress (again)
    while len(todo):  # one pass per prefix length (a few at most): never per frame, class or box
        pos = _prefix_positions(starts[todo], limit[todo])
        part = ranked[pos]
        sub_starts = np.cumsum(limit[todo]) - limit[todo]
        keep[pos] = grouped_nms(objs.xyxy[part].astype(np.float64), conf[part], key[part],
                                params.nms_iou_threshold[cls[part]],
                                (np.arange(len(part)), sub_starts, limit[todo]))
        kept = np.add.reduceat(keep[pos], sub_starts) if len(pos) else np.zeros(0, np.int64)
        short = (kept < topk[todo]) & (limit[todo] < sizes[todo])
        todo = todo[short]
        limit[todo] = np.minimum(sizes[todo], 4 * limit[todo])
    ranked, group = ranked[keep], np.repeat(np.arange(len(sizes)), sizes)[keep]
    rank = np.arange(len(ranked)) - np.searchsorted(group, group)  # rank among the group's kept boxes
    ranked = ranked[(topk[group] < 0) | (rank < topk[group])]
    return Objects.from_columns(frame=objs.frame[ranked], class_id=cls[ranked], confidence=conf[ranked],
                                xyxy=objs.xyxy[ranked].astype(np.float64))


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
        return _cluster_nms(objs, params)
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
