"""The batched trackers' pair routines (runner/pipeline/tracker/pairs.py) against references written
object by object here: a double loop for the pairs, scalar arithmetic for IoU and size similarity (the
formulas of NvMultiObjectTracker's association terms as dsrun's per-stream tracker computes them), and an
enumeration of every matching for the assignment (most valid pairs, then the highest score sum — what
the per-stream Hungarian assignment with costly invalid pairs finds)."""

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from runner.pipeline.tracker import pairs as pairs_module
from runner.pipeline.tracker.pairs import assign_pairs, box_terms, frame_pairs, pair_iou, pair_size_similarity


def test_frame_pairs_are_every_target_and_detection_of_one_frame_by_detection_then_target():
    rng = np.random.default_rng(3)
    t_frame, d_frame = rng.integers(0, 6, 40), np.sort(rng.integers(0, 6, 25))
    t_frame[t_frame == 4] = 5  # a frame with detections and no target
    i, j = frame_pairs(t_frame, d_frame, 6)
    expected = [(a, b) for b in range(len(d_frame)) for a in range(len(t_frame)) if t_frame[a] == d_frame[b]]
    assert list(zip(i.tolist(), j.tolist())) == expected
    assert len(frame_pairs(t_frame, np.zeros(0, np.int64), 6)[0]) == 0
    assert len(frame_pairs(np.zeros(0, np.int64), d_frame, 6)[0]) == 0


def _iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _size_similarity(a, b):
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    sw = min(wa, wb) / max(wa, wb) if max(wa, wb) != 0 else 0.0
    sh = min(ha, hb) / max(ha, hb) if max(ha, hb) != 0 else 0.0
    return sw * sh


def test_pair_iou_and_size_similarity_equal_the_scalar_formulas_bit_for_bit():
    """IoU everywhere; size similarity where the IoU is > 0 (the only pairs that can match)."""
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 100, (300, 2))
    a = np.hstack([xy, xy + rng.uniform(0, 40, (300, 2))])
    b = a + rng.normal(0, 8, (300, 4))
    a[:5, 2:] = a[:5, :2]  # empty boxes: union 0, widths 0
    b[:5] = a[:5]
    iou = pair_iou(box_terms(a), box_terms(b))
    size = pair_size_similarity(box_terms(a), box_terms(b))
    assert iou.tolist() == [_iou(x, y) for x, y in zip(a.tolist(), b.tolist())]
    overlap = iou > 0
    assert size[overlap].tolist() == [_size_similarity(x, y) for x, y in zip(a[overlap].tolist(), b[overlap].tolist())]
    assert np.array_equal(pair_iou(box_terms(b), box_terms(a)), iou)  # symmetric
    assert (iou > 0).sum() > 200 and (iou == 0).sum() > 5


def _best_matching(edges):
    """Every matching of the (target, detection, score) edges: the one with most edges, then the
    highest score sum."""
    best, key = (), (0, 0.0)
    for k in range(len(edges), 0, -1):
        for combo in itertools.combinations(edges, k):
            if len({e[0] for e in combo}) == k and len({e[1] for e in combo}) == k:
                cand = (k, sum(e[2] for e in combo))
                if cand > key:
                    best, key = combo, cand
        if best:
            return {(e[0], e[1]) for e in best}
    return set()


def _streams(rng, streams, density, levels=None):
    """Valid pairs of many streams (targets and detections numbered across streams), some crowded →
    (target rows, detection rows, scores, frame of each pair, frame of each target, of each detection).
    ``levels``: scores drawn from that many values (equal scores: ties)."""
    tr, dr, score, frame, t_frame, d_frame = [], [], [], [], [], []
    for s in range(streams):
        nt, nd = rng.integers(1, 5), rng.integers(1, 5)
        for a in range(nt):
            for b in range(nd):
                if rng.random() < density:
                    tr.append(len(t_frame) + a)
                    dr.append(len(d_frame) + b)
                    score.append(rng.random() if levels is None else rng.integers(1, levels + 1) / levels)
                    frame.append(s)
        t_frame += [s] * nt
        d_frame += [s] * nd
    return (np.array(tr, np.int64), np.array(dr, np.int64), np.array(score), np.array(frame, np.int64),
            np.array(t_frame, np.int64), np.array(d_frame, np.int64))


@pytest.mark.parametrize("density", [0.15, 0.5, 0.9])
def test_assign_pairs_takes_in_each_stream_the_matching_with_most_pairs_then_the_highest_score(density):
    rng = np.random.default_rng(int(density * 100))
    tr, dr, score, frame, t_frame, d_frame = _streams(rng, 40, density)
    mt, md = assign_pairs(tr, dr, score, t_frame, d_frame)
    got = set(zip(mt.tolist(), md.tolist()))
    assert len(got) == len(mt)
    expected = set()
    for s in range(40):
        m = frame == s
        expected |= _best_matching(list(zip(tr[m].tolist(), dr[m].tolist(), score[m].tolist())))
    assert got == expected and len(expected) > 15


def test_assign_pairs_splits_a_large_contest_by_frame_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(9)
    tr, dr, score, frame, t_frame, d_frame = _streams(rng, 60, 0.8)
    whole = set(zip(*(x.tolist() for x in assign_pairs(tr, dr, score, t_frame, d_frame))))
    monkeypatch.setattr(pairs_module, "MAX_ROWS", 8)  # ~120 targets in contest: ~15 matrices
    split = set(zip(*(x.tolist() for x in assign_pairs(tr, dr, score, t_frame, d_frame))))
    assert split == whole
    expected = set()
    for s in range(60):
        m = frame == s
        expected |= _best_matching(list(zip(tr[m].tolist(), dr[m].tolist(), score[m].tolist())))
    assert whole == expected


def test_assign_pairs_breaks_exact_ties_as_the_hungarian_step_on_the_streams_own_matrix():
    """Scores from three values: streams whose competing pairs tie have several optima; each must get
    what scipy's Hungarian assignment gives on that stream's own matrix (rows: its targets in order,
    columns: its detections, a pair that is not valid costing 1e6) — as the per-stream tracker asks it."""
    rng = np.random.default_rng(11)
    tr, dr, score, frame, t_frame, d_frame = _streams(rng, 50, 0.7, levels=3)
    got = set(zip(*(x.tolist() for x in assign_pairs(tr, dr, score, t_frame, d_frame))))
    expected = set()
    for s in range(50):
        rows, cols = np.flatnonzero(t_frame == s), np.flatnonzero(d_frame == s)
        cost = np.full((len(rows), len(cols)), 1e6)
        m = frame == s
        cost[np.searchsorted(rows, tr[m]), np.searchsorted(cols, dr[m])] = -score[m]
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < 1e6
        expected |= set(zip(rows[r[ok]].tolist(), cols[c[ok]].tolist()))
    assert got == expected
    best = set()  # and it is an optimum: most pairs, then the highest score sum
    for s in range(50):
        m = frame == s
        best |= _best_matching(list(zip(tr[m].tolist(), dr[m].tolist(), score[m].tolist())))
    assert len(best) == len(got) and sum(score[(tr == a) & (dr == b)][0] for a, b in got) == pytest.approx(
        sum(score[(tr == a) & (dr == b)][0] for a, b in best))
    assert got != best  # ties that the two rules break differently: the test can tell them apart
