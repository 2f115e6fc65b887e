"""``dsrun bench CONFIG``: how many copies of a config's streams this machine holds at their rate.

    $ dsrun bench deepstream_app_config.txt                  # ramp 1, 2, 4, ... then narrow down
    $ dsrun bench app.txt --clip street.mp4 --fps 25 --streams 8,16,24 --json capacity.json

Each source count N runs in a process of its own (``dsrun bench CONFIG --one N``: GPU memory and
threads start clean, and a crash is a row of the table, not the end of the bench) on the config with
its sources replicated N times (:func:`runner.bench.streams.replicate`). A count is *held* when every
source keeps at least the target rate (``--fps``, default the first source's own rate) over the
measured window. Without ``--streams`` the counts double from 1 until one is not held (or
``--max-streams``), then bisect between the last held and the first not held.

The table names, per count, the busiest stage and the bound shown by the measured utilisation
(:func:`runner.bench.utilisation.bound`). JSON (``--json``) holds every row. Exit status 0 when at least
one stream is held, 1 when even one cannot be, 2 for a config or command-line error.
"""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner.bench.streams import BenchError, replicate, source_rate

EXIT_HELD, EXIT_NOT_HELD = 0, 1


def run_bench(args) -> int:
    """The ``bench`` command (``args`` from ``runner.cli``)."""
    from runner.config import load_app

    app = load_app(args.config)  # a config error ends here, before any child runs (exit 2)
    if args.clip is not None and not Path(args.clip).is_file():
        raise BenchError(f"--clip {args.clip}: no such file — give a video file")
    fps, fps_from = (args.fps, "--fps") if args.fps else source_rate(app, args.clip)
    if args.one is not None:  # a child: one count, one JSON line on stdout
        from runner.bench.measure import measure

        bench_app = replicate(app, args.one, clip=args.clip, batch=args.batch, interval=args.interval)
        row = measure(bench_app, seconds=args.seconds, warmup=args.warmup, target_fps=fps,
                      engine_dir=args.engine_dir, profile=args.profile)
        print(json.dumps(row), flush=True)
        return EXIT_HELD
    print(f"dsrun bench {args.config}: target {fps:g} fps per source ({fps_from}); "
          f"{args.warmup:g} s warm-up, {args.seconds:g} s measured per count", flush=True)
    print(HEADER, flush=True)
    options = dict(fps=fps, seconds=args.seconds, warmup=args.warmup, clip=args.clip, batch=args.batch,
                   interval=args.interval, engine_dir=args.engine_dir, debug=bool(getattr(args, "debug", False)))
    run = lambda n: print_row(run_count(args.config, n, **options))  # noqa: E731
    rows = search(run, counts=_counts(args.streams), max_streams=args.max_streams)
    held = [r["sources"] for r in rows if r["held"]]
    best = max(held, default=0)
    first_short = min((r for r in rows if not r["held"] and r["sources"] > best),
                      key=lambda r: r["sources"], default=None)
    result = {"command": _command_line(args),
              "config": str(args.config), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
              "machine": machine(), "target_fps": fps, "target_from": fps_from,
              "max_streams_held": best, "rows": rows,
              "bound": first_short["bound"] if first_short else None}
    if args.ceilings:
        from runner.bench.ceilings import ceilings

        top = max((r["sources"] for r in rows), default=1)
        result["ceilings"] = ceilings(app, top, clip=args.clip, batch=args.batch)
        for name, value in result["ceilings"].items():
            print(f"{name}: {value}", flush=True)
    if first_short is not None:
        print(f"{best} stream(s) held at >= {fps:g} fps each; at {first_short['sources']}: "
              f"{first_short['min_source_fps']:g} fps on the slowest source, bound: {first_short['bound']}")
    else:
        print(f"{best} stream(s) held at >= {fps:g} fps each (every count tried was held)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return EXIT_HELD if best >= 1 else EXIT_NOT_HELD


def search(run, *, counts: list[int] | None = None, max_streams: int = 64) -> list[dict]:
    """Rows of ``run(n)`` (each with ``held``), by source count.

    With ``counts``: each in turn, stopping after the first count above the best held one that is not
    held. Without: 1, 2, 4, ... up to ``max_streams`` until one is not held, then bisection down to a
    gap of an eighth of the best held count.

    >>> seen = []
    >>> rows = search(lambda n: seen.append(n) or {"sources": n, "held": n <= 13}, max_streams=64)
    >>> seen, max(r["sources"] for r in rows if r["held"])
    ([1, 2, 4, 8, 16, 12, 14, 13], 13)
    """
    rows: dict[int, dict] = {}

    def at(n: int) -> dict:
        if n not in rows:
            rows[n] = run(n)
        return rows[n]

    if counts:
        best = 0
        for n in counts:
            if at(n)["held"]:
                best = max(best, n)
            elif n > best:
                break
        return [rows[n] for n in sorted(rows)]
    good, bad, n = 0, None, 1
    while n <= max_streams:
        if not at(n)["held"]:
            bad = n
            break
        good = n
        n = n * 2 if n * 2 <= max_streams or n == max_streams else max_streams
    while bad is not None and bad - good > max(1, good // 8):
        mid = (good + bad) // 2
        if at(mid)["held"]:
            good = mid
        else:
            bad = mid
    return [rows[n] for n in sorted(rows)]


def _command_line(args) -> str:
    """The ``dsrun bench`` command these rows answer (for the JSON), from the parsed options."""
    words = ["dsrun", "bench", str(args.config)]
    for flag in ("clip", "fps", "streams", "max_streams", "batch", "interval", "seconds", "warmup", "json"):
        value = getattr(args, flag, None)
        if value is not None:
            words += [f"--{flag.replace('_', '-')}", str(value)]
    return " ".join(words) + (" --ceilings" if args.ceilings else "")


def _counts(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise BenchError(f"--streams {text}: expected source counts of at least 1, e.g. --streams 1,8,16")
    return counts


def run_count(config, n: int, *, fps: float, seconds: float = 10.0, warmup: float = 3.0, clip=None,
              batch: int | None = None, interval: int | None = None, engine_dir=None, debug: bool = False,
              env: dict | None = None, profile=None) -> dict:
    """``dsrun bench CONFIG --one n`` in a process of its own: its row, or a row saying how it ended
    (a child killed by a signal, e.g. SIGABRT, is a row with the end of its stderr)."""
    cmd = [sys.executable, "-m", "runner"] + (["--debug"] if debug else [])
    cmd += ["bench", str(config), "--one", str(n), "--fps", str(fps), "--seconds", str(seconds),
            "--warmup", str(warmup)]
    for flag, value in (("--clip", clip), ("--batch", batch), ("--interval", interval), ("--engine-dir", engine_dir),
                        ("--profile", profile)):
        if value is not None:
            cmd += [flag, str(value)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        how = (f"killed by signal {-done.returncode} ({signal.Signals(-done.returncode).name})"
               if done.returncode < 0 else f"exit {done.returncode}")
        tail = done.stderr.strip()[-6000 if done.returncode < 0 else -1500:]  # a crash: the threads' stacks
        return {"sources": n, "held": False, "exit_code": done.returncode, "min_source_fps": 0.0,
                "mean_source_fps": 0.0, "aggregate_fps": 0.0, "stages": {}, "busiest_stage": None,
                "utilisation": {}, "bound": f"the run failed ({how})", "error": f"{how}: {tail}"}


HEADER = (f"{'sources':>7} {'batch':>5} {'min fps':>8} {'total fps':>9} {'held':>4} {'GPU%':>5} {'NVDEC%':>6} "
           f"{'CPU%':>5} {'cores':>5}  {'busiest stage (busy %)':<28} bound")


def print_row(row: dict) -> dict:
    """One line of the table (the row is returned, for ``search``)."""
    u = row.get("utilisation") or {}
    pct = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    stage = row.get("busiest_stage")
    busiest = f"{stage} ({row['stages'][stage]['busy_pct']:.0f})" if stage else "-"
    cores = "-" if u.get("process_cpu_cores") is None else f"{u['process_cpu_cores']:.1f}"
    print(f"{row['sources']:>7} {row.get('batch', '-'):>5} {row['min_source_fps']:>8.1f} {row['aggregate_fps']:>9.1f} "
          f"{'yes' if row['held'] else 'no':>4} {pct(u.get('gpu_busy_pct')):>5} {pct(u.get('nvdec_busy_pct')):>6} "
          f"{pct(u.get('cpu_busy_pct')):>5} {cores:>5}  "
          f"{busiest:<28} {row['bound']}", flush=True)
    if row.get("error"):
        print(f"        error: {row['error'][:300]}", flush=True)
    return row


def machine() -> dict:
    """What the figures were measured on: CPU cores, Python, GPU (nvidia-smi's name), driver."""
    import os

    gpu = driver = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            gpu, driver = [x.strip() for x in out.stdout.strip().splitlines()[0].split(",")[:2]]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"cpu_cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "gpu": gpu, "driver": driver}
