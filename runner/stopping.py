"""How a run is stopped from outside: Ctrl-C, SIGTERM (``docker stop``, systemd, ``kill``) and the
dashboard's ``q``. All three drain — no new frames are decoded, the batches in flight reach the sinks,
files are finalised, the ``--report`` is written — and a second Ctrl-C or SIGTERM stops at once.

Who stopped the run is kept in ``RunStats.stopped_by`` (``"q"``, ``"SIGINT"``, ``"SIGTERM"``); the
report says it (``stopped_by``, ``interrupted: true``, ``status``) and the exit status follows it:

============  ============================================================================
``q``         0, as deepstream-app's ``q`` ("App run successful"); report status ``stopped_by_user``
Ctrl-C        130 (128 + SIGINT); report status ``interrupted``
SIGTERM       143 (128 + SIGTERM, what ``docker stop`` and systemd read as a clean stop); ``terminated``
============  ============================================================================

A failure that happened before the stop keeps its own status (1 when a source failed, …) for ``q``.

>>> stats = RunStats(); stats.stopped_by = "SIGTERM"
>>> ending_status(EXIT_INTERRUPTED, stats)
143
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from runner.pipeline.report import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED
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


def ending_status(code: int, stats: RunStats) -> int:
    """The exit status once who stopped the run is known (see the table above)."""
    if code == EXIT_INTERRUPTED and stats.stopped_by == SIGTERM:
        return EXIT_TERMINATED
    if code == EXIT_INTERRUPTED and stats.stopped_by == QUIT_KEY:
        return EXIT_OK
    return code
