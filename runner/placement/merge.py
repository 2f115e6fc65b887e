"""One run out of many shards: each shard's counters (``RunStats.snapshot()``, sent every
``STATS_INTERVAL_S`` by a child process or a Ray actor) merged into the parent's ``RunStats``, so the
dashboard, ``**PERF`` lines, ``--metrics-port`` and ``--report`` read one run.

A shard that is replaced (a lost Ray actor's sources restarted elsewhere) leaves its last counters
behind as a *carry*: the replacement counts from zero, and each merged source is carry + new.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from runner.pipeline.report import EXIT_FAILED, EXIT_INTERRUPTED
from runner.pipeline.stats import RunStats
from runner.placement import shard_name

STATS_INTERVAL_S = 0.2  # how often a shard sends its counters
# copied from a shard's snapshot; times first, so a reader never sees frames without their clock
SOURCE_TIMES = ("started_at", "ended_at", "first_output_at", "last_output_at", "latency_ms", "state")
SOURCE_COUNTS = ("frames_decoded", "dropped", "reconnects", "damaged_packets", "frames_processed")


@dataclass
class ShardState:
    """The parent's view of one running shard: whatever runs it (process, actor) sets these."""

    index: int
    sources: tuple[int, ...]
    ready: bool = False
    started: bool = False  # the parent has told it to start
    end: dict | None = None  # its last message: exit_code, errors, interrupted
    stages: dict[str, dict] = field(default_factory=dict)  # its latest stage counters
    inference: dict = field(default_factory=dict)
    sources_seen: dict[int, dict] = field(default_factory=dict)  # its latest counters per source

    @property
    def name(self) -> str:
        return shard_name(self.index, self.sources)


class _MergedInference:
    """The shards' ``InferCounters`` snapshots, summed (what ``--report`` and the dashboard read);
    replaced shards' counts stay in."""

    def __init__(self, merger: "ShardMerger") -> None:
        self.merger = merger

    def snapshot(self) -> dict:
        out: dict[str, dict] = {"objects": {}, "labels": {}}
        for w in self.merger.shards + self.merger.retired:
            for kind, per_gie in out.items():
                for gie, counts in w.inference.get(kind, {}).items():
                    merged = per_gie.setdefault(gie, {})
                    for key, n in counts.items():
                        merged[key] = merged.get(key, 0) + int(n)
        order = lambda k: (0, int(k), "") if str(k).lstrip("-").isdigit() else (1, 0, str(k))
        return {kind: {g: dict(sorted(c.items(), key=lambda kv: order(kv[0])))
                       for g, c in sorted(per_gie.items(), key=lambda kv: order(kv[0]))}
                for kind, per_gie in out.items()}


class ShardMerger:
    """The parent's ``RunStats`` kept as the sum of its shards."""

    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.shards: list[ShardState] = []
        self.retired: list[ShardState] = []  # replaced shards: their counts stay in the totals
        self.errors: list[str] = []  # shard-level problems (the shards say their own)
        self._carry: dict[int, dict[str, int]] = {}  # source id -> counters of replaced shards
        self._lock = threading.Lock()
        stats.inference = _MergedInference(self)

    def add(self, shard: ShardState) -> ShardState:
        with self._lock:
            self.shards.append(shard)
        return shard

    def apply(self, shard: ShardState, snap: dict) -> None:
        """Copy one snapshot of ``shard`` into the parent's counters."""
        with self._lock:
            for sid, s in snap.get("sources", {}).items():
                sid = int(sid)
                shard.sources_seen[sid] = s
                dst = self.stats.add_source(sid, s["uri"])
                for name in SOURCE_TIMES:
                    value = s[name]
                    if name in ("started_at", "first_output_at") and getattr(dst, name) is not None:
                        continue  # a replacement keeps the source's first times
                    setattr(dst, name, value)
                carry = self._carry.get(sid, {})
                for name in SOURCE_COUNTS:
                    setattr(dst, name, carry.get(name, 0) + int(s[name]))
                dst.errors = list(carry.get("errors", [])) + list(s["errors"])
                dst.total_frames = s.get("total_frames")  # the dashboard's progress
                dst.objects = dict(s.get("objects") or {})  # objects per class, this shard's
            shard.stages = snap.get("stages", {})
            shard.inference = snap.get("inference", {})
            everyone = self.shards + self.retired
            for name in dict.fromkeys(n for x in everyone for n in x.stages):
                parts = [x.stages[name] for x in everyone if name in x.stages]
                st = self.stats.add_stage(name, queue_depth=self._depth(name))
                st.batches = sum(p["batches"] for p in parts)
                st.frames = sum(p["frames"] for p in parts)
                st.busy_s = sum(p["busy_s"] for p in parts)
                st.error = next((p["error"] for p in parts if p.get("error")), None)  # an output that stopped
            for name, state in snap.get("engines", {}).items():
                self.stats.set_engine(name, state)
            for sid, counts in snap.get("analytics", {}).items():  # [nvds-analytics]: shards own their sources
                self.stats.analytics[int(sid)] = counts
            for name, counts in snap.get("brokers", {}).items():  # each shard has its own broker clients
                self.stats.brokers[f"{name} (worker {shard.index})"] = counts

    def _depth(self, name: str):
        return lambda: sum(x.stages.get(name, {}).get("queue_depth", 0) for x in self.shards)

    def retire(self, shard: ShardState, done: dict[int, dict[str, int]]) -> None:
        """``shard`` is gone and replaced: what it did stays counted. ``done``: source id → the
        counters to carry (see :func:`resume_point`)."""
        with self._lock:
            self.shards.remove(shard)
            self.retired.append(shard)
            for sid, counts in done.items():
                carry = self._carry.setdefault(sid, {})
                for name in SOURCE_COUNTS:
                    carry[name] = carry.get(name, 0) + int(counts.get(name, 0))
                carry.setdefault("errors", []).extend(counts.get("errors", []))

    def fail(self, shard: ShardState, problem: str) -> None:
        """A shard that ended without saying so: the problem is an error; its unfinished sources fail."""
        self.errors.append(problem)
        for sid in shard.sources:
            s = self.stats.sources.get(sid)
            if s is not None and s.state not in ("ended", "failed"):
                s.state = "failed"
                s.errors.append(problem)

    def exit_code(self, interrupted: bool, codes: list[int]) -> int:
        """The worst shard's status (``codes``), 1 with shard-level errors, 130 after Ctrl-C."""
        if interrupted:
            return EXIT_INTERRUPTED
        return max(codes + ([EXIT_FAILED] if self.errors else []) + [0])

    def shard_errors(self) -> list[str]:
        return [e for w in self.shards + self.retired if w.end is not None for e in w.end.get("errors", ())]


def resume_point(counters: dict, drop_frame_interval: int = 0) -> dict[str, int]:
    """Where a lost shard left a file source, from its last reported counters: the frames it had
    *processed* are done; decoding resumes after the decoded frame that produced the last of them.
    Frames decoded but not yet processed are decoded again (not counted twice).

    >>> resume_point({"frames_processed": 40, "frames_decoded": 52, "dropped": 0, "reconnects": 0})
    {'frames_decoded': 40, 'frames_processed': 40, 'dropped': 0, 'reconnects': 0}
    >>> resume_point({"frames_processed": 10, "frames_decoded": 31, "dropped": 21, "reconnects": 0}, 3)
    {'frames_decoded': 30, 'frames_processed': 10, 'dropped': 20, 'reconnects': 0}
    """
    processed = int(counters.get("frames_processed", 0))
    decoded = processed * max(1, int(drop_frame_interval or 0))
    return {"frames_decoded": decoded, "frames_processed": processed, "dropped": decoded - processed,
            "reconnects": int(counters.get("reconnects", 0))}
