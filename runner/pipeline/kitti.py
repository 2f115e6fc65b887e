"""deepstream-app's KITTI dumps: ``[application] gie-kitti-output-dir`` and ``kitti-track-output-dir``.

One file per frame, ``<dir>/<app>_<source>_<frame>.txt`` (``%02u_%03u_%06lu.txt``: app instance 0, the
source id, the source's frame number), written even when the frame has no objects. Lines are those of
deepstream_app.c ``write_kitti_output`` / ``write_kitti_track_output`` (DeepStream 9.1):

- detector (``gie-kitti-output-dir``), written right after the primary GIE::

    <label> 0.0 0 0.0 <left> <top> <right> <bottom> 0.0 0.0 0.0 0.0 0.0 0.0 0.0 <confidence>

- tracker (``kitti-track-output-dir``), written after the tracker; ``<id>`` is the track id
  (18446744073709551615 for an untracked object) and the confidence the tracker's::

    <label> <id> 0.0 0 0.0 <left> <top> <right> <bottom> 0.0 0.0 0.0 0.0 0.0 0.0 0.0 <confidence>

Coordinates are streammux-frame pixels printed with ``%f``.

>>> import tempfile, numpy as np
>>> from runner.pipeline.batch import Batch, Objects
>>> d = tempfile.mkdtemp()
>>> b = Batch(frames=None, source_id=np.array([2]), frame_num=np.array([7]), pts=np.array([0]),
...           ntp_ts=np.array([0]), source_size=np.array([[64, 48]]),
...           objects=Objects.from_columns(frame=[0], gie_id=1, class_id=[0], confidence=[0.5],
...                                        xyxy=[[1, 2, 11, 22]]))
>>> _ = KittiStage(d, labels={1: ["car"]}).process(b)
>>> open(f"{d}/00_002_000007.txt").read()
'car 0.0 0 0.0 1.000000 2.000000 11.000000 22.000000 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.500000\\n'
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from runner.errors import DsrunError
from runner.pipeline.batch import Batch
from runner.pipeline.labels import UNTRACKED_OBJECT_ID, app_labels, gie_id, object_labels
from runner.pipeline.output_files import write_file

__all__ = ["KittiStage", "KittiDumps", "KittiError", "build_kitti_stages", "build_kitti_output",
           "kitti_file_name"]


class KittiError(DsrunError):
    """A KITTI output directory that cannot be written."""


def kitti_file_name(source_id: int, frame_num: int, app_index: int = 0) -> str:
    """deepstream-app's ``%02u_%03u_%06lu.txt``."""
    return f"{app_index:02d}_{source_id:03d}_{frame_num:06d}.txt"


class KittiStage:
    """Writes one KITTI file per frame (see the module docstring); ``track=True`` for the tracker dump.

    ``gie_id``: only objects of this GIE are written (the primary's, for the detector dump, so the
    stage may sit anywhere after the primary GIE); None writes every object.
    """

    def __init__(self, directory: Path | str, *, track: bool = False,
                 labels: Mapping[int, Sequence[str]] | None = None, gie_id: int | None = None,
                 app_index: int = 0) -> None:
        self.directory = Path(directory)
        self.track = track
        self.labels = labels or {}
        self.gie_id = gie_id
        self.app_index = app_index
        self.name = "kitti-track" if track else "kitti"
        key = "kitti-track-output-dir" if track else "gie-kitti-output-dir"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KittiError(f"[application] {key}: cannot create {self.directory}: {exc.strerror} — "
                             f"choose a writable directory") from None

    def process(self, batch: Batch) -> Batch:
        objs = batch.objects
        if self.gie_id is not None and len(objs):
            objs = objs[objs.gie_id == self.gie_id]
        labels = object_labels(objs, self.labels)
        conf = objs.tracker_confidence if self.track else objs.confidence
        ids = np.where(objs.track_id < 0, UNTRACKED_OBJECT_ID, objs.track_id).astype(np.uint64)
        # the batch's columns as Python values once; then one formatted line per object (text output)
        boxes, conf, ids = objs.xyxy.tolist(), conf.tolist(), ids.tolist()
        by_frame = np.argsort(objs.frame, kind="stable")
        bounds = np.searchsorted(objs.frame[by_frame], np.arange(len(batch) + 1)).tolist()
        by_frame = by_frame.tolist()
        for i, (sid, num) in enumerate(zip(batch.source_id.tolist(), batch.frame_num.tolist())):
            lines = []
            for r in by_frame[bounds[i]:bounds[i + 1]]:
                x1, y1, x2, y2 = boxes[r]
                tid = f" {ids[r]}" if self.track else ""
                lines.append(f"{labels[r]}{tid} 0.0 0 0.0 {x1:f} {y1:f} {x2:f} {y2:f} "
                             f"0.0 0.0 0.0 0.0 0.0 0.0 0.0 {conf[r]:f}\n")
            name = kitti_file_name(int(sid), int(num), self.app_index)
            write_file(self.directory / name, "".join(lines).encode())  # whole, or absent on a full disk
        return batch

    def close(self) -> None:
        pass


def build_kitti_stages(app) -> tuple[KittiStage | None, KittiStage | None]:
    """``(detector_stage, tracker_stage)`` for an AppConfig; either is None when its key is unset.

    deepstream-app writes the detector dump at the primary GIE's output (before the tracker) and the
    tracker dump after the tracker: put them there in the stage list.
    """
    application = app.application
    labels = app_labels(app)
    pgie = getattr(app, "primary_gie", None)
    primary = gie_id(pgie) if pgie is not None else None
    det_dir = getattr(application, "gie_kitti_output_dir", None)
    trk_dir = getattr(application, "kitti_track_output_dir", None)
    det = KittiStage(det_dir, labels=labels, gie_id=primary) if det_dir else None
    trk = KittiStage(trk_dir, track=True, labels=labels) if trk_dir else None
    return det, trk


class KittiDumps:
    """Both dumps as one stage, for a graph that runs app-wide outputs together at the end."""

    name = "kitti"

    def __init__(self, stages: list[KittiStage]) -> None:
        self.stages = stages

    def process(self, batch: Batch) -> Batch:
        for stage in self.stages:
            stage.process(batch)
        return batch

    def close(self) -> None:
        pass


def build_kitti_output(app) -> KittiDumps | None:
    """The KITTI dumps of an AppConfig as one stage (None when neither directory is set).

    At the end of the graph the detector dump still holds only primary-GIE objects, but with the
    tracker's boxes when a tracker moved them: place :func:`build_kitti_stages`' stages after the
    primary GIE and after the tracker to get deepstream-app's exact numbers.
    """
    stages = [s for s in build_kitti_stages(app) if s is not None]
    return KittiDumps(stages) if stages else None
