"""Greedy NMS within groups, on a torch device: the GPU twin of ``cluster.grouped_nms``'s host pass.

Same rule, same result: inside each group (a frame and class of the inference batch), boxes ranked by
descending confidence (ties keep row order), a box is kept unless a kept, higher-ranked box of its
group overlaps it by more than its threshold — the greedy NMS of ``nms_keep``, reached as the fixed
point of that rule over the list of overlapping pairs. Every group of the batch is done at once: the
pairs of all groups are generated on the device, their IoUs computed in float64 as the host does, and
the rule iterated to its fixed point (as many applications as the longest suppression chain),
checked every :data:`ROUNDS` applications: three host syncs per batch in the common case (a GPU stage
that waits for the device gives the interpreter lock away and may wait that long to get it back). No
kernel is serial over the boxes (torchvision's ``batched_nms`` ends in a one-block
``gather_keep_from_mask`` pass over every candidate, which took 14-23 % of the H200's time at 32
sources — docs/bench/bench_h200_profile_i*_n32.txt).

Groups are taken in chunks of at most :data:`PAIR_BUDGET` pairs so memory stays bounded whatever the
candidate count; one group larger than the budget is a chunk of its own.

>>> import numpy as np, torch
>>> xyxy = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], float)
>>> keep = grouped_nms_device(torch, "cpu", xyxy, np.array([.9, .8, .7, .6]), np.array([0, 0, 0, 1]),
...                           np.full(4, 0.5))
>>> keep.tolist()  # row 1 overlaps row 0 in group 0; row 3 is alone in group 1
[True, False, True, True]
"""

from __future__ import annotations

import numpy as np

__all__ = ["grouped_nms_device", "group_runs", "PAIR_BUDGET"]

PAIR_BUDGET = 8_000_000  # pairs per chunk: ~8 float64/int64 columns of this length, ~0.5 GB at most


def group_runs(conf: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, starts, sizes)``: rows by group, then descending confidence (stable: ties keep row
    order), and where each group's run starts in ``order`` and how long it is — the ranking both NMS
    passes (this one and ``cluster.grouped_nms``'s host pass) suppress in."""
    order = np.lexsort((-np.asarray(conf, np.float64), group))
    g = np.asarray(group)[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return order, starts, np.diff(np.r_[starts, len(order)])


def grouped_nms_device(torch, device, xyxy: np.ndarray, conf: np.ndarray, group: np.ndarray,
                       threshold: np.ndarray) -> np.ndarray:
    """Bool keep mask per row (host numpy), computed on ``device``; ``threshold`` is per row."""
    n = len(conf)
    keep = np.zeros(n, bool)
    if n == 0:
        return keep
    order, starts, sizes = group_runs(conf, np.asarray(group, np.int64))
    pairs = sizes * (sizes - 1) // 2
    # the sorted rows reach the device in one copy: box, threshold, boxes ranked after each box in its group
    later = np.repeat(starts + sizes, sizes) - np.arange(n) - 1
    rows = np.column_stack([np.asarray(xyxy, np.float64)[order], np.asarray(threshold, np.float64)[order], later])
    rows_t = torch.from_numpy(np.ascontiguousarray(rows)).to(device)
    alive = np.ones(n, bool)  # by position in ``order``
    first = 0
    while first < len(starts):  # chunks of whole groups, each within the pair budget (or one group)
        last = first + 1
        budget = int(pairs[first])
        while last < len(starts) and budget + int(pairs[last]) <= PAIR_BUDGET:
            budget += int(pairs[last])
            last += 1
        lo, hi = int(starts[first]), int(starts[last]) if last < len(starts) else n
        if budget:
            alive[lo:hi] = _fixed_point(torch, rows_t[lo:hi], budget)
        first = last
    keep[order[alive]] = True
    return keep


ROUNDS = 3  # rule applications between two convergence checks (each check is one host sync)


def _fixed_point(torch, rows, total_pairs: int) -> np.ndarray:
    """Alive flags (host) of ``rows`` (sorted boxes, threshold, later-count of consecutive groups)."""
    device = rows.device
    m = rows.shape[0]
    later = rows[:, 5].long()
    # every pair (a, b), a ranked before b in one group: b = a + 1 .. end of its group - 1
    a = torch.repeat_interleave(torch.arange(m, device=device), later, output_size=total_pairs)
    first_pair = torch.cumsum(later, 0) - later
    b = a + 1 + (torch.arange(total_pairs, device=device)
                 - torch.repeat_interleave(first_pair, later, output_size=total_pairs))
    box_a, box_b = rows[a], rows[b]
    iw = (torch.minimum(box_a[:, 2], box_b[:, 2]) - torch.maximum(box_a[:, 0], box_b[:, 0])).clamp(min=0)
    ih = (torch.minimum(box_a[:, 3], box_b[:, 3]) - torch.maximum(box_a[:, 1], box_b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = ((box_a[:, 2] - box_a[:, 0]) * (box_a[:, 3] - box_a[:, 1])
             + (box_b[:, 2] - box_b[:, 0]) * (box_b[:, 3] - box_b[:, 1]) - inter)
    iou = torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)),
                      torch.zeros_like(union))
    edge = iou > box_a[:, 4]  # a kept ``a`` suppresses ``b``
    del box_a, box_b, iw, ih, inter, union, iou
    alive = torch.ones(m, dtype=torch.bool, device=device)
    while True:  # no host sync inside a round: the pairs stay whole, suppression is a masked scatter
        for _ in range(ROUNDS):
            previous = alive
            hits = torch.zeros(m, dtype=torch.int32, device=device).index_add_(0, b, (edge & alive[a]).to(torch.int32))
            alive = hits == 0
        if torch.equal(previous, alive):
            return alive.cpu().numpy()
