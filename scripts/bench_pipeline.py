"""Decode + streammux throughput vs number of sources: dsrun's threaded graph beside a naive
single-threaded loop doing the same work (decode every frame, convert to RGB at the streammux size,
stack batches), in one run on this machine.

    python3 scripts/bench_pipeline.py                       # 1, 2, 4, 8 sources of assets' bikes.mp4
    python3 scripts/bench_pipeline.py --sources 1 4 --video my.mp4 --width 1280 --height 720

Prints a table and writes JSON (``--json``, default ``bench_pipeline.json`` in the current directory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.config import load_app  # noqa: E402
from runner.pipeline.graph import build_graph  # noqa: E402
from runner.pipeline.stats import RunStats  # noqa: E402


def default_video() -> Path:
    from runner.assets import ensure_assets

    return Path(ensure_assets().videos["bikes"])


def naive(video: Path, n: int, width: int, height: int, batch: int) -> tuple[int, float]:
    """One thread: open n decoders, take one frame from each in turn, convert, stack into batches."""
    t0 = time.perf_counter()
    containers = [av.open(str(video)) for _ in range(n)]
    decoders = [c.decode(video=0) for c in containers]
    frames, pending, alive = 0, [], list(range(n))
    while alive:
        for i in list(alive):
            frame = next(decoders[i], None)
            if frame is None:
                alive.remove(i)
                continue
            pending.append(frame.to_ndarray(format="rgb24", width=width, height=height))
            if len(pending) == batch:
                np.stack(pending)
                frames += len(pending)
                pending = []
    frames += len(pending)
    for c in containers:
        c.close()
    return frames, time.perf_counter() - t0


def graph(video: Path, n: int, width: int, height: int, batch: int, workdir: Path) -> tuple[int, float]:
    """dsrun: n [sourceN] groups → streammux (batch-size, width, height) → fakesink."""
    lines = ["[streammux]", f"batch-size={batch}", "batched-push-timeout=40000", f"width={width}",
             f"height={height}", "", "[sink0]", "enable=1", "type=1", "sync=0", ""]
    for i in range(n):
        lines += [f"[source{i}]", "enable=1", "type=2", f"uri=file://{video}", ""]
    cfg = workdir / f"bench_{n}.txt"
    cfg.write_text("\n".join(lines))
    app = load_app(cfg)
    stats = RunStats()
    run = build_graph(app, stats)
    t0 = time.perf_counter()
    outcome = run.run()
    elapsed = time.perf_counter() - t0
    if outcome.error or outcome.source_errors:
        raise SystemExit(f"bench run failed: {outcome.error or outcome.source_errors}")
    return sum(s.frames_processed for s in stats.sources.values()), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--video", type=Path)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs each (the machine is shared)")
    parser.add_argument("--json", type=Path, default=Path("bench_pipeline.json"))
    args = parser.parse_args()
    video = (args.video or default_video()).resolve()
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        info = f"{video.name} {s.codec_context.name} {s.width}x{s.height} {s.frames} frames"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        naive(video, 1, args.width, args.height, 1)  # warm-up: imports, codec init, page cache
        graph(video, 1, args.width, args.height, 1, Path(tmp))
        for n in args.sources:
            batch = n
            nf, nt = min((naive(video, n, args.width, args.height, batch) for _ in range(args.repeat)),
                         key=lambda r: r[1])
            gf, gt = min((graph(video, n, args.width, args.height, batch, Path(tmp)) for _ in range(args.repeat)),
                         key=lambda r: r[1])
            rows.append({"sources": n, "batch_size": batch, "frames": gf,
                         "naive_fps": round(nf / nt, 1), "graph_fps": round(gf / gt, 1),
                         "speedup": round((gf / gt) / (nf / nt), 2), "naive_s": round(nt, 3),
                         "graph_s": round(gt, 3)})
            assert nf == gf, f"naive decoded {nf} frames, graph {gf}"
    print(f"decode + streammux to {args.width}x{args.height} RGB, {info}; "
          f"{os.cpu_count()} CPU cores, PyAV {av.__version__}")
    print(f"{'sources':>7} {'frames':>7} {'naive fps':>10} {'dsrun fps':>10} {'speedup':>8}")
    for r in rows:
        print(f"{r['sources']:>7} {r['frames']:>7} {r['naive_fps']:>10} {r['graph_fps']:>10} {r['speedup']:>7}x")
    args.json.write_text(json.dumps({"video": info, "mux": [args.width, args.height],
                                     "cpu_count": os.cpu_count(), "machine": platform.machine(), "repeat": args.repeat,
                                     "pyav": av.__version__, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
