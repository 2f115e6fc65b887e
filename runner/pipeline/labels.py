"""Object label strings, as DeepStream's ``NvDsObjectMeta.obj_label`` holds them.

nvinfer copies the label of ``class_id`` from the GIE's ``labelfile-path`` into each object; an object
whose class has no label gets an empty string. Outputs (OSD text, KITTI files, message payloads,
JSON lines) look labels up here, from a mapping ``gie-unique-id -> labels`` the graph builds once.

>>> import numpy as np
>>> from runner.pipeline.batch import Objects
>>> objs = Objects.from_columns(frame=[0, 0, 0], gie_id=[1, 1, 2], class_id=[0, 5, 1])
>>> object_labels(objs, {1: ["car", "person"], 2: ["red", "blue"]}).tolist()
['car', '', 'blue']
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from runner.pipeline.batch import Objects

__all__ = ["object_labels", "UNTRACKED_OBJECT_ID", "object_ids"]

#: DeepStream's UNTRACKED_OBJECT_ID (0xFFFFFFFFFFFFFFFF), what it prints for an object without a track
UNTRACKED_OBJECT_ID = 2**64 - 1


def object_labels(objects: Objects, labels: Mapping[int, Sequence[str]] | None) -> np.ndarray:
    """(n,) object array of label strings; one vectorised lookup per GIE, not per object."""
    out = np.full(len(objects), "", dtype=object)
    if not labels or not len(objects):
        return out
    for gie_id, names in labels.items():
        rows = np.flatnonzero(objects.gie_id == gie_id)
        if not len(rows) or not len(names):
            continue
        table = np.asarray(list(names) + [""], dtype=object)  # last slot: out-of-range classes
        cls = objects.class_id[rows]
        cls = np.where((cls >= 0) & (cls < len(names)), cls, len(names))
        out[rows] = table[cls]
    return out


def object_ids(objects: Objects) -> list[int]:
    """Track ids as DeepStream prints them (``%lu``): untracked objects give UNTRACKED_OBJECT_ID.

    >>> object_ids(Objects.from_columns(frame=[0, 0], track_id=[7, -1]))
    [7, 18446744073709551615]
    """
    return [UNTRACKED_OBJECT_ID if t < 0 else t for t in objects.track_id.tolist()]
