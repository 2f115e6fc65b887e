#!/usr/bin/env python3
"""How many 1080p30 streams does dsrun keep at >= 30 fps, and what bounds it?

One run measures, side by side on the same clip (assets' bench_1080p, real footage, H.264):

1. the decode ceiling: N decoders with nothing after them (NVDEC on a GPU, FFmpeg threads otherwise);
2. the PGIE engine alone at the pipeline's batch size (img/s);
3. the full pipeline — PGIE DetectNet_v2/ResNet-34 960x544 + IOU tracker + two ResNet-18 SGIE
   classifiers on the detected objects, fakesink, no OSD — from an app config generated in
   DeepStream's own INI format, for PGIE ``interval=1`` and ``interval=0``, ramping the number of
   sources; the largest N whose every source keeps >= 30 fps;
4. single-stream latency (streammux entry → metadata out), p50/p95;
5. a naive per-frame loop (PyAV decode → ONNX Runtime → DetectNet parse + NMS in Python) against
   dsrun on the same model and video, on this machine's CPU.

    python3 scripts/bench_streams.py                 # GPU machine: the full figures
    python3 scripts/bench_streams.py --small         # any machine: small models, a short ramp

Prints a table and writes JSON (``--out``, default bench_streams.json).
"""

from __future__ import annotations

import argparse
import json
import os
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

from runner.assets import ensure_assets  # noqa: E402
from runner.bench.capacity import HEADER, machine, print_row, run_count, search  # noqa: E402
from runner.bench.ceilings import decode_ceiling, engine_alone  # noqa: E402
from runner.bench.measure import measure  # noqa: E402
from runner.bench.streams import replicate  # noqa: E402
from runner.bench.utilisation import Utilisation, bound  # noqa: E402
from runner.config import load_app  # noqa: E402

TRACKER_YAML = """%YAML:1.0
BaseConfig:
  minDetectorConfidence: 0.0
TargetManagement:
  maxTargetsPerStream: 150
  minIouDiff4NewTarget: 0.5
  probationAge: 1
  maxShadowTrackingAge: 3
  earlyTerminationAge: 1
DataAssociator:
  associationMatcherType: 0
  checkClassMatch: 1
  minMatchingScore4Overall: 0.0
  minMatchingScore4SizeSimilarity: 0.0
  minMatchingScore4Iou: 0.1
"""


def write_config(folder: Path, *, clip: Path, sources: int, pgie: Path, sgie: Path, interval: int,
                 batch: int, size: tuple[int, int], net: tuple[int, int], classes: int,
                 sgie_classes: int, cascade: bool = True, network_mode: int = 2, topk: int = 3) -> Path:
    """A deepstream-app config (DeepStream's INI) for ``sources`` copies of ``clip``; without
    ``cascade`` only the PGIE runs (no tracker, no SGIEs)."""
    width, height = size
    net_w, net_h = net
    (folder / "labels_pgie.txt").write_text("\n".join(f"class{i}" for i in range(classes)) + "\n")
    (folder / "labels_sgie.txt").write_text(";".join(f"attr{i}" for i in range(sgie_classes)) + "\n")
    (folder / "tracker_iou.yml").write_text(TRACKER_YAML)
    (folder / "pgie.txt").write_text(f"""[property]
gpu-id=0
net-scale-factor=0.00392156862745098
onnx-file={pgie}
labelfile-path=labels_pgie.txt
batch-size={batch}
network-mode={network_mode}
num-detected-classes={classes}
infer-dims=3;{net_h};{net_w}
interval={interval}
gie-unique-id=1
output-blob-names=output_cov/Sigmoid:0;output_bbox/BiasAdd:0
cluster-mode=2

[class-attrs-all]
pre-cluster-threshold=0.3
nms-iou-threshold=0.5
topk={topk}
""")
    for i in (2, 3):
        (folder / f"sgie{i}.txt").write_text(f"""[property]
gpu-id=0
net-scale-factor=0.00392156862745098
onnx-file={sgie}
labelfile-path=labels_sgie.txt
batch-size={batch * 2}
network-mode=2
network-type=1
process-mode=2
gie-unique-id={i}
operate-on-gie-id=1
classifier-threshold=0.2
""")
    (folder / "app.txt").write_text(f"""[application]
enable-perf-measurement=0

[source0]
enable=1
type=3
uri=file://{clip}
num-sources={sources}

[streammux]
batch-size={batch}
batched-push-timeout=40000
width={width}
height={height}
live-source=0

[primary-gie]
enable=1
config-file=pgie.txt
batch-size={batch}
interval={interval}
gie-unique-id=1

[tracker]
enable={int(cascade)}
tracker-width=640
tracker-height=384
ll-lib-file=/opt/nvidia/deepstream/deepstream/lib/libnvds_nvmultiobjecttracker.so
ll-config-file=tracker_iou.yml

[secondary-gie0]
enable={int(cascade)}
config-file=sgie2.txt
gie-unique-id=2
operate-on-gie-id=1

[secondary-gie1]
enable={int(cascade)}
config-file=sgie3.txt
gie-unique-id=3
operate-on-gie-id=1

[osd]
enable=0

[tiled-display]
enable=0

[sink0]
enable=1
type=1
sync=0
""")
    return folder / "app.txt"


def generated_models(names) -> dict[str, Path]:
    """The asset catalog's generated models, built here from their recipes (seeded, no download)."""
    from runner.assets.catalog import SPECS

    root = Path(tempfile.gettempdir()) / "dsrun_bench_models"
    out = {}
    for spec in SPECS:
        if spec.name in names:
            path = root / spec.file
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                spec.build(root, path)
            out[spec.name] = path
    return out


# -- 3. the pipeline -------------------------------------------------------------------------------

def release_gpu_memory() -> None:
    """Hand this process's cached GPU memory back (the --workers ramps' processes need it)."""
    import gc

    gc.collect()
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        sys.modules["torch"].cuda.empty_cache()


def with_utilisation(run):
    """``run(n)`` with the GPU / NVDEC / CPU utilisation while frames flowed and the bound it shows
    (for the --workers rows, which come from ``dsrun run --report``, not from ``dsrun bench``)."""
    def wrapped(n):
        with Utilisation() as util:
            row = run(n)
        row["utilisation"] = util.summary(row.get("wall_start", 0.0), row.get("wall_end", time.time()))
        row["bound"] = bound(row["utilisation"], row.get("stages_busy_pct"))
        row["held"] = row["min_source_fps"] >= 30 and row["exit_code"] == 0
        return print_row(row)
    return wrapped


def run_workers(config: Path, workers: int) -> dict:
    """``dsrun CONFIG --workers N --report`` as a user runs it; the row from its report. Children
    start together (each waits for the parent's start), so the aggregate is frames over the span
    from the first frame out to the last."""
    report_path = config.parent / f"report_w{workers}.json"
    cmd = [sys.executable, "-m", "runner", "run", str(config), "--no-dashboard", "--workers", str(workers),
           "--report", str(report_path)]  # the default engine cache: engines the ramps above built
    launched = time.time()
    done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not report_path.is_file():
        return {"sources": 0, "workers": workers, "exit_code": done.returncode, "frames": 0,
                "min_source_fps": 0.0, "aggregate_fps": 0.0, "stages": {}, "busiest_stage": None,
                "error": done.stderr[-600:]}
    report = json.loads(report_path.read_text())
    sources = report["sources"]
    frames = sum(s["frames_processed"] for s in sources)
    firsts = [s["first_output_s"] for s in sources if s["first_output_s"] is not None]
    lasts = [s["last_output_s"] for s in sources if s["last_output_s"] is not None]
    span = (max(lasts) - min(firsts)) if firsts and lasts else 0.0
    processed = max(frames, 1)
    stages = {k: {"busy_pct": round(100 * v["busy_s"] / max(span * workers, 1e-9), 1),  # mean over workers
                  "ms_per_frame": round(1000 * v["busy_s"] / processed, 3)} for k, v in report["stages"].items()}
    return {"sources": len(sources), "workers": workers, "exit_code": report["exit_code"], "frames": frames,
            "stages": stages, "stages_busy_pct": {k: v["busy_pct"] for k, v in stages.items()},
            "busiest_stage": max(stages, key=lambda k: stages[k]["busy_pct"], default=None),
            "min_source_fps": round(min(s["fps"] for s in sources), 1) if sources else 0.0,
            "aggregate_fps": round(frames / span, 1) if span > 0 else 0.0,
            "first_output_spread_s": round(max(firsts) - min(firsts), 2) if firsts else None,
            "wall_start": launched + min(firsts, default=0.0), "wall_end": launched + max(lasts, default=0.0),
            "error": "; ".join(report["errors"])[:600] or None}


def start_mps() -> bool:
    """Start the CUDA MPS control daemon when the machine has it (processes then share the GPU's
    SMs at once instead of taking turns); False when it is not there or will not start."""
    try:
        done = subprocess.run(["nvidia-cuda-mps-control", "-d"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def stop_mps() -> None:
    try:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass


# -- 5. naive loop ---------------------------------------------------------------------------------

def naive_loop(clip: Path, model: Path, net: tuple[int, int], classes: int, frames: int) -> dict:
    """What a first script does: one frame at a time, Python loops over grid cells and boxes."""
    import av
    import cv2
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    w, h = net
    n, objects, t0 = 0, 0, time.perf_counter()
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            if n >= frames:
                break
            img = cv2.resize(frame.to_ndarray(format="rgb24"), (w, h))
            x = (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
            cov, bbox = session.run(None, {name: x})
            boxes = []
            for c in range(classes):
                for gy in range(cov.shape[2]):
                    for gx in range(cov.shape[3]):
                        score = cov[0, c, gy, gx]
                        if score < 0.3:
                            continue
                        cx, cy = gx * 16 + 0.5, gy * 16 + 0.5
                        o = bbox[0, 4 * c:4 * c + 4, gy, gx] * 35.0
                        boxes.append((c, score, cx - o[0], cy - o[1], cx + o[2], cy + o[3]))
            boxes.sort(key=lambda b: -b[1])
            kept = []
            for b in boxes:  # greedy NMS in Python
                if all(b[0] != k[0] or _iou(b, k) < 0.5 for k in kept):
                    kept.append(b)
            objects += len(kept)
            n += 1
    dt = time.perf_counter() - t0
    return {"frames": n, "fps": round(n / dt, 2), "objects": objects}


def clip_head(clip: Path, frames: int, out: Path) -> Path:
    """The first ``frames`` frames of ``clip``, remuxed (no re-encode) into ``out``."""
    import av

    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        n = 0
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            if n >= frames and packet.is_keyframe:
                break
            packet.stream = copy
            dst.mux(packet)
            n += 1
    return out


def _iou(a, b) -> float:
    ix = max(0.0, min(a[4], b[4]) - max(a[2], b[2]))
    iy = max(0.0, min(a[5], b[5]) - max(a[3], b[3]))
    inter = ix * iy
    union = (a[4] - a[2]) * (a[5] - a[3]) + (b[4] - b[2]) * (b[5] - b[3]) - inter
    return inter / union if union > 0 else 0.0


# -- main ------------------------------------------------------------------------------------------

def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="small models and a short ramp (CPU)")
    ap.add_argument("--streams", default=None, help="source counts to try, e.g. 8,32,64,96,110,128")
    ap.add_argument("--intervals", default="1,0")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--naive-frames", type=int, default=60)
    ap.add_argument("--backends", default="auto", help="engine section: e.g. torch,onnxruntime")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: decode,engine,pipeline,latency,naive")
    ap.add_argument("--clip", help="use this clip and build the generated models from their recipes "
                                   "(for a machine that cannot fetch the asset packages)")
    ap.add_argument("--workers", default="", help="also ramp through `dsrun --workers N` for each N "
                                                   "listed, e.g. 4,8")
    ap.add_argument("--worker-streams", default=None, help="source counts for the --workers ramps "
                                                           "(default: --streams)")
    ap.add_argument("--decode-streams", type=int, default=0, help="sources for the decode ceiling "
                                                                   "(default: the most any ramp runs)")
    ap.add_argument("--mps", action="store_true", help="start CUDA MPS for the --workers ramps when the "
                                                       "machine has it")
    ap.add_argument("--topk", type=int, default=3, help="PGIE objects kept per class and frame")
    ap.add_argument("--profile-streams", type=int, default=0, help="one more one-process count per interval "
                                                                  "under the torch profiler (tables beside --out)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window per count (dsrun bench)")
    ap.add_argument("--warmup", type=float, default=3.0, help="warm-up per count (dsrun bench)")
    ap.add_argument("--out", default="bench_streams.json")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    gpu = gpu_name()
    names = ("detectnet_small", "classifier_small") if args.small else ("detectnet_r34", "classifier")
    if args.clip:  # a machine without the network (the GPU machine): models from their recipes
        clip, models = Path(args.clip).resolve(), generated_models(names)
    else:
        assets = ensure_assets(full=not args.small)
        clip = assets.videos["short" if args.small else "bench_1080p"]
        models = {n: assets.models[n] for n in names}
    pgie, sgie = models[names[0]], models[names[1]]
    if args.small:
        net, size, counts, batch = (480, 272), (640, 360), [1, 2, 4], args.batch or 4
    else:
        net, size, batch = (960, 544), (1920, 1080), args.batch or 32
        counts = [1, 16, 32, 64, 96, 110, 128]
    if args.streams:
        counts = [int(s) for s in args.streams.split(",") if int(s) > 0]  # 0: no one-process ramp
    work = Path(tempfile.mkdtemp(prefix="bench_streams_"))
    result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": " ".join(sys.argv), "machine": machine(),
              "gpu": gpu or None, "cpu_cores": os.cpu_count(), "python": platform.python_version(), "clip": clip.name, "pgie": pgie.name, "sgie": sgie.name,
              "batch": batch, "decode": [], "pipeline": {}}

    def make(n, interval, tag=""):
        folder = work / f"{tag}i{interval}_n{n}"
        folder.mkdir(exist_ok=True)
        return write_config(folder, clip=clip, sources=n, pgie=pgie, sgie=sgie, interval=interval,
                            batch=min(batch, max(n, 1)), size=size, net=net, classes=4, sgie_classes=6,
                            topk=args.topk)

    if "decode" not in skip:
        n_dec = args.decode_streams or max(counts + [int(c) for c in (args.worker_streams or "").split(",") if c])
        print(f"decode ceiling, {n_dec} sources:", flush=True)
        for use_gpu in ([True, False] if gpu else [False]):
            row = decode_ceiling(clip.as_uri(), n_dec if use_gpu else min(n_dec, os.cpu_count() or 2), gpu=use_gpu)
            result["decode"].append(row)
            release_gpu_memory()
            print(f"  {row['decoder']:7s} {row['sources']:4d} sources: {row['fps']:8.1f} fps", flush=True)
    if "engine" not in skip:
        result["engine"] = []
        for backend in args.backends.split(","):
            try:
                e = engine_alone(load_app(make(batch, 0)).primary_gie, batch,
                                 backend=None if backend == "auto" else backend)
            except Exception as exc:  # e.g. no CUDA EP in this onnxruntime: say so, go on
                e = {"backend": backend, "error": f"{type(exc).__name__}: {exc}"[:300]}
            result["engine"].append(e)
            release_gpu_memory()
            print(f"PGIE engine alone, batch {batch}: {e}", flush=True)
    if args.mps and args.workers:
        result["mps"] = start_mps()
        print(f"CUDA MPS: {'started' if result['mps'] else 'not available'}", flush=True)
    if "pipeline" not in skip:
        for interval in (int(i) for i in args.intervals.split(",")):
            if counts:
                print(f"pipeline, PGIE interval={interval}: dsrun bench (one process)", flush=True)
                print(HEADER, flush=True)
                config = make(batch, interval, "bench_")  # `dsrun bench` replicates its source N times
                rows = search(lambda n: print_row(run_count(config, n, fps=30.0, batch=batch, seconds=args.seconds,
                                                            warmup=args.warmup, debug=True)), counts=counts)
                result["pipeline"][f"interval{interval}"] = {
                    "rows": rows, "max_streams_at_30fps": max((r["sources"] for r in rows if r["held"]), default=0)}
            if args.profile_streams:
                table = Path(args.out).with_name(f"profile_i{interval}_n{args.profile_streams}.txt")
                row = print_row(run_count(make(batch, interval, "bench_"), args.profile_streams, fps=30.0, batch=batch,
                                          seconds=min(args.seconds, 5.0), warmup=args.warmup, debug=True,
                                          profile=table.resolve()))
                result["pipeline"][f"interval{interval}_profiled"] = {"row": row, "table": table.name}
            for n_workers in (int(w) for w in args.workers.split(",") if w):
                wcounts = [int(c) for c in args.worker_streams.split(",")] if args.worker_streams else counts
                print(f"pipeline, PGIE interval={interval}, dsrun --workers {n_workers}"
                      f"{' (MPS)' if result.get('mps') else ''}:", flush=True)
                print(HEADER, flush=True)
                run = with_utilisation(lambda n: run_workers(make(n, interval, f"w{n_workers}_"), n_workers))
                rows = search(run, counts=wcounts)
                result["pipeline"][f"interval{interval}_workers{n_workers}"] = {
                    "rows": rows, "max_streams_at_30fps": max((r["sources"] for r in rows if r["held"]), default=0)}
    if "latency" not in skip:
        result["latency"] = latency(make(1, 0))
        print(f"latency, 1 source: p50 {result['latency']['p50_ms']} ms, p95 {result['latency']['p95_ms']} ms")
    if "naive" not in skip:
        head = clip_head(clip, args.naive_frames, work / "head.mp4")
        naive = naive_loop(head, pgie, net, 4, args.naive_frames)
        n_cpu = max(2, min(8, (os.cpu_count() or 2) // 2))  # dsrun batches streams: at least two
        folder = work / "cpu"
        folder.mkdir()
        os.environ["DSRUN_DEVICE"] = "cpu"
        try:  # the same model and clip, PGIE only, on the CPU; the engine alone at the same batch
            cpu_app = load_app(write_config(folder, clip=head, sources=1, pgie=pgie, sgie=sgie, interval=0,
                                            batch=n_cpu, size=size, net=net, classes=4, sgie_classes=6,
                                            cascade=False, network_mode=0))
            dsrun_cpu = measure(replicate(cpu_app, n_cpu), seconds=args.seconds, warmup=args.warmup, target_fps=0.0)
            engine_cpu = engine_alone(cpu_app.primary_gie, n_cpu, seconds=args.seconds)
        finally:
            os.environ.pop("DSRUN_DEVICE")
        result["cpu_vs_naive"] = {
            "naive": naive, "dsrun": dsrun_cpu, "engine_alone": engine_cpu, "sources": n_cpu,
            "speedup": round(dsrun_cpu["aggregate_fps"] / max(naive["fps"], 1e-9), 2),
            "share_of_engine": round(dsrun_cpu["aggregate_fps"] / max(engine_cpu["img_per_s"], 1e-9), 3)}
        print(f"CPU, same model and clip: naive per-frame loop {naive['fps']} fps; engine alone at batch {n_cpu} "
              f"{engine_cpu['img_per_s']} img/s; dsrun {n_cpu} sources {dsrun_cpu['aggregate_fps']} fps "
              f"({result['cpu_vs_naive']['speedup']}x the naive loop, "
              f"{100 * result['cpu_vs_naive']['share_of_engine']:.0f}% of the engine alone)", flush=True)

    if result.get("mps"):
        stop_mps()
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


def latency(config: Path) -> dict:
    """Per-frame time from streammux entry to leaving the last stage: one source fed at 30 fps (the
    file reader is paced like a camera, so frames do not queue behind each other), batch 1."""
    from runner.config import load_app
    from runner.engine.prepare import prepare_engines
    from runner.pipeline.graph import build_graph
    from runner.pipeline.stats import RunStats

    class Latency:
        name = "latency"

        def __init__(self):
            self.ms = []

        def process(self, batch):
            now = time.time_ns()
            self.ms.extend(((now - batch.ntp_ts) / 1e6).tolist())
            return batch

        def close(self):
            pass

    app = load_app(config)
    stats = RunStats()
    sink = Latency()
    graph = build_graph(app, stats, engines=prepare_engines(app, stats=stats), sinks=[sink])
    put, start = graph.inputs.put, time.monotonic()
    frame = [0]

    def paced(*a, **k):  # a 30 fps camera: frame i is available at i/30 s, not as fast as decoding
        frame[0] += 1
        time.sleep(max(0.0, start + frame[0] / 30.0 - time.monotonic()))
        return put(*a, **k)

    graph.inputs.put = paced
    graph.run()
    ms = sorted(sink.ms[10:]) or [0.0]  # after warm-up
    return {"frames": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}


if __name__ == "__main__":
    raise SystemExit(main())
