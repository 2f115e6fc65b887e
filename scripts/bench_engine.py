#!/usr/bin/env python3
"""Engine benchmark: build time, cold/warm load, latency and throughput per batch size, FP32/FP16/INT8,
and each reduced precision's error against FP32 — on real frames (the bikes clip).

    python3 scripts/bench_engine.py                                  # CPU, the DetectNet-shaped model
    python3 scripts/bench_engine.py --provider cuda --model assets/models/detectnet_resnet18.onnx
    python3 scripts/bench_engine.py --backend tensorrt --batches 1,8,16

Prints a table and writes JSON (``--json``, default ``out/bench_engine.json``). Builds go to a fresh
engine folder, so "build" is a real build; "cold load" is a cache hit in a new process (no in-process
memo); "warm load" is a cache hit in this process.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner.engine import EngineSpec, load_engine  # noqa: E402
from runner.engine.onnxinfo import graph_inputs, load_onnx, resolved_dims  # noqa: E402
from runner.engine.progress import Progress  # noqa: E402


def frames(video: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    import av
    import cv2

    out = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            out.append(cv2.resize(frame.to_ndarray(format="rgb24"), size))
            if len(out) == count:
                break
    return out


def cold_load_seconds(spec_kwargs: dict, engine_dir: Path) -> float:
    code = f"""
import sys, time, json; sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from runner.engine import EngineSpec, load_engine
from runner.engine.progress import Progress
kw = json.loads({json.dumps(json.dumps(spec_kwargs))})
kw["onnx_file"] = Path(kw["onnx_file"]); kw["calib_images"] = Path(kw["calib_images"])
kw["infer_dims"] = tuple(kw["infer_dims"]) if kw["infer_dims"] else None
t = time.perf_counter(); e = load_engine(EngineSpec(**kw), {str(engine_dir)!r}, Progress())
print(time.perf_counter() - t, e.origin)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, origin = out.stdout.split()
    assert origin == "cache", origin
    return float(seconds)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="ONNX model (default: assets' DetectNet-shaped detector)")
    p.add_argument("--provider", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "tensorrt", "auto"))
    p.add_argument("--precisions", default="fp32,fp16,int8")
    p.add_argument("--batches", default="1,4,8")
    p.add_argument("--iters", type=int, default=20, help="timed runs per batch size")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--infer-dims", help="C;H;W for models with dynamic spatial axes")
    p.add_argument("--calib-method", default="entropy", choices=("entropy", "percentile"))
    p.add_argument("--calib-frames", type=int, default=32)
    p.add_argument("--scale", type=float, default=1 / 255, help="net-scale-factor")
    p.add_argument("--json", type=Path, default=REPO / "out" / "bench_engine.json")
    args = p.parse_args()

    from runner.assets import ensure_assets

    assets = ensure_assets()
    model = args.model or assets.models["detectnet_small"]
    infer_dims = tuple(int(d) for d in args.infer_dims.split(";")) if args.infer_dims else None
    first = graph_inputs(load_onnx(model))[0]
    c, h, w = resolved_dims(first, infer_dims)
    batches = [int(b) for b in args.batches.split(",")]
    pics = frames(assets.videos["bikes"], args.calib_frames + max(batches), (w, h))
    work = Path(tempfile.mkdtemp(prefix="bench_engine_"))
    calib = work / "calib"
    calib.mkdir()
    import cv2

    for i, img in enumerate(pics[: args.calib_frames]):
        cv2.imwrite(str(calib / f"{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    x_all = (np.stack(pics[args.calib_frames:]).astype(np.float32) * args.scale).transpose(0, 3, 1, 2)
    x_all = np.ascontiguousarray(x_all[:, :c])

    engines, info, reference = {}, {}, None
    for precision in args.precisions.split(","):
        kw = dict(onnx_file=str(model), precision=precision, batch_size=max(batches),
                  infer_dims=infer_dims, calib_images=str(calib), calib_method=args.calib_method,
                  net_scale_factor=args.scale, backend=args.backend, provider=args.provider)
        spec = EngineSpec(**{**kw, "onnx_file": model, "calib_images": calib})
        engine_dir = work / "engines"
        t = time.perf_counter()
        engine = load_engine(spec, engine_dir, Progress())
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        load_engine(spec, engine_dir, Progress()).close()
        warm_s = time.perf_counter() - t
        cold_s = cold_load_seconds(kw, engine_dir)
        outs = engine.infer(x_all[: max(batches)])
        name = engine.outputs[0].name
        reference = reference or outs
        err = np.abs(outs[name] - reference[name])
        engines[precision] = engine
        info[precision] = {"build_s": round(build_s, 3), "cold_load_s": round(cold_s, 4),
                           "warm_load_s": round(warm_s, 4), "max_err_vs_fp32": float(err.max()),
                           "mean_err_vs_fp32": float(err.mean())}

    rows = []
    for b in batches:  # precisions interleaved run by run: a busy host slows them all alike
        x = x_all[:b]
        times = {p: [] for p in engines}
        for i in range(args.warmup + args.iters):
            for p, engine in engines.items():
                t = time.perf_counter()
                engine.infer(x)
                if i >= args.warmup:
                    times[p].append(time.perf_counter() - t)
        for p, engine in engines.items():
            rows.append({"precision": p, "batch": b, **info[p],
                         "latency_ms_p50": round(1000 * statistics.median(times[p]), 3),
                         "latency_ms_mean": round(1000 * statistics.mean(times[p]), 3),
                         "fps": round(b / statistics.median(times[p]), 1),
                         "device": engine.device, "backend": engine.backend})
    for engine in engines.values():
        engine.close()
    rows.sort(key=lambda r: (list(engines).index(r["precision"]), r["batch"]))

    head = f"{'precision':9} {'batch':>5} {'build s':>8} {'cold ld s':>9} {'warm ld s':>9} " \
           f"{'p50 ms':>8} {'fps':>8} {'max err':>9} {'mean err':>9}"
    print(f"model {model.name} ({c}x{h}x{w}), {rows[0]['backend']} on {rows[0]['device']}, "
          f"{platform.processor() or platform.machine()}")
    print(head)
    for r in rows:
        print(f"{r['precision']:9} {r['batch']:>5} {r['build_s']:>8.2f} {r['cold_load_s']:>9.3f} "
              f"{r['warm_load_s']:>9.4f} {r['latency_ms_p50']:>8.2f} {r['fps']:>8.1f} "
              f"{r['max_err_vs_fp32']:>9.4f} {r['mean_err_vs_fp32']:>9.5f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": str(model), "input": [c, h, w], "args": {
        k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
