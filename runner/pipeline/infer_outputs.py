"""What a GIE attaches to the batch from its engine's outputs: objects (network-type 0: parse, cluster,
frame filter), classifications (1, with the SGIE history's cached results), segmentation masks (2) and
raw tensors (``output-tensor-meta``). A mixin of :class:`runner.pipeline.infer.GieStage`, kept apart so
that ``infer.py`` holds the stage's flow (interval, the split steps, objects to infer, engines) and this
module what comes out of it.

The methods use the stage's configuration and state: ``cfg``, ``gie_id``, ``network_type``,
``output_tensor_meta``, ``seg_order``, the parsers (``bbox_parser``, ``cls_parser``/``cls_ctx``,
``seg_parser``), ``net``, ``cluster_mode``/``class_params``, ``history`` and its ``_lock``,
``counters``, ``timings`` and ``_timed``.
"""

from __future__ import annotations

import time

import numpy as np

from runner.pipeline.batch import Batch, Classifications, Objects
from runner.pipeline.cluster import cluster, frame_filter
from runner.pipeline.parsers.segmentation import class_map

__all__ = ["GieOutputs"]


class GieOutputs:
    """The output half of a GIE stage: ``_consume(batch, outputs, mapping, parent_rows)`` attaches one
    engine call's outputs (``mapping``: which frame, crop and scale each row came from;
    ``parent_rows``: the object each row was cropped from, or None for whole frames)."""

    def _consume(self, batch: Batch, outputs: dict, mapping, parent_rows, attached: list | None = None) -> None:
        """``attached``: where classifier results go (the caller attaches them with others in one
        concatenation); None: attached here."""
        if self.output_tensor_meta:
            self._attach_tensors(batch, outputs, mapping, parent_rows)
        if self.network_type == 0:
            self._attach_detections(batch, outputs, mapping, parent_rows)
        elif self.network_type == 1:
            res = self._timed("parse", self.cls_parser, outputs, self.cls_ctx)
            item = res.obj.astype(np.int64)
            res.frame = mapping.frame[item]
            res.obj = (np.full(len(res), -1, np.int32) if parent_rows is None
                       else parent_rows[item].astype(np.int32))
            if parent_rows is not None:  # the results of tracked objects are their cached results
                tracks = batch.objects.track_id[parent_rows]
                done = tracks[tracks >= 0]
                mine = res[batch.objects.track_id[res.obj] >= 0]  # res.obj: rows of parent_rows
                mine.obj = batch.objects.track_id[mine.obj].astype(np.int32)
                mine.gie_id = np.full(len(mine), self.gie_id, np.int32)
                with self._lock:
                    self.history.store_results(done, mine)
            if attached is None:
                self._append_classifications(batch, res)
            else:
                attached.append(res)
        elif self.network_type == 2:
            if self.seg_parser is not None:
                cmap = self._timed("parse", self.seg_parser, outputs, self.net)
            else:
                probs = next(iter(outputs.values()))
                cmap = self._timed("parse", class_map, probs, float(self.cfg.segmentation_threshold or 0),
                                   self.seg_order)
            masks = batch.masks.get(self.gie_id)
            if masks is None:
                masks = np.full((len(batch), *cmap.shape[1:]), -1, np.int32)
                batch.masks[self.gie_id] = masks
            masks[mapping.frame] = cmap

    def _append_classifications(self, batch: Batch, *results: Classifications) -> None:
        for res in results:
            res.gie_id = np.full(len(res), self.gie_id, np.int32)
            self.counters.count_labels(self.gie_id, res.label)
        batch.classifications = batch.classifications.concat(*results)

    def _attach_detections(self, batch: Batch, outputs: dict, mapping, parent_rows) -> None:
        raw = self._timed("parse", self.bbox_parser, outputs, self.net, self.class_params)
        t0 = time.perf_counter()
        objs = cluster(raw, self.cluster_mode, self.class_params)
        item = objs.frame.astype(np.int64)
        boxes = mapping.to_frame(objs.xyxy, item)
        keep, boxes = frame_filter(
            boxes, objs.class_id, self.class_params, mapping.frame_height[item], mapping.frame_width[item],
            filter_out_class_ids=tuple(getattr(self.cfg, "filter_out_class_ids", ()) or ()),
            crop_to_roi=bool(getattr(self.cfg, "crop_objects_to_roi_boundary", False)))
        item, boxes = item[keep], boxes[keep]
        if parent_rows is not None:
            boxes[:, [0, 2]] += mapping.origin_x[item, None]
            boxes[:, [1, 3]] += mapping.origin_y[item, None]
        new = Objects.from_columns(
            frame=mapping.frame[item], gie_id=self.gie_id, class_id=objs.class_id[keep],
            confidence=objs.confidence[keep], xyxy=boxes,
            parent=-1 if parent_rows is None else parent_rows[item])
        self.timings["cluster"] += time.perf_counter() - t0
        batch.objects = batch.objects.concat(new)
        self.counters.count_objects(self.gie_id, new.class_id)

    def _attach_tensors(self, batch: Batch, outputs: dict, mapping, parent_rows) -> None:
        store = batch.tensors.setdefault(self.gie_id, {})
        if parent_rows is None:
            for name, arr in outputs.items():
                full = store.get(name)
                if full is None:
                    full = store[name] = np.zeros((len(batch), *arr.shape[1:]), arr.dtype)
                full[mapping.frame] = arr
        else:
            for name, arr in outputs.items():
                store[name] = np.concatenate([store[name], arr]) if name in store else arr
            rows = parent_rows.astype(np.int32)
            store["object_row"] = np.concatenate([store["object_row"], rows]) if "object_row" in store else rows
