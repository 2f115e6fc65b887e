"""``--jsonl FILE``: every frame's metadata as one JSON object per line.

A line per frame, in the order frames leave the pipeline, written batch by batch with no buffering (a
run that stops early, or a disk that fills up, leaves only whole lines). Keys::

    {"source_id": 0, "frame_num": 12, "pts": 480000000, "ntp_ts": 1700000000480000000,
     "source_size": [1920, 1080], "inferred": {"1": true},
     "objects": [{"id": 3, "gie_id": 1, "class_id": 0, "label": "car", "confidence": 0.91,
                  "bbox": [x1, y1, x2, y2], "track_id": 7, "tracker_confidence": 0.8, "parent": -1,
                  "classifications": [{"gie_id": 2, "head": 0, "class_id": 4, "label": "sedan",
                                       "confidence": 0.7}]}],
     "classifications": [...frame-level results (process-mode=1 classifiers)...],
     "masks": {"3": {"shape": [h, w], "pixels": {"0": 1234, "1": 567}}},
     "tensors": {"1": {"output_cov": [1, 4, 34, 60]}},
     "analytics": {...per-frame nvdsanalytics counts, only with [nvds-analytics]...}}

With ``[nvds-analytics]`` an object it has results for also carries ``"analytics"`` (status, ROIs,
overcrowding ROIs, lines crossed, direction) — see :mod:`runner.pipeline.analytics.records`.

``bbox`` is in streammux-frame pixels; ``id`` is the object's index within the frame, ``parent`` the
``id`` of the object it was detected in (-1: none); ``track_id`` -1 means untracked; masks are
summarised as pixel counts per class and tensors as their shapes (the values would dwarf the file).

>>> import io, json, numpy as np
>>> from runner.pipeline.batch import Batch, Objects
>>> buf = io.StringIO()
>>> b = Batch(frames=None, source_id=np.array([0]), frame_num=np.array([5]), pts=np.array([0]),
...           ntp_ts=np.array([0]), source_size=np.array([[64, 48]]),
...           objects=Objects.from_columns(frame=[0], gie_id=1, class_id=[1], confidence=[0.5],
...                                        xyxy=[[1, 2, 11, 22]]))
>>> _ = JsonlStage(buf, labels={1: ["car", "person"]}).process(b)
>>> rec = json.loads(buf.getvalue()); rec["frame_num"], rec["objects"][0]["label"], rec["objects"][0]["bbox"]
(5, 'person', [1.0, 2.0, 11.0, 22.0])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Mapping, Sequence

import numpy as np

from runner.errors import DsrunError
from runner.pipeline.analytics.records import frame_analytics, object_analytics
from runner.pipeline.batch import Batch
from runner.pipeline.labels import app_labels, object_labels
from runner.pipeline.output_files import OutputFileError
from runner.pipeline.rotation import Rotation, RotatingLines

__all__ = ["JsonlStage", "JsonlError", "build_jsonl_stage", "frame_records"]


class JsonlError(DsrunError):
    """The ``--jsonl`` file cannot be written."""


def _classification(cls, r: int) -> dict:
    return {"gie_id": int(cls.gie_id[r]), "head": int(cls.head[r]), "class_id": int(cls.class_id[r]),
            "label": str(cls.label[r]), "confidence": float(cls.confidence[r])}


def frame_records(batch: Batch, labels: Mapping[int, Sequence[str]] | None = None) -> list[dict]:
    """One JSON-ready dict per frame of ``batch`` (the line format in the module docstring)."""
    objs, cls = batch.objects, batch.classifications
    names = object_labels(objs, labels)
    # index of each object within its frame, so parent references stay meaningful per line
    order = np.argsort(objs.frame, kind="stable")
    within = np.empty(len(objs), np.int64)
    if len(objs):
        starts = np.searchsorted(objs.frame[order], objs.frame[order])
        within[order] = np.arange(len(objs)) - starts
    per_obj: dict[int, list] = {}
    frame_cls: dict[int, list] = {}
    for r in range(len(cls)):  # classifier results: a handful per object
        o = int(cls.obj[r])
        (per_obj.setdefault(o, []) if o >= 0 else frame_cls.setdefault(int(cls.frame[r]), [])).append(
            _classification(cls, r))
    cols = dict(gie=objs.gie_id.tolist(), cls=objs.class_id.tolist(), conf=objs.confidence.tolist(),
                box=objs.xyxy.tolist(), tid=objs.track_id.tolist(), tconf=objs.tracker_confidence.tolist(),
                parent=objs.parent.tolist(), frame=objs.frame.tolist())
    objects: dict[int, list] = {}
    per_obj_analytics = object_analytics(batch.analytics_objects)
    for r in range(len(objs)):
        p = cols["parent"][r]
        objects.setdefault(cols["frame"][r], []).append({
            "id": int(within[r]), "gie_id": cols["gie"][r], "class_id": cols["cls"][r],
            "label": names[r], "confidence": round(cols["conf"][r], 6), "bbox": cols["box"][r],
            "track_id": cols["tid"][r], "tracker_confidence": round(cols["tconf"][r], 6),
            "parent": int(within[p]) if p >= 0 else -1, "classifications": per_obj.get(r, []),
            **({"analytics": per_obj_analytics[r]} if r in per_obj_analytics else {})})
    records = []
    analytics = frame_analytics(batch.analytics_frames, len(batch))
    for i in range(len(batch)):
        masks = {}
        for gid, m in batch.masks.items():
            values, counts = np.unique(m[i], return_counts=True)
            masks[str(gid)] = {"shape": list(m[i].shape),
                               "pixels": {str(int(v)): int(c) for v, c in zip(values, counts) if v >= 0}}
        records.append({
            "source_id": int(batch.source_id[i]), "frame_num": int(batch.frame_num[i]),
            "pts": int(batch.pts[i]), "ntp_ts": int(batch.ntp_ts[i]),
            "source_size": [int(v) for v in batch.source_size[i]],
            "inferred": {str(g): bool(v[i]) for g, v in batch.inferred.items()},
            "objects": objects.get(i, []), "classifications": frame_cls.get(i, []), "masks": masks,
            "tensors": {str(g): {k: list(np.shape(v)) for k, v in t.items()}
                        for g, t in batch.tensors.items()},
            **({"analytics": analytics[i]} if analytics[i] is not None else {})})
    return records


class JsonlStage:
    """Appends :func:`frame_records` lines to ``path`` (a path, or an open text stream). A batch's lines
    reach the file whole or not at all (``runner.pipeline.output_files.write_whole``): on a full disk
    the file ends with its last whole line and the stage fails naming the path."""

    name = "jsonl"

    def __init__(self, path: Path | str | IO[str], *, labels: Mapping[int, Sequence[str]] | None = None,
                 rotation: Rotation | None = None, keep: int = 0) -> None:
        self.labels = labels or {}
        self.path = None
        self._lines = None
        if hasattr(path, "write"):
            self._file = path
            return
        self._file, self.path = None, Path(path)
        try:
            self._lines = RotatingLines(self.path, rotation, keep)  # --jsonl-rotate, --jsonl-keep
        except OutputFileError as exc:
            raise JsonlError(f"--jsonl {self.path}: cannot write it: {exc.reason} — {exc.hint}") from None

    def process(self, batch: Batch) -> Batch:
        lines = [json.dumps(rec, separators=(",", ":")) for rec in frame_records(batch, self.labels)]
        if not lines:
            return batch
        text = "\n".join(lines) + "\n"
        if self._lines is None:
            self._file.write(text)
            self._file.flush()
        else:
            self._lines.write(text.encode("utf-8"))
        return batch

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()


def build_jsonl_stage(app, path, rotation: Rotation | None = None, keep: int = 0) -> JsonlStage | None:
    """The ``--jsonl`` stage (None without the option). Put it after the last GIE/tracker stage.
    ``rotation``/``keep``: ``--jsonl-rotate``/``--jsonl-keep`` (runner.pipeline.rotation)."""
    return JsonlStage(path, labels=app_labels(app), rotation=rotation, keep=keep) if path else None
