"""Command line: argument parsing only. Each command calls one function elsewhere.

    dsrun CONFIG [options]            run a deepstream-app config (also: dsrun -c CONFIG)
    dsrun check [--json] CONFIG...    validate configs and print the resolved pipeline
    dsrun build-engines [--json] CONFIG
    dsrun engines list | clean [--older-than 30d]
    dsrun bench CONFIG [--clip VIDEO] [--fps F] [--streams 1,8,16] [--json FILE]
    dsrun samples | samples run NAME
"""

from __future__ import annotations

import argparse
import sys
import traceback

from runner.errors import DsrunError
from runner.redact import redact

COMMANDS = ("run", "check", "build-engines", "engines", "samples", "bench")


def _add_engine_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine-dir", help="engine cache directory (default: $DSRUN_ENGINE_DIR or the "
                                        "per-user cache, ~/.cache/dsrun/engines)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _rotation(text: str):
    from runner.pipeline.rotation import parse_rotation
    try:
        return parse_rotation(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsrun", description="Run NVIDIA DeepStream app configs "
                                     "without the DeepStream SDK.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a deepstream-app config (the default command)")
    run.add_argument("config", metavar="CONFIG")
    run.add_argument("--report", metavar="JSON", help="write a run summary to this file at exit")
    run.add_argument("--no-dashboard", action="store_true", help="print **PERF lines, not the live view")
    run.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus /metrics on port N")
    run.add_argument("--rest-port", type=int, metavar="N",
                     help="serve DeepStream's REST API (add/remove streams, runtime parameters, quit) "
                          "on port N; docs/rest.md")
    run.add_argument("--jsonl", metavar="FILE", help="write every frame's metadata as JSON lines")
    run.add_argument("--watchdog", type=float, metavar="SECONDS",
                     help="end the run with an error when no source makes progress for this long "
                          "(default 300; 0 turns it off); --debug shows where each stage waits")
    run.add_argument("--jsonl-rotate", type=_rotation, metavar="SIZE|TIME",
                     help="start a new --jsonl file past SIZE (500MB, 2GB) or every TIME (15m, 1h, 1d); "
                          "the old one becomes FILE-stem.000001.jsonl, …")
    run.add_argument("--jsonl-keep", type=_positive, metavar="N", help="keep only the newest N rotated files")
    run.add_argument("--workers", type=_positive, default=1, metavar="N",
                     help="split the sources over N processes (one Python interpreter each)")
    run.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                     help="run the sources on a Ray cluster: one actor per GPU (or per --ray-cpus cores); "
                          "ADDRESS of the cluster, default $RAY_ADDRESS or a new local one")
    run.add_argument("--ray-cpus", type=_positive, metavar="N",
                     help="with --ray on nodes without a GPU: CPU cores per actor (default 2)")
    # set by a split run's parent for each worker (runner.placement): its sources, frames to skip
    run.add_argument("--shard", help=argparse.SUPPRESS)
    run.add_argument("--resume", help=argparse.SUPPRESS)
    run.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    _add_engine_dir(run)

    check = sub.add_parser("check", help="validate configs and print the resolved pipeline")
    check.add_argument("configs", nargs="+", metavar="CONFIG")
    check.add_argument("--json", action="store_true", help="one JSON document for tools")

    build = sub.add_parser("build-engines", help="build every engine a config needs")
    build.add_argument("config", metavar="CONFIG")
    build.add_argument("--json", action="store_true")
    _add_engine_dir(build)

    engines = sub.add_parser("engines", help="list or clean the engine cache")
    engines_sub = engines.add_subparsers(dest="engines_command", required=True)
    _add_engine_dir(engines_sub.add_parser("list"))
    clean = engines_sub.add_parser("clean")
    clean.add_argument("--older-than", metavar="AGE", help="e.g. 30d, 12h (default: everything)")
    _add_engine_dir(clean)

    bench = sub.add_parser("bench", help="how many copies of the config's streams this machine holds "
                                         "at the target rate, and what bounds it")
    bench.add_argument("config", metavar="CONFIG")
    bench.add_argument("--clip", metavar="VIDEO", help="replicate this video instead of the config's sources")
    bench.add_argument("--fps", type=float, help="rate every source must hold (default: the first "
                                                  "source's own frame rate)")
    bench.add_argument("--streams", metavar="N,N,...", help="source counts to run (default: 1, 2, 4, ... "
                                                              "then bisect)")
    bench.add_argument("--max-streams", type=_positive, default=64, metavar="N",
                       help="highest count the automatic ramp tries (default 64)")
    bench.add_argument("--batch", type=_positive, metavar="B", help="streammux and primary-GIE batch "
                                                                     "(default: the config's, up to N)")
    bench.add_argument("--interval", type=int, metavar="I", help="override the primary GIE's interval")
    bench.add_argument("--seconds", type=float, default=10.0, help="measured window per count (default 10)")
    bench.add_argument("--warmup", type=float, default=3.0, help="seconds after every source's first "
                                                                 "frame before measuring (default 3)")
    bench.add_argument("--ceilings", action="store_true", help="also measure the decoders alone and the "
                                                               "primary engine alone")
    bench.add_argument("--json", metavar="FILE", default="bench.json", help="write every row here "
                                                                           "(default bench.json)")
    bench.add_argument("--one", type=_positive, help=argparse.SUPPRESS)  # one count, JSON on stdout
    bench.add_argument("--profile", metavar="FILE", help=argparse.SUPPRESS)  # with --one: torch profiler table
    _add_engine_dir(bench)

    samples = sub.add_parser("samples", help="the sample gallery")
    samples_sub = samples.add_subparsers(dest="samples_command")
    sample_run = samples_sub.add_parser("run")
    sample_run.add_argument("name")
    sample_run.add_argument("--no-dashboard", action="store_true")
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """`dsrun CONFIG` and deepstream-app's `dsrun -c CONFIG` mean `dsrun run CONFIG`."""
    out = list(argv)
    if "--debug" in out:  # accepted anywhere on the line
        out = ["--debug"] + [a for a in out if a != "--debug"]
    if "-c" in out:
        i = out.index("-c")
        out[i] = "run"
        return out if i == 0 or out[:i] == ["--debug"] else ["run"] + out[:i] + out[i + 1:]
    first = next((i for i, a in enumerate(out) if not a.startswith("-")), None)
    if first is not None and out[first] not in COMMANDS:
        out.insert(first, "run")
    return out


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from runner.app import run_app
        return run_app(args)
    if args.command == "check":
        from runner.config.check import check
        from runner.preflight import preflight
        return check(args.configs, as_json=args.json, preflight=preflight)
    if args.command == "build-engines":
        from runner.engine.commands import build_engines
        return build_engines(args.config, as_json=args.json, engine_dir=args.engine_dir)
    if args.command == "engines":
        from runner.engine import commands
        if args.engines_command == "list":
            return commands.list_engines(engine_dir=args.engine_dir)
        return commands.clean_engines(engine_dir=args.engine_dir, older_than=args.older_than)
    if args.command == "bench":
        from runner.bench.capacity import run_bench
        return run_bench(args)
    if args.command == "samples":
        from runner import gallery
        if args.samples_command == "run":
            return gallery.run_sample(args.name, dashboard=not args.no_dashboard)
        return gallery.list_samples()
    _parser().print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(_normalise(argv))
    if args.debug:  # a crash in native code (signal 6 / 11) prints every thread's Python stack
        import faulthandler
        try:
            faulthandler.enable()
        except (ValueError, AttributeError):  # sys.stderr replaced by one with no file descriptor
            faulthandler.enable(sys.__stderr__)
    try:
        return _dispatch(args)
    except DsrunError as error:
        if args.debug:
            print(redact(traceback.format_exc()), end="", file=sys.stderr)
        print(f"dsrun: {redact(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
