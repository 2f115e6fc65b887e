"""What a benchmark run used, sampled while frames flowed, and the bound it shows.

:class:`Utilisation` samples every 0.5 s: GPU busy %, NVDEC busy % and GPU memory (NVML, when there is
a GPU), busy % of all CPU cores (``/proc/stat``) and the cores this process used (``os.times``).
:func:`bound` names what held a run back from those figures and the stages' busy time.

>>> bound({"gpu_busy_pct": 95.0}, {"primary-gie": 60.0})
'GPU (95% busy)'
>>> bound({"cpu_busy_pct": 40.0, "process_cpu_cores": 1.0, "cpu_cores": 16}, {"tracker": 97.0})
'interpreter lock (stage tracker busy 97%, the process uses 1.0 of 16 cores)'
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

BUSY = 90.0  # % at which a resource counts as saturated


class Utilisation:
    """Means over a window (``summary(start, end)``, wall times) of the samples taken meanwhile."""

    def __init__(self, period_s: float = 0.5) -> None:
        from runner.ui.gpu import GpuMonitor

        self.gpu = GpuMonitor()
        self.period_s = period_s
        # (time.time(), gpu %, nvdec %, gpu memory GiB, machine cpu %, process cores)
        self.samples: list[tuple[float, float, float, float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-utilisation", daemon=True)

    def __enter__(self) -> "Utilisation":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _machine_cpu() -> tuple[int, int] | None:
        try:
            values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return None
        return sum(values), values[3] + (values[4] if len(values) > 4 else 0)  # total, idle (+iowait)

    @staticmethod
    def _process_cpu() -> float:
        t = os.times()
        return t.user + t.system

    def _run(self) -> None:
        last, last_proc, last_t = self._machine_cpu(), self._process_cpu(), time.monotonic()
        while not self._stop.wait(self.period_s):
            now, proc, t = self._machine_cpu(), self._process_cpu(), time.monotonic()
            cpu = -1.0
            if now and last and now[0] > last[0]:
                cpu = 100.0 * (1 - (now[1] - last[1]) / (now[0] - last[0]))
            cores = (proc - last_proc) / max(t - last_t, 1e-6)
            last, last_proc, last_t = now, proc, t
            reading = self.gpu.read()
            gpu = reading[0].utilization_pct if reading else -1.0
            dec = reading[0].decoder_pct if reading and reading[0].decoder_pct is not None else -1.0
            mem = reading[0].memory_used_gb if reading else -1.0
            self.samples.append((time.time(), gpu, dec, mem, cpu, cores))

    def summary(self, start: float, end: float) -> dict:
        """Means over the samples between wall times ``start`` and ``end``; None where not measured."""
        core = [s for s in self.samples if start <= s[0] <= end] or self.samples[-3:]

        def mean(i):
            values = [s[i] for s in core if s[i] >= 0]
            return round(statistics.fmean(values), 1) if values else None

        peak_mem = max((s[3] for s in core if s[3] >= 0), default=None)
        return {"gpu_busy_pct": mean(1), "nvdec_busy_pct": mean(2), "cpu_busy_pct": mean(4),
                "process_cpu_cores": mean(5), "cpu_cores": os.cpu_count(),
                "gpu_memory_gb": round(peak_mem, 2) if peak_mem is not None else None}


def bound(util: dict, stage_busy_pct: dict[str, float] | None = None) -> str:
    """What held the run back: the video decoders (NVDEC), the GPU, the CPU cores, one stage thread
    that never waits — under one interpreter lock when the process uses about one core — or, when
    nothing is saturated, the sources (stages wait for frames)."""
    stage_busy_pct = stage_busy_pct or {}
    if (util.get("nvdec_busy_pct") or 0) >= BUSY:
        return f"NVDEC ({util['nvdec_busy_pct']:.0f}% busy)"
    if (util.get("gpu_busy_pct") or 0) >= BUSY:
        return f"GPU ({util['gpu_busy_pct']:.0f}% busy)"
    if (util.get("cpu_busy_pct") or 0) >= BUSY:
        return f"CPU cores ({util['cpu_busy_pct']:.0f}% of {util.get('cpu_cores')} busy)"
    stage, busy = max(stage_busy_pct.items(), key=lambda kv: kv[1], default=("", 0.0))
    cores = util.get("process_cpu_cores")
    if busy >= BUSY:
        if cores is not None and cores < 1.5:
            return (f"interpreter lock (stage {stage} busy {busy:.0f}%, the process uses {cores:.1f} of "
                    f"{util.get('cpu_cores')} cores)")
        return f"stage {stage} ({busy:.0f}% busy)"
    return f"sources (no resource saturated; busiest stage {stage or '-'} {busy:.0f}% busy)"
