"""``supervision.Detections`` ⇄ dsrun objects, so supervision's annotators, zones, trackers and sinks
work on dsrun output (``pip install dsrun[supervision]``).

:func:`to_detections` takes one frame of a batch: ``xyxy`` (streammux-frame pixels), ``confidence``,
``class_id``, ``tracker_id`` (``None`` when no object of the frame is tracked, as supervision's
untracked detections have it), and in ``data``: ``class_name`` (from the GIEs' label files),
``gie_id``, ``source_id`` and ``frame_num``. :func:`from_detections` goes back to an
:class:`~runner.pipeline.batch.Objects` table (``tracker_id`` → ``track_id``, ``data["gie_id"]``
kept when present).

>>> import numpy as np, supervision as sv
>>> from runner.pipeline.batch import Batch, Objects
>>> batch = Batch(frames=None, source_id=np.array([3, 4]), frame_num=np.array([10, 11]),
...     pts=np.zeros(2, int), ntp_ts=np.zeros(2, int), source_size=np.zeros((2, 2), int),
...     objects=Objects.from_columns(frame=[0, 1, 1], gie_id=1, class_id=[0, 2, 0],
...                                  confidence=[0.9, 0.8, 0.7], xyxy=[[0, 0, 5, 5], [1, 1, 4, 4], [2, 2, 9, 9]]))
>>> d = to_detections(batch, 1, labels={1: ["car", "bicycle", "person"]})
>>> d.xyxy.tolist(), d.class_id.tolist(), d.data["class_name"].tolist(), d.tracker_id
([[1.0, 1.0, 4.0, 4.0], [2.0, 2.0, 9.0, 9.0]], [2, 0], ['person', 'car'], None)
>>> back = from_detections(d, frame=1)
>>> back.class_id.tolist(), back.gie_id.tolist(), back.track_id.tolist()
([2, 0], [1, 1], [-1, -1])
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from runner.extras import MissingExtra
from runner.pipeline.batch import Objects
from runner.pipeline.labels import object_labels


def _sv():
    try:
        import supervision
    except ModuleNotFoundError as exc:
        if exc.name != "supervision":
            raise
        raise MissingExtra("supervision", "dsrun's supervision.Detections interop") from None
    return supervision


def to_detections(batch, index: int, labels: Mapping[int, Sequence[str]] | None = None):
    """The objects of frame ``index`` of ``batch`` as ``supervision.Detections``. ``labels``
    defaults to the batch's own (``batch.labels`` in hooks and ``dsrun.batches``)."""
    sv = _sv()
    if labels is None:
        labels = getattr(batch, "labels", None)
    objects = batch.objects[batch.objects.frame == index]
    tracked = objects.track_id >= 0
    n = len(objects)
    return sv.Detections(
        xyxy=objects.xyxy.astype(np.float32).reshape(n, 4),
        confidence=objects.confidence.astype(np.float32),
        class_id=objects.class_id.astype(int),
        tracker_id=objects.track_id.astype(int) if n and tracked.any() else None,
        data={"class_name": object_labels(objects, labels).astype(str),
              "gie_id": objects.gie_id.astype(int),
              "source_id": np.full(n, int(batch.source_id[index]), int),
              "frame_num": np.full(n, int(batch.frame_num[index]), int)},
    )


def from_detections(detections, frame: int = 0, gie_id: int = 1) -> Objects:
    """``supervision.Detections`` as the rows of frame ``frame`` of an :class:`Objects` table
    (``gie_id`` where ``detections.data`` has none)."""
    n = len(detections)
    data = getattr(detections, "data", {}) or {}
    return Objects.from_columns(
        frame=np.full(n, frame, np.int32),
        gie_id=np.asarray(data["gie_id"]) if "gie_id" in data else gie_id,
        class_id=detections.class_id if detections.class_id is not None else 0,
        confidence=detections.confidence if detections.confidence is not None else 1.0,
        xyxy=detections.xyxy,
        track_id=detections.tracker_id if detections.tracker_id is not None else -1,
    )
