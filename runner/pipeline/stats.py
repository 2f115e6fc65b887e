"""Run counters: written by sources and stages, read by the dashboard, **PERF lines, metrics and
the ``--report`` file. Plain monotonic counters and states; readers compute rates by sampling them
(``snapshot()`` twice, divide by the time between), so writers never do more than an increment.

>>> stats = RunStats()
>>> s = stats.add_source(0, "file:///videos/bikes.mp4")
>>> s.frames_decoded += 3; stats.frames_processed([0, 0])
>>> stats.snapshot()["sources"][0]["frames_processed"]
2
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from runner.pipeline.infer_stats import InferCounters
from runner.pipeline.tally import Tally
from runner.redact import redact

SOURCE_STATES = ("starting", "playing", "reconnecting", "paused", "ended", "failed")


class SourceOutputs:
    """What left the pipeline, per source id, as arrays: frames, first and latest exit times, latest
    latency, objects per GIE and class. The last stage writes a batch at a time with a few numpy calls
    (:meth:`count_frames`, :meth:`count_objects`) — no Python loop over the batch's frames, sources or
    objects; :class:`SourceStats` reads one source's values through properties, and object counts are
    grouped only when read (:class:`runner.pipeline.tally.Tally`)."""

    def __init__(self) -> None:
        self.frames = np.zeros(0, np.int64)
        self.first = np.zeros(0, np.float64)  # time.monotonic(); NaN: none yet
        self.last = np.zeros(0, np.float64)
        self.latency = np.zeros(0, np.float64)  # ms; NaN: none yet
        self._objects = Tally((np.int64, np.int64, np.int64))  # (source, gie, class) per object
        self._objects_set: dict[int, dict] = {}  # source → counts set from outside (--workers' merge)

    def reserve(self, source_id: int) -> None:
        """Room for ``source_id`` (its row starts empty)."""
        n = len(self.frames)
        if source_id < n:
            return
        grow = max(source_id + 1, 2 * n) - n
        self.frames = np.concatenate([self.frames, np.zeros(grow, np.int64)])
        self.first, self.last, self.latency = (np.concatenate([a, np.full(grow, np.nan)])
                                               for a in (self.first, self.last, self.latency))

    def reset(self, source_id: int) -> None:
        """A new stream re-using ``source_id``: its counts start from zero."""
        self.reserve(source_id)
        self.frames[source_id] = 0
        self.first[source_id] = self.last[source_id] = self.latency[source_id] = np.nan
        self.set_objects(source_id, {})

    def count_frames(self, source_ids: np.ndarray, now: float, ntp_ts: np.ndarray | None) -> None:
        """Frames of ``source_ids`` (one per batch row) left at ``now``; ``ntp_ts``: when each entered
        streammux (ns since the epoch), for each source's latest latency."""
        # each source's frame count, and its last row in the batch (its latest frame)
        sources, back, counts = np.unique(source_ids[::-1], return_index=True, return_counts=True)
        self.frames[sources] += counts
        first = self.first[sources]
        self.first[sources] = np.where(np.isnan(first), now, first)
        self.last[sources] = now
        if ntp_ts is not None:
            latest = len(source_ids) - 1 - back
            self.latency[sources] = (time.time_ns() - np.asarray(ntp_ts, np.int64).reshape(-1)[latest]) / 1e6

    def count_objects(self, source_ids, gie_ids, class_ids) -> None:
        self._objects.add(source_ids, gie_ids, class_ids)

    def objects_by_source(self) -> dict[int, dict]:
        """``{source: {"gie:class": n}}`` — grouped now, once for every source."""
        out: dict[int, dict] = {sid: dict(d) for sid, d in self._objects_set.items()}
        for (sid, gie, cls), n in self._objects.counts().items():  # distinct keys, at read time
            per = out.setdefault(sid, {})
            per[f"{gie}:{cls}"] = per.get(f"{gie}:{cls}", 0) + n
        return out

    def set_objects(self, source_id: int, counts: dict) -> None:
        self._objects.replace({}, keep=lambda key: key[0] != source_id)
        self._objects_set[source_id] = dict(counts)


def _output_value(name: str, cast):
    """A :class:`SourceStats` property reading and writing its source's row of ``SourceOutputs.<name>``
    (None where a time or latency is NaN: not yet)."""

    def get(self):
        value = getattr(self.outputs, name)[self.source_id]
        return None if value != value else cast(value)

    def set(self, value):
        getattr(self.outputs, name)[self.source_id] = np.nan if value is None else value

    return property(get, set)


@dataclass(slots=True)
class SourceStats:
    source_id: int
    uri: str  # credentials already redacted
    state: str = "starting"  # one of SOURCE_STATES
    frames_decoded: int = 0
    dropped: int = 0  # frames dropped by a live source that ran ahead, or by drop-frame-interval
    reconnects: int = 0
    damaged_packets: int = 0  # packets the decoder rejected and skipped (it resynchronises, as FFmpeg's does)
    errors: list[str] = field(default_factory=list)  # each names the source and what to do
    started_at: float | None = None  # time.monotonic() of the first decoded frame
    ended_at: float | None = None
    total_frames: int | None = None  # frames a file holds (its header, else duration x rate); None: live
    # what left the pipeline (RunStats' arrays; a SourceStats made alone has a table of its own)
    outputs: SourceOutputs = field(default_factory=SourceOutputs, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.outputs.reserve(self.source_id)

    frames_processed = _output_value("frames", int)  # frames that left the last stage (what **PERF counts)
    first_output_at = _output_value("first", float)  # time.monotonic() when its first frame left the pipeline
    last_output_at = _output_value("last", float)  # time.monotonic() when its latest frame left the pipeline
    latency_ms = _output_value("latency", float)  # streammux entry (Batch.ntp_ts) to pipeline exit, latest frame

    @property
    def objects(self) -> dict:
        """``"gie:class"`` → objects that left the pipeline."""
        return self.outputs.objects_by_source().get(self.source_id, {})

    @objects.setter
    def objects(self, counts: dict) -> None:
        self.outputs.set_objects(self.source_id, counts)

    @property
    def last_error(self) -> str | None:
        return self.errors[-1] if self.errors else None

    def as_dict(self, objects: dict | None = None) -> dict:
        """Plain values, in the order readers have always seen them (``objects``: already grouped)."""
        return {"source_id": self.source_id, "uri": self.uri, "state": self.state,
                "frames_decoded": self.frames_decoded, "frames_processed": self.frames_processed,
                "dropped": self.dropped, "reconnects": self.reconnects, "damaged_packets": self.damaged_packets,
                "errors": list(self.errors), "started_at": self.started_at, "ended_at": self.ended_at,
                "first_output_at": self.first_output_at, "last_output_at": self.last_output_at,
                "latency_ms": self.latency_ms, "total_frames": self.total_frames,
                "objects": self.objects if objects is None else objects}


@dataclass(slots=True)
class StageStats:
    name: str
    batches: int = 0
    frames: int = 0
    busy_s: float = 0.0  # seconds spent inside process()
    queue_depth: Callable[[], int] | None = None  # items waiting in this stage's input queue
    error: str | None = None  # an output that failed and stopped alone (runner.pipeline.output_files)

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.busy_s / self.frames if self.frames else 0.0


class RunStats:
    """All counters of one run. Increments from several threads are fine under the GIL for ints;
    structural changes (adding sources, stages, engines) take the lock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # monotonic seconds; tests inject a scripted clock
        self.started_at = clock()
        self.sources: dict[int, SourceStats] = {}
        self.outputs = SourceOutputs()  # what left the pipeline, every source's in one set of arrays
        self.stages: dict[str, StageStats] = {}
        self.engines: dict[str, str] = {}  # engine name -> "building" | "loaded" | "swapped" | "failed"
        self.paused = False
        self.stopped_by: str | None = None  # "q", "SIGINT" or "SIGTERM": who ended the run early (runner.stopping)
        # objects per GIE and class, classifier labels per GIE (GIE stages write, --report reads)
        self.inference = InferCounters()
        # [nvds-analytics], per source id: cumulative crossings per line, objects per ROI in the latest
        # frame, overcrowding flags (the analytics stage writes, dashboard/metrics/--report read)
        self.analytics: dict[int, dict[str, dict]] = {}
        # message brokers, per sink name: state ("connected"/"down"), sent, queued, dropped
        self.brokers: dict[str, dict] = {}
        self._lock = threading.Lock()

    def add_source(self, source_id: int, uri: str, fresh: bool = False) -> SourceStats:
        """The counters of a source; ``fresh``: a new stream re-using an ended source's id (a
        stream added at run time) starts from zero."""
        with self._lock:
            if fresh:
                self.outputs.reset(source_id)
                self.sources[source_id] = SourceStats(source_id, uri, outputs=self.outputs)
            elif source_id not in self.sources:
                self.sources[source_id] = SourceStats(source_id, uri, outputs=self.outputs)
            return self.sources[source_id]

    def add_stage(self, name: str, queue_depth: Callable[[], int] | None = None) -> StageStats:
        with self._lock:
            return self.stages.setdefault(name, StageStats(name, queue_depth=queue_depth))

    def set_engine(self, name: str, state: str) -> None:
        with self._lock:
            self.engines[name] = state

    def frames_processed(self, source_ids: Iterable[int], ntp_ts: Iterable[int] | None = None) -> None:
        """Count frames leaving the pipeline (called by the last stage with the batch's source ids,
        and its ``Batch.ntp_ts`` to record each source's latest latency): a few numpy calls per batch
        into :attr:`outputs`, no Python loop over its frames or sources."""
        ids = np.asarray(source_ids, np.int64).reshape(-1)
        if not len(ids):
            return
        if ids.min() < 0 or ids.max() >= len(self.outputs.frames):
            unknown = sorted(set(ids.tolist()) - set(self.sources))
            raise KeyError(f"frames of source(s) {unknown} that were never added (RunStats.add_source)")
        now = self.clock()
        with self._lock:  # add_source may grow the arrays meanwhile (a stream added at run time)
            self.outputs.count_frames(ids, now, ntp_ts)

    def analytics_frame(self, source_id: int, line_totals: dict, roi_counts: dict, oc_counts: dict,
                        oc_status: dict) -> None:
        """Record one frame's nvdsanalytics counts for ``source_id`` (latest values replace older ones)."""
        self.analytics[source_id] = {"lines": dict(line_totals), "roi": dict(roi_counts),
                                     "overcrowding": {k: {"count": v, "crowded": bool(oc_status.get(k))}
                                                      for k, v in oc_counts.items()}}

    def objects_processed(self, source_ids, gie_ids, class_ids) -> None:
        """Count objects leaving the pipeline per source, GIE and class (one row per object). The
        columns are kept as they are and grouped when read (``snapshot()``, ``SourceStats.objects``):
        the Python work per batch does not grow with its objects."""
        self.outputs.count_objects(np.asarray(source_ids), np.asarray(gie_ids), np.asarray(class_ids))

    def snapshot(self) -> dict:
        """A consistent-enough copy for readers (dashboard, metrics, REST API, --workers): plain dicts,
        safe to serialise, credentials redacted."""
        with self._lock:
            objects = self.outputs.objects_by_source()  # grouped once for every source
            sources = {sid: {**s.as_dict(objects.get(sid, {})), "uri": redact(s.uri),
                             "errors": [redact(e) for e in s.errors],
                             "last_error": redact(s.last_error) if s.last_error else None}
                       for sid, s in self.sources.items()}  # what every reader shows: redacted here once
            stages = {
                name: {"batches": s.batches, "frames": s.frames, "busy_s": s.busy_s,
                       "ms_per_frame": s.ms_per_frame,
                       "queue_depth": s.queue_depth() if s.queue_depth else 0, "error": s.error}
                for name, s in self.stages.items()
            }
            now = self.clock()
            return {"time": now, "elapsed_s": now - self.started_at,
                    "paused": self.paused, "sources": sources, "stages": stages,
                    "engines": dict(self.engines), "inference": self.inference.snapshot(),
                    "analytics": {sid: dict(a) for sid, a in self.analytics.items()},
                    "brokers": {name: dict(b) for name, b in self.brokers.items()}}
