"""Counters the ``--report`` file and the dashboard read: objects per GIE and class, classifier labels
per GIE. Writers (GIE stages) add one batch's columns at a time, grouped only when a reader calls
:meth:`InferCounters.snapshot`.

>>> import numpy as np
>>> c = InferCounters()
>>> c.count_objects(1, np.array([0, 2, 0]))
>>> c.count_labels(2, np.array(["red", "red", "blue"], dtype=object))
>>> c.snapshot()
{'objects': {'1': {'0': 2, '2': 1}}, 'labels': {'2': {'blue': 1, 'red': 2}}}
"""

from __future__ import annotations

import threading

import numpy as np

from runner.pipeline.tally import Tally


class InferCounters:
    """Writers add a batch's columns (one list append, :class:`runner.pipeline.tally.Tally`); they are
    grouped by class or label when :meth:`snapshot` reads them."""

    def __init__(self) -> None:
        self._objects: dict[int, Tally] = {}  # gie → class ids
        self._labels: dict[int, Tally] = {}  # gie → labels
        self._lock = threading.Lock()

    def _tally(self, table: dict, gie_id: int, dtype) -> Tally:
        tally = table.get(gie_id)
        if tally is None:
            with self._lock:
                tally = table.setdefault(gie_id, Tally((dtype,)))
        return tally

    def count_objects(self, gie_id: int, class_ids: np.ndarray) -> None:
        if len(class_ids):
            self._tally(self._objects, int(gie_id), np.int64).add(np.asarray(class_ids))

    def count_labels(self, gie_id: int, labels: np.ndarray) -> None:
        if len(labels):
            self._tally(self._labels, int(gie_id), str).add(np.asarray(labels))

    def snapshot(self) -> dict:
        """``{"objects": {gie: {class: n}}, "labels": {gie: {label: n}}}`` with string keys (JSON-ready)."""
        with self._lock:
            objects, labels = dict(self._objects), dict(self._labels)
        return {
            "objects": {str(g): {str(k): int(v) for k, v in sorted(t.counts().items())} for g, t in sorted(objects.items())},
            "labels": {str(g): {str(k): int(v) for k, v in sorted(t.counts().items())} for g, t in sorted(labels.items())},
        }
