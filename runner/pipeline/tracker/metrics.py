"""CLEAR-MOT MOTA and IDF1, for judging trackers on ground truth (tests and benchmarks).

Inputs are tables of ``frame, id, x1, y1, x2, y2`` rows. A hypothesis matches a ground-truth box
when IoU >= ``iou`` (0.5). MOTA keeps last frame's pairs when still valid, then solves the rest per
frame (Hungarian); IDF1 matches whole identities globally.

>>> import numpy as np
>>> gt = np.array([[0, 1, 0, 0, 10, 10], [1, 1, 1, 0, 11, 10]], float)
>>> r = clear_mot(gt, gt.copy()); (r["mota"], r["idf1"])
(1.0, 1.0)
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from runner.pipeline.cluster import iou_matrix


def clear_mot(gt: np.ndarray, hyp: np.ndarray, iou: float = 0.5) -> dict:
    frames = np.union1d(gt[:, 0], hyp[:, 0]) if len(hyp) else np.unique(gt[:, 0])
    fn = fp = idsw = matches = 0
    last: dict[int, int] = {}  # gt id → hyp id it was matched to
    pair_frames: dict[tuple[int, int], int] = {}
    for f in frames:  # O(frames)
        g = gt[gt[:, 0] == f]
        h = hyp[hyp[:, 0] == f] if len(hyp) else hyp
        if not len(h):
            fn += len(g)
            continue
        if not len(g):
            fp += len(h)
            continue
        ov = iou_matrix(g[:, 2:], h[:, 2:])
        cost = np.where(ov >= iou, 1 - ov, 1e6)
        # prefer continuing last frame's pairs (CLEAR-MOT)
        gid, hid = g[:, 1].astype(int), h[:, 1].astype(int)
        prev = np.array([last.get(i, -1) for i in gid])
        cost -= np.where((prev[:, None] == hid[None, :]) & (ov >= iou), 10.0, 0.0)
        r, c = linear_sum_assignment(cost)
        ok = ov[r, c] >= iou
        r, c = r[ok], c[ok]
        matches += len(r)
        for gi, hi in zip(gid[r], hid[c]):
            if gi in last and last[gi] != hi:
                idsw += 1
            last[gi] = hi
            pair_frames[(gi, hi)] = pair_frames.get((gi, hi), 0) + 1
        fn += len(g) - len(r)
        fp += len(h) - len(r)
    n_gt = len(gt)
    mota = 1.0 - (fn + fp + idsw) / max(n_gt, 1)
    # IDF1: global one-to-one identity matching maximising co-matched frames
    g_ids, h_ids = np.unique(gt[:, 1]).astype(int), (np.unique(hyp[:, 1]).astype(int) if len(hyp) else np.zeros(0, int))
    idtp = 0
    if len(g_ids) and len(h_ids) and pair_frames:
        gi = {v: i for i, v in enumerate(g_ids)}
        hi = {v: i for i, v in enumerate(h_ids)}
        w = np.zeros((len(g_ids), len(h_ids)))
        for (a, b), k in pair_frames.items():
            w[gi[a], hi[b]] = k
        r, c = linear_sum_assignment(-w)
        idtp = int(w[r, c].sum())
    idf1 = 2 * idtp / max(len(gt) + len(hyp), 1)
    return {"mota": round(mota, 4), "idf1": round(idf1, 4), "fn": fn, "fp": fp, "idsw": idsw,
            "matches": matches, "gt": n_gt}
