"""How a run is stopped from outside: Ctrl-C, SIGTERM (``docker stop``, systemd, ``kill``) and the
``q`` key (read from the terminal, dashboard or not, as deepstream-app reads its keys). All three
drain — no new frames are decoded, the batches in flight reach the sinks, files are finalised, the
``--report`` is written — and a second Ctrl-C or SIGTERM stops at once.

Who stopped the run is kept in ``RunStats.stopped_by`` (``"q"``, ``"SIGINT"``, ``"SIGTERM"``); the
report says it (``stopped_by``, ``interrupted: true``, ``status``) and the exit status follows it:

============  ============================================================================
``q``         as deepstream-app's ``q``: 0 ("App run successful"), or 1 when a source, stage or output
              failed during the run ("App run failed"); report status ``stopped_by_user`` / ``failed``
Ctrl-C        130 (128 + SIGINT); report status ``interrupted``
SIGTERM       143 (128 + SIGTERM, what ``docker stop`` and systemd read as a clean stop); ``terminated``
============  ============================================================================

deepstream-app (deepstream_app_main.c): ``q`` in ``event_thread_func`` quits the main loop;
``destroy_pipeline`` (deepstream_app.c) sends the pipeline an EOS, waits a second, handles the errors
still on the bus and stops it; ``main`` returns ``return_value`` — 0, or -1 (exit status 255) when an
element reported an error (``bus_callback`` sets it). dsrun keeps 1 for a failed run, its code for
every failure, and drains until every frame in flight is written instead of for one second.
Deliberate difference: deepstream-app ends the same way (exit 0) on Ctrl-C (``_intr_handler``);
dsrun exits 130 so that scripts can tell an interrupted run from a finished one.

>>> stats = RunStats(); stats.stopped_by = "SIGTERM"
>>> ending_status(EXIT_INTERRUPTED, stats)
143
>>> stats.stopped_by = "q"
>>> ending_status(EXIT_INTERRUPTED, stats), ending_status(EXIT_INTERRUPTED, stats, failed=True)
(0, 1)
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from runner.pipeline.report import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED
from runner.pipeline.stats import RunStats

QUIT_KEY, SIGINT, SIGTERM = "q", "SIGINT", "SIGTERM"


def quit_by_key(stats: RunStats, drain: Callable[[], object]) -> Callable[[], None]:
    """The dashboard's ``q``: record it, then drain the run (``drain``: the graph's or the pool's)."""

    def on_quit() -> None:
        stats.stopped_by = stats.stopped_by or QUIT_KEY
        drain()

    return on_quit


@contextmanager
def signals_drain(stats: RunStats) -> Iterator[None]:
    """While the run lasts, SIGTERM does what Ctrl-C does (a ``KeyboardInterrupt`` in the main thread,
    which the pipeline turns into a drain, and a second one into a stop); the first signal is recorded.
    Outside the main thread (a library caller's thread) nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame) -> None:
        stats.stopped_by = stats.stopped_by or (SIGTERM if signum == signal.SIGTERM else SIGINT)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def ending_status(code: int, stats: RunStats, failed: bool = False) -> int:
    """The exit status once who stopped the run is known (see the table above); ``failed``: a source,
    stage or output failed during the run."""
    if code == EXIT_INTERRUPTED and stats.stopped_by == SIGTERM:
        return EXIT_TERMINATED
    if code == EXIT_INTERRUPTED and stats.stopped_by == QUIT_KEY:
        return EXIT_FAILED if failed else EXIT_OK
    return code
