"""Target/detection pairs of every stream of a round at once: which pairs exist, their scores, and the
assignment — each a fixed number of numpy calls per batch, whatever the number of streams or objects.

* :func:`frame_pairs`: every (target, detection) pair of the same frame (one frame per stream in a
  round, so "same frame" is "same stream");
* :func:`pair_iou`, :func:`pair_size_similarity`: the association terms of those pairs, with the
  arithmetic of :func:`runner.pipeline.cluster.iou_matrix` and :func:`.common.size_similarity`, bit for
  bit (the size term for pairs that overlap, the only ones that can match);
* :func:`assign_pairs`: the per-stream Hungarian assignment of :func:`.common.assign` for all streams
  in one call.

>>> i, j = frame_pairs(np.array([1, 0, 1]), np.array([0, 1, 2]), 3)
>>> i.tolist(), j.tolist()   # target 1 with detection 0; targets 0 and 2 with detection 1
([1, 0, 2], [0, 1, 1])
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from runner.pipeline.tracker.common import INVALID_COST, assign

#: largest number of rows of one assignment matrix (rows x columns grows with the number of streams
#: in contest; more rows are split by frame into several calls)
MAX_ROWS = 64


def frame_pairs(t_frame: np.ndarray, d_frame: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with ``t_frame[i] == d_frame[j]`` (frame indices below ``frames``, or any key below
    it such as frame and class): ordered by j, then by i ascending."""
    order = np.argsort(t_frame, kind="stable")
    count = np.bincount(t_frame, minlength=frames)
    c = count[d_frame]
    ends = np.cumsum(c)
    # pair k of detection j takes the (k - first pair of j)-th target of j's frame
    first_target = (np.cumsum(count) - count)[d_frame] - (ends - c)
    j = np.repeat(np.arange(len(d_frame)), c)
    return order[np.repeat(first_target, c) + np.arange(ends[-1] if len(ends) else 0)], j


def box_terms(xyxy: np.ndarray) -> np.ndarray:
    """(7, n) per box: x1, y1, x2, y2, width, height, area — what pair scores read, computed once per
    box; one row per term, so that gathering pairs and the arithmetic on them run over contiguous rows."""
    out = np.empty((7, len(xyxy)))
    out[:4] = xyxy.T
    np.subtract(out[2:4], out[0:2], out=out[4:6])
    np.multiply(out[4], out[5], out=out[6])
    return out


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of columns ``a[:, k]`` and ``b[:, k]`` of :func:`box_terms` — ``cluster.iou_matrix``'s
    arithmetic, pairwise (symmetric bit for bit: min, max, + and x commute)."""
    iw_ih = np.maximum(np.minimum(a[2:4], b[2:4]) - np.maximum(a[0:2], b[0:2]), 0)
    inter = iw_ih[0] * iw_ih[1]
    union = a[6] + b[6] - inter
    ok = union > 0
    return np.where(ok, inter / np.where(ok, union, 1), 0.0)


def pair_size_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`.common.size_similarity` of columns ``a[:, k]`` and ``b[:, k]`` of :func:`box_terms` where
    both boxes have a width and a height (as two boxes whose IoU is > 0 have): NaN or inf elsewhere,
    where ``size_similarity``'s ``nan_to_num`` makes its 0 or a huge number of a pair that cannot match."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.minimum(a[4:6], b[4:6]) / np.maximum(a[4:6], b[4:6])
    return s[0] * s[1]


def assign_pairs(tr: np.ndarray, dr: np.ndarray, score: np.ndarray, t_frame: np.ndarray,
                 d_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best one-to-one assignment among valid pairs (target row, detection row, score) of many
    streams → (target rows, detection rows) matched. ``t_frame`` / ``d_frame``: the frame of every
    target / detection row taking part (-1 for the others; rows of one frame in the per-stream
    tracker's order).

    What :func:`.common.assign` gives stream by stream: the Hungarian assignment where a pair that is
    not valid costs :data:`.common.INVALID_COST` — the matching with the most valid pairs, then the highest sum of
    scores. That optimum is the union of the optima of the graph's connected parts, so:

    * a pair whose target and detection are in no other valid pair is taken as it is;
    * the other pairs (targets competing for detections) go to one assignment matrix over all their
      streams (split by frame past :data:`MAX_ROWS` targets) — the streams' blocks cannot disturb each
      other, every pair across two streams being invalid;
    * a stream where two competing pairs have exactly the same score (duplicate boxes) may have two
      optima: it gets :func:`.common.assign` on its own matrix, the per-stream tracker's very step, so
      that the tie goes the same way (rare: no call at all on the benchmark's real detections).

    Equal to the per-stream assignment unless two assignments of a stream made of different scores
    have sums equal, or within the rounding of costs near :data:`.common.INVALID_COST` (~1e-9), of each
    other — with real detectors' boxes, not seen (scripts/bench_tracker.py --check).
    """
    if not len(tr):
        return tr, dr
    shared = (np.bincount(tr, minlength=len(t_frame))[tr] > 1) | (np.bincount(dr, minlength=len(d_frame))[dr] > 1)
    if not shared.any():
        return tr, dr
    out_t, out_d = [], []
    cf, cs = t_frame[tr[shared]], score[shared]
    by = np.lexsort((cs, cf))
    tie = (cf[by][1:] == cf[by][:-1]) & (cs[by][1:] == cs[by][:-1])
    if tie.any():  # streams with equal competing scores: stream by stream (O(such streams), usually none)
        pair_frame = t_frame[tr]
        tie_frames = np.unique(cf[by][1:][tie])
        for f in tie_frames.tolist():
            rows_t, rows_d = np.flatnonzero(t_frame == f), np.flatnonzero(d_frame == f)
            m = pair_frame == f
            valid = np.zeros((len(rows_t), len(rows_d)), bool)
            block = np.zeros((len(rows_t), len(rows_d)))
            at = np.searchsorted(rows_t, tr[m]), np.searchsorted(rows_d, dr[m])
            valid[at], block[at] = True, score[m]
            r, c = assign(block, valid)
            out_t.append(rows_t[r])
            out_d.append(rows_d[c])
        rest = ~np.isin(pair_frame, tie_frames)
        tr, dr, score, shared = tr[rest], dr[rest], score[rest], shared[rest]
    out_t.append(tr[~shared])
    out_d.append(dr[~shared])
    ct, cd, cs = tr[shared], dr[shared], score[shared]
    if len(ct):
        rows = np.zeros(len(t_frame), np.int64)
        rows[ct] = 1
        chunks = 1 + int(rows.sum()) // MAX_ROWS
        cf = t_frame[ct]
        part = cf * chunks // (int(cf.max()) + 1)  # frames cut into ``chunks`` runs
        for k in range(chunks):  # O(contested targets / MAX_ROWS): 1 below MAX_ROWS targets in contest
            m = part == k if chunks > 1 else slice(None)
            t, d = _assign_block(ct[m], cd[m], cs[m], len(t_frame), len(d_frame))
            out_t.append(t)
            out_d.append(d)
    return np.concatenate(out_t), np.concatenate(out_d)


def _assign_block(tr, dr, score, n_targets: int, n_dets: int) -> tuple[np.ndarray, np.ndarray]:
    """One Hungarian assignment over the targets and detections of the pairs (invalid elsewhere)."""
    row = np.zeros(n_targets, np.int64)
    col = np.zeros(n_dets, np.int64)
    row[tr] = 1
    col[dr] = 1
    ut, ud = np.flatnonzero(row), np.flatnonzero(col)
    row[ut] = np.arange(len(ut))
    col[ud] = np.arange(len(ud))
    cost = np.full((len(ut), len(ud)), INVALID_COST)
    cost[row[tr], col[dr]] = -score
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] < INVALID_COST
    return ut[r[ok]], ud[c[ok]]
