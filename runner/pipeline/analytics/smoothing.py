"""Per-class object counts smoothed over a time window: ``NvDsAnalyticCtxImpl::getSmoothCnt``
(src/utils/nvds_analytics/nvds_analytics.cpp).

For each class the C++ keeps a histogram of the counts seen in the last ``window_ms`` (by frame pts) and
reports its most frequent count. Ties are common (a 50 ms window at 30 fps holds two frames, so every
change of count is a tie) and ``std::max_element`` resolves them by the histogram's iteration order — a
``std::unordered_map<uint32_t, uint32_t>``. :class:`StdUnorderedOrder` reproduces libstdc++'s node order
for such a map (identity hash, prime bucket counts, new buckets linked at the front, rehash relinking),
so a count change shows on the same frame it does in DeepStream on Linux.

>>> s = CountSmoother(50)
>>> [s.update(([0], [n]), pts * 33_333_333)[0] for pts, n in enumerate([3, 3, 4, 4, 4])]
[3, 3, 4, 4, 4]
"""

from __future__ import annotations

import bisect

__all__ = ["CountSmoother", "StdUnorderedOrder"]

# libstdc++ _Prime_rehash_policy: small bucket counts come from this table, larger from its prime list
_FAST_BKT = (2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13)
_PRIMES = (17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127,
           137, 139, 149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409,
           439, 467, 503, 541, 577, 619, 661, 709, 761, 823, 887, 953, 1031, 1109, 1187, 1277, 1361, 1459)


def _next_bucket(n: int) -> int:
    if n < len(_FAST_BKT):
        return _FAST_BKT[n]
    return _PRIMES[min(bisect.bisect_left(_PRIMES, n), len(_PRIMES) - 1)]


class StdUnorderedOrder:
    """Iteration order of the keys of a libstdc++ ``unordered_map<uint32_t, …>`` that is only inserted into.

    >>> m = StdUnorderedOrder()
    >>> for k in (3, 4, 0): m.insert(k)
    >>> m.keys
    [0, 4, 3]
    """

    def __init__(self) -> None:
        self.keys: list[int] = []  # the singly linked node list, front first
        self.buckets = 1
        self.next_resize = 0

    def insert(self, key: int) -> None:
        if key in self.keys:
            return
        n = len(self.keys)
        if n + 1 > self.next_resize:  # _M_need_rehash
            min_bkts = max(n + 1, 11 if self.next_resize == 0 else 0)  # a first insert makes 13 buckets
            if min_bkts >= self.buckets:
                self._rehash(_next_bucket(max(min_bkts + 1, self.buckets * 2)))
            else:
                self.next_resize = self.buckets
        self._link(key)

    def _bucket(self, key: int) -> int:
        return key % self.buckets

    def _link(self, key: int) -> None:
        b = self._bucket(key)
        first = next((i for i, k in enumerate(self.keys) if self._bucket(k) == b), None)
        if first is None:
            self.keys.insert(0, key)  # an empty bucket's node goes to the front of the list
        else:
            self.keys.insert(first, key)  # else first in its bucket

    def _rehash(self, n: int) -> None:
        old, self.keys, self.buckets = self.keys, [], n
        self.next_resize = n
        for key in old:  # _M_rehash_aux: each node relinked, in the old order
            self._link(key)


class _ClassHistory:
    def __init__(self) -> None:
        self.pdf: dict[int, int] = {}
        self.order = StdUnorderedOrder()
        self.past: dict[int, int] = {}  # pts -> count
        self.last_update: int | None = None


class CountSmoother:
    """``getSmoothCnt`` for every class of one stream (``window_ms``: obj-cnt-win-in-ms, default 50)."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.classes: dict[int, _ClassHistory] = {}

    def _smooth(self, class_id: int, count: int, pts: int) -> int:
        h = self.classes.setdefault(class_id, _ClassHistory())
        h.order.insert(count)
        h.pdf[count] = h.pdf.get(count, 0) + 1
        for past_pts, past_count in list(h.past.items()):
            if (pts - past_pts) / 1e6 > self.window_ms:
                del h.past[past_pts]
                h.pdf[past_count] -= 1
        best = max(h.order.keys, key=lambda k: h.pdf[k])  # first maximum in iteration order
        h.past[pts] = count
        h.last_update = pts
        return best

    def update(self, counts: tuple, pts: int) -> dict[int, int]:
        """``counts`` = (class ids, objects per class) of this frame → smoothed count per class
        (classes seen earlier and absent now are smoothed with a count of 0)."""
        out = {int(c): self._smooth(int(c), int(n), pts) for c, n in zip(*counts)}
        for class_id, h in list(self.classes.items()):
            if h.last_update != pts:
                out[class_id] = self._smooth(class_id, 0, pts)
        return out
