#!/usr/bin/env python3
"""Per-stage cost of dsrun's inference path on this machine: a primary GIE (the generated DetectNet_v2
ResNet-18 model, 480x272, ONNX Runtime) followed by the SORT-class tracker, on decoded bikes.mp4 frames
replicated over 1, 4 and 16 sources (batch = number of sources, as streammux would batch them).

Prints a table of milliseconds per frame — preprocess, infer, parse, cluster, track — and the Python
overhead per frame (GIE stage time not spent in those phases), and writes JSON.

    python3 scripts/bench_infer.py [--sources 1 4 16] [--batches 8] [--json out/bench_infer.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.assets import ensure_assets  # noqa: E402
from runner.config import load_nvinfer  # noqa: E402
from runner.engine import EngineSpec, load_engine  # noqa: E402
from runner.pipeline.batch import Batch  # noqa: E402
from runner.pipeline.infer import GieStage  # noqa: E402
from runner.pipeline.tracker import TrackerStage  # noqa: E402

PGIE = """[property]
onnx-file={model}
net-scale-factor=0.00392156862745098
num-detected-classes=4
gie-unique-id=1
batch-size={batch}
cluster-mode=2
maintain-aspect-ratio=1

[class-attrs-all]
pre-cluster-threshold=0.1
nms-iou-threshold=0.5
topk=50
"""


def decode(path: Path, n: int) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(n), c.decode(video=0))]


def run(sources: int, batches: int, frames: list[np.ndarray], model: Path, work: Path) -> dict:
    cfg_path = work / f"pgie_{sources}.txt"
    cfg_path.write_text(PGIE.format(model=model, batch=sources))
    cfg = load_nvinfer(cfg_path)
    gie = GieStage(cfg, load_engine(EngineSpec.from_nvinfer(cfg), work / "engines"))
    tracker = TrackerStage(None)
    h, w = frames[0].shape[:2]
    warm = 2
    gie_s = track_s = 0.0
    n_frames = n_objects = 0
    for b in range(warm + batches):
        idx = [(b + s) % len(frames) for s in range(sources)]
        batch = Batch(frames=np.stack([frames[i] for i in idx]), source_id=np.arange(sources, dtype=np.int32),
                      frame_num=np.full(sources, b, np.int64), pts=np.zeros(sources, np.int64),
                      ntp_ts=np.zeros(sources, np.int64), source_size=np.full((sources, 2), [w, h], np.int32))
        if b == warm:
            gie.timings = dict.fromkeys(gie.timings, 0.0)
        t0 = time.perf_counter()
        gie.process(batch)
        t1 = time.perf_counter()
        tracker.process(batch)
        t2 = time.perf_counter()
        if b >= warm:
            gie_s += t1 - t0
            track_s += t2 - t1
            n_frames += sources
            n_objects += len(batch.objects)
    per = {k: 1000 * v / n_frames for k, v in gie.timings.items()}
    per["track"] = 1000 * track_s / n_frames
    per["python_overhead"] = 1000 * (gie_s - sum(gie.timings.values())) / n_frames
    per["total"] = 1000 * (gie_s + track_s) / n_frames
    per["fps"] = n_frames / (gie_s + track_s)
    per["objects_per_frame"] = n_objects / n_frames
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in per.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--batches", type=int, default=8, help="measured batches per source count")
    ap.add_argument("--json", type=Path, default=Path(__file__).resolve().parents[1] / "out" / "bench_infer.json")
    args = ap.parse_args(argv)
    assets = ensure_assets()
    frames = decode(assets.videos["bikes"], 32)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sources:
            results[n] = run(n, args.batches, frames, assets.models["detectnet_small"], Path(tmp))
    cols = ["preprocess", "infer", "parse", "cluster", "track", "python_overhead", "total", "fps",
            "objects_per_frame"]
    print(f"dsrun inference path, ms per frame ({platform.processor() or platform.machine()}, "
          f"{frames[0].shape[1]}x{frames[0].shape[0]} frames, DetectNet_v2 R18 480x272, ORT CPU)")
    print(f"{'sources':>8} " + " ".join(f"{c[:12]:>12}" for c in cols))
    for n, r in results.items():
        print(f"{n:>8} " + " ".join(f"{r[c]:>12.2f}" for c in cols))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": platform.platform(), "results": results}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
