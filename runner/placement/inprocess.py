"""The in-process policy: one shard with every source, in this process (dsrun's default), and the
shard runner every other policy runs somewhere else.

:func:`build_shard_graph` is the one place a shard becomes a pipeline: the config's graph restricted
to the shard's sources (ids kept), file sources resuming where a lost worker left them.
"""

from __future__ import annotations

import logging
import sys

from runner.pipeline.graph import Graph, Outcome, build_graph, describe
from runner.pipeline.report import exit_status
from runner.pipeline.sinks import RunOptions
from runner.pipeline.stats import RunStats
from runner.placement import Placed

log = logging.getLogger("dsrun")


def build_shard_graph(app, options: RunOptions, stats: RunStats, engines) -> Graph:
    """The pipeline of this process's shard (``options.shard``; every source when ``None``)."""
    graph = build_graph(app, stats, engines=engines, options=options)
    log.debug("pipeline: %s", describe(graph))
    return graph


def outcome_errors(outcome: Outcome) -> list[str]:
    """The messages a run ends with: each failed source's, each failed output's, then the stage error."""
    errors = [str(e) for e in outcome.source_errors.values()] + list(outcome.output_errors)
    if outcome.error is not None:
        errors.append(str(outcome.error))
    return errors


def run_graph(graph: Graph, stats: RunStats, *, quiet: bool = False) -> tuple[Outcome, int]:
    """Run ``graph`` to its end; Ctrl-C once drains, twice stops now (said on stderr unless ``quiet``,
    as in a worker whose parent says it). Returns the outcome and the exit status."""

    def interrupted(count: int) -> None:
        if quiet:
            return
        if count == 1:
            log.info("stopping: finishing the frames already decoded (Ctrl-C again to stop now)")
        else:
            log.info("stopping now")

    outcome = graph.run(on_interrupt=interrupted)
    return outcome, exit_status(stats, outcome.interrupted, outcome.error)


def run_in_process(app, options: RunOptions, stats: RunStats, *, debug: bool = False, prepare_engines=None,
                   start_ui=None) -> Placed:
    """Every source in this process, with the dashboard or ``**PERF`` lines."""
    engines = prepare_engines(app, options, stats) if prepare_engines is not None else None
    graph = build_shard_graph(app, options, stats, engines)
    ui = start_ui(stats, app, options, graph) if start_ui is not None else None
    try:
        outcome, code = run_graph(graph, stats)
    finally:
        if ui is not None:
            ui.stop()
    if debug and outcome.traceback:  # a stage's, or a failed output's
        print(outcome.traceback, file=sys.stderr)
    return Placed(code, outcome_errors(outcome), outcome.interrupted)
