"""Greedy NMS within groups with the overlaps found on a torch device: the GPU twin of
``nms.grouped_nms``'s host pass.

Same rule, same result: inside each group (a frame and class of the inference batch), boxes ranked by
descending confidence (ties keep row order), a box is kept unless a kept, higher-ranked box of its
group overlaps it by more than its threshold — the greedy NMS of ``nms_keep``, reached as the fixed
point of that rule (:func:`greedy_keep`).

The work is split where each side is cheap. The device answers one question for every group of the
batch at once: which pairs overlap by more than the threshold. The host ranks the candidates (one
``lexsort``) and cuts each group into blocks of :data:`BLOCK` consecutive ranks, written to pinned
memory as ``(blocks, BLOCK, 7)`` float64 rows (x1, y1, -x2, -y2, area, threshold, rank; padding is
NaN, which overlaps nothing) beside the list of block pairs (each block with itself and the later
blocks of its group). The device compares the blocks of every pair — every pair's IoU in float64,
``inter / union`` rounded exactly as the host pass rounds it — keeps the pairs above the threshold and
ranked before-after, and sends back only those (``nonzero_static``: a few thousand flat indices for the
~8,600 candidates of a batch of 32 frames) in one download. The fixed point then runs on the host over
that short pair list, however long the suppression chains are (13 rounds on the benchmark's
candidates), at no device cost.

Per batch that is 12 kernels, ~16 torch calls that give the interpreter lock away and **one host
sync** (the download; the uploads are asynchronous from pinned memory), whatever the number of frames,
groups or candidates. The previous version generated the pairs and iterated the rule on the device:
~150 torch calls and 7 syncs on the same batch (a pageable upload, a convergence check every 3 rounds,
the download) — and every torch call gives the interpreter lock away and must win it back from the
pipeline's other threads (docs/bench/bench_h200_pyspy_i1_n64.txt). ``scripts/bench_nms.py`` counts
and times both. Blocks keep the work proportional to the pairs the groups have, however unequal their
sizes; block pairs are taken :data:`CELL_BUDGET` cells per device pass so memory stays bounded.

>>> import numpy as np, torch
>>> xyxy = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], float)
>>> keep = grouped_nms_device(torch, "cpu", xyxy, np.array([.9, .8, .7, .6]), np.array([0, 0, 0, 1]),
...                           np.full(4, 0.5))
>>> keep.tolist()  # row 1 overlaps row 0 in group 0; row 3 is alone in group 1
[True, False, True, True]
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["grouped_nms_device", "group_runs", "greedy_keep", "CELL_BUDGET"]

BLOCK = 32  # ranks per block: groups are compared block against block
# (block pair, row, column) cells per device pass: the widest intermediate is (cells, 4) float64, 128 MB
# at this size; the benchmark's batch (~8,600 candidates in 128 groups of 6-115) is 0.7 M cells
CELL_BUDGET = 4_000_000
EDGES_PER_BOX = 4  # first guess of overlapping pairs per candidate: sizes the one download (8 bytes each)


def group_runs(conf: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, starts, sizes)``: rows by group, then descending confidence (stable: ties keep row
    order), and where each group's run starts in ``order`` and how long it is — the ranking both NMS
    passes (this one and ``nms.grouped_nms``'s host pass) suppress in."""
    order = np.argsort(-np.asarray(conf, np.float64), kind="stable")
    g = np.asarray(group)[order]
    if len(g) and g.min() >= 0 and g.max() < 1 << 16:
        g = g.astype(np.uint16)  # numpy sorts 16-bit keys by radix: stable, and ~2x faster here
    order = order[np.argsort(g, kind="stable")]  # = lexsort((-conf, group)), in ~60 % of its time
    g = np.asarray(group)[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return order, starts, np.diff(np.r_[starts, len(order)])


def greedy_keep(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Alive flags of ``n`` ranked boxes given every overlapping pair ``src`` → ``dst`` (``src`` ranked
    before ``dst`` in one group): ``nms_keep``'s rule — kept unless a kept, higher-ranked box overlaps
    it — iterated to its fixed point (as many rounds as the longest suppression chain)."""
    alive = np.ones(n, bool)
    if not len(dst):
        return alive
    # Only boxes some pair can suppress ("targets") change. Pairs sorted by target, each target's
    # suppressors are one run: a round is one gather and one ``logical_or.reduceat`` over the pairs.
    by_target = np.argsort(dst, kind="stable")
    dst = dst[by_target]
    first = np.flatnonzero(np.r_[True, dst[1:] != dst[:-1]])
    targets = dst[first]
    slot = np.full(n, len(targets))  # a box no pair suppresses: the last slot, alive throughout
    slot[targets] = np.arange(len(targets))
    src_slot = slot[src[by_target]]
    state = np.ones(len(targets) + 1, bool)
    target_alive = state[:-1]  # (a view: written in place)
    while True:
        killed = np.logical_or.reduceat(state[src_slot], first)
        if not (killed == target_alive).any():  # every target's next flag, not killed, is its flag now
            alive[targets] = target_alive
            return alive
        np.logical_not(killed, out=target_alive)


def grouped_nms_device(torch, device, xyxy: np.ndarray, conf: np.ndarray, group: np.ndarray,
                       threshold: np.ndarray, runs=None) -> np.ndarray:
    """Bool keep mask per row (host numpy), the overlaps computed on ``device``; ``threshold`` is per
    row; ``runs``: :func:`group_runs`'s answer when the caller has it already."""
    n = len(conf)
    keep = np.zeros(n, bool)
    if n == 0:
        return keep
    device = torch.device(device)
    order, starts, sizes = runs if runs is not None else group_runs(conf, np.asarray(group, np.int64))
    src, dst = _overlaps(torch, device, np.asarray(xyxy, np.float64)[order], np.asarray(threshold, np.float64)[order],
                         starts, sizes)
    keep[order[greedy_keep(src, dst, n)]] = True
    return keep


_STAGING = threading.local()  # per thread: a pinned host block the uploads are written into


def _staging(torch, device, nbytes: int) -> np.ndarray:
    """``nbytes`` of host memory to upload from: pinned (page-locked) on CUDA, so the copies are
    asynchronous. Reused by the next call of the same thread: each call ends in a download on the same
    stream after its uploads, so they are done by then."""
    if device.type != "cuda":
        return np.empty(nbytes, np.uint8)
    block = getattr(_STAGING, "block", None)
    if block is None or block.numel() < nbytes:
        block = torch.empty(max(nbytes, 2 * (0 if block is None else block.numel())), dtype=torch.uint8,
                            pin_memory=True)
        _STAGING.block, _STAGING.array = block, block.numpy()
    return _STAGING.array[:nbytes]


def runs(length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(run, offset)`` of every element of consecutive runs of ``length[r]`` elements."""
    run = np.repeat(np.arange(len(length)), length)
    return run, np.arange(len(run)) - np.repeat(np.cumsum(length) - length, length)


def _overlaps(torch, device, box, thr, starts, sizes):
    """``(src, dst)``: positions (in the ranking) of the pairs of one group whose IoU is above the
    higher-ranked box's threshold, ``src`` ranked before ``dst``.

    Each group is cut into blocks of :data:`BLOCK` consecutive ranks; the device compares every block
    with itself and with the later blocks of its group (block pairs), so the work follows the pairs
    the groups have, however unequal their sizes."""
    multi = sizes > 1
    if not multi.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    g_start, g_size = starts[multi], sizes[multi]
    blocks = -(-g_size // BLOCK)
    b_group, b_index = runs(blocks)
    b_start = g_start[b_group] + b_index * BLOCK
    b_size = np.minimum(BLOCK, g_start[b_group] + g_size[b_group] - b_start)
    # block pairs: every block with itself and the later blocks of its group
    last_block = np.repeat(np.cumsum(blocks) - 1, blocks)
    pair_a, step = runs(last_block - np.arange(len(b_start)) + 1)
    pair_b = pair_a + step
    n_blocks, n_pairs = len(b_start), len(pair_a)
    host = _staging(torch, device, 8 * (n_blocks * BLOCK * 7 + 2 * n_pairs))
    rows = host[:8 * n_blocks * BLOCK * 7].view(np.float64).reshape(n_blocks, BLOCK, 7)
    pairs = host[8 * n_blocks * BLOCK * 7:].view(np.int64)
    rows.fill(np.nan)  # padding: NaN corners overlap nothing
    member, slot = runs(b_size)
    pos = b_start[member] + slot
    b = box[pos]
    values = np.empty((len(pos), 7))
    values[:, 0:2] = b[:, 0:2]  # x1, y1, -x2, -y2: one maximum gives the intersection's corners
    np.negative(b[:, 2:4], out=values[:, 2:4])  # (negation is exact)
    values[:, 4] = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # area, as the host pass computes it
    values[:, 5] = thr[pos]
    values[:, 6] = pos  # rank: only pairs ranked before-after count
    rows.reshape(-1, 7)[member * BLOCK + slot] = values
    pairs[:n_pairs] = pair_a
    pairs[n_pairs:] = pair_b
    negative = not (thr[pos] >= 0).all()
    rows_d = torch.from_numpy(rows).to(device, non_blocking=True)
    pairs_d = torch.from_numpy(pairs).to(device, non_blocking=True)
    src, dst = [], []
    per_pass = max(1, CELL_BUDGET // (BLOCK * BLOCK))
    for lo in range(0, n_pairs, per_pass):  # one pass in the common case
        hi = min(n_pairs, lo + per_pass)
        index = pairs_d if hi - lo == n_pairs else torch.cat((pairs_d[lo:hi], pairs_d[n_pairs + lo:n_pairs + hi]))
        p, rest = np.divmod(_pass(torch, rows_d, index, hi - lo, negative, len(pos)), BLOCK * BLOCK)
        src.append(b_start[pair_a[lo + p]] + rest // BLOCK)
        dst.append(b_start[pair_b[lo + p]] + rest % BLOCK)
    return np.concatenate(src), np.concatenate(dst)


def _pass(torch, rows, index, m: int, negative: bool, boxes: int) -> np.ndarray:
    """Flat (pair, row, column) indices of the overlapping ranked pairs among the ``m`` block pairs
    ``index`` (first blocks, then second blocks) of a batch of ``boxes`` candidates."""
    both = torch.index_select(rows, 0, index)
    a, b = both[:m], both[m:]
    corner = torch.maximum(a[:, :, None, :4], b[:, None, :, :4])
    # max(x1) + max(-x2) = -(min(x2) - max(x1)) rounded alike; clamped at 0 and multiplied: iw * ih
    inter = corner[..., :2].add_(corner[..., 2:]).clamp_(max=0).prod(-1)
    union = a[:, :, None, 4] + b[:, None, :, 4]
    union.sub_(inter)
    iou = inter.div_(union)
    if negative:  # the host counts an empty union as IoU 0, which a negative threshold passes
        iou = torch.where(union <= 0, 0.0, iou)  # (padding's NaN union stays NaN: no pair)
    edge = (iou > a[:, :, None, 5]).logical_and_(a[:, :, None, 6] < b[:, None, :, 6])
    return _nonzero(torch, edge.view(-1), boxes)


def _nonzero(torch, flags, boxes: int) -> np.ndarray:
    """Flat indices of the true ``flags`` on the host, in one download: ``nonzero_static`` into room for
    :data:`EDGES_PER_BOX` per box (grown when a batch needs more); ``nonzero`` (one more sync) where
    there is no room or no ``nonzero_static``."""
    global EDGES_PER_BOX
    room = EDGES_PER_BOX * boxes + 64
    if hasattr(torch, "nonzero_static"):
        got = torch.nonzero_static(flags, size=room + 1, fill_value=-1).cpu().numpy()[:, 0]
        if got[-1] < 0:  # not full: every hit is there
            return got[got >= 0]
    got = torch.nonzero(flags).cpu().numpy()[:, 0]
    EDGES_PER_BOX = max(EDGES_PER_BOX, -(-2 * len(got) // max(boxes, 1)))
    return got
