"""A stalled pipeline never stays silent: ``--watchdog SECONDS`` (default 300, 0 turns it off).

The watchdog samples the run's counters once a second. When no source has decoded a frame and no frame
has left the pipeline for ``SECONDS`` — while the run is not paused, no source is between reconnection
attempts, and the pipeline is not idling open for cameras the REST API may add — it ends the run with
a :class:`PipelineStalled` error (exit 1, in the report) and, for ``--debug``, a dump of where each
thread of the pipeline waits: its input queue depth and the innermost frames of its stack.

>>> progress_key({"sources": {0: {"frames_decoded": 3, "frames_processed": 2, "state": "playing"}},
...               "stages": {"pgie": {"frames": 2}}})
(3, 2, 2)
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Callable

from runner.errors import DsrunError

DEFAULT_WATCHDOG_S = 300.0  # longer than any first-batch warm-up (torch.compile, CUDA graphs) we have seen
_PIPELINE_THREADS = ("source-", "streammux", "stage-", "sink-")


class PipelineStalled(DsrunError):
    """No source made progress for the watchdog's time."""

    exit_code = 1


def progress_key(snapshot: dict) -> tuple[int, int, int]:
    """What must change while a pipeline makes progress: frames decoded, frames out, stage frames."""
    sources = snapshot["sources"].values()
    return (sum(s["frames_decoded"] for s in sources), sum(s["frames_processed"] for s in sources),
            sum(st["frames"] for st in snapshot["stages"].values()))


def where_threads_wait(stage_depths: dict[str, int] | None = None, depth: int = 4) -> str:
    """Each pipeline thread's innermost ``depth`` stack frames (and its input queue's depth)."""
    frames = sys._current_frames()
    lines = ["where each pipeline thread waits:"]
    for thread in sorted(threading.enumerate(), key=lambda t: t.name):
        if not thread.name.startswith(_PIPELINE_THREADS) or thread.ident not in frames:
            continue
        stage = thread.name.split("-", 1)[-1]
        queued = (stage_depths or {}).get(stage)
        lines.append(f"  {thread.name}" + (f" ({queued} batch(es) waiting in its queue)" if queued is not None
                                           else ""))
        for entry in traceback.extract_stack(frames[thread.ident])[-depth:]:
            lines.append(f"    {entry.filename}:{entry.lineno} in {entry.name}: {entry.line or ''}".rstrip())
    return "\n".join(lines)


class Watchdog(threading.Thread):
    """Calls ``on_stall(error, dump)`` once when ``stats`` shows no progress for ``timeout_s`` seconds."""

    def __init__(self, stats, timeout_s: float, on_stall: Callable[[DsrunError, str], None],
                 clock: Callable[[], float] = time.monotonic, poll_s: float = 1.0,
                 stays_open: Callable[[], bool] = lambda: False) -> None:
        super().__init__(name="dsrun-watchdog", daemon=True)
        self.stats, self.timeout_s, self.on_stall = stats, float(timeout_s), on_stall
        self.stays_open = stays_open  # the pipeline waits for sources added at run time (REST API)
        self.clock, self.poll_s = clock, min(poll_s, max(0.05, self.timeout_s / 4))
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _excused(self, snap: dict) -> bool:
        states = [s["state"] for s in snap["sources"].values()]
        if snap["paused"] or "reconnecting" in states:
            return True
        # every source done (or none yet) while the pipeline stays open for cameras added by the REST API
        return all(s in ("ended", "failed") for s in states) and self.stays_open()

    def run(self) -> None:
        last_key, last_change = None, self.clock()
        while not self._stop.wait(self.poll_s):
            snap = self.stats.snapshot()
            key = progress_key(snap)
            now = self.clock()
            if key != last_key or self._excused(snap):
                last_key, last_change = key, now
                continue
            if now - last_change >= self.timeout_s:
                waiting = ", ".join(f"{sid}: {s['state']}" for sid, s in sorted(snap["sources"].items()))
                error = PipelineStalled(
                    f"the pipeline stalled: no source decoded a frame and no frame left the pipeline for "
                    f"{self.timeout_s:g} s (sources {waiting or 'none'}) — run with --debug to see where "
                    "each stage waits; --watchdog SECONDS changes the limit (0 turns it off)")
                depths = {name: st["queue_depth"] for name, st in snap["stages"].items()}
                self.on_stall(error, where_threads_wait(depths))
                return
