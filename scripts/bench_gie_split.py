#!/usr/bin/env python3
"""The GIE split, A/B in one process: the same config measured with ``DSRUN_GIE_SPLIT=0`` (every step of
the PGIE on its stage thread), ``1`` (pre-processing one batch ahead on a thread of its own) and ``2``
(the engine too, on another), in rotating order, so that a machine whose speed drifts between
minutes (shared cores, other tenants) weighs on every setting alike.

Configs are ``scripts/bench_streams.py``'s (same models, clip and INI):

* ``pgie``: its CPU section — the PGIE alone (DetectNet_v2-style ResNet-18, 480x272, FP32) on
  ``--sources`` copies of the clip's first 60 frames, batch = sources, ``interval=0``;
* ``cascade``: PGIE + IOU tracker + two ResNet-18 SGIE classifiers on every object, ``--interval``.

``--full`` takes bench_streams' GPU models and 1080p clip (``--clip`` and the generated models on a
machine without the asset packages), for the GPU machine.

    python3 scripts/bench_gie_split.py --rounds 4                       # this 2-core machine
    python3 scripts/bench_gie_split.py --full --clip bench_1080p.mp4 --sources 32 --configs cascade

Each row is one ``runner.bench.measure`` window (``--seconds`` after ``--warmup``, sources looping,
fakesink). Prints a table; writes JSON (``--out``) with the machine, date, command, every row and, per
config and setting, the median fps and each round's ratio to ``0`` measured in the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_streams import clip_head, generated_models, write_config  # noqa: E402
from runner.bench.capacity import machine  # noqa: E402
from runner.bench.measure import measure  # noqa: E402
from runner.bench.streams import replicate  # noqa: E402
from runner.config import load_app  # noqa: E402


def _configs(args, work: Path) -> dict[str, Path]:
    names = ("detectnet_r34", "classifier") if args.full else ("detectnet_small", "classifier_small")
    if args.clip:
        clip, models = Path(args.clip).resolve(), generated_models(names)
    else:
        from runner.assets import ensure_assets

        assets = ensure_assets(full=args.full)
        clip, models = assets.videos["bench_1080p" if args.full else "short"], {n: assets.models[n] for n in names}
    net, size = ((960, 544), (1920, 1080)) if args.full else ((480, 272), (640, 360))
    head = clip if args.full else clip_head(clip, 60, work / "head.mp4")  # bench_streams' CPU section
    out = {}
    for name in args.configs.split(","):
        folder = work / name
        folder.mkdir()
        cascade = name == "cascade"
        out[name] = write_config(folder, clip=head, sources=1, pgie=models[names[0]], sgie=models[names[1]],
                                 interval=args.interval if cascade else 0, batch=args.sources, size=size,
                                 net=net, classes=4, sgie_classes=6, cascade=cascade,
                                 network_mode=2 if args.full else 0)
    return out


def _row(config: Path, sources: int, split: str, args) -> dict:
    os.environ["DSRUN_GIE_SPLIT"] = split
    load = os.getloadavg()
    row = measure(replicate(load_app(config), sources), seconds=args.seconds, warmup=args.warmup, target_fps=0.0)
    util = row.get("utilisation") or {}
    others = None
    if util.get("cpu_busy_pct") is not None and util.get("process_cpu_cores") is not None:
        others = round(max(0.0, util["cpu_busy_pct"] / 100 * (os.cpu_count() or 1) - util["process_cpu_cores"]), 2)
    return {"split": int(split), "at": time.strftime("%H:%M:%S"), "load_average_at_start": [round(x, 2) for x in load],
            "aggregate_fps": row["aggregate_fps"], "process_cpu_cores": util.get("process_cpu_cores"),
            "other_processes_cores": others, "stages_busy_pct": {k: v["busy_pct"] for k, v in row["stages"].items()},
            "phases_ms_per_frame": row.get("phases_ms_per_frame"), "gpu_busy_pct": util.get("gpu_busy_pct"),
            "gpu_memory": row.get("gpu_memory"), "exit_code": row["exit_code"], "error": row["error"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="pgie,cascade", help="comma list: pgie, cascade")
    ap.add_argument("--sources", type=int, default=2, help="looping sources (and the batch)")
    ap.add_argument("--interval", type=int, default=1, help="the cascade's PGIE interval")
    ap.add_argument("--splits", default="0,1,2", help="DSRUN_GIE_SPLIT values to compare (the first is the base)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds per config (each: every setting once, "
                                                          "the order rotating)")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--full", action="store_true", help="bench_streams' GPU models and 1080p clip")
    ap.add_argument("--clip", help="this clip, models built from their recipes (no asset packages)")
    ap.add_argument("--out", default="bench_gie_split.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_gie_split_"))
    configs = _configs(args, work)
    result = {"what": "GIE split A/B (DSRUN_GIE_SPLIT=0 vs 1), alternating in one process",
              "date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": "python3 " + " ".join(sys.argv),
              "machine": machine(), "sources": args.sources, "rows": {}, "summary": {}}
    print(f"{'config':8s} {'round':>5s} {'split':>5s} {'fps':>8s} {'load':>5s} {'others':>6s}  GIE busy %, ms/frame")
    splits = args.splits.split(",")
    for name, config in configs.items():
        rows = result["rows"][name] = []
        for r in range(args.rounds):
            for split in splits[r % len(splits):] + splits[:r % len(splits)]:
                row = _row(config, args.sources, split, args)
                row["round"] = r
                rows.append(row)
                phases = row["phases_ms_per_frame"] or {}
                gie = phases.get("primary-gie", {})
                print(f"{name:8s} {r:5d} {split:>5s} {row['aggregate_fps']:8.1f} {row['load_average_at_start'][0]:5.2f} "
                      f"{row['other_processes_cores'] if row['other_processes_cores'] is not None else '-':>6} "
                      f" pgie {row['stages_busy_pct'].get('primary-gie', 0):.0f}%, "
                      + ", ".join(f"{k} {v:.2f}" for k, v in gie.items())
                      + (f"  ERROR {row['error']}" if row["error"] else ""), flush=True)
        fps = {sp: {x["round"]: x["aggregate_fps"] for x in rows if x["split"] == int(sp)} for sp in splits}
        base = fps[splits[0]]
        summary = result["summary"][name] = {}
        for sp in splits:
            values = list(fps[sp].values())
            ratios = [round(fps[sp][r] / base[r], 3) for r in fps[sp] if base.get(r)]
            summary[f"split{sp}"] = {"fps_median": statistics.median(values), "fps_range": [min(values), max(values)],
                                     f"over_split{splits[0]}_per_round": ratios,
                                     f"over_split{splits[0]}_median": statistics.median(ratios) if ratios else None}
            print(f"{name} DSRUN_GIE_SPLIT={sp}: median {statistics.median(values)} fps {[min(values), max(values)]}; "
                  f"/ split {splits[0]} per round {ratios}", flush=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
