"""The GIE stages: Gst-nvinfer on batches — primary and secondary, any network type, any depth.

Entry point for the graph::

    stages = build_gie_stages(app_config, engine_loader, counters=run_stats.inference)
    # primary first, then secondaries in config order; put the tracker (tracker.stage) after stages[0]

``engine_loader(gie_config, name)`` returns a :class:`runner.engine.Engine` or an engine handle
(anything with ``.current``; ``maybe_swap()`` is called between batches when present).

What a :class:`GieStage` does per batch, as nvinfer does:

* ``process-mode=1``: every frame of one batch in ``interval + 1`` is inferred — nvinfer counts
  batches, not frames of a source (``Batch.inferred[gie-unique-id]`` says which); frames are batched
  up to the engine's batch.
* ``process-mode=2``: objects of ``operate-on-gie-id`` (all GIEs when -1) whose class is in
  ``operate-on-class-ids`` and whose size is within ``input-object-min/max-width/height`` are cropped
  from every frame of the batch and inferred together, ``batch-size`` crops at a time. Tracked
  objects are re-inferred only as ``secondary-reinfer-interval`` (and the 20 % growth rule for
  classifiers) allows; in between, classifiers re-attach their cached result.
  ``classifier-async-mode=1`` infers in a background thread and attaches the latest cached result
  (untracked objects are skipped, as in nvinfer).
* ``process-mode=1`` runs in three steps: ``preprocess_ahead`` (the interval decision and the input
  tensors), ``infer_ahead`` (the engine) and ``process`` (parsing, clustering, the batch's metadata).
  The graph runs the first two on threads of their own, each one batch ahead of the next
  (:attr:`GieStage.ahead`, ``runner.pipeline.prepare_ahead``): batch N+2 is pre-processed while
  N+1 is inferred and N parsed and clustered. ``DSRUN_GIE_SPLIT`` says how far it splits: ``0`` not at
  all (every step on the stage thread), ``1`` pre-processing only (the default on the CPU), ``2`` both
  (the default for an engine on a GPU). The results are the same (tests/test_infer_split.py).
  Secondary GIEs do not split: which objects they infer depends on the history the previous batch's
  results leave.
* ``network-type`` 0: parser → clustering per class-attrs → frame filter → ``Batch.objects`` (SGIE
  detections get ``parent`` = the object they were found in); 1: ``Batch.classifications``
  (``obj=-1`` for a full-frame classifier); 2: ``Batch.masks[gie-unique-id]`` (B, h, w) int32 (-1 where
  no class passed or the frame was skipped); 100, or ``output-tensor-meta=1``: raw outputs in
  ``Batch.tensors[gie-unique-id]`` (rows = batch frames for process-mode 1, with ``object_row`` giving
  the object of each row for process-mode 2).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
import numpy as np

from runner.config.enums import ProcessMode
from runner.errors import DsrunError
from runner.pipeline.batch import Batch, box_extent
from runner.pipeline.cluster import ClassParams
from runner.pipeline.gpu_streams import ready_event, wait_ready
from runner.pipeline.infer_history import REINFER_AREA_THRESHOLD, TrackHistory
from runner.pipeline.infer_outputs import GieOutputs
from runner.pipeline.infer_stats import InferCounters
from runner.pipeline.parsers import (NetworkInfo, resolve_bbox_parser, resolve_classifier_parser,
                                     resolve_segmentation_parser)
from runner.pipeline.parsers.classifier import ClassifierContext, read_labels
from runner.pipeline.preprocess import PreprocessSpec, preprocess
from runner.pipeline.preprocess_gpu import is_device_tensor, preprocess_device

__all__ = ["GieStage", "InferError", "build_gie_stages", "network_type_of", "runnable_network"]

REINFER_NEVER = 2**31 - 1  # nvinfer's DEFAULT_REINFER_INTERVAL (G_MAXINT)


class InferError(DsrunError):
    """A GIE that cannot run as configured, with the config file, key and fix."""

    exit_code = 2


def _int(value, default=0) -> int:
    value = default if value is None else value
    return int(getattr(value, "value", value))


def network_type_of(cfg) -> int:
    """network-type, with the legacy is-classifier=1 read as 1 when network-type is 0."""
    network_type = _int(cfg.network_type, 0)
    return 1 if getattr(cfg, "is_classifier", None) and network_type == 0 else network_type


def runnable_network(cfg, where: str = ""):
    """The parse function a GIE with this nvinfer config uses (None for 'other'),
    or :class:`InferError` / :class:`ParserError` saying why dsrun cannot run it. Asked by
    :class:`GieStage` and, before any engine is built, by runner/preflight.py (``dsrun check`` and
    the run), so both refuse the same configs; the parser names come from runner.deepstream_libs."""
    network_type = network_type_of(cfg)
    if network_type == 0:
        if _int(getattr(cfg, "num_detected_classes", 0), 0) <= 0:
            raise InferError(f"{where}[property] num-detected-classes: not set for a detector — "
                             "set it to the number of classes the model outputs")
        return resolve_bbox_parser(cfg, where)
    if network_type == 1:
        return resolve_classifier_parser(cfg, where)
    if network_type == 2 and _int(cfg.process_mode, 1) == 2:
        raise InferError(f"{where}[property] process-mode: segmentation on objects is not "
                         "supported by dsrun — use process-mode=1")
    if network_type == 2:
        return resolve_segmentation_parser(cfg, where)
    if network_type != 100:
        raise InferError(f"{where}[property] network-type: {network_type} is not run by dsrun, "
                         "which runs 0 (detector), 1 (classifier), 2 (segmentation) and 100 (other) "
                         "— change it")
    return None


def split_steps(on_gpu: bool) -> int:
    """How many of a ``process-mode=1`` GIE's steps run ahead of ``process`` on threads of their own:
    ``DSRUN_GIE_SPLIT`` 0 (none: the split off, for A/B runs), 1 (pre-processing) or 2 (pre-processing,
    then the engine). Unset: 2 for an engine on a GPU (its thread mostly waits for the device while
    the stage thread parses and clusters), 1 on the CPU (ONNX Runtime's own threads keep the cores busy
    while the engine runs, and parsing beside them only competes: +8 % for 1, +3 % for 2 on 2 cores,
    docs/bench/bench_cpu_2core_gie_split.json)."""
    value = os.environ.get("DSRUN_GIE_SPLIT", "").strip()
    if value not in ("", "0", "1", "2"):
        raise InferError(f"DSRUN_GIE_SPLIT={value!r}: not 0, 1 or 2 — unset it, or set 0 (no split), "
                         "1 (pre-processing ahead) or 2 (pre-processing and the engine ahead)")
    return int(value) if value else 2 if on_gpu else 1


class GieStage(GieOutputs):
    """One nvinfer instance. ``timings`` accumulates seconds per phase for benchmarks."""

    def __init__(self, nvinfer, engine, *, name: str = "gie", counters: InferCounters | None = None) -> None:
        self.cfg = cfg = nvinfer
        self.name = name
        self.where = f"{cfg.path}: " if getattr(cfg, "path", None) else ""
        self._engine = engine
        self.gie_id = _int(cfg.gie_unique_id, 15)
        self.process_mode = _int(cfg.process_mode, 1)
        self.network_type = network_type_of(cfg)
        parser = runnable_network(cfg, self.where)  # refuses what it cannot run, before the engine
        self.interval = _int(cfg.interval, 0)
        eng = self.engine
        self.input = eng.inputs[0]
        self.pre = PreprocessSpec.from_nvinfer(cfg, self.input.shape, self.input.dtype, where=self.where)
        self.net = NetworkInfo(self.pre.width, self.pre.height, self.pre.channels)
        self.max_batch = max(1, min(_int(getattr(cfg, "batch_size", 1), 1), int(eng.max_batch)))
        labels_path = getattr(cfg, "labelfile_path", None)
        self.label_table = read_labels(labels_path) if labels_path else []
        self.labels = [row[0] for row in self.label_table]  # detector class labels (first of each line)
        self.output_tensor_meta = bool(getattr(cfg, "output_tensor_meta", False)) or self.network_type == 100
        self.seg_order = _int(getattr(cfg, "segmentation_output_order", 0))  # 1: (H, W, C) outputs
        self.counters = counters or InferCounters()
        self.timings = {"preprocess": 0.0, "infer": 0.0, "parse": 0.0, "cluster": 0.0}
        self._interval_counter = 0  # batches seen (gstnvinfer.cpp interval_counter)
        # process-mode 1: the steps the graph runs ahead of process(), each on a thread of its own
        steps = (("preprocess", self.preprocess_ahead), ("infer", self.infer_ahead))
        self.ahead = steps[:split_steps(self.uses_device)] if self.process_mode == 1 else ()
        self._preprocessed: deque = deque()  # (batch, [(input tensor, InputMapping)]), oldest first
        self._inferred: deque = deque()  # (batch, [(outputs, InputMapping)]), oldest first
        self.history = TrackHistory()
        # should_infer_object's settings, read once: operate-on-gie-id, input-object-min/max-width/height,
        # operate-on-class-ids (None: any class), secondary-reinfer-interval
        ids = tuple(getattr(cfg, "operate_on_class_ids", ()) or ())
        self._object_filters = (
            _int(getattr(cfg, "operate_on_gie_id", -1), -1), max(1, _int(cfg.input_object_min_width)),
            max(1, _int(cfg.input_object_min_height)), _int(cfg.input_object_max_width),
            _int(cfg.input_object_max_height), np.asarray(ids, np.int64) if ids else None)
        self._reinfer_interval = _int(getattr(cfg, "secondary_reinfer_interval", REINFER_NEVER), REINFER_NEVER)
        self._lock = threading.Lock()
        self._async: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._in_flight = np.zeros(0, np.int64)  # tracks queued for async inference (under_inference)
        if self.network_type == 0:
            n_cls = _int(getattr(cfg, "num_detected_classes", 0), 0)
            # as NvDsInferContextImpl::initialize leaves them (stock build: cluster-mode 0 runs as NMS)
            attrs = [cfg.class_attrs_run(c) for c in range(n_cls)]
            self.class_params = ClassParams.from_class_attrs(attrs)  # legacy `threshold` applied by the loader
            self.cluster_mode = int(cfg.cluster_mode_run)
            self.bbox_parser = parser
        elif self.network_type == 1:
            self.cls_parser = parser
            self.cls_ctx = ClassifierContext(threshold=float(getattr(cfg, "classifier_threshold", 0) or 0),
                                             labels=self.label_table, model_path=cfg.model_path,
                                             network=self.net)
            if bool(getattr(cfg, "classifier_async_mode", False)) and self.process_mode == 2:
                self._async = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-async")
        elif self.network_type == 2:
            self.seg_parser = parser

    @property
    def engine(self):
        return getattr(self._engine, "current", self._engine)

    @property
    def uses_device(self) -> bool:
        """True when this GIE queues GPU work (an engine that takes device tensors, on a GPU): the
        graph gives its thread a CUDA stream of its own (runner.pipeline.gpu_streams)."""
        return hasattr(self.engine, "infer_device") and str(getattr(self.engine, "device", "cpu")).startswith("cuda")

    # -- the Stage protocol --------------------------------------------------------------------

    def process(self, batch: Batch) -> Batch:
        if self.process_mode == 2:
            self._swap_engine()
            self._process_objects(batch)
        else:
            self._process_frames(batch)
        return batch

    def _swap_engine(self) -> None:
        """Between batches, on the thread that runs the engine: a rebuilt engine replaces the old one."""
        swap = getattr(self._engine, "maybe_swap", None)
        if swap is not None:
            swap()

    # -- events (gst_nvinfer_sink_event) ---------------------------------------------------------
    # The graph calls these for every batch carrying an end of stream (a batch that holds only an EOS
    # included) and once at the end of the run. Neither a stream's EOS, nor a stream added at run time
    # (GST_NVEVENT_PAD_ADDED), nor a new interval (GST_NVEVENT_INFER_INTERVAL_UPDATE) touches the
    # interval counter: a new stream joins the batch cadence where it is.

    def on_eos(self, source_ids) -> None:
        """GST_NVEVENT_STREAM_EOS: those sources' object histories are cleared."""
        with self._lock:
            self.history.forget_sources(np.asarray(source_ids, np.int64))

    def on_pipeline_eos(self) -> None:
        """GST_EVENT_EOS (the whole pipeline's end): ``interval_counter`` back to 0, as
        gst_nvinfer_start sets it — a run that goes on after it starts with an inferred batch."""
        self._interval_counter = 0

    def close(self) -> None:
        self._preprocessed.clear()  # batches an abort left half done
        self._inferred.clear()
        if self._async is not None:
            self._async.shutdown(wait=True)
            self._async = None

    # -- process-mode 1 ------------------------------------------------------------------------

    def interval_mask(self, batch: Batch) -> np.ndarray:
        """Which frames this GIE infers: ``interval`` counts batches, not frames of a source
        (gst_nvinfer_process_full_frame: a batch is skipped unless ``interval_counter++ % (interval + 1)
        == 0``) — every frame of the 1st, (interval+2)th, … batch, whichever sources they come from."""
        if not len(batch):  # a batch that only carries an end of stream is an event in DeepStream
            return np.zeros(0, bool)
        infer = self._interval_counter % (self.interval + 1) == 0
        self._interval_counter += 1
        return np.full(len(batch), infer, bool)

    def preprocess_ahead(self, batch: Batch) -> Batch:
        """Step 1 of ``process-mode=1``: the interval decision (``Batch.inferred``) and the network's
        input tensors, kept for step 2. The graph runs it one batch ahead of step 2 on a thread of its
        own when :attr:`ahead` lists it. It reads nothing the later steps leave behind."""
        self._preprocessed.append((batch, self._prepare_frames(batch)))
        return batch

    def infer_ahead(self, batch: Batch) -> Batch:
        """Step 2 of ``process-mode=1``: the engine on step 1's tensors (step 1 done now when it did
        not run ahead), outputs kept for ``process``. Run one batch ahead of ``process`` on a thread of
        its own when :attr:`ahead` lists it."""
        self._inferred.append((batch, self._run_engines(batch)))
        return batch

    def _prepare_frames(self, batch: Batch) -> list:
        """(input tensor, InputMapping) per engine call: the frames this batch infers, ``max_batch``
        at a time."""
        mask = self.interval_mask(batch)
        batch.inferred[self.gie_id] = mask
        frames = self._frames(batch)
        rows = np.flatnonzero(mask)
        parts = []
        for start in range(0, len(rows), self.max_batch):
            chunk = rows[start:start + self.max_batch]
            if isinstance(frames, np.ndarray) or is_device_tensor(frames):
                sub = frames[_as_slice(chunk)]
            else:
                sub = [frames[i] for i in chunk]
            tensor, mapping = self._preprocess(sub)
            mapping.frame = chunk.astype(np.int32)
            parts.append((tensor, mapping))
        return parts

    @staticmethod
    def _take(done: deque, batch: Batch, step: str):
        """What an earlier step left for ``batch`` in ``done`` (None when that step did not run)."""
        if not done:
            return None
        seen, result = done.popleft()
        if seen is not batch:  # a bug, never a wrong result: the graph keeps the batches' order
            raise RuntimeError(f"a batch reached a GIE out of the order its {step} step saw it")
        return result

    def _run_engines(self, batch: Batch) -> list:
        """(outputs, InputMapping) per engine call for ``batch``. On a GPU, tensors that step 1 made
        on another thread's CUDA stream are marked as used on this one: this stream already waits for
        that work (``Batch.device_ready``), and the allocator must not hand the memory back to that
        thread's stream before this stream's inference has read it."""
        self._swap_engine()
        parts = self._take(self._preprocessed, batch, "preprocess")
        if parts is None:
            parts = self._prepare_frames(batch)
        else:
            for tensor, _ in parts:
                if is_device_tensor(tensor) and tensor.is_cuda:
                    import torch

                    tensor.record_stream(torch.cuda.current_stream(tensor.device))
        return [(self._run_engine(tensor), mapping) for tensor, mapping in parts]

    def _process_frames(self, batch: Batch) -> None:
        results = self._take(self._inferred, batch, "infer")
        if results is None:
            results = self._run_engines(batch)
        if self.network_type == 2:
            batch.masks.setdefault(self.gie_id, None)
        for outputs, mapping in results:
            self._consume(batch, outputs, mapping, parent_rows=None)
        if self.network_type == 2 and batch.masks.get(self.gie_id) is None:
            out = self.engine.outputs[0].shape
            h, w = (out[0], out[1]) if self.seg_order == 1 else out[-2:]
            batch.masks[self.gie_id] = np.full((len(batch), max(h, 1), max(w, 1)), -1, np.int32)

    # -- process-mode 2 ------------------------------------------------------------------------

    def select_objects(self, batch: Batch) -> np.ndarray:
        """nvinfer's ``should_infer_object`` filters that do not depend on history (bool per row)."""
        return self._filter_objects(batch.objects)[0]

    def _filter_objects(self, objs):
        """(:meth:`select_objects`' mask, the objects' widths, their heights) — both sizes from one
        :func:`box_extent` call over the (x1, y1) and (x2, y2) columns."""
        op, min_w, min_h, max_w, max_h, class_ids = self._object_filters
        size = box_extent(objs.xyxy[:, :2], objs.xyxy[:, 2:])
        w, h = size[:, 0], size[:, 1]
        sel = (w >= min_w) & (h >= min_h)
        if op >= 0:
            sel &= objs.gie_id == op
        if max_w > 0:
            sel &= w <= max_w
        if max_h > 0:
            sel &= h <= max_h
        if class_ids is not None:
            sel &= np.isin(objs.class_id, class_ids)
        return sel, w, h

    def _process_objects(self, batch: Batch) -> None:
        """gst_nvinfer_process_objects, for every object at once: an object is inferred when it passes
        ``should_infer_object``; a classifier re-attaches its cached result to every tracked object it
        does not infer now — filtered out by size, class or gie-id included — as nvinfer does. What it
        attaches (cached results, then each engine call's) joins ``Batch.classifications`` in one
        concatenation."""
        objs = batch.objects
        passes, w, h = self._filter_objects(objs)
        is_cls = self.network_type == 1
        tracks = objs.track_id
        has_track = tracks >= 0
        area = (w * h).astype(np.float64)
        if self._async is not None:  # asynchronous classifiers cannot infer untracked objects and skip them
            rows = np.flatnonzero(has_track)
            passes, has_track, area, tracks = passes[rows], has_track[rows], area[rows], tracks[rows]
            frame = objs.frame[rows]
        else:
            rows, frame = np.arange(len(objs)), objs.frame
        frame_num = batch.frame_num[frame]
        source = batch.source_id[frame]
        reinfer = self._reinfer_interval
        attached: list = []  # classifier results for this batch, in the order they are attached
        with self._lock:
            idx, found = self.history.lookup(tracks)
            found &= has_track
            needs = passes & ~found
            if found.any():
                since = frame_num - self.history.last_inferred[idx]
                if is_cls:
                    grown = self.history.area[idx] * (1 + REINFER_AREA_THRESHOLD) < area
                    needs |= passes & found & (grown | (since > reinfer))
                else:
                    needs |= passes & found & ((since > reinfer) | (reinfer == REINFER_NEVER))
            if is_cls:  # the cached result of tracked objects not inferred now (async: all of them)
                attach = found & (~needs | (self._async is not None))
                cached, obj_rows = self.history.cached_for(tracks[attach], rows[attach])
                if len(cached):
                    cached.obj = obj_rows.astype(np.int32)
                    cached.frame = objs.frame[obj_rows]
                    attached.append(cached)
                self.history.touch(tracks[attach], frame_num[attach])
            new = has_track & needs
            self.history.touch(tracks[new], frame_num[new], source[new], area[new], inferred=True)
            self.history.end_batch(batch.source_id, batch.frame_num, busy=self._in_flight)
        try:
            self._infer_objects(batch, rows[needs], attached)
        finally:
            if attached:
                self._append_classifications(batch, *attached)

    def _infer_objects(self, batch: Batch, todo: np.ndarray, attached: list) -> None:
        """Infer the objects of rows ``todo`` (``max_batch`` crops per engine call; in the background
        for ``classifier-async-mode``); classifier results are added to ``attached``."""
        objs = batch.objects
        if not len(todo):
            return
        frames = self._frames(batch)
        if self._async is not None:
            crops = objs.xyxy[todo].copy(), objs.frame[todo].copy(), objs.track_id[todo].copy()
            if is_device_tensor(frames):
                frame_copy = frames.clone()  # on this stage's stream: the worker waits for it
            else:
                frame_copy = np.array(frames) if isinstance(frames, np.ndarray) else [np.array(f) for f in frames]
            self._pending = [f for f in self._pending if not f.done()]
            with self._lock:
                self._in_flight = np.concatenate([self._in_flight, crops[2]])
            self._pending.append(self._async.submit(self._infer_async, frame_copy, *crops,
                                                    ready_event(frame_copy)))
            return
        for start in range(0, len(todo), self.max_batch):
            chunk = todo[start:start + self.max_batch]
            outputs, mapping = self._infer(frames, objs.xyxy[chunk], objs.frame[chunk])
            self._consume(batch, outputs, mapping, parent_rows=chunk, attached=attached)

    def _infer_async(self, frames, xyxy, frame_idx, tracks, ready=None) -> None:
        if ready is not None:
            wait_ready(ready, frames.device)
        for start in range(0, len(tracks), self.max_batch):
            sl = slice(start, start + self.max_batch)
            outputs, _ = self._infer(frames, xyxy[sl], frame_idx[sl])
            res = self._timed("parse", self.cls_parser, outputs, self.cls_ctx)
            res.obj = tracks[sl][res.obj].astype(np.int32)
            res.gie_id = np.full(len(res), self.gie_id, np.int32)
            with self._lock:
                self.history.store_results(tracks[sl], res)
                done = np.flatnonzero(np.isin(self._in_flight, tracks[sl]))
                self._in_flight = np.delete(self._in_flight, done)

    # -- shared --------------------------------------------------------------------------------

    def _timed(self, phase: str, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.timings[phase] += time.perf_counter() - t0

    def _frames(self, batch: Batch):
        """The batch's frames where this GIE can use them: on the GPU when they were decoded there
        and the engine takes device tensors (pre-processing and inference without a host copy)."""
        if is_device_tensor(batch.frames) and hasattr(self.engine, "infer_device") \
                and str(getattr(self.engine, "device", "cpu")) == str(batch.frames.device):
            return batch.frames
        return batch.host_frames()

    def _infer(self, frames, rects=None, frame_index=None):
        tensor, mapping = self._preprocess(frames, rects, frame_index)
        return self._run_engine(tensor), mapping

    def _preprocess(self, frames, rects=None, frame_index=None):
        if is_device_tensor(frames):
            return self._timed("preprocess", preprocess_device, frames, self.pre, rects, frame_index)
        return self._timed("preprocess", preprocess, frames, self.pre, rects, frame_index)

    def _run_engine(self, tensor) -> dict:
        if is_device_tensor(tensor):
            return self._timed("infer", self._infer_device, tensor)
        return self._timed("infer", self.engine.infer, {self.input.name: tensor})

    def _infer_device(self, tensor) -> dict:
        """Device tensor in, outputs back on the host for the parsers (outputs are small): every
        output of every engine call in one copy — each copy to the host waits for the device, and
        a thread that waits gives the interpreter lock away."""
        import torch

        parts = []
        for start in range(0, tensor.shape[0], self.engine.max_batch):
            part = self.engine.infer_device({self.input.name: tensor[start:start + self.engine.max_batch]})
            parts += [(name, value) for name, value in part.items()]
        flat = torch.cat([value.float().reshape(-1) for _, value in parts]).cpu().numpy()
        outputs, at = {}, 0
        for name, value in parts:
            size = value.numel()
            outputs.setdefault(name, []).append(flat[at:at + size].reshape(tuple(value.shape)))
            at += size
        return {name: np.concatenate(arrays) if len(arrays) > 1 else arrays[0] for name, arrays in outputs.items()}


def _as_slice(rows: np.ndarray):
    """``rows`` (ascending) as a slice when they are evenly spaced — every frame, or every other one
    with ``interval=1`` — so selecting them is a view, not a copy of whole frames; else ``rows``."""
    if len(rows) == 0:
        return rows
    step = int(rows[1] - rows[0]) if len(rows) > 1 else 1
    if step > 0 and np.array_equal(np.diff(rows), np.full(len(rows) - 1, step)):
        return slice(int(rows[0]), int(rows[-1]) + 1, step)
    return rows


def build_gie_stages(app_config, engine_loader, *, counters: InferCounters | None = None) -> list[GieStage]:
    """One :class:`GieStage` per enabled GIE: the primary first, then ``[secondary-gieN]`` in order.

    ``engine_loader(gie_config, name)`` returns the GIE's engine (or an engine handle).
    Secondary GIEs run with process-mode 2, as deepstream-app sets them.
    """
    counters = counters or InferCounters()
    stages = []
    gies = []
    if app_config.primary_gie is not None and getattr(app_config.primary_gie, "enable", True):
        gies.append(("primary-gie", app_config.primary_gie, 1))
    for i, gie in enumerate(app_config.secondary_gies):
        if getattr(gie, "enable", True):
            gies.append((f"secondary-gie{getattr(gie, 'index', i)}", gie, 2))
    for name, gie, mode in gies:
        cfg = gie.nvinfer
        if _int(cfg.process_mode, 1) != mode:
            cfg = dataclasses.replace(cfg, process_mode=ProcessMode(mode))
        stages.append(GieStage(cfg, engine_loader(gie, name), name=name, counters=counters))
    return stages
