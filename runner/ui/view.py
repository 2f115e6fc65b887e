"""RunStats counters → the numbers people look at (rates, averages), one immutable RunView per sample.

The dashboard renders a RunView and the metrics endpoint serves the latest one, so both show the same
figures. Rates come from counter differences over a sliding window (``window_s``, default 2 s); the
pipeline only ever increments counters.

>>> from runner.pipeline.stats import RunStats
>>> t = [0.0]; stats = RunStats(clock=lambda: t[0]); src = stats.add_source(0, "file:///v/bikes.mp4")
>>> sampler = Sampler(stats)
>>> _ = sampler.sample()
>>> for _ in range(30): stats.frames_processed([0]); t[0] += 1 / 30
>>> view = sampler.sample()
>>> round(view.sources[0].fps, 1), view.sources[0].frames, view.total_frames
(30.0, 30, 30)
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace

from runner.pipeline.stats import RunStats
from runner.ui.gpu import GpuMonitor, GpuReading

DEFAULT_WINDOW_S = 2.0
HISTORY = 32  # fps samples kept per source for the sparkline


@dataclass(frozen=True, slots=True)
class SourceView:
    source_id: int
    uri: str
    state: str
    fps: float  # frames leaving the pipeline per second, over the window
    avg_fps: float  # since its first output frame (to its last one once it has ended)
    frames: int  # frames_processed
    decoded: int
    dropped: int
    reconnects: int
    last_error: str | None
    latency_ms: float | None
    total_frames: int | None = None  # frames the file holds; None for live sources
    decode_fps: float = 0.0  # frames decoded per second over the window (the progress rate)
    objects: tuple[tuple[str, int], ...] = ()  # ("gie:class", objects) that left the pipeline
    fps_history: tuple[float, ...] = ()  # fps at each of the latest samples, oldest first

    @property
    def progress(self) -> float | None:
        """Fraction of a file decoded (None for live sources)."""
        if not self.total_frames:
            return None
        return min(1.0, self.decoded / self.total_frames)

    @property
    def eta_s(self) -> float | None:
        """Seconds until the file is decoded at the current rate (None: live, ended or not moving)."""
        if not self.total_frames or self.state in ("ended", "failed") or self.decode_fps <= 0:
            return None
        return max(0, self.total_frames - self.decoded) / self.decode_fps


@dataclass(frozen=True, slots=True)
class StageView:
    name: str
    ms_per_frame: float  # busy time per frame over the window (whole run until it has two samples)
    queue_depth: int
    frames: int


@dataclass(frozen=True, slots=True)
class RunView:
    elapsed_s: float
    paused: bool
    sources: tuple[SourceView, ...]
    stages: tuple[StageView, ...]
    engines: tuple[tuple[str, str], ...]  # (engine name, building | loaded | swapped | failed)
    gpus: tuple[GpuReading, ...]
    # [nvds-analytics] per source id: {"lines": {label: crossings}, "roi": {label: objects},
    # "overcrowding": {label: {"count", "crowded"}}} (RunStats.analytics)
    analytics: dict = field(default_factory=dict)
    # message-broker sinks by name: protocol, address, state, sent, queued, dropped, outages (RunStats.brokers)
    brokers: dict = field(default_factory=dict)

    @property
    def total_frames(self) -> int:
        return sum(s.frames for s in self.sources)

    @property
    def total_fps(self) -> float:
        return sum(s.fps for s in self.sources)

    @property
    def total_dropped(self) -> int:
        return sum(s.dropped for s in self.sources)

    @property
    def ready(self) -> bool:
        """deepstream-server's readiness: the pipeline is playing (or paused): here, some source is."""
        return any(s.state in ("playing", "paused") for s in self.sources)


class Sampler:
    """The UI thread calls ``sample()`` periodically; ``latest`` is safe to read from any thread."""

    def __init__(self, stats: RunStats, window_s: float = DEFAULT_WINDOW_S,
                 gpu: GpuMonitor | None = None) -> None:
        self.stats = stats
        self.window_s = window_s
        self.gpu = gpu
        self._history: deque = deque()  # (time, {sid: (frames, decoded)}, {stage: (frames, busy_s)})
        self._fps: dict[int, deque] = {}  # sid -> recent fps samples (sparkline)
        self.latest: RunView | None = None
        self._lock = threading.Lock()

    def sample(self) -> RunView:
        with self._lock:
            return self._sample()

    def _sample(self) -> RunView:
        snap = self.stats.snapshot()
        now = snap["time"]
        frames = {sid: (s["frames_processed"], s["frames_decoded"]) for sid, s in snap["sources"].items()}
        work = {name: (s["frames"], s["busy_s"]) for name, s in snap["stages"].items()}
        # keep the newest entry older than the window as the base of the differences
        while len(self._history) > 1 and now - self._history[1][0] >= self.window_s:
            self._history.popleft()
        base = self._history[0] if self._history else None
        self._history.append((now, frames, work))

        sources = tuple(self._source(sid, s, now, base) for sid, s in sorted(snap["sources"].items()))
        for src in sources:
            self._fps.setdefault(src.source_id, deque(maxlen=HISTORY)).append(src.fps)
        sources = tuple(replace(src, fps_history=tuple(self._fps[src.source_id])) for src in sources)
        stages = tuple(self._stage(name, s, base) for name, s in snap["stages"].items())
        view = RunView(elapsed_s=snap["elapsed_s"], paused=snap["paused"], sources=sources,
                       stages=stages, engines=tuple(snap["engines"].items()),
                       gpus=self.gpu.read() if self.gpu else (), analytics=snap.get("analytics", {}),
                       brokers=snap.get("brokers", {}))
        self.latest = view
        return view

    @staticmethod
    def _source(sid: int, s: dict, now: float, base) -> SourceView:
        fps = decode_fps = 0.0
        if base is not None and now > base[0]:
            before = base[1].get(sid, (0, 0))
            fps = (s["frames_processed"] - before[0]) / (now - base[0])
            decode_fps = (s["frames_decoded"] - before[1]) / (now - base[0])
        avg = 0.0
        first = s["first_output_at"]
        if first is not None:
            end = s["last_output_at"] if s["state"] in ("ended", "failed") else now
            avg = s["frames_processed"] / (end - first) if end > first else 0.0
        return SourceView(sid, s["uri"], s["state"], fps, avg, s["frames_processed"], s["frames_decoded"],
                          s["dropped"], s["reconnects"], s["last_error"], s["latency_ms"],
                          total_frames=s.get("total_frames"), decode_fps=decode_fps,
                          objects=tuple(sorted((s.get("objects") or {}).items())))

    @staticmethod
    def _stage(name: str, s: dict, base) -> StageView:
        ms = s["ms_per_frame"]
        if base is not None and name in base[2]:
            d_frames, d_busy = s["frames"] - base[2][name][0], s["busy_s"] - base[2][name][1]
            if d_frames > 0:
                ms = 1000.0 * d_busy / d_frames
        return StageView(name, ms, s["queue_depth"], s["frames"])
