#!/usr/bin/env python3
"""The host-side (interpreter) work of the secondary GIE stages and of the run-stats accounting, per
batch, on real batches — what issue 17 asks to keep from growing with frames or objects.

The pipeline of ``scripts/bench_streams.py`` (its config, written by its ``write_config``): clip
``bench_1080p``, ``--sources`` copies (each starting a few frames later, so the frames differ) in
batches of ``--sources`` frames, PGIE DetectNet_v2 with ``interval=1`` + IOU tracker, then two
ResNet-18 classifier SGIEs on every PGIE object. The PGIE and tracker run once, here, on the CPU
(ONNX Runtime) and their objects are recorded (``--record``, reused when present, so that the before
and after runs see the same objects); then the two SGIE stages run on those batches the way they run
on the GPU machine — frames as a torch tensor on the engine's device (``preprocess_device``, then
``infer_device``) — followed by the accounting ``Graph._emit`` does for the last stage
(``RunStats.frames_processed`` + ``objects_processed``).

The engines are ONNX Runtime behind a device adapter whose time is **left out** (the GPU runs it).
Times are CPU seconds of the thread that runs the stages (``time.thread_time``), so other work on the
machine and the engines' own worker threads do not count: ``stage ms`` is the stages' less the engine
calls; ``preprocess ms`` is part of it and is mostly pixel work here (on the GPU, kernels queued by
those calls); ``rest ms`` is everything else — the interpreter work this benchmark is about — and
``stats ms`` the accounting. Call counts come from cProfile with the engine calls left out; they do
not depend on machine load.

    python3 scripts/bench_sgie_stage.py                      # 64 sources, 12 measured batches
    python3 scripts/bench_sgie_stage.py --sources 16 --label after --out docs/bench/bench_sgie_stage.json

Prints a table and writes (or adds a row to) the JSON ``--out``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_streams import write_config  # noqa: E402  (one place for the benchmark's config)
from runner.assets import ensure_assets  # noqa: E402
from runner.config import load_app  # noqa: E402
from runner.engine import EngineSpec, load_engine  # noqa: E402
from runner.pipeline.batch import Batch, Classifications, Objects  # noqa: E402
from runner.pipeline.graph import build_stages  # noqa: E402
from runner.pipeline import infer as infer_module  # noqa: E402
from runner.pipeline.preprocess_gpu import preprocess_device  # noqa: E402
from runner.pipeline.stats import RunStats  # noqa: E402

OFFSET = 16  # source s starts at frame s % OFFSET of the clip
# CPU seconds of the thread that runs the stages: what it asks of the interpreter, whatever else the
# (shared, 2-core) machine runs — ONNX Runtime's and torch's own worker threads included
CLOCK = time.thread_time


class ClockedPreprocess:
    """``preprocess_device`` as the GIE stage calls it, with its thread CPU time added up. The crops
    it makes are kept until :meth:`release` (called outside the timed window): handing ~60 MB of
    touched host pages back costs ~7 ms of CPU on this machine, which the GPU's caching allocator
    does not pay."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds, self.made = fn, 0.0, []

    def __call__(self, *args):
        t0 = CLOCK()
        try:
            out = self.fn(*args)
            self.made.append(out)
            return out
        finally:
            self.seconds += CLOCK() - t0

    def release(self) -> None:
        self.made.clear()


class DeviceAdapter:
    """An ONNX Runtime engine seen as a device engine on the CPU (torch tensors in and out, as the
    torch backend's ``infer_device``), with its own time and cProfile calls left out."""

    device = "cpu"

    def __init__(self, engine) -> None:
        self._engine = engine
        self.inputs, self.outputs, self.max_batch = engine.inputs, engine.outputs, engine.max_batch
        self.seconds = 0.0
        self.rows = 0  # crops inferred
        self.profile: cProfile.Profile | None = None

    def infer(self, feeds):
        return self._engine.infer(feeds)

    def infer_device(self, feeds):
        import torch

        if self.profile is not None:
            self.profile.disable()
        t0 = CLOCK()
        self.rows += len(next(iter(feeds.values())))
        out = self._engine.infer({k: v.numpy() for k, v in feeds.items()})
        out = {k: torch.from_numpy(v) for k, v in out.items()}
        self.seconds += CLOCK() - t0
        if self.profile is not None:
            self.profile.enable()
        return out


def decode(path: Path, n: int) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(n), c.decode(video=0))])


def make_batch(frames, b: int, sources: int) -> Batch:
    """Batch ``b``: source s shows frame ``s % OFFSET + b`` of ``frames`` (host array or torch tensor)."""
    idx = (np.arange(sources) % OFFSET) + b
    h, w = frames.shape[1:3]
    return Batch(frames=frames[idx], source_id=np.arange(sources, dtype=np.int32),
                 frame_num=np.full(sources, b, np.int64), pts=np.full(sources, b * 33_333_333, np.int64),
                 ntp_ts=np.full(sources, time.time_ns(), np.int64),
                 source_size=np.full((sources, 2), [w, h], np.int32))


def record(app, frames: np.ndarray, sources: int, batches: int, path: Path, engine_dir: Path) -> list[Objects]:
    """PGIE + tracker over ``batches`` batches: their objects, saved to ``path``."""
    stages = build_stages(app, lambda gie, name: load_engine(EngineSpec.from_nvinfer(gie.nvinfer), engine_dir))
    front = [s for s in stages if not s.name.startswith("secondary")]
    out = []
    for b in range(batches):
        batch = make_batch(frames, b, sources)
        for stage in front:
            batch = stage.process(batch)
        out.append(batch.objects)
        print(f"  recorded batch {b}: {len(batch.objects)} objects", flush=True)
    np.savez_compressed(path, **{f"{b}_{name}": getattr(o, name) for b, o in enumerate(out)
                                 for name in Objects.__dataclass_fields__})
    return out


def load_record(path: Path, batches: int) -> list[Objects]:
    data = np.load(path)
    return [Objects(**{name: data[f"{b}_{name}"] for name in Objects.__dataclass_fields__}) for b in range(batches)]


def _kind(func: tuple) -> str:
    file, _line, name = func
    text = f"{file} {name}"
    if "/runner/" in file:
        return "runner"
    if "torch" in text:
        return "torch"
    if "numpy" in text:
        return "numpy"
    return "other"


def measure(app, frames, objects: list[Objects], sources: int, warmup: int, engine_dir: Path,
            profile: bool, dump: Path | None = None) -> dict:
    adapters = []

    def loader(gie, name):
        engine = load_engine(EngineSpec.from_nvinfer(gie.nvinfer), engine_dir)
        if name.startswith("secondary"):
            adapters.append(DeviceAdapter(engine))
            return adapters[-1]
        return engine

    stats = RunStats()
    for sid in range(sources):
        stats.add_source(sid, f"file:///bench/{sid}.mp4")
    sgies = [s for s in build_stages(app, loader, stats) if s.name.startswith("secondary")]
    preprocess_clock = infer_module.preprocess_device = ClockedPreprocess(preprocess_device)
    import torch

    device_frames = torch.from_numpy(frames)
    prof = cProfile.Profile() if profile else None
    results = {}  # --dump: every batch's classifier results, to compare two versions of dsrun
    stage_s = stats_s = 0.0
    labels = n_obj = measured = 0
    for b, objs in enumerate(objects):
        batch = make_batch(device_frames, b, sources)
        batch.objects = Objects(**{name: getattr(objs, name).copy() for name in Objects.__dataclass_fields__})
        on = b >= warmup
        if on and b == warmup:
            for s in sgies:
                s.timings = dict.fromkeys(s.timings, 0.0)
            for a in adapters:
                a.seconds, a.rows = 0.0, 0
            preprocess_clock.seconds = 0.0
        if on and prof is not None:
            for a in adapters:
                a.profile = prof
            prof.enable()
        t0 = CLOCK()
        for s in sgies:
            batch = s.process(batch)
        t1 = CLOCK()
        stats.frames_processed(batch.source_id, batch.ntp_ts)  # Graph._emit on the last stage
        o = batch.objects
        if len(o):
            stats.objects_processed(batch.source_id[o.frame], o.gie_id, o.class_id)
        t2 = CLOCK()
        preprocess_clock.release()
        if dump is not None:
            c = batch.classifications
            results.update({f"{b}_{name}": np.asarray(getattr(c, name), str if name == "label" else None)
                            for name in Classifications.__dataclass_fields__})
        if on and prof is not None:
            prof.disable()
            for a in adapters:
                a.profile = None
        if on:
            stage_s += t1 - t0
            stats_s += t2 - t1
            measured += 1
            n_obj += len(o)
            labels += len(batch.classifications)
    engine_s = sum(a.seconds for a in adapters)
    infer_module.preprocess_device = preprocess_device
    snap = stats.snapshot()  # the readers' side still works (and groups what waits)
    if dump is not None:
        counts = {"sources": {sid: s["objects"] for sid, s in snap["sources"].items()},
                  "frames": {sid: s["frames_processed"] for sid, s in snap["sources"].items()},
                  "inference": snap["inference"]}
        np.savez_compressed(dump, counts=json.dumps(counts, sort_keys=True), **results)
    result = {"batches": measured, "objects_per_frame": round(n_obj / (measured * sources), 2),
              "labels_per_batch": round(labels / measured, 1),
              "crops_per_batch": round(sum(a.rows for a in adapters) / measured, 1)}
    if prof is None:
        pre = preprocess_clock.seconds
        result.update({"stage_ms": round(1000 * (stage_s - engine_s) / measured, 3),
                       "preprocess_ms": round(1000 * pre / measured, 3),
                       "other_ms": round(1000 * (stage_s - engine_s - pre) / measured, 3),
                       "stats_ms": round(1000 * stats_s / measured, 3),
                       "engine_ms_left_out": round(1000 * engine_s / measured, 3)})
    else:
        calls = {"runner": 0, "numpy": 0, "torch": 0, "other": 0}
        top = []
        for func, (_cc, nc, _tt, _ct, _callers) in pstats.Stats(prof).stats.items():
            calls[_kind(func)] += nc
            top.append((nc, func))
        result["calls_per_batch"] = {k: round(v / measured, 1) for k, v in calls.items()}
        result["calls_per_batch"]["total"] = round(sum(calls.values()) / measured, 1)
        result["top_calls_per_batch"] = [
            {"calls": round(nc / measured, 1), "function": f"{Path(f[0]).name}:{f[1]}:{f[2]}"}
            for nc, f in sorted(top, reverse=True)[:15]]
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=int, default=64)
    ap.add_argument("--batches", type=int, default=12, help="measured batches")
    ap.add_argument("--warmup", type=int, default=3, help="batches run before measuring (tracks and "
                                                            "the SGIE history fill)")
    ap.add_argument("--threshold", type=float, default=0.1, help="the PGIE's pre-cluster-threshold")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (the best is kept)")
    ap.add_argument("--record", type=Path, default=None, help="recorded PGIE + tracker objects "
                    "(default: the temp folder; made when missing)")
    ap.add_argument("--dump", type=Path, default=None, help="also save every batch's classifier "
                    "results and the run counters here (.npz), to compare two versions")
    ap.add_argument("--label", default=None, help="the row's name in --out (default: the commit)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "bench_sgie_stage.json")
    args = ap.parse_args(argv)

    assets = ensure_assets(full=False)
    clip, pgie, sgie = assets.videos["bench_1080p"], assets.models["detectnet_small"], assets.models["classifier_small"]
    total = args.warmup + args.batches
    frames = decode(clip, OFFSET + total)
    work = Path(tempfile.mkdtemp(prefix="bench_sgie_"))
    app_path = write_config(work, clip=clip, sources=args.sources, pgie=pgie, sgie=sgie, interval=1,
                            batch=args.sources, size=(1920, 1080), net=(480, 272), classes=4, sgie_classes=6,
                            network_mode=0)
    for i in (2, 3):  # FP32 on ONNX Runtime's CPU provider (its time is left out anyway)
        cfg = work / f"sgie{i}.txt"
        cfg.write_text(cfg.read_text().replace("network-mode=2", "network-mode=0"))
    # the generated detector's weights are random: a lower threshold gives the H200 run's objects per frame
    cfg = work / "pgie.txt"
    cfg.write_text(cfg.read_text().replace("pre-cluster-threshold=0.3", f"pre-cluster-threshold={args.threshold}"))
    app = load_app(app_path)
    engine_dir = Path(tempfile.gettempdir()) / "dsrun_bench_sgie_engines"
    rec = args.record or Path(tempfile.gettempdir()) / f"bench_sgie_record_{args.sources}x{total}_{args.threshold}.npz"
    if rec.is_file():
        objects = load_record(rec, total)
    else:
        print(f"recording PGIE + tracker objects into {rec} ...", flush=True)
        objects = record(app, frames, args.sources, total, rec, engine_dir)

    timed = [measure(app, frames, objects, args.sources, args.warmup, engine_dir, profile=False)
             for _ in range(args.rounds)]
    best = min(timed, key=lambda r: r["other_ms"] + r["stats_ms"])
    counted = measure(app, frames, objects, args.sources, args.warmup, engine_dir, profile=True)
    if args.dump:
        measure(app, frames, objects, args.sources, args.warmup, engine_dir, profile=False, dump=args.dump)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    row = {"label": args.label or commit, "commit": commit, **best, **counted,
           "rounds_other_ms": [r["other_ms"] for r in timed],
           "median_other_ms": float(np.median([r["other_ms"] for r in timed]))}

    print(f"\nSGIE stages (2 classifiers) + run-stats accounting, per batch of {args.sources} frames "
          f"({row['objects_per_frame']} objects/frame, {row['crops_per_batch']} crops inferred and "
          f"{row['labels_per_batch']} labels attached per batch), "
          f"engine left out; best of {args.rounds} rounds")
    calls = row["calls_per_batch"]
    cols = [("stage ms", row["stage_ms"]), ("preprocess ms", row["preprocess_ms"]),
            ("rest ms", row["other_ms"]), ("stats ms", row["stats_ms"]), ("calls", calls["total"]), ("runner", calls["runner"]),
            ("numpy", calls["numpy"]), ("torch", calls["torch"])]
    print(" ".join(f"{c:>14}" for c, _ in cols))
    print(" ".join(f"{v:>14}" for _, v in cols))

    doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
    doc.update({"bench": "scripts/bench_sgie_stage.py", "machine": f"{platform.machine()} "
                f"{platform.processor() or ''}".strip(), "cpu_cores": os.cpu_count(),
                "python": platform.python_version(),
                "date": time.strftime("%Y-%m-%d"), "command": "python3 " + " ".join(
                    [f"scripts/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
                "sources": args.sources, "clip": clip.name, "models": [pgie.name, sgie.name]})
    rows = [r for r in doc.get("rows", []) if r["label"] != row["label"]] + [row]
    doc["rows"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
