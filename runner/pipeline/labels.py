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

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from runner.pipeline.batch import Objects

__all__ = ["object_labels", "UNTRACKED_OBJECT_ID", "object_ids", "read_label_file", "gie_id", "app_gies",
           "app_labels", "classifier_types"]

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


def read_label_file(path: Path | str | None) -> list[str]:
    """A ``labelfile-path`` file as nvinfer reads it: one label per line (a classifier's line holds
    ``;``-separated labels of one output; kept whole here). Missing or unreadable → no labels."""
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def app_gies(app) -> list:
    """The enabled ``[primary-gie]`` and ``[secondary-gieN]`` groups of an AppConfig."""
    gies = [app.primary_gie] if getattr(app, "primary_gie", None) is not None else []
    gies += list(getattr(app, "secondary_gies", ()) or ())
    return [g for g in gies if getattr(g, "enable", True)]


def gie_id(gie, default: int = 1) -> int:
    """A GIE group's effective gie-unique-id (the nvinfer config's, with the app group's override)."""
    nvinfer = getattr(gie, "nvinfer", None)
    for value in (getattr(nvinfer, "gie_unique_id", None), getattr(gie, "gie_unique_id", None)):
        if value is not None:
            return int(value)
    return default


def app_labels(app) -> dict[int, list[str]]:
    """gie-unique-id → labels, from each enabled GIE's ``labelfile-path``."""
    out = {}
    for gie in app_gies(app):
        nvinfer = getattr(gie, "nvinfer", None)
        path = getattr(nvinfer, "labelfile_path", None) or getattr(gie, "labelfile_path", None)
        out[gie_id(gie)] = read_label_file(path)
    return out


def classifier_types(app) -> dict[int, str]:
    """gie-unique-id → nvinfer ``classifier-type`` (the key a classifier's result gets in payloads)."""
    out = {}
    for gie in app_gies(app):
        ctype = getattr(getattr(gie, "nvinfer", None), "classifier_type", None)
        if ctype:
            out[gie_id(gie)] = str(ctype)
    return out
