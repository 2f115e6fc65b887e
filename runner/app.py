"""``dsrun CONFIG``: load the config, prepare engines, build the graph, run it, report, exit status.

    $ dsrun deepstream_app_config.txt --report run.json

Exit status: 0 every source ended normally; 1 a source or stage failed (the other sources still ran
to the end); 2 config error; 130 Ctrl-C (a second Ctrl-C stops without draining).
"""

from __future__ import annotations

import logging
import sys

from runner.errors import DsrunError
from runner.pipeline.graph import build_graph, describe, feature
from runner.pipeline.report import EXIT_CONFIG, EXIT_INTERRUPTED, build_report, exit_status, write_report
from runner.pipeline.sinks import RunOptions
from runner.pipeline.source import redact
from runner.pipeline.stats import RunStats

log = logging.getLogger("dsrun")


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and the dashboard swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _setup_logging(debug: bool) -> None:
    if not log.handlers:
        handler = _Stderr()
        handler.setFormatter(_Redacting("dsrun: %(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if debug else logging.INFO)


def prepare_engines(app, options: RunOptions, stats: RunStats):
    """Build or load every engine the config needs (hook: ``runner.engine.prepare.prepare_engines``);
    ``None`` while the engine layer has no such entry point."""
    engine = feature("runner.engine.prepare")
    if engine is None:
        return None
    return engine.prepare_engines(app, engine_dir=options.engine_dir, stats=stats)


def _start_ui(stats: RunStats, app, options: RunOptions, controls):
    """Dashboard or **PERF lines; ``controls`` (the Graph, or the --workers pool) has drain/pause/resume."""
    ui = feature("runner.ui")
    if ui is None or not hasattr(ui, "start_ui"):
        return None
    return ui.start_ui(stats, app, dashboard=options.dashboard, metrics_port=options.metrics_port,
                       on_quit=controls.drain, on_pause=controls.pause, on_resume=controls.resume)


def run_app(args) -> int:
    """The ``run`` command (``args``: config, report, no_dashboard, metrics_port, jsonl, engine_dir,
    workers; worker_of/worker_index in a ``--workers`` child, see runner.workers)."""
    _setup_logging(bool(getattr(args, "debug", False)))
    options = RunOptions.from_args(args)
    stats = RunStats()
    from runner.config import load_app

    split = options.workers > 1 and options.worker_of is None
    try:
        app = load_app(args.config)
        if split:
            from runner.workers import check_splittable
            check_splittable(app, options)
    except DsrunError as error:
        if options.report and getattr(error, "exit_code", 1) == EXIT_CONFIG:
            write_report(options.report, build_report(stats, config=args.config, exit_code=EXIT_CONFIG,
                                                      errors=[str(error)]))
        raise
    if options.worker_of is None:  # the --workers parent has said them already
        for warning in getattr(app, "warnings", ()):
            log.warning("%s", warning)
    if split:
        from runner.workers import run_workers
        return run_workers(app, options, stats, config=args.config, debug=bool(getattr(args, "debug", False)),
                           prepare_engines=prepare_engines, start_ui=_start_ui)

    engines = prepare_engines(app, options, stats)
    graph = build_graph(app, stats, engines=engines, options=options)
    log.debug("pipeline: %s", describe(graph))
    link = ui = None
    if options.worker_of is not None:  # a --workers child: counters go to the parent, no UI here
        from runner.workers import WorkerLink
        link = WorkerLink(stats, graph, options.worker_index)
        try:
            link.wait_for_start()
        except KeyboardInterrupt:  # stopped before the parent said start: nothing ran
            link.finish(EXIT_INTERRUPTED, [], True)
            return EXIT_INTERRUPTED
    else:
        ui = _start_ui(stats, app, options, graph)

    def interrupted(count: int) -> None:
        if link is not None:
            return  # a --workers child: the parent says it
        if count == 1:
            log.info("stopping: finishing the frames already decoded (Ctrl-C again to stop now)")
        else:
            log.info("stopping now")

    try:
        outcome = graph.run(on_interrupt=interrupted)
    finally:
        if ui is not None:
            ui.stop()
    code = exit_status(stats, outcome.interrupted, outcome.error)
    errors = [str(e) for e in outcome.source_errors.values()]
    if outcome.error is not None:
        errors.append(str(outcome.error))
        if getattr(args, "debug", False) and outcome.traceback:
            print(outcome.traceback, file=sys.stderr)
    for message in errors:
        print(f"dsrun: {redact(message)}", file=sys.stderr)
    if link is not None:
        link.finish(code, errors, outcome.interrupted)
    if options.report:
        write_report(options.report, build_report(stats, config=args.config, exit_code=code, errors=errors,
                                                  interrupted=outcome.interrupted))
    return code
