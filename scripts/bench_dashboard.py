#!/usr/bin/env python3
"""Does the UI slow the pipeline? Throughput of a CPU-bound "pipeline" thread with and without it.

The workload thread holds the GIL (pure Python, the worst case for a Python UI thread) and updates a
real RunStats exactly as the pipeline does: per frame a stage's counters, per batch of 8 frames
(8 sources) ``frames_processed``. Modes, interleaved over several rounds (the machine is shared):

  none        no UI
  perf        **PERF lines (stdout a pipe), perf-measurement-interval-sec=1
  dashboard   the rich dashboard drawing into a real pseudo-terminal (drained by `cat`, another
              process, as a terminal emulator would be), keys not active
  dash+metr   dashboard + --metrics-port, scraped once a second by another process

Prints a table and writes JSON (default out/bench_dashboard.json): median frames/s; throughput loss
against the `none` run of the same round (noisy on a shared machine); and the figure that load does
not blur: CPU used in this process by everything but the workload thread (the UI's threads), as % of
one core — with a GIL-bound pipeline that is the most the UI can take from it. Also times one
dashboard refresh (sample + render + draw).

    python3 scripts/bench_dashboard.py [--seconds 3] [--rounds 3] [--json out/bench_dashboard.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.pipeline.stats import RunStats  # noqa: E402
from runner.ui import start_ui  # noqa: E402

SOURCES = 8
STAGES = ("mux", "pgie", "tracker", "sgie", "osd", "tiler")
APP = SimpleNamespace(application=SimpleNamespace(enable_perf_measurement=1, perf_measurement_interval_sec=1))
SCRAPER = ("import sys, time, urllib.request\n"
           "while True:\n"
           "    try: urllib.request.urlopen(f'http://127.0.0.1:{sys.argv[1]}/metrics', timeout=2).read()\n"
           "    except Exception: pass\n"
           "    time.sleep(1)\n")


def frame_work(n: int = 2000) -> int:
    """~0.1 ms of pure-Python work standing in for one frame's share of a stage."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def workload(stats: RunStats, seconds: float) -> tuple[float, float]:
    """Frames per second the 'pipeline' reaches in ``seconds``, and the CPU seconds this thread used."""
    stages = [stats.add_stage(name, queue_depth=lambda: 1) for name in STAGES]
    ids = list(range(SOURCES))
    frames, end = 0, time.perf_counter() + seconds
    start, cpu0 = time.perf_counter(), time.thread_time()
    while time.perf_counter() < end:
        for _ in range(SOURCES):
            t0 = time.perf_counter()
            frame_work()
            dt = time.perf_counter() - t0
            for st in stages:
                st.frames += 1
                st.busy_s += dt / len(stages)
        stages[0].batches += 1
        stats.frames_processed(ids, [time.time_ns()] * SOURCES)
        frames += SOURCES
    return frames / (time.perf_counter() - start), time.thread_time() - cpu0


def new_stats() -> RunStats:
    stats = RunStats()
    for sid in range(SOURCES):
        stats.add_source(sid, f"file:///videos/clip{sid}.mp4").state = "playing"
    for name in ("pgie.engine", "sgie.engine"):
        stats.set_engine(name, "loaded")
    return stats


def run_mode(mode: str, seconds: float) -> tuple[float, float]:
    """(frames/s, CPU % of one core used by everything in this process but the workload thread)."""
    stats = new_stats()
    cleanup = []
    handle = None
    if mode == "perf":
        handle = start_ui(stats, APP, dashboard=False, stdout=open(os.devnull, "w"), stdin=io.StringIO())
    elif mode in ("dashboard", "dash+metr"):
        master, slave = os.openpty()
        drain = subprocess.Popen(["cat"], stdin=master, stdout=subprocess.DEVNULL)
        tty_out = os.fdopen(slave, "w")
        cleanup += [drain.kill, tty_out.close, lambda: os.close(master)]
        handle = start_ui(stats, APP, dashboard=True, stdout=tty_out, stdin=io.StringIO(),
                          metrics_port=0 if mode == "dash+metr" else None, metrics_host="127.0.0.1")
        assert handle.dashboard is not None
        if mode == "dash+metr":
            scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, str(handle.metrics_port)])
            cleanup.insert(0, scraper.kill)
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        fps, work_cpu = workload(stats, seconds)
        other_cpu = time.process_time() - cpu0 - work_cpu
        return fps, 100.0 * other_cpu / (time.perf_counter() - wall0)
    finally:
        if handle:
            handle.stop()
        for fn in cleanup:
            fn()


def refresh_cost(n: int = 40) -> float:
    """Mean ms of one dashboard refresh (sample + render + draw into a pseudo-terminal)."""
    from rich.console import Console

    from runner.ui.dashboard import Dashboard
    from runner.ui.view import Sampler

    stats = new_stats()
    workload(stats, 0.2)  # counters with realistic values
    master, slave = os.openpty()
    drain = subprocess.Popen(["cat"], stdin=master, stdout=subprocess.DEVNULL)
    out = os.fdopen(slave, "w")
    try:
        dash, sampler = Dashboard(Console(file=out, width=140)), Sampler(stats)
        dash.start()
        t0 = time.perf_counter()
        for _ in range(n):
            dash.update(sampler.sample())
        cost = (time.perf_counter() - t0) / n * 1000
        dash.stop()
        return cost
    finally:
        drain.kill()
        out.close()
        os.close(master)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default="out/bench_dashboard.json")
    args = parser.parse_args()

    modes = ("none", "perf", "dashboard", "dash+metr")
    fps: dict[str, list[float]] = {m: [] for m in modes}
    ui_cpu: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            f, c = run_mode(mode, args.seconds)
            fps[mode].append(f)
            ui_cpu[mode].append(c)
    rows = []
    print(f"{'mode':<10} {'frames/s (median)':>18} {'throughput loss %':>18} {'UI CPU % of a core':>19}")
    for mode in modes:
        # loss against the `none` run of the same round (the machine's load drifts between rounds)
        loss = statistics.median(100.0 * (1 - f / b) for f, b in zip(fps[mode], fps["none"]))
        row = {"mode": mode, "fps_median": statistics.median(fps[mode]), "throughput_loss_pct": loss,
               "ui_cpu_pct": statistics.median(ui_cpu[mode]), "fps_runs": fps[mode]}
        rows.append(row)
        print(f"{mode:<10} {row['fps_median']:>18.1f} {loss:>18.2f} {row['ui_cpu_pct']:>19.2f}")
    cost = refresh_cost()
    print(f"one dashboard refresh ({SOURCES} sources, {len(STAGES)} stages): {cost:.2f} ms "
          f"every 0.5 s = {cost / 500 * 100:.2f} % of one core")
    doc = {"benchmark": "dashboard_overhead", "seconds": args.seconds, "rounds": args.rounds,
           "sources": SOURCES, "stages": len(STAGES), "cpus": os.cpu_count(), "modes": rows,
           "refresh_ms": cost, "refresh_interval_s": 0.5}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
