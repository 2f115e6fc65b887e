"""Counts of keys added a batch at a time as numpy columns, counted only when someone reads them.

The run counters that group a batch's objects (per source, GIE and class; classifier labels per GIE)
used to group every batch as it passed — an ``np.unique`` and a Python loop over the distinct keys,
per batch, on the stage thread, under the interpreter lock. A :class:`Tally` keeps the batch's columns
as they are (one list append) and groups them when a reader asks (``snapshot()``: the dashboard,
metrics, ``--report``), or once enough rows wait (:data:`FOLD_ROWS`) so memory stays bounded. The
Python work per batch does not grow with the batch's objects; the grouping is one sort over many
batches at once.

>>> import numpy as np
>>> t = Tally((np.int64, np.int64))
>>> t.add(np.array([0, 1, 0]), np.array([2, 2, 2]))
>>> t.add(np.array([1]), np.array([5]))
>>> t.counts()
{(0, 2): 2, (1, 2): 1, (1, 5): 1}
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["Tally", "count_rows", "FOLD_ROWS"]

FOLD_ROWS = 1 << 16  # rows waiting before they are grouped without a reader (bounds the memory held)


def count_rows(columns: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The distinct rows of equal-length ``columns`` (sorted, first column first) and how often each
    occurs: what ``np.unique(np.stack(columns, 1), axis=0, return_counts=True)`` gives, by one
    ``lexsort`` instead of a sort of row records."""
    if len(columns) == 1:
        keys, counts = np.unique(columns[0], return_counts=True)
        return [keys], counts
    n = len(columns[0])
    order = np.lexsort(columns[::-1])  # lexsort sorts by its last key first
    ordered = [c[order] for c in columns]
    new_key = np.zeros(n, bool)  # True where a row differs from the one before it
    new_key[:1] = True
    for c in ordered:  # over the columns, not the rows
        new_key[1:] |= c[1:] != c[:-1]
    first = np.flatnonzero(new_key)
    return [c[first] for c in ordered], np.diff(np.append(first, n))


class Tally:
    """A count per distinct row of ``len(dtypes)`` columns (each cast to its dtype when grouped).

    :meth:`add` takes one batch's columns; :meth:`counts` groups what waits and returns
    ``{key: n}`` (``key`` a tuple of Python values, or the value itself for one column)."""

    def __init__(self, dtypes: tuple) -> None:
        self.dtypes = tuple(dtypes)
        self._pending: list[tuple] = []
        self._rows = 0
        self._counts: dict = {}
        self._lock = threading.Lock()

    def add(self, *columns) -> None:
        n = len(columns[0])
        if not n:
            return
        columns = tuple(np.array(c) for c in columns)  # copies: the batch's columns may change later
        with self._lock:
            self._pending.append(columns)
            self._rows += n
            if self._rows >= FOLD_ROWS:
                self._fold()

    def counts(self) -> dict:
        with self._lock:
            self._fold()
            return dict(self._counts)

    def replace(self, counts: dict, keep=None) -> None:
        """Counts set from outside (another process's snapshot): ``counts`` replace the keys for which
        ``keep(key)`` is false (all keys when ``keep`` is None)."""
        with self._lock:
            self._fold()
            self._counts = {k: v for k, v in self._counts.items() if keep is not None and keep(k)}
            self._counts.update(counts)

    def _fold(self) -> None:
        if not self._pending:
            return
        columns = [np.asarray(np.concatenate(parts), dtype) for parts, dtype in
                   zip(zip(*self._pending), self.dtypes)]
        self._pending, self._rows = [], 0
        keys, counts = count_rows(columns)
        rows = zip(*(k.tolist() for k in keys)) if len(keys) > 1 else keys[0].tolist()
        into = self._counts
        for key, n in zip(rows, counts.tolist()):  # distinct keys of many batches, once per read
            into[key] = into.get(key, 0) + n
