"""``dsrun CONFIG``: load the config, hand it to the placement layer (``runner.placement``: one pipeline
here, or shards on worker processes or Ray actors), report, exit status.

    $ dsrun deepstream_app_config.txt --report run.json

Exit status: 0 every source ended normally; 1 a source, stage or output failed (the other sources
still ran to the end); 2 config error; 3 model or engine error; 130 Ctrl-C, 143 SIGTERM (both drain; a
second signal stops without draining); the dashboard's ``q`` drains and keeps 0, as deepstream-app
does (runner.stopping). Every ending writes the ``--report`` asked for.
"""

from __future__ import annotations

import logging
import sys

from runner.errors import DsrunError
from runner.pipeline.graph import feature
from runner.pipeline.report import EXIT_CONFIG, EXIT_INTERRUPTED, build_report, save_report
from runner.pipeline.sinks import RunOptions
from runner.pipeline.source import redact
from runner.pipeline.stats import RunStats
from runner.stopping import ending_status, quit_by_key, signals_drain

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
    """Dashboard or **PERF lines; ``controls`` (the Graph, or a split run's pool) has drain/pause/resume.
    With DeepStream's REST API asked for (only in one process: runner.placement refuses it for split
    runs), its routes are served too."""
    ui = feature("runner.ui")
    if ui is None or not hasattr(ui, "start_ui"):
        return None
    extra = {}
    rest = _rest(app, options, controls)
    if rest is not None:
        settings, api = rest
        extra = {"rest_port": settings.http_port, "rest_host": settings.http_ip, "rest_routes": api,
                 "sensors": api.sources.sensors}
    return ui.start_ui(stats, app, dashboard=options.dashboard, metrics_port=options.metrics_port,
                       on_quit=quit_by_key(stats, controls.drain), on_pause=controls.pause,
                       on_resume=controls.resume, **extra)


def _rest(app, options: RunOptions, graph):
    """(LiveSourceList, RestApi) when the config or --rest-port asks for DeepStream's REST API."""
    from runner.pipeline.live_sources import LiveSources, live_source_list

    settings = live_source_list(app, options.rest_port)
    if settings is None:
        return None
    from runner.rest.api import RestApi

    return settings, RestApi(LiveSources(graph, app, settings), graph, on_quit=graph.drain)


class InputOverrideError(DsrunError):
    """``-i URI`` cannot be applied to this config."""

    exit_code = EXIT_CONFIG


def with_input_uri(app, uri: str, options: RunOptions):
    """deepstream-app's ``-i URI``: the first source reads ``URI``. deepstream-app puts it in the first
    source's config before reading the file (deepstream_app_main.c); here it replaces ``[source0] uri``.
    A path, or a ``file://`` URI with a relative path, is taken from the current directory; a camera
    source (``type=1``/``5``) becomes a URI source."""
    import dataclasses
    from pathlib import Path

    from runner.config.enums import SourceType

    if not app.sources:
        raise InputOverrideError(f"-i {uri}: {app.path or 'the config'} has no "
                                 "enabled [sourceN] group to read it — add one")
    if options.split:
        raise InputOverrideError(f"-i {uri} with {options.placement_name}: the workers read the config "
                                 "file — put the URI in [source0] uri instead")
    if "://" not in uri:
        uri = f"file://{Path(uri).expanduser().resolve()}"
    elif uri.startswith("file://") and not uri[7:].startswith("/"):
        uri = f"file://{Path(uri[7:]).resolve()}"
    first = app.sources[0]
    kind = first.type if first.type not in (SourceType.CAMERA_V4L2, SourceType.CAMERA_CSI) else SourceType.URI
    first = dataclasses.replace(first, uri=uri, type=kind)
    return dataclasses.replace(app, sources=(first, *app.sources[1:]))


def run_app(args) -> int:
    """The ``run`` command (``args``: config, report, no_dashboard, metrics_port, jsonl, engine_dir,
    workers, ray; shard/resume/worker_index in a split run's worker, see runner.placement): load the
    config, hand it to the placement layer once, report how the run ended."""
    from runner.placement import Placed, check_placement, placement_options, run_placed
    from runner.preflight import load_runnable

    debug = bool(getattr(args, "debug", False))
    _setup_logging(debug)
    options = RunOptions.from_args(args)
    stats = RunStats()
    try:
        app = load_runnable(args.config)  # load_app, then what the run would refuse (runner.preflight)
        options = placement_options(app, options)
        if getattr(args, "input_uri", None):
            app = with_input_uri(app, args.input_uri, options)
        check_placement(app, options)
        if options.shard is None:  # a split run's parent has said them already
            for warning in getattr(app, "warnings", ()):
                log.warning("%s", warning)
        with signals_drain(stats):  # SIGTERM drains as Ctrl-C does
            placed = run_placed(app, options, stats, config=args.config, debug=debug,
                                prepare_engines=prepare_engines, start_ui=_start_ui)
    except KeyboardInterrupt:  # stopped before the pipeline ran (loading, building engines)
        placed = Placed(EXIT_INTERRUPTED, [], True)
    except DsrunError as error:  # config, model or port error: the report asked for is still written
        if options.report:
            save_report(options.report, build_report(stats, config=args.config, exit_code=error.exit_code,
                                                     errors=[str(error)]))
        raise
    placed.exit_code = ending_status(placed.exit_code, stats, failed=bool(placed.errors))
    for message in placed.errors if placed.stderr is None else placed.stderr:
        print(f"dsrun: {redact(message)}", file=sys.stderr)
    if options.report:
        report = build_report(stats, config=args.config, exit_code=placed.exit_code, errors=placed.errors,
                              interrupted=placed.interrupted)
        return save_report(options.report, {**report, **placed.report})  # 1 when it cannot be written
    return placed.exit_code
