#!/usr/bin/env python3
"""Where does the pipeline's Python work grow with frames or objects? Call counts per batch, all threads.

Runs an app config (its sources replicated N times, batch = N, ``[tests] file-loop`` on, sinks off
unless ``--sinks``) for a fixed number of batches under :mod:`cProfile` in *every* thread (sources,
streammux, stages), once per N, and prints for each function of dsrun (``runner/``) its calls per batch
at each N, next to its self time per batch. A function whose calls per batch grow with N is a loop over
frames; one that grows with the objects of a batch is a loop over objects — the costs issue 17 asks to
remove from the hot path. Call counts do not depend on machine load, so the table is reproducible on a
busy machine where timings are not.

    python3 scripts/profile_pipeline.py samples/test1/deepstream_app_config.txt --streams 1,2,8
    python3 scripts/profile_pipeline.py bench-cpu --streams 1,2,8   # the CPU section of bench_streams.py
    python3 scripts/profile_pipeline.py CONFIG --streams 1,8 --batches 40 --json profile.json

Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner.bench.streams import replicate  # noqa: E402
from runner.config import load_app  # noqa: E402
from runner.engine.prepare import prepare_engines  # noqa: E402
from runner.pipeline.graph import build_graph  # noqa: E402
from runner.pipeline.stats import RunStats  # noqa: E402

# readers decode ahead and feed streammux; their thread is named after the source
_SOURCE_THREAD = "source-"


def _name(func: tuple) -> str:
    file, line, name = func
    if "/runner/" in file:
        return f"{file.split('/runner/', 1)[1]}:{line}:{name}"
    if file == "~":  # a built-in: numpy, OpenCV, PyAV called from Python
        return name
    return f"{Path(file).parent.name}/{Path(file).name}:{line}:{name}"


def _waiting(func: tuple) -> bool:
    """Calls that follow the clock, not the data: waiting on locks, queues and timers."""
    file, _line, name = func
    return (file.endswith(("threading.py", "queue.py")) or
            any(w in name for w in ("acquire", "release", "time.sleep", "time.monotonic", "time.perf_counter",
                                    "is_alive", "_thread.lock", "_thread.RLock")))


class _ThreadProfiles:
    """cProfile in every thread started while installed (``Thread._bootstrap_inner`` wrapped, so
    subclasses that override ``run`` — the source readers — are profiled too)."""

    def __init__(self) -> None:
        self.profiles: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()
        self._run = threading.Thread._bootstrap_inner

    def __enter__(self) -> "_ThreadProfiles":
        original, profiles, lock = self._run, self.profiles, self._lock

        def run(thread):
            prof = cProfile.Profile()
            with lock:
                profiles.append((thread.name, prof))
            prof.enable()
            try:
                original(thread)
            finally:
                prof.disable()

        threading.Thread._bootstrap_inner = run
        return self

    def __exit__(self, *exc) -> None:
        threading.Thread._bootstrap_inner = self._run


def profile_run(app, n: int, batches: int, *, sinks: bool, clip: str | None) -> dict:
    """Run ``app`` with ``n`` sources (batch ``n``) until streammux has formed ``batches`` batches."""
    bench = replicate(app, n, clip=clip, batch=n)
    stats = RunStats()
    engines = prepare_engines(bench, stats=stats)
    graph = build_graph(bench, stats, engines=engines, sinks=None if sinks else [])
    mux_stats = stats.stages[graph.mux.name]

    def stop_after() -> None:
        while mux_stats.batches < batches and (mux_stats.batches == 0 or any(r.is_alive() for r in graph.readers)):
            time.sleep(0.01)
        graph.drain()

    threading.Thread(target=stop_after, name="profile-stop", daemon=True).start()
    with _ThreadProfiles() as threads:  # the main thread only waits for the others
        t0 = time.perf_counter()
        outcome = graph.run()
        wall = time.perf_counter() - t0
    if outcome.error is not None:
        raise SystemExit(f"{n} sources: the run failed: {outcome.error}")
    frames = sum(s.frames_processed for s in stats.sources.values())
    objects = sum(sum(s.objects.values()) for s in stats.sources.values())
    out_batches = max((st.batches for name, st in stats.stages.items() if name != graph.mux.name),
                      default=mux_stats.batches) or mux_stats.batches
    functions: dict[str, dict] = {}
    for name, prof in threads.profiles:
        if name == "profile-stop":
            continue
        role = "sources" if name.startswith(_SOURCE_THREAD) else name
        for callee, (_cc, _nc, _tt, _ct, callers) in pstats.Stats(prof).stats.items():
            if _waiting(callee):
                continue
            for caller, edge in callers.items():
                if "/runner/" not in caller[0]:
                    continue  # only calls made by dsrun's own code
                nc, tt = edge[1], edge[2]
                key = f"{_name(callee)} <- {_name(caller)}"
                row = functions.setdefault(key, {"calls": 0, "self_s": 0.0, "threads": set()})
                row["calls"] += nc
                row["self_s"] += tt
                row["threads"].add(role)
    for row in functions.values():
        row["threads"] = sorted(row["threads"])
    return {"sources": n, "batch": n, "batches": out_batches, "frames": frames, "objects": objects,
            "wall_s": round(wall, 3), "functions": functions}


def scaling_table(runs: list[dict], top: int) -> list[dict]:
    """Per function: calls per batch at each N; ``growth`` = calls/batch at the largest N over the
    smallest (1.0: per batch; ≈ N: per frame; beyond: per object or per pair)."""
    names = set().union(*(r["functions"] for r in runs))
    rows = []
    for key in names:
        per_batch = [r["functions"].get(key, {}).get("calls", 0) / max(r["batches"], 1) for r in runs]
        self_ms = [1000 * r["functions"].get(key, {}).get("self_s", 0.0) / max(r["batches"], 1) for r in runs]
        threads = sorted(set().union(*(r["functions"].get(key, {}).get("threads", []) for r in runs)))
        lo, hi = per_batch[0], per_batch[-1]
        growth = hi / lo if lo else (float("inf") if hi else 1.0)
        rows.append({"function": key, "threads": threads, "calls_per_batch": [round(v, 2) for v in per_batch],
                     "self_ms_per_batch": [round(v, 3) for v in self_ms], "growth": round(growth, 2)})
    hot = [r for r in rows if r["growth"] > 1.2 and r["calls_per_batch"][-1] >= 1]
    hot.sort(key=lambda r: (-r["calls_per_batch"][-1] * r["growth"]))
    return hot[:top]


def bench_cpu_config(folder: Path) -> Path:
    """The config ``scripts/bench_streams.py --small`` measures on the CPU against the engine alone and
    the naive loop: DetectNet_v2 small at 480x272 on the 360p clip, PGIE only, FP32."""
    sys.path.insert(0, str(REPO / "scripts"))
    from bench_streams import write_config

    from runner.assets import ensure_assets

    assets = ensure_assets(full=False)
    return write_config(folder, clip=assets.videos["short"], sources=1, pgie=assets.models["detectnet_small"],
                        sgie=assets.models["classifier_small"], interval=0, batch=2, size=(640, 360),
                        net=(480, 272), classes=4, sgie_classes=6, cascade=False, network_mode=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", help="an app config, or bench-cpu for the CPU section of scripts/bench_streams.py")
    ap.add_argument("--streams", default="1,2,8", help="source counts (batch = count)")
    ap.add_argument("--batches", type=int, default=30, help="batches per run")
    ap.add_argument("--clip", help="replace the config's sources by this video")
    ap.add_argument("--sinks", action="store_true", help="keep the config's sinks (default: none, as the bench)")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--json", help="write the runs and the table here")
    args = ap.parse_args()
    os.environ.setdefault("DSRUN_DEVICE", "cpu")
    if args.config == "bench-cpu":
        app = load_app(bench_cpu_config(Path(tempfile.mkdtemp(prefix="profile_pipeline_"))))
    else:
        app = load_app(args.config)
    counts = [int(s) for s in args.streams.split(",")]
    runs = [profile_run(app, n, args.batches, sinks=args.sinks, clip=args.clip) for n in counts]
    table = scaling_table(runs, args.top)
    print(f"{args.config}: " + ", ".join(f"N={r['sources']}: {r['batches']} batches, {r['frames']} frames, "
                                         f"{r['objects']} objects" for r in runs))
    head = " ".join(f"{'N=' + str(n):>8s}" for n in counts)
    print(f"{'calls per batch':>{9 * len(counts)}s}  {'self ms/batch':>{9 * len(counts)}s}  growth  function [threads]")
    print(f"{head}  {head}")
    for r in table:
        calls = " ".join(f"{v:8.1f}" for v in r["calls_per_batch"])
        self_ms = " ".join(f"{v:8.2f}" for v in r["self_ms_per_batch"])
        print(f"{calls}  {self_ms}  {r['growth']:6.1f}  {r['function']} [{','.join(r['threads'])}]")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": " ".join(sys.argv),
            "machine": {"cpu_cores": os.cpu_count(), "python": platform.python_version()},
            "runs": [{k: v for k, v in r.items() if k != "functions"} for r in runs],
            "growing": table}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
