#!/usr/bin/env python3
"""Generate a model of a real architecture with seeded random weights (runner/assets/models.py).

    python3 scripts/make_models.py --all                      # every generated model, full sizes too
    python3 scripts/make_models.py detectnet_v2 --depth 34 --size 544x960 --classes 4 -o det.onnx
    python3 scripts/make_models.py yolov8 --depth 1 --size 640x640 --classes 80 -o yolov8s.onnx
    python3 scripts/make_models.py resnet_classifier --width 0.25 --size 224x224 --classes 6 -o cls.onnx

--all puts them under the assets root and records them in its manifest; one model goes where -o says.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.assets import AssetError, ensure_assets  # noqa: E402
from runner.assets.models import ARCHS, DetectorArgs, build_model  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arch", nargs="?", choices=sorted(ARCHS))
    parser.add_argument("--all", action="store_true", help="build every generated asset (full sizes too)")
    parser.add_argument("--depth", type=int, default=18, help="ResNet depth 18|34; YOLOv8 scale 0=n 1=s 2=m")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0 = published)")
    parser.add_argument("--size", type=_size, default=(544, 960), metavar="HxW")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    if args.all:
        try:
            assets = ensure_assets(full=True, log=print)
        except AssetError as error:
            print(f"make_models: {error}", file=sys.stderr)
            return error.exit_code
        for name, path in sorted(assets.models.items()):
            print(f"{name:18} {path}")
        return 0
    if not args.arch or not args.output:
        parser.error("give an architecture and -o OUTPUT, or --all")
    import onnx

    started = time.perf_counter()
    model = build_model(args.arch, DetectorArgs(depth=args.depth, width=args.width, height=args.size[0],
                                                width_px=args.size[1], classes=args.classes, seed=args.seed))
    onnx.save(model, str(args.output))
    ios = [f"{v.name}{[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]}"
           for v in (*model.graph.input, *model.graph.output)]
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB, "
          f"{time.perf_counter() - started:.1f} s): {' -> '.join(ios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
