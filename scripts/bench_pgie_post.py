#!/usr/bin/env python3
"""What the primary GIE's post-processing costs per batch on its stage thread: nvinfer's DetectNet_v2
parser, cluster-mode 2 (NMS, topk) and the frame filter — ``GieStage._consume`` on one batch of real
network outputs — in microseconds and in Python-level calls (issue 17).

On the GPU machine this work runs on the ``stage-primary-gie`` thread beside ~70 others and holds the
interpreter lock while it runs; every torch call also gives the lock away and must win it back. Call
counts do not depend on how loaded the machine is; times do (the machine is shared: medians of
``--repeat`` runs, ``--rounds`` times over).

    python3 scripts/bench_pgie_post.py                              # this machine, torch on the CPU
    python3 scripts/bench_pgie_post.py --outputs pgie_outputs.npz --device cuda   # the GPU machine

The batch: ``--frames`` (32) frames of ``--clip`` (bench_1080p, every 10th frame) through
scripts/bench_streams.py's PGIE — DetectNet_v2 ResNet-34 960x544, 4 classes, built from its recipe
(seeded weights), its INI (cluster-mode=2, pre-cluster-threshold=0.3, nms-iou-threshold=0.5, topk=3) —
run once on ONNX Runtime (FP32, CPU) and kept in ``--outputs`` (.npz; made when missing).

Rows, per NMS path: ``host`` (``nms.grouped_nms``'s numpy pass) and ``device``
(``runner.pipeline.nms_device`` on ``--device``: the path a GPU machine takes at this batch's pair
count; torch on the CPU here). Columns: candidates and objects out; µs per batch (median) for the
whole ``_consume``, the parse and the cluster + filter; cProfile's calls per batch — all, numpy's
(functions of the numpy package and numpy's C functions and methods) — and torch calls (torch's
function mode). ``--expect FILE`` checks the objects equal, bit for bit, those saved by ``--save``.

Prints a table and writes JSON (``--out``, default docs/bench/bench_pgie_post_cpu.json).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import runner.pipeline.nms as nms  # noqa: E402
from runner.pipeline.batch import Batch  # noqa: E402

NET = (960, 544)
SIZE = (1920, 1080)


def pgie_stage(work: Path):
    """bench_streams' PGIE (its INI, its generated ResNet-34) as a GieStage on ONNX Runtime, FP32."""
    from bench_streams import generated_models, write_config

    from runner.config import load_nvinfer
    from runner.engine import EngineSpec, load_engine
    from runner.pipeline.infer import GieStage

    models = generated_models(("detectnet_r34", "classifier"))
    write_config(work, clip=Path("unused.mp4"), sources=1, pgie=models["detectnet_r34"],
                 sgie=models["classifier"], interval=0, batch=32, size=SIZE, net=NET, classes=4,
                 sgie_classes=2, network_mode=0)
    nvinfer = load_nvinfer(work / "pgie.txt")
    engine = load_engine(EngineSpec.from_nvinfer(nvinfer), Path(tempfile.gettempdir()) / "dsrun_bench_models" / "engines")
    return GieStage(nvinfer, engine, name="primary-gie")


def frames_of(clip: str, count: int) -> np.ndarray:
    import av

    pictures = []
    with av.open(clip) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 10 == 0:
                pictures.append(frame.to_ndarray(format="rgb24"))
            if len(pictures) == count:
                break
    return np.stack(pictures)


def batch_of(frames: np.ndarray) -> Batch:
    n = len(frames)
    return Batch(frames=frames, source_id=np.arange(n, dtype=np.int32), frame_num=np.zeros(n, np.int64),
                 pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                 source_size=np.tile(np.int32([frames.shape[2], frames.shape[1]]), (n, 1)))


def numpy_calls(stats: pstats.Stats) -> int:
    """Calls to numpy's Python functions and to numpy's C functions and ndarray methods."""
    total = 0
    for (filename, _, name), (_, calls, *_rest) in stats.stats.items():
        if "/numpy/" in filename or (filename == "~" and ("numpy" in name or "ndarray" in name)):
            total += calls
    return total


def torch_calls(torch, run) -> int:
    from torch.overrides import TorchFunctionMode

    tally = [0]

    class Calls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            tally[0] += 1
            return func(*args, **(kwargs or {}))

    with Calls():
        run()
    return tally[0]


# PyEval_SaveThread is what numpy (a loop over > 500 elements, a sort) and torch (every call) run to
# give the interpreter lock away; counted per thread by a shim preloaded before libpython
GIL_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
static void *(*real_save)(void);
static __thread unsigned long long releases;
void *PyEval_SaveThread(void) {
    if (!real_save) real_save = (void *(*)(void))dlsym(RTLD_NEXT, "PyEval_SaveThread");
    releases++;
    return real_save();
}
unsigned long long dsrun_gil_releases(void) { return releases; }
"""


def gil_counter():
    """``count()`` of this thread's interpreter-lock releases so far, or None without the shim. On the
    first call (no shim preloaded yet) the shim is compiled with the C compiler and this script run
    again with it preloaded (libpython must be a shared library, as on this machine)."""
    import ctypes
    import os
    import shutil
    import subprocess
    import sysconfig

    lib = os.environ.get("DSRUN_GIL_SHIM")
    if lib and lib in os.environ.get("LD_PRELOAD", ""):
        fn = ctypes.PyDLL(lib).dsrun_gil_releases  # PyDLL: the call keeps the lock
        fn.restype = ctypes.c_ulonglong
        return fn
    if lib or not sysconfig.get_config_var("Py_ENABLE_SHARED") or not shutil.which("cc"):
        return None
    folder = Path(tempfile.mkdtemp(prefix="gil_shim_"))
    (folder / "shim.c").write_text(GIL_SHIM)
    lib = str(folder / "libgilcount.so")
    if subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", lib, str(folder / "shim.c"), "-ldl"]).returncode:
        return None
    env = {**os.environ, "DSRUN_GIL_SHIM": lib, "LD_PRELOAD": f"{lib} {os.environ.get('LD_PRELOAD', '')}".strip()}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def use_path(name: str, torch, device) -> None:
    """Route cluster-mode 2's NMS for the following runs: ``host`` (numpy), ``device`` (the device pass
    on ``device`` for every batch) or ``auto`` (what the runner chooses on this machine)."""
    nms._DEVICE_NMS, nms.DEVICE_MIN_PAIRS = False, DEVICE_MIN_PAIRS  # auto: looked up again
    if name == "host":
        nms._DEVICE_NMS = None
    elif name == "device":
        from runner.pipeline.nms_device import grouped_nms_device

        nms._DEVICE_NMS = lambda xyxy, conf, group, thr, runs: grouped_nms_device(
            torch, device, xyxy, conf, group, thr, runs)
        nms.DEVICE_MIN_PAIRS = 0


DEVICE_MIN_PAIRS = nms.DEVICE_MIN_PAIRS
COLUMNS = ("frame", "class_id", "confidence", "xyxy", "gie_id", "parent")


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bytes (-0.0 is not 0.0 here; NaN equals the same NaN)."""
    return a.dtype == b.dtype and a.shape == b.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def measure(stage, run, releases, torch, repeat: int, rounds: int) -> dict:
    """One path's figures: times (medians), calls, torch calls, interpreter-lock releases."""
    profile = cProfile.Profile()
    profile.runcall(run)
    stats = pstats.Stats(profile)
    gil = None
    if releases is not None:
        before = releases()
        run()
        gil = int(releases() - before)
    totals, parses, clusters = [], [], []
    for _ in range(rounds):
        for _ in range(repeat):
            for k in stage.timings:
                stage.timings[k] = 0.0
            t0 = time.perf_counter()
            run()
            totals.append(time.perf_counter() - t0)
            parses.append(stage.timings["parse"])
            clusters.append(stage.timings["cluster"])
    return {"us_per_batch": round(statistics.median(totals) * 1e6, 1),
            "parse_us": round(statistics.median(parses) * 1e6, 1),
            "cluster_filter_us": round(statistics.median(clusters) * 1e6, 1),
            "calls": stats.total_calls, "numpy_calls": numpy_calls(stats), "torch_calls": torch_calls(torch, run),
            "gil_releases": gil}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", help="default: the asset bench_1080p (made from its package when missing)")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--outputs", default=str(Path(tempfile.gettempdir()) / "dsrun_bench_models" / "pgie_outputs.npz"),
                    help="the batch's network outputs (.npz); made from --clip when missing")
    ap.add_argument("--device", default="cpu", help="torch device of the device NMS path")
    ap.add_argument("--paths", default="host,device", help="host, device, auto (the runner's own choice)")
    ap.add_argument("--topk", default="3,20,-1", help="topk values to run (the bench config has 3; -1: none)")
    ap.add_argument("--contend", type=int, default=0, help="busy Python threads beside (scripts/bench_nms.py's)")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--save", help="write the objects (per topk) to this .npz")
    ap.add_argument("--expect", help="check the objects equal those saved by --save (bit for bit)")
    ap.add_argument("--label", default="", help="a word for the JSON (e.g. before / after)")
    ap.add_argument("--out", default=str(REPO / "docs" / "bench" / "bench_pgie_post_cpu.json"))
    args = ap.parse_args()

    releases = gil_counter()  # (may run this script again, with the counter preloaded)
    import dataclasses

    import torch
    from bench_nms import Contention

    from runner.bench.capacity import machine

    device = torch.device(args.device)
    work = Path(tempfile.mkdtemp(prefix="bench_pgie_post_"))
    stage = pgie_stage(work)
    if args.clip is None:
        from runner.assets import ensure_assets

        args.clip = str(ensure_assets(full=True, only=["videos/bench_1080p.mp4"]).videos["bench_1080p"])
    frames = frames_of(args.clip, args.frames)
    outputs_path = Path(args.outputs)
    _, mapping = stage._preprocess(frames)  # the mapping (1080p → 960x544) is cheap; the outputs are not
    mapping.frame = np.arange(len(frames), dtype=np.int32)
    if outputs_path.is_file():
        outputs = dict(np.load(outputs_path))
    else:
        print(f"running the PGIE on {len(frames)} frames (ONNX Runtime, CPU) → {outputs_path}", flush=True)
        outputs, _ = stage._infer(frames)
        outputs_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(outputs_path, **outputs)
    batch = batch_of(frames)
    configured = stage.class_params

    def run():
        batch.objects = batch.objects.empty()
        stage._consume(batch, outputs, mapping, None)
        return batch.objects

    result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": " ".join(sys.argv), "label": args.label,
              "machine": machine(), "platform": platform.platform(), "torch": torch.__version__,
              "numpy": np.__version__, "device": str(device), "frames": len(frames), "contending_threads": args.contend,
              "outputs": {k: list(v.shape) for k, v in outputs.items()}, "rows": []}
    saved, expected = {}, dict(np.load(args.expect)) if args.expect else None
    print(f"{'topk':>4} {'path':>6} {'cands':>6} {'objs':>5} {'µs/batch':>9} {'parse µs':>9} {'cluster µs':>10} "
          f"{'calls':>6} {'numpy':>6} {'torch':>6} {'GIL rel':>7} same")
    ok = True
    for topk in (int(k) for k in args.topk.split(",")):
        stage.class_params = dataclasses.replace(configured, topk=np.full(configured.num_classes, topk))
        for name in args.paths.split(","):
            use_path(name, torch, device)
            objs = run()
            raw = stage.bbox_parser(outputs, stage.net, stage.class_params)
            same = None
            if expected is not None:
                same = all(bitwise_equal(getattr(objs, c), expected[f"{topk}.{c}"]) for c in COLUMNS)
                ok &= same
            for c in COLUMNS:  # every path must give these objects
                saved.setdefault(f"{topk}.{c}", getattr(objs, c))
            with Contention(args.contend):
                row = {"topk": topk, "path": name, "candidates": len(raw), "objects": len(objs),
                       **measure(stage, run, releases, torch, args.repeat, args.rounds), "same_as_expected": same}
            result["rows"].append(row)
            gil = row["gil_releases"]
            print(f"{topk:4d} {name:>6} {row['candidates']:6d} {row['objects']:5d} {row['us_per_batch']:9.0f} "
                  f"{row['parse_us']:9.0f} {row['cluster_filter_us']:10.0f} {row['calls']:6d} {row['numpy_calls']:6d} "
                  f"{row['torch_calls']:6d} {'n/a' if gil is None else gil:>7} "
                  f"{'' if same is None else 'yes' if same else 'NO'}", flush=True)
    if args.save:
        np.savez(args.save, **saved)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
