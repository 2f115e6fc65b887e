#!/usr/bin/env python3
"""INT8 calibration memory: peak RSS of calibrating the int8 sample's detector (PP-OCRv4 det, 544x960,
entropy) on 5, 25 and 100 images — each count in a fresh process, so its peak is its own.

    python3 scripts/bench_calibration.py                      # 5, 25, 100 images; dsrun's calibration
    python3 scripts/bench_calibration.py --counts 5 --reference   # also ONNX Runtime's all-at-once calibrator

The images: the sample's 25 calibration frames (every 10th frame of bikes.mp4); 100 are every 2nd
frame of the same clip. ``--reference`` runs ONNX Runtime's calibrator on all the images at once (what
dsrun did before: every activation kept, ~0.8 GB per image), for the counts given. Prints a table and
writes JSON (``--json``, default out/bench_calibration.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DIMS = (3, 544, 960)  # samples/int8/config_infer_text_det_int8.txt: infer-dims


def _spec(model: Path, method: str):
    from runner.engine.spec import EngineSpec

    # as samples/int8/config_infer_text_det_int8.txt: BGR, (x - 127.5) / 127.5
    return EngineSpec(onnx_file=model, precision="int8", calib_method=method, model_color_format=1,
                      net_scale_factor=1 / 127.5, offsets=(127.5, 127.5, 127.5))


def _one(folder: Path, method: str, reference: bool) -> dict:
    """In this (fresh) process: calibrate on every image of ``folder``; peak RSS and time."""
    import contextlib
    import io

    from runner.assets import ensure_assets
    from runner.engine import calibration
    from runner.engine.progress import Progress

    model = ensure_assets(only=["models/ch_PP-OCRv4_det_infer.onnx"]).models["ppocr_det"]
    images = sorted(folder.glob("*.png"))
    spec = _spec(model, method)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        if reference:
            from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
            from onnxruntime.quantization.calibrate import create_calibrator

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.todo = list(images)

                def get_next(self):
                    return {"x": calibration.preprocess(self.todo.pop(0), DIMS, spec)[None]} if self.todo else None

            calibrator = create_calibrator(model, None, augmented_model_path=str(Path(work) / "aug.onnx"),
                                           calibrate_method=CalibrationMethod.Entropy,
                                           extra_options={"symmetric": True, "num_bins": 512, "num_quantized_bins": 128})
            with contextlib.redirect_stdout(io.StringIO()):
                calibrator.collect_data(Reader())
                tensors = len(calibrator.compute_data().data)
        else:
            tensors = len(calibration.collect_ranges(model, "x", DIMS, 1, spec, images, Path(work), Progress()))
    return {"images": len(images), "calibrator": "onnxruntime all-at-once" if reference else "dsrun streamed",
            "method": method, "tensors": tensors, "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _image_folders(root: Path, counts: list[int]) -> dict[int, Path]:
    """``count`` → a folder of that many PNG frames: the sample's 25, or frames of bikes.mp4."""
    import av
    import cv2

    from runner.assets import ensure_assets

    assets = ensure_assets(only=["calib/bikes", "videos/bikes.mp4"])
    calib = sorted(assets.calib_dir.glob("*.png"))
    folders = {}
    for n in counts:
        folder = root / f"images_{n}"
        folder.mkdir()
        if n <= len(calib):
            for p in calib[:n]:
                (folder / p.name).write_bytes(p.read_bytes())
        else:
            step = max(1, 250 // n)
            with av.open(str(assets.videos["bikes"])) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i % step == 0 and len(list(folder.iterdir())) < n:
                        cv2.imwrite(str(folder / f"{i:03d}.png"), frame.to_ndarray(format="bgr24"))
        folders[n] = folder
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="5,25,100", help="image counts (default 5,25,100)")
    parser.add_argument("--method", default="entropy", choices=("entropy", "percentile"))
    parser.add_argument("--reference", action="store_true", help="also ONNX Runtime's all-at-once calibrator")
    parser.add_argument("--json", type=Path, default=REPO / "out" / "bench_calibration.json")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child: this folder, JSON on stdout
    parser.add_argument("--as-reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_one(args.one, args.method, args.as_reference)))
        return 0
    counts = [int(c) for c in args.counts.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = _image_folders(Path(tmp), counts)
        for n in counts:
            for reference in ([False, True] if args.reference else [False]):
                cmd = [sys.executable, __file__, "--one", str(folders[n]), "--method", args.method]
                done = subprocess.run(cmd + (["--as-reference"] if reference else []), capture_output=True, text=True)
                if done.returncode != 0:
                    rows.append({"images": n, "calibrator": "onnxruntime all-at-once" if reference else "dsrun streamed",
                                 "error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]})
                else:
                    rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                row = rows[-1]
                print(f"{row['images']:>6}  {row['calibrator']:<26} {row.get('peak_rss_mb', '-'):>10} MB "
                      f"{row.get('seconds', '-'):>8} s  {row.get('error', '')}", flush=True)
    print(f"\n{'images':>6}  {'calibrator':<26} {'peak RSS':>13} {'time':>10}")
    for row in rows:
        print(f"{row['images']:>6}  {row['calibrator']:<26} {row.get('peak_rss_mb', '-'):>10} MB "
              f"{row.get('seconds', '-'):>8} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": "PP-OCRv4 det (samples/int8)", "dims": DIMS, "method": args.method,
                                     "machine": platform.processor() or platform.machine(),
                                     "python": platform.python_version(), "rows": rows}, indent=1) + "\n")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
