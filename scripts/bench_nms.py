#!/usr/bin/env python3
"""What cluster-mode 2 (NMS over a whole inference batch) costs per batch: torch calls, kernels, host
syncs and time, for the host pass, the previous device pass and the current one.

Each torch call gives the interpreter lock away and must win it back from the pipeline's other
threads, and each host sync also waits for the device: on the GPU machine the count of calls and syncs
matters more than the kernels' own time (issue 17; docs/bench/bench_h200_pyspy_i1_n64.txt).

    python3 scripts/bench_nms.py                         # torch on the CPU, synthesised candidates
    python3 scripts/bench_nms.py --device cuda --contend 0,8 --out bench_nms_h200.json
    python3 scripts/bench_nms.py --clip /work/assets/videos/bench_1080p.mp4   # real candidates

Candidates (frame, class, confidence, box in network pixels), in order of preference:

* ``--candidates FILE.npz`` (saved by ``--save``);
* ``--clip VIDEO``: real ones — every 10th frame of the clip through the benchmark's PGIE
  (scripts/bench_streams.py: DetectNet_v2 ResNet-34 960x544, 4 classes, pre-cluster-threshold 0.3;
  architecture built from its recipe, seeded weights) and nvinfer's DetectNet_v2 parser: ~270 per
  frame, ~8,600 per batch of 32, groups of 6-115, suppression chains 11-13 rounds long;
* otherwise synthesised from ``--seed`` (needs only numpy, torch and this repository): per class the
  counts, regions, box sizes and confidences of those real candidates (their 5th-95th percentiles),
  one candidate per 16-pixel grid cell as the parser gives, sizes and confidences smooth across the
  region as a network's are — the same sizes (candidates, pairs, groups); chains as long or longer,
  fewer overlapping pairs (the table prints both).

Rows: ``host`` (nms.grouped_nms's host pass, numpy), ``device-old`` (runner/pipeline/nms_device.py
as of commit 24c894e, reproduced below: pairs generated on the device, the fixed point iterated there,
checked every 3 rounds), ``device`` (the current module: overlaps on the device, one download, the
fixed point on the host). Batches of 1..32 frames; ``--contend N`` adds N Python threads that each
alternate 0.5 ms of interpreter work and 1 ms of sleep, a stand-in for the pipeline's other threads.
Calls are counted with torch's function mode, kernels (non-view aten ops) with its dispatch mode;
host syncs on CUDA with ``torch.cuda.set_sync_debug_mode`` and, on the CPU, as the calls that would
sync on CUDA (``cpu``, ``item``, ``tolist``, ``equal``, ``nonzero``, a blocking upload from pageable
memory). ``numpy ms``: what the current device pass spends outside its device work (ranking, layout,
decoding, the fixed point: host numpy that holds the interpreter lock). Every row's keep mask is checked
equal to the host pass's.

Prints a table and writes JSON (``--out``, default bench_nms.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import runner.pipeline.nms as nms  # noqa: E402
import runner.pipeline.nms_device as nms_device  # noqa: E402

NET_W, NET_H, GRID = 960, 544, 16
# per class of the benchmark's PGIE on bench_1080p (5th-95th percentiles of 16,105 real candidates,
# 60 frames): candidates per frame, centre x, centre y, width, height, confidence
CLASSES = (
    ((34, 78), (2, 486), (20, 458), (4, 48), (40, 97), (0.31, 0.56)),
    ((6, 14), (26, 815), (16, 445), (7, 80), (33, 60), (0.31, 0.65)),
    ((100, 115), (699, 937), (39, 416), (39, 57), (33, 59), (0.31, 0.55)),
    ((87, 99), (762, 882), (28, 200), (50, 69), (35, 80), (0.34, 0.82)),
)
IOU = 0.5  # the benchmark's nms-iou-threshold


def synthesise(frames: int, seed: int) -> dict:
    """Candidates with the real ones' sizes and shapes (see the module docstring), deterministic."""
    rng = np.random.default_rng(seed)
    cols = []
    for f in range(frames):
        for c, (count, cx, cy, w, h, conf) in enumerate(CLASSES):
            gx = np.arange(cx[0] // GRID, cx[1] // GRID + 1)
            gy = np.arange(cy[0] // GRID, cy[1] // GRID + 1)
            k = min(int(rng.integers(count[0], count[1] + 1)), len(gx) * len(gy))
            cell = rng.choice(len(gx) * len(gy), size=k, replace=False)
            x = gx[cell % len(gx)] * GRID + 8.5 + rng.uniform(-2, 2, k)
            y = gy[cell // len(gx)] * GRID + 8.5 + rng.uniform(-2, 2, k)
            u = np.clip((x - cx[0]) / (cx[1] - cx[0]), 0, 1)
            v = np.clip((y - cy[0]) / (cy[1] - cy[0]), 0, 1)
            bw = (w[0] + (w[1] - w[0]) * u) * rng.uniform(0.95, 1.05, k)
            bh = (h[0] + (h[1] - h[0]) * v) * rng.uniform(0.95, 1.05, k)
            box = np.clip(np.stack([x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2], 1), 0,
                          [NET_W - 1, NET_H - 1, NET_W - 1, NET_H - 1])
            phase = rng.uniform(0, 2 * np.pi, 2)
            field = 0.5 + 0.5 * np.sin(x / 60 + phase[0]) * np.cos(y / 60 + phase[1])
            score = conf[0] + (conf[1] - conf[0]) * field + rng.normal(0, 0.01, k)
            cols.append((np.full(k, f), np.full(k, c), score, box))
    frame, cls, conf, xyxy = (np.concatenate(z) for z in zip(*cols))
    return {"frame": frame.astype(np.int64), "class_id": cls.astype(np.int64),
            "confidence": conf.astype(np.float32), "xyxy": xyxy.astype(np.float32)}


def capture(clip: str, frames: int) -> dict:
    """Real candidates: every 10th frame of ``clip`` through the benchmark's PGIE and nvinfer's parser."""
    import av
    import cv2
    import onnxruntime as ort

    sys.path.insert(0, str(REPO / "scripts"))
    from bench_streams import generated_models

    from runner.pipeline.cluster import ClassParams
    from runner.pipeline.parsers import NetworkInfo
    from runner.pipeline.parsers.detectnet_v2 import parse_detectnet_v2

    model = generated_models(("detectnet_r34",))["detectnet_r34"]
    session = ort.InferenceSession(str(model), providers=ort.get_available_providers())
    params = ClassParams.uniform(4, pre_cluster_threshold=0.3, nms_iou_threshold=IOU)
    pictures = []
    with av.open(clip) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 10 == 0:
                pictures.append(cv2.resize(frame.to_ndarray(format="rgb24"), (NET_W, NET_H),
                                           interpolation=cv2.INTER_LINEAR))
            if len(pictures) == frames:
                break
    cols = []
    for k in range(0, len(pictures), 4):
        x = (np.stack(pictures[k:k + 4]).astype(np.float32) / 255).transpose(0, 3, 1, 2)
        cov, bbox = session.run(None, {session.get_inputs()[0].name: x})
        objs = parse_detectnet_v2({"output_cov": cov, "output_bbox": bbox}, NetworkInfo(NET_W, NET_H), params)
        cols.append((objs.frame + k, objs.class_id, objs.confidence, objs.xyxy))
    frame, cls, conf, xyxy = (np.concatenate(z) for z in zip(*cols))
    return {"frame": frame.astype(np.int64), "class_id": cls.astype(np.int64),
            "confidence": conf.astype(np.float32), "xyxy": xyxy.astype(np.float32)}


# -- the previous device pass (runner/pipeline/nms_device.py at 24c894e), kept to compare against --

def device_old(torch, device, xyxy, conf, group, threshold):
    n = len(conf)
    keep = np.zeros(n, bool)
    if n == 0:
        return keep
    order, starts, sizes = nms_device.group_runs(conf, np.asarray(group, np.int64))
    pairs = sizes * (sizes - 1) // 2
    later = np.repeat(starts + sizes, sizes) - np.arange(n) - 1
    rows = np.column_stack([np.asarray(xyxy, np.float64)[order], np.asarray(threshold, np.float64)[order], later])
    rows_t = torch.from_numpy(np.ascontiguousarray(rows)).to(device)
    alive = np.ones(n, bool)
    first = 0
    while first < len(starts):
        last = first + 1
        budget = int(pairs[first])
        while last < len(starts) and budget + int(pairs[last]) <= 8_000_000:
            budget += int(pairs[last])
            last += 1
        lo, hi = int(starts[first]), int(starts[last]) if last < len(starts) else n
        if budget:
            alive[lo:hi] = _old_fixed_point(torch, rows_t[lo:hi], budget)
        first = last
    keep[order[alive]] = True
    return keep


def _old_fixed_point(torch, rows, total_pairs):
    device = rows.device
    m = rows.shape[0]
    later = rows[:, 5].long()
    a = torch.repeat_interleave(torch.arange(m, device=device), later, output_size=total_pairs)
    first_pair = torch.cumsum(later, 0) - later
    b = a + 1 + (torch.arange(total_pairs, device=device)
                 - torch.repeat_interleave(first_pair, later, output_size=total_pairs))
    box_a, box_b = rows[a], rows[b]
    iw = (torch.minimum(box_a[:, 2], box_b[:, 2]) - torch.maximum(box_a[:, 0], box_b[:, 0])).clamp(min=0)
    ih = (torch.minimum(box_a[:, 3], box_b[:, 3]) - torch.maximum(box_a[:, 1], box_b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = ((box_a[:, 2] - box_a[:, 0]) * (box_a[:, 3] - box_a[:, 1])
             + (box_b[:, 2] - box_b[:, 0]) * (box_b[:, 3] - box_b[:, 1]) - inter)
    iou = torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)),
                      torch.zeros_like(union))
    edge = iou > box_a[:, 4]
    alive = torch.ones(m, dtype=torch.bool, device=device)
    while True:
        for _ in range(3):
            previous = alive
            hits = torch.zeros(m, dtype=torch.int32, device=device).index_add_(0, b, (edge & alive[a]).to(torch.int32))
            alive = hits == 0
        if torch.equal(previous, alive):
            return alive.cpu().numpy()


# -- counting --------------------------------------------------------------------------------------

SYNCING = {"cpu", "item", "tolist", "equal", "nonzero", "_local_scalar_dense"}


def count(torch, device, run) -> dict:
    """Torch calls, kernels (non-view aten ops) and host syncs of one ``run()``."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    tally = {"calls": 0, "kernels": 0, "syncs_static": 0}

    class Calls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            tally["calls"] += 1
            name = getattr(func, "__name__", "")
            upload = (name == "to" and args and isinstance(args[0], torch.Tensor) and args[0].device.type == "cpu"
                      and not kwargs.get("non_blocking", False) and not args[0].is_pinned()
                      and any(isinstance(a, (torch.device, str)) for a in (*args[1:], kwargs.get("device"))))
            if name in SYNCING or upload:
                tally["syncs_static"] += 1
            return func(*args, **kwargs)

    class Kernels(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view:
                tally["kernels"] += 1
            return func(*args, **(kwargs or {}))

    with Calls(), Kernels():
        run()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        tally["syncs_cuda"] = sum("synchroniz" in str(w.message) for w in caught)
    return tally


class Contention:
    """``n`` threads alternating 0.5 ms of pure-Python work and 1 ms of sleep (the interpreter lock
    is wanted by others, as in a pipeline with many stage and reader threads)."""

    def __init__(self, n: int):
        self.n, self.stop, self.threads = n, threading.Event(), []

    def _spin(self):
        while not self.stop.is_set():
            end = time.perf_counter() + 0.0005
            while time.perf_counter() < end:
                pass
            time.sleep(0.001)

    def __enter__(self):
        self.threads = [threading.Thread(target=self._spin, daemon=True) for _ in range(self.n)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def timed(run, warmup: int, repeat: int) -> tuple[float, float, float | None]:
    """Median and 90th-percentile ms per call, and the median ms the current device pass spends outside
    its device pass (``nms_device._pass``: the launches, the wait, the download), i.e. in numpy on the
    host holding the interpreter lock (None for the other paths)."""
    for _ in range(warmup):
        run()
    inner, real_pass = [0.0], nms_device._pass

    def timed_pass(*args):
        t0 = time.perf_counter()
        try:
            return real_pass(*args)
        finally:
            inner[0] += time.perf_counter() - t0

    times, host = [], []
    nms_device._pass = timed_pass
    try:
        for _ in range(repeat):
            inner[0] = 0.0
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
            host.append(times[-1] - inner[0] if inner[0] else None)
    finally:
        nms_device._pass = real_pass
    host_ms = statistics.median(host) * 1e3 if all(h is not None for h in host) else None
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.9 * (len(times) - 1))] * 1e3, host_ms


def batch_sizes(conf, group, keep) -> dict:
    _, _, sizes = nms_device.group_runs(conf, group)
    return {"candidates": len(conf), "groups": len(sizes), "largest_group": int(sizes.max()),
            "pairs": int((sizes * (sizes - 1)).sum()) // 2, "kept": int(keep.sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="torch device of the device passes: cpu or cuda")
    ap.add_argument("--frames", default="1,2,4,8,16,32", help="batch sizes (frames) to measure")
    ap.add_argument("--contend", default="0", help="comma list of busy Python threads to run beside, e.g. 0,8")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthesised candidates")
    ap.add_argument("--clip", help="real candidates from this clip (the benchmark's PGIE, built from its recipe)")
    ap.add_argument("--candidates", help="candidates saved by --save (.npz)")
    ap.add_argument("--save", help="write the candidates used to this .npz")
    ap.add_argument("--paths", default="host,device-old,device")
    ap.add_argument("--out", default="bench_nms.json")
    args = ap.parse_args()

    import torch

    from runner.bench.capacity import machine

    device = torch.device(args.device)
    frames = [int(f) for f in args.frames.split(",")]
    if args.candidates:
        cand, source = dict(np.load(args.candidates)), f"file {args.candidates}"
    elif args.clip:
        cand, source = capture(args.clip, max(frames)), f"real: {Path(args.clip).name} through the benchmark's PGIE"
    else:
        cand, source = synthesise(max(frames), args.seed), f"synthesised, seed {args.seed} (no clip given)"
    if args.save:
        np.savez_compressed(args.save, **cand)
    print(f"candidates: {source}", flush=True)

    def host(xyxy, conf, group, thr):
        saved, nms._DEVICE_NMS = nms._DEVICE_NMS, None  # the host pass even on a GPU machine
        try:
            return nms.grouped_nms(xyxy, conf, group, thr)
        finally:
            nms._DEVICE_NMS = saved

    passes = {"host": host,
              "device-old": lambda *a: device_old(torch, device, *a),
              "device": lambda *a: nms_device.grouped_nms_device(torch, device, *a)}
    paths = args.paths.split(",")
    result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": " ".join(sys.argv), "machine": machine(),
              "platform": platform.platform(), "torch": torch.__version__, "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
              "candidates": source, "iou_threshold": IOU, "rows": [], "crossover": {}}
    header = (f"{'frames':>6} {'cands':>6} {'pairs':>8} {'kept':>5} {'threads':>7} {'path':>10} {'calls':>6} "
              f"{'kernels':>7} {'syncs':>5} {'ms p50':>8} {'ms p90':>8} {'numpy ms':>8} same")
    print(header)
    for contend in (int(c) for c in args.contend.split(",")):
        for f in frames:
            sel = cand["frame"] < f
            xyxy = cand["xyxy"][sel].astype(np.float64)
            conf = cand["confidence"][sel].astype(np.float64)
            group = cand["frame"][sel].astype(np.int64) * len(CLASSES) + cand["class_id"][sel]
            thr = np.full(len(conf), IOU)
            expected = host(xyxy, conf, group, thr)
            stats = batch_sizes(conf, group, expected)
            for name in paths:
                run = lambda: passes[name](xyxy, conf, group, thr)  # noqa: E731
                same = bool(np.array_equal(run(), expected))
                tally = count(torch, device, run)
                with Contention(contend):
                    p50, p90, host_ms = timed(run, args.warmup, args.repeat)
                syncs = tally.get("syncs_cuda", tally["syncs_static"])
                row = {"frames": f, **stats, "contending_threads": contend, "path": name, **tally,
                       "ms_p50": round(p50, 3), "ms_p90": round(p90, 3),
                       "host_numpy_ms_p50": None if host_ms is None else round(host_ms, 3), "same_as_host": same}
                result["rows"].append(row)
                print(f"{f:6d} {stats['candidates']:6d} {stats['pairs']:8d} {stats['kept']:5d} {contend:7d} "
                      f"{name:>10} {tally['calls']:6d} {tally['kernels']:7d} {syncs:5d} {p50:8.2f} {p90:8.2f} "
                      f"{'' if host_ms is None else f'{host_ms:.2f}':>8} {'yes' if same else 'NO'}", flush=True)
        rows = [r for r in result["rows"] if r["contending_threads"] == contend]
        wins = [r["pairs"] for r in rows if r["path"] == "device" and r["ms_p50"] < next(
            h["ms_p50"] for h in rows if h["path"] == "host" and h["frames"] == r["frames"])]
        result["crossover"][str(contend)] = min(wins) if wins else None
        print(f"  {contend} busy threads: the device pass is faster than the host pass from "
              f"{min(wins) if wins else '(never)'} pairs per batch "
              f"(nms.DEVICE_MIN_PAIRS = {nms.DEVICE_MIN_PAIRS})", flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["same_as_host"] for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
