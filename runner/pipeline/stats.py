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
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np

from runner.pipeline.infer_stats import InferCounters
from runner.redact import redact

SOURCE_STATES = ("starting", "playing", "reconnecting", "paused", "ended", "failed")


@dataclass(slots=True)
class SourceStats:
    source_id: int
    uri: str  # credentials already redacted
    state: str = "starting"  # one of SOURCE_STATES
    frames_decoded: int = 0
    frames_processed: int = 0  # frames that left the last stage (what **PERF counts)
    dropped: int = 0  # frames dropped by a live source that ran ahead, or by drop-frame-interval
    reconnects: int = 0
    damaged_packets: int = 0  # packets the decoder rejected and skipped (it resynchronises, as FFmpeg's does)
    errors: list[str] = field(default_factory=list)  # each names the source and what to do
    started_at: float | None = None  # time.monotonic() of the first decoded frame
    ended_at: float | None = None
    first_output_at: float | None = None  # time.monotonic() when its first frame left the pipeline
    last_output_at: float | None = None  # time.monotonic() when its latest frame left the pipeline
    latency_ms: float | None = None  # streammux entry (Batch.ntp_ts) to pipeline exit, latest frame
    total_frames: int | None = None  # frames a file holds (its header, else duration x rate); None: live
    objects: dict = field(default_factory=dict)  # "gie:class" -> objects that left the pipeline

    @property
    def last_error(self) -> str | None:
        return self.errors[-1] if self.errors else None


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
                self.sources[source_id] = SourceStats(source_id, uri)
            return self.sources.setdefault(source_id, SourceStats(source_id, uri))

    def add_stage(self, name: str, queue_depth: Callable[[], int] | None = None) -> StageStats:
        with self._lock:
            return self.stages.setdefault(name, StageStats(name, queue_depth=queue_depth))

    def set_engine(self, name: str, state: str) -> None:
        with self._lock:
            self.engines[name] = state

    def frames_processed(self, source_ids: Iterable[int], ntp_ts: Iterable[int] | None = None) -> None:
        """Count frames leaving the pipeline (called by the last stage with the batch's source ids,
        and its ``Batch.ntp_ts`` to record each source's latest latency). Frames are grouped by source
        with one ``np.unique``: the Python work is per source of the batch, not per frame."""
        ids = np.asarray(source_ids, np.int64).reshape(-1)
        if not len(ids):
            return
        now = self.clock()
        # each source's frame count, and its last row in the batch (its latest frame)
        sources, back, counts = np.unique(ids[::-1], return_index=True, return_counts=True)
        latest = len(ids) - 1 - back
        latency = None
        if ntp_ts is not None:
            latency = ((time.time_ns() - np.asarray(ntp_ts, np.int64).reshape(-1)[latest]) / 1e6).tolist()
        for i, (sid, n) in enumerate(zip(sources.tolist(), counts.tolist())):
            s = self.sources[sid]
            s.frames_processed += n
            if s.first_output_at is None:
                s.first_output_at = now
            s.last_output_at = now
            if latency is not None:
                s.latency_ms = latency[i]

    def analytics_frame(self, source_id: int, line_totals: dict, roi_counts: dict, oc_counts: dict,
                        oc_status: dict) -> None:
        """Record one frame's nvdsanalytics counts for ``source_id`` (latest values replace older ones)."""
        self.analytics[source_id] = {"lines": dict(line_totals), "roi": dict(roi_counts),
                                     "overcrowding": {k: {"count": v, "crowded": bool(oc_status.get(k))}
                                                      for k, v in oc_counts.items()}}

    def objects_processed(self, source_ids, gie_ids, class_ids) -> None:
        """Count objects leaving the pipeline per source, GIE and class (one row per object; counted
        with one ``np.unique``, not a loop over objects)."""
        if not len(source_ids):
            return
        rows, counts = np.unique(np.stack([np.asarray(source_ids), np.asarray(gie_ids), np.asarray(class_ids)],
                                          1).astype(np.int64), axis=0, return_counts=True)
        with self._lock:
            for (sid, gie, cls), n in zip(rows.tolist(), counts.tolist()):
                per = self.sources[sid].objects
                per[f"{gie}:{cls}"] = per.get(f"{gie}:{cls}", 0) + n

    def snapshot(self) -> dict:
        """A consistent-enough copy for readers (dashboard, metrics, REST API, --workers): plain dicts,
        safe to serialise, credentials redacted."""
        with self._lock:
            sources = {sid: {**asdict(s), "uri": redact(s.uri), "errors": [redact(e) for e in s.errors],
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
