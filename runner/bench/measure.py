"""One measured run of a (replicated) app config in this process: frames per source over a window.

The run starts as ``dsrun CONFIG`` does (engines built or loaded first, then the graph), with the
config's sinks replaced by nothing (DeepStream's fakesink, ``sync=0``: the bench measures the pipeline,
not a display or an encoder). Once every source has put a frame through the whole pipeline, a
warm-up passes (lazy compilation, CUDA graph capture, queues filling), then counters are read at the
start and end of the window; the run is then drained. Rates are counter differences over the window,
so start-up and drain never count.
"""

from __future__ import annotations

import os
import threading
import time

from runner.bench.utilisation import Utilisation, bound

FIRST_FRAME_TIMEOUT_S = 300.0  # engines load before the clock; this only covers the pipeline's start


def measure(app, *, seconds: float, warmup: float, target_fps: float, engine_dir=None,
            profile: str | None = None) -> dict:
    """Run ``app`` (sources looping) for ``warmup`` + ``seconds`` and return one row of the table.

    ``profile``: a file that receives the torch profiler's table of the window (CPU and CUDA time per
    operator and kernel), when torch is installed."""
    from runner.engine.prepare import prepare_engines
    from runner.pipeline.graph import build_graph
    from runner.pipeline.report import exit_status
    from runner.pipeline.stats import RunStats

    stats = RunStats()
    engines = prepare_engines(app, engine_dir=engine_dir, stats=stats)
    graph = build_graph(app, stats, engines=engines, sinks=[])
    marks: dict[str, dict] = {}
    done = threading.Event()

    def mark(name: str) -> None:
        if name == "end":
            marks["memory"] = gpu_memory()
        marks[name] = {"wall": time.time(), "mono": time.monotonic(),
                       "frames": {sid: s.frames_processed for sid, s in stats.sources.items()},
                       "busy": {name: st.busy_s for name, st in stats.stages.items()},
                       "batches": {name: st.batches for name, st in stats.stages.items()},
                       "phases": {st.name: dict(st.timings) for st in graph.stages if hasattr(st, "timings")}}

    def clock() -> None:
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
        while not done.is_set() and time.monotonic() < deadline:
            if stats.sources and all(s.first_output_at is not None or s.state in ("ended", "failed")
                                     for s in stats.sources.values()):
                break
            done.wait(0.05)
        if not done.wait(warmup):
            mark("start")
            if not done.wait(seconds):
                mark("end")
        graph.drain()

    with Utilisation() as util:
        timer = threading.Thread(target=clock, name="bench-clock", daemon=True)
        timer.start()
        # the profiler records CUDA kernels of every thread only when started here, in the main thread:
        # its table covers the whole run (warm-up included), not just the window
        profiler = _start_profiler() if profile else None
        outcome = graph.run()
        if profiler is not None:
            _stop_profiler(profiler, profile)
        done.set()
        timer.join()
    code = exit_status(stats, outcome.interrupted, outcome.error)
    errors = [str(e) for e in outcome.source_errors.values()] + ([str(outcome.error)] if outcome.error else [])
    row = {"sources": len(app.sources), "batch": int(app.streammux.batch_size or len(app.sources)),
           "target_fps": target_fps, "exit_code": code, "error": "; ".join(errors)[:600] or None}
    if "start" not in marks or "end" not in marks:
        row.update(held=False, min_source_fps=0.0, mean_source_fps=0.0, aggregate_fps=0.0, window_s=0.0,
                   stages={}, busiest_stage=None, utilisation=util.summary(0, 0),
                   bound="the run ended before the measured window" + (f": {row['error']}" if row["error"] else ""))
        return row
    start, end = marks["start"], marks["end"]
    window = end["mono"] - start["mono"]
    fps = [(end["frames"].get(sid, 0) - start["frames"].get(sid, 0)) / window for sid in end["frames"]]
    frames = sum(end["frames"].values()) - sum(start["frames"].values())
    stages = {}
    for name, busy in end["busy"].items():
        batches = end["batches"][name] - start["batches"].get(name, 0)
        spent = busy - start["busy"].get(name, 0.0)
        stages[name] = {"busy_pct": round(100 * spent / window, 1),
                        "ms_per_batch": round(1000 * spent / batches, 3) if batches else 0.0,
                        "ms_per_frame": round(1000 * spent / frames, 3) if frames else 0.0}
    busy_pct = {name: s["busy_pct"] for name, s in stages.items()}
    busiest = max(busy_pct, key=busy_pct.get, default=None)
    usage = util.summary(start["wall"], end["wall"])
    held = bool(fps) and min(fps) >= target_fps and code == 0
    row.update(held=held, min_source_fps=round(min(fps), 2) if fps else 0.0,
               mean_source_fps=round(sum(fps) / len(fps), 2) if fps else 0.0,
               aggregate_fps=round(frames / window, 1), window_s=round(window, 2),
               stages=stages, busiest_stage=busiest, utilisation=usage,
               bound=bound(usage, busy_pct))
    row["gpu_memory"] = marks.get("memory")
    row["phases_ms_per_frame"] = {  # the GIE stages' own split: preprocess, infer, parse, cluster
        stage: {phase: round(1000 * (t - start["phases"][stage][phase]) / frames, 3) if frames else 0.0
                for phase, t in times.items()}
        for stage, times in end["phases"].items()}
    return row


def gpu_memory() -> dict | None:
    """This process's GPU memory (GiB) and how much of it torch's caching allocator holds, or None
    without a CUDA torch: ``process`` (NVML, every allocation of the process: CUDA context, NVDEC
    surfaces, libraries' workspaces, torch), ``torch_reserved`` (the allocator's segments),
    ``torch_allocated`` (tensors alive now) and ``torch_peak_allocated`` (the most alive at once).

    >>> gpu_memory() is None or set(gpu_memory()) >= {"torch_reserved", "torch_allocated"}
    True
    """
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    gib = 2.0 ** 30
    out = {"torch_reserved": round(torch.cuda.memory_reserved() / gib, 2),
           "torch_allocated": round(torch.cuda.memory_allocated() / gib, 2),
           "torch_peak_allocated": round(torch.cuda.max_memory_allocated() / gib, 2),
           "process": None}
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory:
                out["process"] = round(proc.usedGpuMemory / gib, 2)
    except Exception:  # no NVML, or it does not see processes (containers, MPS): torch's figures stay
        pass
    return out


def _start_profiler():
    """torch.profiler over every thread of the process (CPU ops, CUDA kernels), or None without torch."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    prof = profile(activities=activities)
    prof.__enter__()
    return prof


def _stop_profiler(prof, path: str) -> None:
    import torch

    prof.__exit__(None, None, None)
    averages = prof.key_averages()
    with open(path, "w") as f:
        for sort in (("self_device_time_total", "self_cuda_time_total") if torch.cuda.is_available() else ()) \
                + ("self_cpu_time_total",):
            try:
                f.write(f"sorted by {sort} (whole run, every thread's CUDA kernels; CPU ops of the main thread)\n")
                f.write(averages.table(sort_by=sort, row_limit=50, max_name_column_width=90) + "\n\n")
                break
            except (KeyError, AttributeError, RuntimeError):
                continue
