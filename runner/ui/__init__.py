"""What the person running dsrun sees and controls: live dashboard or ``**PERF`` lines, keys, metrics.

The UI reads ``runner.pipeline.stats.RunStats`` from its own thread and never touches frames; no
stage imports it. The app starts it once the pipeline is built and stops it when the run ends::

    handle = start_ui(stats, app_config, dashboard=not args.no_dashboard,
                      metrics_port=args.metrics_port,
                      on_quit=graph.stop, on_pause=graph.pause, on_resume=graph.resume)
    try:
        graph.wait()
    finally:
        handle.stop()          # final dashboard frame, terminal restored, metrics server closed

- stdout a terminal and ``dashboard=True``: the rich dashboard (refreshed twice a second);
  otherwise ``**PERF`` lines on stdout when ``[application] enable-perf-measurement`` is on
  (every ``perf-measurement-interval-sec``, default 5), exactly as deepstream-app prints them.
- stdin a terminal (and dsrun in its foreground): keys ``q`` ``p`` ``r`` ``h`` call ``on_quit`` / ``on_pause`` / ``on_resume`` (in
  the key thread; they should return quickly). ``on_pause``/``on_resume`` must set ``stats.paused``,
  which the ``**PERF`` measurement and the dashboard follow. ``e`` (dashboard only) shows the last
  errors in full or folds them again; ``h`` prints the keys.
- ``metrics_port``: Prometheus ``/metrics`` and ``/api/v1/{live,ready,startup}`` (see metrics.py),
  on all interfaces like DeepStream's REST server (``metrics_host`` to narrow it). A busy port raises
  ``MetricsError`` (a DsrunError, exit 2) from ``start_ui``.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import Callable, TextIO

from runner.pipeline.stats import RunStats
from runner.ui.perf import PerfReporter, PerfSettings

REFRESH_S = 0.5  # dashboard refresh and rate sampling
POLL_S = 0.1  # how quickly **PERF notices a pause or resume

__all__ = ["start_ui", "UiHandle"]


class UiHandle:
    """The running UI; ``stop()`` is idempotent and safe from any thread but the UI's own."""

    def __init__(self, stats: RunStats, *, perf: PerfReporter | None, dashboard, sampler, keys,
                 metrics, rest=None) -> None:
        self.stats = stats
        self.perf = perf
        self.dashboard = dashboard
        self.sampler = sampler
        self.keys = keys
        self.metrics = metrics  # MetricsServer or None; .port is the port actually bound
        self.rest = rest  # the REST API's server (metrics and health routes too), or None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dsrun-ui", daemon=True)
        self._stopped = False

    @property
    def metrics_port(self) -> int | None:
        return self.metrics.port if self.metrics else None

    def _start(self) -> "UiHandle":
        if self.dashboard:
            self.dashboard.start()
        if self.metrics:
            self.metrics.start()
        if self.rest:
            self.rest.start()
        if self.keys:
            self.keys.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        next_sample = 0.0
        clock = self.stats.clock
        while not self._stop.wait(POLL_S):
            try:
                if self.perf:
                    self.perf.tick()
                if self.sampler and clock() >= next_sample:
                    next_sample = clock() + REFRESH_S
                    view = self.sampler.sample()
                    if self.dashboard:
                        self.dashboard.update(view)
            except Exception:  # a UI bug must not stop the run: report once, go on without the view
                self._drop_dashboard()
                self.perf = None
                print("dsrun: the live view failed and is turned off (the run goes on):\n"
                      + traceback.format_exc(), file=sys.__stderr__)

    def _drop_dashboard(self) -> None:
        if self.dashboard:
            try:
                self.dashboard.stop()
            except Exception:
                pass
            self.dashboard = None

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._thread.join(timeout=5)
        if self.keys:
            self.keys.stop()
        if self.dashboard:
            self.dashboard.stop(self.sampler.sample())
        if self.metrics:
            self.metrics.stop()
        if self.rest:
            self.rest.stop()
        if self.sampler and self.sampler.gpu:
            self.sampler.gpu.close()


def start_ui(stats: RunStats, config=None, *, dashboard: bool = True, metrics_port: int | None = None,
             on_quit: Callable[[], object] | None = None, on_pause: Callable[[], object] | None = None,
             on_resume: Callable[[], object] | None = None, stdout: TextIO | None = None,
             stdin: TextIO | None = None, metrics_host: str | None = None,
             rest_port: int | None = None, rest_host: str | None = None, rest_routes=None,
             sensors: dict | None = None) -> UiHandle:
    """Start the UI for one run. ``config``: the AppConfig (or its ``application`` group, or None for
    deepstream-app's defaults): ``enable_perf_measurement``, ``perf_measurement_interval_sec`` and,
    for metrics labels, ``sources[i].sensor_id`` / ``sensor_name`` where the config has them.
    ``rest_routes`` (``runner.rest.api.RestApi``): DeepStream's REST API, served with the metrics and
    health routes on ``rest_port`` (bound to ``rest_host``), as DeepStream's one server does.
    ``sensors``: {source id: (sensor id, sensor name)} kept up to date by the caller (streams added
    at run time); default: the config's.

    >>> from runner.pipeline.stats import RunStats
    >>> import io
    >>> handle = start_ui(RunStats(), None, dashboard=True, stdout=io.StringIO(), stdin=io.StringIO())
    >>> handle.dashboard is None and handle.perf is not None   # not a terminal: **PERF lines
    True
    >>> handle.stop()
    """
    from runner.ui.view import Sampler

    stdout = stdout if stdout is not None else sys.stdout
    stdin = stdin if stdin is not None else sys.stdin
    settings = PerfSettings.from_config(config)
    live_view = dashboard and _isatty(stdout)
    keys_on = _isatty(stdin) and _foreground(stdin) and any((on_quit, on_pause, on_resume))

    sampler = dash = metrics = rest = keys = perf = None
    if rest_routes is not None and rest_port == metrics_port:
        metrics_port = None  # one server answers both
    if live_view or metrics_port is not None or rest_routes is not None:
        from runner.ui.gpu import GpuMonitor

        sampler = Sampler(stats, gpu=GpuMonitor())
    if metrics_port is not None or rest_routes is not None:
        from runner.ui.metrics import DEFAULT_HOST, Exporter, MetricsServer

        exporter = Exporter(sampler, sensors if sensors is not None else _sensors(config))
        if rest_routes is not None:
            rest = MetricsServer(exporter, rest_port, rest_host or DEFAULT_HOST, routes=rest_routes)
        if metrics_port is not None:
            metrics = MetricsServer(exporter, metrics_port, metrics_host or DEFAULT_HOST)
    if live_view:
        from rich.console import Console

        from runner.ui.dashboard import Dashboard

        from runner.pipeline.labels import app_labels

        dash = Dashboard(Console(file=stdout), keys=keys_on,
                         labels=app_labels(config) if hasattr(config, "primary_gie") else {})
    elif settings.enabled:
        perf = PerfReporter(stats, settings.interval_s, stdout)
    if keys_on:
        from runner.ui.keys import HELP, KeyReader

        actions = {k: f for k, f in (("q", on_quit), ("p", on_pause), ("r", on_resume)) if f}
        actions["h"] = lambda: print(HELP, file=sys.stderr)
        if dash is not None:
            actions["e"] = dash.toggle_errors
        keys = KeyReader(stdin.fileno(), actions)
        if not live_view:
            print(HELP, file=sys.stderr)
    return UiHandle(stats, perf=perf, dashboard=dash, sampler=sampler, keys=keys, metrics=metrics,
                    rest=rest)._start()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _foreground(stream) -> bool:
    """True unless we run in the background of that terminal (``dsrun cfg &``), where changing
    its mode would stop the process (SIGTTOU)."""
    try:
        return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
    except OSError:  # a terminal that is not our controlling one: no job control applies
        return True
    except (AttributeError, ValueError):
        return False


def _sensors(config) -> dict[int, tuple[str, str]]:
    out = {}
    for i, source in enumerate(getattr(config, "sources", ()) or ()):
        sid = getattr(source, "index", i)
        sensor_id, sensor_name = getattr(source, "sensor_id", None), getattr(source, "sensor_name", None)
        if sensor_id or sensor_name:
            out[int(sid)] = (str(sensor_id or ""), str(sensor_name or ""))
    return out
