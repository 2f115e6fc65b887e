"""cluster-mode 2 over a whole inference batch: greedy NMS within every (frame, class) group at once,
then ``post-cluster-threshold`` and ``topk`` (nvinfer's ``clusterAndFillDetectionOutputNMS``,
``nonMaximumSuppression`` and ``filterTopKOutputs``; tests/reference/nvdsinfer.py ports them).

* :func:`nms_keep` — one group, the greedy rule to its fixed point on the group's IoU matrix;
* :func:`grouped_nms` — every group of a batch: ranks them all at once (``nms_device.group_runs``),
  finds the overlapping pairs (on the host here, or on the GPU: ``runner.pipeline.nms_device``) and
  runs the same rule on that pair list (``nms_device.greedy_keep``);
* :func:`cluster_nms` — the GIE's cluster-mode 2: with ``topk``, each group's best-ranked prefix
  first (a box's fate depends only on the boxes ranked before it).

Each numpy call over more than ~500 elements and each torch call gives the interpreter lock away; with
the pipeline's ~70 threads wanting it, the number of such calls per batch is what this module keeps
small (scripts/bench_pgie_post.py counts them).

>>> import numpy as np
>>> xyxy = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], float)
>>> nms_keep(xyxy, np.array([0.9, 0.8, 0.7]), 0.5).tolist()  # 1 overlaps 0 by 0.81
[0, 2]
"""

from __future__ import annotations

import logging
import os

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.nms_device import greedy_keep, group_runs, runs

__all__ = ["cluster_nms", "grouped_nms", "iou_matrix", "nms_keep", "DEVICE_MIN_PAIRS"]


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
    run, offset = runs(lengths)
    return starts[run] + offset


PAIRWISE_GROUP_LIMIT = 2048  # a group's pairs: n(n-1)/2 — 2 M pairs at this size
# fewer pairs in a batch: the host pass (~2 ms at this size on the 2-core CI machine, ~25 numpy calls,
# whose loops run without the interpreter lock). The device pass takes ~0.5 ms more or less whatever
# the size but gives the lock away at each of its ~30 torch calls and ~40 more numpy ones: with ~70
# threads wanting the lock, each costs far more than its work (scripts/bench_pgie_post.py counts them;
# scripts/bench_nms.py times both passes). The benchmark's batch with topk 3 is ~13 k pairs (prefixes).
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


def cluster_nms(objs: Objects, params) -> Objects:
    """cluster-mode 2 for every (frame, class) group at once: NMS, then boxes strictly above
    post-cluster-threshold, then ``topk`` per group; ordered by frame, class, descending confidence.
    ``params``: the detector's ``cluster.ClassParams``.

    With ``topk``, a group's output is its first ``topk`` kept boxes in rank order, and whether a box
    is kept depends only on the boxes ranked before it: NMS on a group's best-ranked prefix keeps the
    same boxes of that prefix as NMS on the whole group. So each group is suppressed within a prefix
    (:data:`TOPK_PREFIX` times its topk, at least :data:`MIN_PREFIX` boxes), and only a group whose
    prefix keeps fewer than topk boxes again, with a prefix four times as long, until it keeps enough
    or is whole — the same output, for the overlaps of a few boxes per group instead of all of them
    (the benchmark's batch, topk 3: ~13 k pairs instead of ~380 k; scripts/bench_pgie_post.py)."""
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
    return Objects.from_columns(frame=objs.frame[ranked], class_id=objs.class_id[ranked],
                                confidence=objs.confidence[ranked], xyxy=objs.xyxy[ranked])
