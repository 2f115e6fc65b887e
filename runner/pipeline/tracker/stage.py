"""The tracker stage (``[tracker]``): one tracker per source, track ids unique across sources.

The IOU and SORT-class trackers run every source of a batch in one vectorised step (:mod:`.iou_batched`,
:mod:`.sort_batched`: the same results as one tracker per source frame by frame); ByteTrack updates per
source and frame.

Which tracker runs is read from the NvMultiObjectTracker YAML (``ll-config-file``):

* ``ReID`` with ``reidType`` > 0 (NvDeepSORT) or ``VisualTracker.visualTrackerType`` > 0 / an ``NvDCF``
  section (NvDCF): the SORT-class tracker, with a warning that visual / re-identification features are
  not used;
* ``StateEstimator.stateEstimatorType`` > 0 (NvSORT): the SORT-class tracker;
* otherwise (IOU, or no ll-config-file): the IOU tracker;
* ``ll-lib-file`` whose file name contains ``bytetrack`` (e.g. ``ll-lib-file=dsrun-bytetrack``):
  dsrun's ByteTrack, with the YAML's ages.

Top-level objects (``parent == -1``) are tracked; on frames where the tracked GIE ran
(``Batch.inferred``), detections get ``track_id`` (objects of targets still on probation, and
detections the tracker does not consider, are removed, as DeepStream's tracker reports only confirmed
targets); on frames it skipped, confirmed targets are added at their predicted place, clipped to the
frame (:func:`clip_to_frame`; ``confidence`` -0.1, as DeepStream marks tracker-only objects).
``tracker-width/height`` only size visual features in DeepStream and are not needed here.

>>> stage = TrackerStage(None)
>>> stage.kind
'iou'
"""

from __future__ import annotations

import logging

import numpy as np

from runner.deepstream_libs import tracker_library
from runner.pipeline.batch import Batch, Objects, _remap_rows
from runner.pipeline.tracker.bytetrack import ByteTracker, bytetrack_params
from runner.pipeline.tracker.common import IdSource, TrackerParams
from runner.pipeline.tracker.iou import IouTracker
from runner.pipeline.tracker.iou_batched import BatchedIouTracker
from runner.pipeline.tracker.sort import SortTracker
from runner.pipeline.tracker.sort_batched import BatchedSortTracker

log = logging.getLogger("dsrun.tracker")

TRACKER_ONLY_CONFIDENCE = -0.1


def tracker_kind(tracker_config) -> tuple[str, str | None]:
    """(kind, warning) for a ``[tracker]`` config: kind is "iou", "sort" or "bytetrack"."""
    if tracker_config is None:
        return "iou", None
    if tracker_library(getattr(tracker_config, "ll_lib_file", None)) == "bytetrack":
        return "bytetrack", None
    ll = getattr(tracker_config, "ll_config", None)
    if ll is None:
        return "iou", None
    src = getattr(ll, "path", None) or getattr(tracker_config, "ll_config_file", "")
    reid = getattr(ll, "ReID", None)
    visual = getattr(ll, "VisualTracker", None)
    if reid is not None and getattr(reid, "reidType", 0) > 0:
        return "sort", (f"{src}: NvDeepSORT config — dsrun runs its SORT-class tracker (Kalman + IoU) "
                        "without re-identification features; ids may switch more often on occlusions")
    if (visual is not None and getattr(visual, "visualTrackerType", 0) > 0) or getattr(ll, "NvDCF", None):
        return "sort", (f"{src}: NvDCF config — dsrun runs its SORT-class tracker (Kalman + IoU) "
                        "without the correlation-filter visual tracker")
    if getattr(ll.StateEstimator, "stateEstimatorType", 0) > 0:
        return "sort", None
    return "iou", None


class TrackerStage:
    name = "tracker"

    def __init__(self, tracker_config, *, operate_on_gie_id: int | None = None) -> None:
        self.kind, warning = tracker_kind(tracker_config)
        if warning:
            log.warning(warning)
        self.warning = warning
        params = TrackerParams.from_ll_config(getattr(tracker_config, "ll_config", None))
        if self.kind == "bytetrack":
            params = bytetrack_params(params)
        self.params = params
        self._cls = {"iou": IouTracker, "sort": SortTracker, "bytetrack": ByteTracker}[self.kind]
        self.ids = IdSource()
        self.streams: dict[int, IouTracker] = {}  # ByteTrack: one tracker per stream
        # IOU and SORT: every stream in one table, one vectorised step per batch (same results as per stream)
        batched = {"iou": BatchedIouTracker, "sort": BatchedSortTracker}.get(self.kind)
        self.batched = batched(params, self.ids) if batched is not None else None
        self.gie_id = operate_on_gie_id  # whose Batch.inferred marks detection frames (None: any)
        ids = tuple(getattr(tracker_config, "operate_on_class_ids", ()) or ())
        self.class_ids = np.asarray(ids, np.int64) if ids else None

    def _detected(self, batch: Batch) -> np.ndarray:
        if self.gie_id is not None and self.gie_id in batch.inferred:
            return batch.inferred[self.gie_id]
        if batch.inferred:
            return np.logical_or.reduce(list(batch.inferred.values()))
        return np.ones(len(batch), bool)

    def process(self, batch: Batch) -> Batch:
        objs = batch.objects
        detected = self._detected(batch)
        trackable = objs.parent < 0
        if self.class_ids is not None:
            trackable &= np.isin(objs.class_id, self.class_ids)
        if self.batched is not None:
            return self._process_batched(batch, detected, trackable)
        keep = np.ones(len(objs), bool)
        track_id = objs.track_id.copy()
        tconf = objs.tracker_confidence.copy()
        extra = []
        for f in range(len(batch)):  # O(frames): one tracker update per frame
            sid = int(batch.source_id[f])
            tracker = self.streams.get(sid)
            if tracker is None:
                tracker = self.streams[sid] = self._cls(self.params, self.ids)
            rows = np.flatnonzero(trackable & (objs.frame == f))
            out = tracker.update(objs.xyxy[rows].astype(np.float64), objs.class_id[rows], objs.confidence[rows],
                                 bool(detected[f]))
            if detected[f]:
                track_id[rows] = out.det_track_id
                tconf[rows] = out.det_tracker_conf
                keep[rows[out.det_track_id < 0]] = False
            elif len(out.pred_id):
                gie = self.gie_id if self.gie_id is not None else (int(objs.gie_id[rows[0]]) if len(rows) else 1)
                extra.append(Objects.from_columns(
                    frame=np.full(len(out.pred_id), f), gie_id=gie, class_id=out.pred_cls,
                    confidence=TRACKER_ONLY_CONFIDENCE, xyxy=out.pred_box, track_id=out.pred_id,
                    tracker_confidence=1.0))
        objs.track_id, objs.tracker_confidence = track_id, tconf
        if not keep.all():
            _drop_objects(batch, keep)
        _add_tracker_only(batch, extra)
        return batch

    def on_eos(self, source_ids) -> None:
        """GST_NVEVENT_STREAM_EOS: the stream's targets end — called by the graph after ``process``,
        and for a batch that carries only end-of-stream (which has no ``process``); a stream that comes
        back under the same id starts with no target."""
        if self.batched is not None:
            self.batched.end_streams(int(s) for s in source_ids)
        for sid in source_ids:
            self.streams.pop(int(sid), None)

    def _process_batched(self, batch: Batch, detected: np.ndarray, trackable: np.ndarray) -> Batch:
        """:meth:`process` for the IOU and SORT trackers: one batched tracker update per round of
        consecutive frames from distinct streams (the whole batch when each source has one frame)."""
        objs = batch.objects
        rows = np.flatnonzero(trackable)
        rows = rows[np.argsort(objs.frame[rows], kind="stable")]
        frame = objs.frame[rows].astype(np.int64)
        keep = np.ones(len(objs), bool)
        track_id = objs.track_id.copy()
        tconf = objs.tracker_confidence.copy()
        extra = []
        for start, end in rounds(batch.source_id):  # O(rounds): 1 unless a source has 2 frames in the batch
            lo, hi = np.searchsorted(frame, [start, end])
            r = rows[lo:hi]
            out = self.batched.update(batch.source_id[start:end], detected[start:end], frame[lo:hi] - start,
                                      objs.xyxy[r].astype(np.float64), objs.class_id[r], objs.confidence[r])
            live = detected[frame[lo:hi]]
            track_id[r[live]] = out.det_track_id[live]
            tconf[r[live]] = out.det_tracker_conf[live]
            keep[r[live & (out.det_track_id < 0)]] = False
            if len(out.pred_id):
                pred_frame = out.pred_frame + start
                if self.gie_id is not None:
                    gie = self.gie_id
                elif not len(rows):  # no trackable object in the batch: 1, as the per-frame path
                    gie = 1
                else:  # the GIE of the frame's first trackable object, else 1 (as the per-frame path)
                    first = np.searchsorted(frame, pred_frame)
                    has = (first < len(frame)) & (frame[np.minimum(first, len(frame) - 1)] == pred_frame)
                    gie = np.where(has, objs.gie_id[rows[np.minimum(first, len(rows) - 1)]], 1)
                extra.append(Objects.from_columns(
                    frame=pred_frame, gie_id=gie, class_id=out.pred_cls, confidence=TRACKER_ONLY_CONFIDENCE,
                    xyxy=out.pred_box, track_id=out.pred_id, tracker_confidence=1.0))
        objs.track_id, objs.tracker_confidence = track_id, tconf
        if not keep.all():
            _drop_objects(batch, keep)
        _add_tracker_only(batch, extra)
        return batch

    def close(self) -> None:
        self.streams.clear()
        if self.batched is not None:
            self.batched = type(self.batched)(self.params, self.ids)


def rounds(source_id: np.ndarray) -> list[tuple[int, int]]:
    """The batch cut into runs of consecutive frames whose sources are distinct (frames of one run
    can be tracked together; runs in order keep each source's frames in order).

    >>> rounds(np.array([0, 1, 2])), rounds(np.array([0, 0, 1, 1])), rounds(np.array([0, 1, 0]))
    ([(0, 3)], [(0, 1), (1, 3), (3, 4)], [(0, 2), (2, 3)])
    """
    ids = source_id.tolist()  # O(frames)
    if len(set(ids)) == len(ids):
        return [(0, len(source_id))] if len(source_id) else []
    out, start, seen = [], 0, set()
    for i, sid in enumerate(ids):
        if sid in seen:
            out.append((start, i))
            start, seen = i, set()
        seen.add(sid)
    if len(source_id):
        out.append((start, len(source_id)))
    return out


def clip_to_frame(xyxy: np.ndarray, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tracker boxes as gst-nvtracker reports them (NvTrackerProc::clipBBox, nvtracker_proc.cpp): the
    part inside the frame; a box with nothing inside is not reported → (clipped boxes, reported mask).

    >>> clip_to_frame(np.array([[-5., 10, 20, 30], [700, 500, 800, 600], [-30, 0, -1, 9]]), 768, 576)
    (array([[  0.,  10.,  20.,  30.],
           [700., 500., 768., 576.],
           [  0.,   0.,  -1.,   9.]]), array([ True,  True, False]))
    """
    x1, y1 = np.maximum(xyxy[:, 0], 0.0), np.maximum(xyxy[:, 1], 0.0)
    keep = (x1 < width) & (y1 < height) & (xyxy[:, 2] > x1) & (xyxy[:, 3] > y1)
    return np.stack([x1, y1, np.minimum(xyxy[:, 2], width), np.minimum(xyxy[:, 3], height)], 1), keep


def _add_tracker_only(batch: Batch, extra: list[Objects]) -> None:
    """Append the targets reported at their predicted boxes, clipped to their frames."""
    if not extra:
        return
    objs = extra[0]
    for e in extra[1:]:
        objs = objs.concat(e)
    width, height = batch.frame_sizes()
    boxes, keep = clip_to_frame(objs.xyxy.astype(np.float64), width[objs.frame], height[objs.frame])
    objs.xyxy = boxes.astype(objs.xyxy.dtype)
    batch.objects = batch.objects.concat(objs if keep.all() else objs[np.flatnonzero(keep)])


def _drop_objects(batch: Batch, keep: np.ndarray) -> None:
    """Remove objects, remapping parents and classification rows; results of removed objects go too."""
    rows = np.flatnonzero(keep)
    n = len(batch.objects)
    batch.objects = batch.objects[rows]
    cls = batch.classifications
    if len(cls):
        new_obj = np.where(cls.obj < 0, -1, _remap_rows(cls.obj, rows, n))
        alive = (cls.obj < 0) | (new_obj >= 0)
        cls = cls[alive]
        cls.obj = new_obj[alive]
        batch.classifications = cls


def build_tracker_stage(app_config, primary_gie_id: int | None = None) -> TrackerStage | None:
    """The ``[tracker]`` stage of an app, or None when it is absent or disabled."""
    cfg = getattr(app_config, "tracker", None)
    if cfg is None or not getattr(cfg, "enable", True):
        return None
    return TrackerStage(cfg, operate_on_gie_id=primary_gie_id)
