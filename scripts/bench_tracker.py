#!/usr/bin/env python3
"""What the batched tracker costs the interpreter per batch: µs and calls, IOU and NvSORT configs.

On the GPU machine the tracker thread holds the interpreter lock ~7 % of the wall time at 64 sources
(issue 17, /work/notes py-spy profile): every numpy call is a few µs of lock held, however small its
arrays. This bench feeds :class:`~runner.pipeline.tracker.TrackerStage` (the batched IOU / SORT-class
trackers, ``_process_batched``) real detections for many streams and reports, per batch:

* ``µs``: CPU time of ``TrackerStage.process`` per batch (the thread's own time, less sensitive to the
  machine's other work than wall time): the mean over a run's batches, the median of ``--repeats``
  runs; also apart for batches the detector ran on and batches it skipped (``--intervals``);
* ``numpy calls``: calls the tracker code makes into numpy (functions, array methods, ufuncs called by
  name; arithmetic operators are not counted) and ``py calls``: Python function calls under the
  stage (``sys.setprofile``) — counts do not depend on the machine's load, unlike µs;
* ``digest``: a hash of every batch's tracked objects (ids, boxes, confidences) and, for NvSORT, the
  Kalman states at the end: equal digests before and after a change mean bit-identical results.

Detections: YOLOv4-tiny (DeepStream-Yolo's config, as the test2 sample; tests/infer_models.py) on every
frame of the street clip (OpenCV's vtest.avi, 768x576, pedestrians), computed once and cached under
engines/bench_tracker/. Stream ``s`` shows the clip from frame ``s * frames // streams`` on (looping),
so the streams are busy differently; a batch holds one frame of every stream. With ``--interval 1``
the detector runs on every other batch (DeepStream's ``interval`` skips whole batches) and the tracker
reports predicted targets on the others.

Configs: ``iou``, the IOU tracker YAML of scripts/bench_streams.py (the GPU benchmark's); ``nvsort``,
the gallery's NvSORT config (samples/multistream/config_tracker.yml, regular Kalman filter).

    python3 scripts/bench_tracker.py                      # 64 streams, intervals 0 and 1, both configs
    python3 scripts/bench_tracker.py --streams 16 --batches 100 --repeats 3 --out /tmp/t.json
    python3 scripts/bench_tracker.py --check              # also: batched == per-stream path, batch for batch

Prints a table and writes JSON (``--out``, default docs/bench/bench_tracker_cpu.json).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_streams import TRACKER_YAML  # noqa: E402
from runner.config import load_tracker  # noqa: E402
from runner.pipeline.batch import Batch, Objects  # noqa: E402
from runner.pipeline.tracker import TrackerStage  # noqa: E402

CONFIGS = {"iou": None, "nvsort": REPO / "samples" / "multistream" / "config_tracker.yml"}
NUMPY_DIR = os.path.dirname(np.__file__)


def detections(clip: str, cache: Path) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], tuple[int, int]]:
    """[(boxes, classes, confidences)] per frame of the clip, and its (width, height)."""
    if cache.exists():
        z = np.load(cache)
        cut = np.cumsum(z["count"])[:-1]
        return (list(zip(np.split(z["xyxy"], cut), np.split(z["class_id"], cut), np.split(z["confidence"], cut))),
                tuple(int(v) for v in z["size"]))
    import av

    from runner.assets import ensure_assets
    from tests.infer_models import yolov4_tiny_stage

    assets = ensure_assets()
    with tempfile.TemporaryDirectory() as tmp:
        stage = yolov4_tiny_stage(assets, Path(tmp))
        with av.open(str(assets.videos[clip])) as c:
            pictures = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        out = []
        for s in range(0, len(pictures), 4):
            x = np.stack(pictures[s:s + 4])
            n, h, w = x.shape[:3]
            o = stage.process(Batch(frames=x, source_id=np.zeros(n, np.int32), frame_num=np.arange(s, s + n),
                                    pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                                    source_size=np.tile([w, h], (n, 1)).astype(np.int32))).objects
            out += [(o.xyxy[o.frame == i], o.class_id[o.frame == i], o.confidence[o.frame == i]) for i in range(n)]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, xyxy=np.concatenate([d[0] for d in out]), class_id=np.concatenate([d[1] for d in out]),
             confidence=np.concatenate([d[2] for d in out]), count=[len(d[0]) for d in out], size=[w, h])
    return out, (w, h)


def batches(dets, size, streams: int, count: int, interval: int) -> list[Batch]:
    """``count`` batches of one frame per stream; the detector ran on every ``interval + 1``-th batch."""
    w, h = size
    n = len(dets)
    offset = np.arange(streams) * n // streams
    out = []
    for k in range(count):
        frames = (offset + k) % n
        detected = k % (interval + 1) == 0
        per = [dets[f] if detected else (np.zeros((0, 4), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32))
               for f in frames]
        objs = Objects.from_columns(frame=np.repeat(np.arange(streams), [len(p[0]) for p in per]), gie_id=1,
                                    class_id=np.concatenate([p[1] for p in per]),
                                    confidence=np.concatenate([p[2] for p in per]),
                                    xyxy=np.concatenate([p[0] for p in per]))
        out.append(Batch(frames=np.broadcast_to(np.zeros(3, np.uint8), (streams, h, w, 3)),
                         source_id=np.arange(streams, dtype=np.int32), frame_num=np.full(streams, k, np.int64),
                         pts=np.zeros(streams, np.int64), ntp_ts=np.zeros(streams, np.int64),
                         source_size=np.tile([w, h], (streams, 1)).astype(np.int32), objects=objs,
                         inferred={1: np.full(streams, detected)}))
    return out


def fresh(batch: Batch) -> Batch:
    """A copy the tracker may change (it rewrites the batch's objects)."""
    return Batch(frames=batch.frames, source_id=batch.source_id, frame_num=batch.frame_num, pts=batch.pts,
                 ntp_ts=batch.ntp_ts, source_size=batch.source_size,
                 objects=batch.objects[np.arange(len(batch.objects))], inferred=dict(batch.inferred))


def stage_for(config: str, batched: bool = True) -> TrackerStage:
    path = CONFIGS[config]
    if path is None:
        path = Path(tempfile.mkdtemp()) / "tracker_iou.yml"
        path.write_text(TRACKER_YAML)
    stage = TrackerStage(NS(ll_config=load_tracker(path), ll_lib_file=None, enable=True, operate_on_class_ids=()),
                         operate_on_gie_id=1)
    assert stage.kind == ("iou" if config == "iou" else "sort"), stage.kind
    if not batched:
        stage.batched = None
    return stage


def digest(outputs: list[Batch], stage: TrackerStage) -> str:
    h = hashlib.sha256()
    for b in outputs:
        o = b.objects
        for col in (o.frame, o.class_id, o.confidence, o.xyxy, o.track_id, o.tracker_confidence):
            h.update(np.ascontiguousarray(col).tobytes())
    t = stage.batched
    if hasattr(t, "x"):  # Kalman states, in id order
        order = np.argsort(t.tracks.id)
        for a in (t.tracks.id[order], t.x[order], t.P[order]):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def timed(config: str, work: list[Batch], warmup: int) -> tuple[list[float], str]:
    """Per-batch µs of every batch after ``warmup``, and the run's digest."""
    stage = stage_for(config)
    inputs = [fresh(b) for b in work]
    outputs, times = [], []
    for b in inputs:
        t0 = time.thread_time()
        outputs.append(stage.process(b))
        times.append((time.thread_time() - t0) * 1e6)
    return times[warmup:], digest(outputs, stage)


class CallCounter:
    """Calls made into numpy from outside numpy (by name), and Python calls, while it is installed."""

    def __init__(self) -> None:
        self.numpy = collections.Counter()
        self.python = 0
        self._ufuncs = {k: v for k, v in vars(np).items() if isinstance(v, np.ufunc)}

    def _profile(self, frame, event, arg):
        if event == "call":
            self.python += 1
            code = frame.f_code
            if (code.co_filename.startswith(NUMPY_DIR) and not frame.f_back.f_code.co_filename.startswith(NUMPY_DIR)
                    and not code.co_name.endswith("_dispatcher")  # numpy's own step before a C function
                    and not code.co_filename.endswith("_methods.py")):  # under an array method, counted there
                self.numpy[code.co_name] += 1
        elif event == "c_call" and not frame.f_code.co_filename.startswith(NUMPY_DIR):
            owner = getattr(arg, "__self__", None)
            module = getattr(arg, "__module__", None) or ""
            if module.startswith("numpy") or isinstance(owner, (np.ndarray, np.generic, np.ufunc)) \
                    or type(owner).__module__.startswith("numpy"):
                self.numpy[arg.__name__] += 1

    def __enter__(self):
        counter = self

        def wrap(name, u):
            def ufunc(*a, **k):
                counter.numpy[name] += 1
                return u(*a, **k)
            for attr in ("at", "reduce", "accumulate", "outer", "reduceat"):
                setattr(ufunc, attr, getattr(u, attr))
            return ufunc
        for name, u in self._ufuncs.items():
            setattr(np, name, wrap(name, u))
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)
        for name, u in self._ufuncs.items():
            setattr(np, name, u)


def counted(config: str, work: list[Batch], warmup: int) -> dict:
    stage = stage_for(config)
    inputs = [fresh(b) for b in work]
    for b in inputs[:warmup]:
        stage.process(b)
    with CallCounter() as c:
        for b in inputs[warmup:]:
            stage.process(b)
    n = len(inputs) - warmup
    return {"numpy_calls": sum(c.numpy.values()) / n, "python_calls": c.python / n,
            "top_numpy": {k: round(v / n, 1) for k, v in c.numpy.most_common(15)}}


def check(config: str, work: list[Batch]) -> int:
    """The batched path against one tracker per stream frame by frame: equal objects, every batch."""
    a, b = stage_for(config), stage_for(config, batched=False)
    for k, batch in enumerate(work):
        x, y = a.process(fresh(batch)), b.process(fresh(batch))
        for col in ("frame", "class_id", "confidence", "xyxy", "track_id", "tracker_confidence"):
            if not np.array_equal(getattr(x.objects, col), getattr(y.objects, col)):
                raise SystemExit(f"{config}: batch {k}: column {col} differs from the per-stream tracker")
    return len(work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default="street")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--batches", type=int, default=300, help="timed batches per run (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--configs", default="iou,nvsort")
    ap.add_argument("--intervals", default="0,1")
    ap.add_argument("--check", action="store_true", help="also compare with the per-stream trackers")
    ap.add_argument("--label", default="", help="a name for this run in the JSON (e.g. before / after)")
    ap.add_argument("--out", default=str(REPO / "docs" / "bench" / "bench_tracker_cpu.json"))
    args = ap.parse_args()
    dets, size = detections(args.clip, REPO / "engines" / "bench_tracker" / f"{args.clip}_yolov4_tiny.npz")
    per_frame = [len(d[0]) for d in dets]
    print(f"{args.clip}: {len(dets)} frames {size[0]}x{size[1]}, detections per frame median "
          f"{statistics.median(per_frame)}, max {max(per_frame)}; {args.streams} streams")
    rows = []
    print(f"{'config':8} {'interval':>8} {'dets/batch':>10} {'µs/batch':>9} {'spread':>13} {'detected':>8} "
          f"{'skipped':>8} {'numpy calls':>11} {'py calls':>9}  digest")
    for config in args.configs.split(","):
        for interval in (int(i) for i in args.intervals.split(",")):
            work = batches(dets, size, args.streams, args.warmup + args.batches, interval)
            means, detect_means, skip_means, digests = [], [], [], set()
            ran = [bool(b.inferred[1][0]) for b in work[args.warmup:]]
            for _ in range(args.repeats):
                times, d = timed(config, work, args.warmup)
                means.append(statistics.mean(times))
                detect_means.append(statistics.mean(t for t, r in zip(times, ran) if r))
                if not all(ran):
                    skip_means.append(statistics.mean(t for t, r in zip(times, ran) if not r))
                digests.add(d)
            assert len(digests) == 1, "the tracker gave different results on the same input"
            calls = counted(config, work, args.warmup)
            checked = check(config, work) if args.check else 0
            dets_per_batch = statistics.mean(len(b.objects) for b in work[args.warmup:])
            row = {"config": config, "interval": interval, "streams": args.streams, "batches": args.batches,
                   "detections_per_batch": round(dets_per_batch, 1),
                   "us_per_batch": round(statistics.median(means)),
                   "us_per_batch_repeats": [round(m) for m in means],
                   "us_per_detected_batch": round(statistics.median(detect_means)),
                   "us_per_skipped_batch": round(statistics.median(skip_means)) if skip_means else None,
                   **calls, "digest": digests.pop(),
                   "checked_against_per_stream": checked}
            rows.append(row)
            skipped = row["us_per_skipped_batch"]
            print(f"{config:8} {interval:>8} {dets_per_batch:>10.0f} {row['us_per_batch']:>9} "
                  f"{min(means):>6.0f}-{max(means):<6.0f} {row['us_per_detected_batch']:>8} "
                  f"{skipped if skipped is not None else '-':>8} {row['numpy_calls']:>11.0f} "
                  f"{row['python_calls']:>9.0f}  {row['digest']}")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"label": args.label, "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
                         "(shared with other work: µs vary, call counts do not)",
              "python": platform.python_version(), "numpy": np.__version__,
              "command": "python3 " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]), "rows": rows}
    out = Path(args.out)
    runs = json.loads(out.read_text()) if out.exists() else []
    runs = [r for r in runs if r.get("label") != args.label or not args.label] + [result]
    out.write_text(json.dumps(runs, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
