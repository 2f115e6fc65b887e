"""deepstream-app's ``**PERF`` lines, same format and cadence, so scripts written for it still work.

deepstream-app (``deepstream_app_main.c`` perf_cb over ``deepstream_perf.c``) prints, every
``perf-measurement-interval-sec`` seconds while ``enable-perf-measurement=1``::

    (blank line)
    **PERF:  FPS 0 (Avg)\tFPS 1 (Avg)\t
    **PERF:  29.80 (29.95)\t30.00 (29.99)\t

- the header (after a blank line) before the first value line, again every 20 value lines, and — our
  addition, since sources may register late — whenever the set of sources changes;
- per source ``interval fps (average fps)``, two decimals, each followed by a tab;
- interval fps = frames that left the pipeline in the interval / the nominal interval;
- average fps = frames counted since the source's first output frame / the time it was measured. The
  first frame only starts the clock (it is not counted); a pause stops the clock at the source's last
  frame before the pause; no lines are printed while paused; after a resume the next line comes one
  interval later. (deepstream-app restarts the clock at the first frame after a resume; we restart it
  at the resume itself — the same figure to within one frame.)

>>> from runner.pipeline.stats import RunStats
>>> t = [0.0]; stats = RunStats(clock=lambda: t[0]); _ = stats.add_source(0, "file:///a.mp4")
>>> import io; out = io.StringIO(); perf = PerfReporter(stats, interval_s=5, stream=out)
>>> for _ in range(51): stats.frames_processed([0]); t[0] += 0.1   # 51 frames, 0.1 s apart
>>> t[0] = 5.0; perf.tick()
True
>>> out.getvalue()
'\\n**PERF:  FPS 0 (Avg)\\t\\n**PERF:  10.00 (10.00)\\t\\n'
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TextIO

from runner.pipeline.stats import RunStats

DEFAULT_INTERVAL_S = 5  # every deepstream-app sample config sets perf-measurement-interval-sec=5
HEADER_EVERY = 20  # value lines between headers (deepstream_app_main.c perf_cb)
PREFIX = "**PERF:  "

#: What deepstream-app users grep with; the tests hold our lines to it.
VALUE_LINE = re.compile(r"\*\*PERF:\s+((?:\d+\.\d+ \(\d+\.\d+\)\s*)+)")


@dataclass(frozen=True, slots=True)
class PerfSettings:
    """``[application] enable-perf-measurement`` and ``perf-measurement-interval-sec``.

    >>> PerfSettings.from_config(None)
    PerfSettings(enabled=True, interval_s=5.0)
    """

    enabled: bool = True
    interval_s: float = DEFAULT_INTERVAL_S

    @classmethod
    def from_config(cls, config) -> "PerfSettings":
        """From an AppConfig, its ``application`` group, or None (defaults). A missing or zero
        interval means the default 5 s (deepstream-app has no usable default: 0 would spin)."""
        app = getattr(config, "application", config)
        enabled = getattr(app, "enable_perf_measurement", True)
        interval = getattr(app, "perf_measurement_interval_sec", None) or DEFAULT_INTERVAL_S
        return cls(bool(enabled) if enabled is not None else True, float(interval))


def header_line(source_ids) -> str:
    """The header deepstream-app prints before the first line and every 20 lines.

    >>> header_line([0, 1])
    '\\n**PERF:  FPS 0 (Avg)\\tFPS 1 (Avg)\\t\\n'
    """
    return "\n" + PREFIX + "".join(f"FPS {sid} (Avg)\t" for sid in source_ids) + "\n"


def value_line(figures) -> str:
    """``figures``: (interval fps, average fps) per source, in header order.

    >>> value_line([(29.8, 29.954), (0, 0)])
    '**PERF:  29.80 (29.95)\\t0.00 (0.00)\\t\\n'
    """
    return PREFIX + "".join(f"{fps:.2f} ({avg:.2f})\t" for fps, avg in figures) + "\n"


@dataclass(slots=True)
class _Meter:
    """One source's measurement, as deepstream_perf.c keeps it (counts and times, no rates)."""

    mark: int  # frames_processed already accounted for
    start: float | None = None  # clock origin: first frame (at start) or the resume instant
    measured_s: float = 0.0  # measured time before the last pause
    counted: int = 0  # frames counted since the start (the first frame excluded)
    in_interval: int = 0  # frames counted since the last line
    skip_first: bool = True  # the very first output frame starts the clock and is not counted


class PerfReporter:
    """Prints ``**PERF`` lines from a RunStats. Call ``tick()`` often (the UI thread does, and
    sleeps until ``next_due``); it prints when an interval has passed and returns True then."""

    def __init__(self, stats: RunStats, interval_s: float = DEFAULT_INTERVAL_S,
                 stream: TextIO | None = None) -> None:
        self.stats = stats
        self.interval_s = float(interval_s)
        self.stream = stream if stream is not None else sys.stdout
        self._clock = stats.clock
        self._meters: dict[int, _Meter] = {}
        self._paused = False
        self._lines = 0  # value lines since the last header
        self._shown: tuple[int, ...] | None = None  # source ids of the last header
        self.next_due = self._clock() + self.interval_s

    def tick(self) -> bool:
        now = self._clock()
        if self.stats.paused != self._paused:
            self._pause(now) if self.stats.paused else self._resume(now)
        if self._paused:
            return False
        self._collect()
        if now < self.next_due:
            return False
        self._report(now)
        # deepstream-app's GLib timer fires every interval; we keep its phase unless we fell behind
        self.next_due += self.interval_s
        if self.next_due <= now:
            self.next_due = now + self.interval_s
        return True

    def _collect(self) -> None:
        """Move new frames into the meters (frames that left while paused are not counted)."""
        for sid, s in list(self.stats.sources.items()):
            m = self._meters.get(sid)
            if m is None:
                m = self._meters[sid] = _Meter(mark=0)
            new = s.frames_processed - m.mark
            if new <= 0:
                continue
            m.mark = s.frames_processed
            if m.start is None:
                m.start = s.first_output_at if s.first_output_at is not None else s.last_output_at
            if m.skip_first:
                m.skip_first, new = False, new - 1
            m.counted += new
            m.in_interval += new

    def _report(self, now: float) -> None:
        ids = tuple(sorted(self._meters))
        if not ids:
            return
        figures = []
        for sid in ids:
            m = self._meters[sid]
            measured = m.measured_s + (now - m.start if m.start is not None else 0.0)
            figures.append((m.in_interval / self.interval_s, m.counted / measured if measured > 0 else 0.0))
            m.in_interval = 0
        text = ""
        if ids != self._shown or self._lines % HEADER_EVERY == 0:
            text, self._shown, self._lines = header_line(ids), ids, 0
        self._lines += 1
        self.stream.write(text + value_line(figures))
        self.stream.flush()

    def _pause(self, now: float) -> None:
        self._collect()
        for sid, m in self._meters.items():
            last = self.stats.sources[sid].last_output_at
            if m.start is not None and last is not None and last >= m.start:
                m.measured_s += last - m.start
            m.start = None
        self._paused = True

    def _resume(self, now: float) -> None:
        for sid, m in self._meters.items():
            m.mark = self.stats.sources[sid].frames_processed  # frames that left while paused
            m.in_interval = 0
            if not m.skip_first:  # sources that never produced a frame keep waiting for their first
                m.start = now
        self._paused = False
        self.next_due = now + self.interval_s
