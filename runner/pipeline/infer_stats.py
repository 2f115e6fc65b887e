"""Counters the ``--report`` file and the dashboard read: objects per GIE and class, classifier labels
per GIE. Writers (GIE stages) add one batch at a time with vectorised counts; readers call
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
from collections import Counter

import numpy as np


class InferCounters:
    def __init__(self) -> None:
        self._objects: dict[int, Counter] = {}
        self._labels: dict[int, Counter] = {}
        self._lock = threading.Lock()

    def count_objects(self, gie_id: int, class_ids: np.ndarray) -> None:
        if not len(class_ids):
            return
        values, counts = np.unique(np.asarray(class_ids), return_counts=True)
        with self._lock:
            self._objects.setdefault(int(gie_id), Counter()).update(dict(zip(values.tolist(), counts.tolist())))

    def count_labels(self, gie_id: int, labels: np.ndarray) -> None:
        if not len(labels):
            return
        values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
        with self._lock:
            self._labels.setdefault(int(gie_id), Counter()).update(dict(zip(values.tolist(), counts.tolist())))

    def snapshot(self) -> dict:
        """``{"objects": {gie: {class: n}}, "labels": {gie: {label: n}}}`` with string keys (JSON-ready)."""
        with self._lock:
            return {
                "objects": {str(g): {str(k): int(v) for k, v in sorted(c.items())} for g, c in sorted(self._objects.items())},
                "labels": {str(g): {str(k): int(v) for k, v in sorted(c.items())} for g, c in sorted(self._labels.items())},
            }
