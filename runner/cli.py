"""Command line: argument parsing only. Each command calls one function elsewhere.

    dsrun CONFIG [options]            run a deepstream-app config (also: dsrun -c CONFIG, -i URI)
    dsrun check [--json] CONFIG...    validate configs and print the resolved pipeline
    dsrun build-engines [--json] CONFIG
    dsrun engines list | clean [--older-than 30d]
    dsrun bench CONFIG [--clip VIDEO] [--fps F] [--streams 1,8,16] [--json FILE]
    dsrun samples | samples run NAME [--out DIR] | samples prepare NAME...|--all
"""

from __future__ import annotations

import argparse
import sys
import traceback

from runner import __version__
from runner.errors import DsrunError
from runner.redact import redact

COMMANDS = ("run", "check", "build-engines", "engines", "samples", "bench")
USAGE = """dsrun CONFIG [options]          run a deepstream-app config (or: dsrun -c CONFIG [options])
       dsrun COMMAND ...               check | build-engines | engines | bench | samples  (dsrun COMMAND -h)"""
EPILOG = """commands:
  check [--json] CONFIG...         validate configs and print the resolved pipeline
  build-engines [--json] CONFIG    build every engine a config needs
  engines {list,clean}             the engine cache
  bench CONFIG                     how many copies of the config's streams this machine holds
  samples [run NAME | prepare NAME...|--all]   the sample gallery

exit status of a run: 0 every source ended; 1 a source, stage or output failed (the others ran to the
end); 2 config or usage error; 3 model or engine error; 130 Ctrl-C (the frames already decoded are
finished, outputs and --report written; a second Ctrl-C stops at once)."""


def _add_engine_dir(p) -> None:
    p.add_argument("--engine-dir", metavar="DIR", help="engine cache directory (default: $DSRUN_ENGINE_DIR or the "
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


def _add_run_options(p) -> None:
    """The run command's options: on ``dsrun run`` and, for ``dsrun --help``, on the top level."""
    p.add_argument("-c", "--cfg-file", metavar="CONFIG", help="the config (deepstream-app's spelling)")
    p.add_argument("-i", "--input-uri", metavar="URI", help="the first source reads URI instead "
                   "(deepstream-app's -i): file://, rtsp://, or a path")
    p.add_argument("--report", metavar="JSON", help="write a run summary to this file at exit")
    p.add_argument("--no-dashboard", action="store_true", help="print **PERF lines, not the live view")
    p.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus /metrics on port N")
    p.add_argument("--rest-port", type=int, metavar="N",
                   help="serve DeepStream's REST API (add/remove streams, runtime parameters, quit) "
                        "on port N; docs/rest.md")
    p.add_argument("--jsonl", metavar="FILE", help="write every frame's metadata as JSON lines")
    p.add_argument("--watchdog", type=float, metavar="SECONDS",
                   help="end the run with an error when no source makes progress for this long "
                        "(default 300; 0 turns it off); --debug shows where each stage waits")
    p.add_argument("--jsonl-rotate", type=_rotation, metavar="SIZE|TIME",
                   help="start a new --jsonl file past SIZE (500MB, 2GB) or every TIME (15m, 1h, 1d); "
                        "the old one becomes FILE-stem.000001.jsonl, …")
    p.add_argument("--jsonl-keep", type=_positive, metavar="N", help="keep only the newest N rotated files")
    p.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="split the sources over N processes (one Python interpreter each)")
    p.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                   help="run the sources on a Ray cluster: one actor per GPU (or per --ray-cpus cores); "
                        "ADDRESS of the cluster, default $RAY_ADDRESS or a new local one")
    p.add_argument("--ray-cpus", type=_positive, metavar="N",
                   help="with --ray on nodes without a GPU: CPU cores per actor (default 2)")
    _add_engine_dir(p)


def _parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: the run options listed here must not swallow a subcommand's own options
    # (`check --json` is not an abbreviation of the run's --jsonl)
    parser = argparse.ArgumentParser(prog="dsrun", usage=USAGE, epilog=EPILOG, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Run NVIDIA DeepStream app configs without the DeepStream SDK.")
    parser.add_argument("--version", action="version", version=f"dsrun {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    _add_run_options(parser.add_argument_group("run options (dsrun CONFIG [options])",
                                               argument_default=argparse.SUPPRESS))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog="dsrun")

    run = sub.add_parser("run", usage="dsrun CONFIG [options]", help="run a deepstream-app config (the default)")
    run.add_argument("config", nargs="?", metavar="CONFIG")
    _add_run_options(run)
    # set by a split run's parent for each worker (runner.placement): its sources, frames to skip
    run.add_argument("--shard", help=argparse.SUPPRESS)
    run.add_argument("--resume", help=argparse.SUPPRESS)
    run.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)

    check = sub.add_parser("check", help="validate configs and print the resolved pipeline")
    check.add_argument("configs", nargs="+", metavar="CONFIG")
    check.add_argument("--json", action="store_true", help="one JSON document for tools")

    build = sub.add_parser("build-engines", help="build every engine a config needs")
    build.add_argument("config", metavar="CONFIG")
    build.add_argument("--json", action="store_true")
    _add_engine_dir(build)

    engines = sub.add_parser("engines", help="list or clean the engine cache")
    engines_sub = engines.add_subparsers(dest="engines_command", required=True, metavar="{list,clean}",
                                         prog="dsrun engines")
    _add_engine_dir(engines_sub.add_parser("list", help="the cached engines"))
    clean = engines_sub.add_parser("clean", help="remove cached engines")
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
    samples_sub = samples.add_subparsers(dest="samples_command", metavar="{run,prepare}", prog="dsrun samples")
    sample_run = samples_sub.add_parser("run", help="prepare a sample's assets and run it")
    sample_run.add_argument("name", metavar="NAME")
    sample_run.add_argument("--out", metavar="DIR", help="output folder (default: ./dsrun-out/NAME)")
    sample_run.add_argument("--no-dashboard", action="store_true")
    prepare = samples_sub.add_parser("prepare", help="build the assets of samples ahead of running them")
    prepare.add_argument("names", nargs="*", metavar="NAME")
    prepare.add_argument("--all", action="store_true", help="every sample's assets, and the tests'")
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """`dsrun CONFIG [options]` and deepstream-app's `dsrun -c CONFIG` mean `dsrun run ...`."""
    debug = ["--debug"] if "--debug" in argv else []  # accepted anywhere on the line
    rest = [a for a in argv if a != "--debug"]
    if rest and rest[0] not in COMMANDS and rest[0] not in ("-h", "--help", "--version"):
        rest.insert(0, "run")
    return debug + rest


def _run_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One config, given as CONFIG or as -c CONFIG."""
    given = [c for c in (args.config, args.cfg_file) if c]
    if len(given) != 1:
        parser.error(f"two configs given ({given[0]} and -c {given[1]}): give one" if given else
                     "give the config to run: dsrun CONFIG [options], or dsrun -c CONFIG [options]")
    args.config = given[0]


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
            return gallery.run_sample(args.name, dashboard=not args.no_dashboard, out=args.out)
        if args.samples_command == "prepare":
            return gallery.prepare_samples(args.names, everything=args.all)
        return gallery.list_samples()
    _parser().print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(_normalise(argv))
    if args.command == "run":
        _run_config(parser, args)
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
