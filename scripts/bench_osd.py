"""OSD and tiler cost per frame on real 1080p frames: prints a table and writes JSON.

    python3 scripts/bench_osd.py [--frames 30] [--json out/bench_osd.json]

Cases: boxes only (0/10/50/200 objects, 3 px borders), boxes + labels (text on a background),
a segmentation mask blended over the frame, and a 4-source 2x2 tiler at 1920x1080 followed by the
OSD on the tiled image. Frames are decoded from the assets' 1080p clip when prepared, else from a
clip encoded on the spot.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.pipeline.batch import Batch, Objects  # noqa: E402
from runner.pipeline.osd import OsdStage  # noqa: E402
from runner.pipeline.tiler import TilerStage  # noqa: E402

W, H = 1920, 1080


def frames_1080p(n: int) -> np.ndarray:
    import av
    import cv2

    path = None
    try:
        from runner.assets import ensure_assets

        path = ensure_assets().videos.get("bench_1080p")
    except Exception:
        pass
    if path is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from outputs_support import clip_path

        path = clip_path()
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(cv2.resize(frame.to_ndarray(format="rgb24"), (W, H)))
            if len(out) == n:
                break
    return np.stack(out)


def objects(n: int, rng) -> Objects:
    xy = rng.uniform(0, [W - 200, H - 200], (n, 2))
    wh = rng.uniform(30, 200, (n, 2))
    return Objects.from_columns(frame=np.zeros(n, int), gie_id=1, class_id=rng.integers(0, 4, n),
                                confidence=rng.uniform(0.3, 1, n), xyxy=np.hstack([xy, xy + wh]),
                                track_id=rng.integers(0, 1000, n))


def osd_config(**over):
    base = dict(border_width=3, text_size=15, text_color=(1, 1, 1, 1), text_bg_color=(0.3, 0.3, 0.3, 1),
                font="Serif", display_text=0, display_bbox=1, display_mask=0)
    base.update(over)
    return SimpleNamespace(**base)


def batch_of(frame, objs, sources=1) -> Batch:
    return Batch(frames=frame, source_id=np.arange(sources, dtype=np.int32), frame_num=np.zeros(sources, int),
                 pts=np.zeros(sources, int), ntp_ts=np.zeros(sources, int),
                 source_size=np.tile([[W, H]], (sources, 1)), objects=objs)


def time_stage(make_batch, stage, reps: int) -> float:
    """Median ms per call of stage.process on fresh batches (batch building not timed)."""
    times = []
    for k in range(reps):
        b = make_batch(k)
        t0 = time.perf_counter()
        stage.process(b)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--json", default="out/bench_osd.json")
    args = ap.parse_args()
    frames = frames_1080p(min(args.frames, 30))
    rng = np.random.default_rng(0)
    labels = {1: ["car", "bicycle", "person", "roadsign"]}
    rows = []

    def run(case, n, stage, sources=1, masks=False):
        objs = [objects(n, rng) for _ in range(args.frames)]

        def make(k):
            f = frames[(k + np.arange(sources)) % len(frames)].copy()
            b = batch_of(f, objs[k], sources)
            if masks:
                b.masks = {2: np.where(rng.random((1, 270, 480)) < 0.3, 1, -1).astype(np.int32)}
            return b
        ms = time_stage(make, stage, args.frames)
        rows.append({"case": case, "objects": n, "ms_per_frame": round(ms, 3)})

    for n in (0, 10, 50, 200):
        run("boxes", n, OsdStage(osd_config(), labels=labels))
    for n in (10, 50, 200):
        run("boxes+labels", n, OsdStage(osd_config(display_text=1), labels=labels))
    run("mask (480x270 class map)", 0, OsdStage(osd_config(display_mask=1)), masks=True)
    tiler_cfg = SimpleNamespace(enable=1, rows=2, columns=2, width=W, height=H)
    run("tiler 4x1080p -> 1080p", 0, TilerStage(tiler_cfg, num_sources=4), sources=4)
    tiler = TilerStage(tiler_cfg, num_sources=4)
    osd = OsdStage(osd_config(), tiled_display=tiler_cfg, num_sources=4)

    class Both:
        def process(self, b):
            return osd.process(tiler.process(b))
    run("tiler + boxes on tiled", 50, Both(), sources=4)

    print(f"{'case':<28}{'objects':>8}{'ms/frame':>10}")
    for r in rows:
        print(f"{r['case']:<28}{r['objects']:>8}{r['ms_per_frame']:>10.2f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"frame": [W, H], "reps": args.frames, "machine": platform.processor() or
                               platform.machine(), "results": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
