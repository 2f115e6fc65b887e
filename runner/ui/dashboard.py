"""The live console view (rich), shown when stdout is a terminal and ``--no-dashboard`` is not given.

``render(view)`` turns one RunView into a renderable: a title line (elapsed, totals, paused), a table
per source (state, fps now and average, frames, drops, reconnects, last error), a table per stage
(ms/frame, queue depth), engines and GPUs when there are any. ``Dashboard`` keeps it on screen with
``rich.live.Live``, refreshed by the UI thread (no refresh thread of its own).

>>> from rich.console import Console
>>> from runner.ui.view import RunView, SourceView
>>> view = RunView(12.0, False, (SourceView(0, "file:///v/bikes.mp4", "playing", 29.97, 30.0, 360,
...                361, 1, 0, None, 41.5),), (), (), ())
>>> console = Console(record=True, width=120, color_system=None)
>>> console.print(render(view))  # doctest: +ELLIPSIS
dsrun  00:00:12  1 source  360 frames  29.97 fps ...
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from runner.ui.view import RunView

STATE_STYLE = {"starting": "yellow", "playing": "green", "reconnecting": "yellow", "paused": "cyan",
               "ended": "dim", "failed": "bold red"}
ENGINE_STYLE = {"building": "yellow", "loaded": "green", "swapped": "cyan", "failed": "bold red"}
KEYS_HINT = "keys: q quit  p pause  r resume"


def clock(seconds: float) -> str:
    """Elapsed seconds as hh:mm:ss.

    >>> clock(3725.2)
    '01:02:05'
    """
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _short(uri: str, width: int) -> str:
    name = uri.rsplit("/", 1)[-1] or uri
    return name if len(name) <= width else "…" + name[-(width - 1):]


def render(view: RunView, *, keys: bool = False) -> Group:
    n = len(view.sources)
    title = Text.assemble(("dsrun", "bold"), f"  {clock(view.elapsed_s)}  {n} source{'s' * (n != 1)}  ",
                          f"{view.total_frames} frames  {view.total_fps:.2f} fps  "
                          f"{view.total_dropped} dropped")
    if view.paused:
        title.append("  PAUSED", style="bold cyan")
    parts = [title, _sources(view)]
    if view.stages:
        parts.append(_stages(view))
    if view.engines:
        parts.append(_engines(view))
    parts += [_analytics_line(sid, a) for sid, a in sorted(view.analytics.items()) if any(a.values())]
    parts += [_broker_line(name, b) for name, b in sorted(view.brokers.items())]
    for g in view.gpus:
        decode = f"  NVDEC {g.decoder_pct:.0f} % busy" if g.decoder_pct is not None else ""
        parts.append(Text(f"GPU {g.index} {g.name}: {g.utilization_pct:.0f} % busy  "
                          f"{g.memory_used_gb:.1f} / {g.memory_total_gb:.1f} GiB{decode}"))
    if keys:
        parts.append(Text(KEYS_HINT, style="dim"))
    return Group(*parts)


# Fixed-width text rather than rich Tables: a table costs ~10x more to lay out on every refresh.
def _sources(view: RunView) -> Text:
    """One line per source, 78 columns (fits an 80-column terminal); its last error below it."""
    t = Text(f"{'id':>3}  {'source':<14} {'state':<12}{'fps':>7} {'avg fps':>7} {'frames':>8} "
             f"{'drops':>5} {'reconn':>6} {'lat ms':>7}\n", style="bold")
    for s in view.sources:
        t.append(f"{s.source_id:>3}  {_short(s.uri, 14):<14} ")
        t.append(f"{s.state:<12}", style=STATE_STYLE.get(s.state, ""))
        latency = "" if s.latency_ms is None else f"{s.latency_ms:.1f}"
        t.append(f"{s.fps:>7.2f} {s.avg_fps:>7.2f} {s.frames:>8} {s.dropped:>5} {s.reconnects:>6} "
                 f"{latency:>7}\n")
        if s.last_error:
            t.append(f"     last error: {s.last_error}\n", style="red")
    t.rstrip()
    return t


def _stages(view: RunView) -> Text:
    width = max(16, *(len(s.name) for s in view.stages))
    t = Text(f"{'stage':<{width}} {'ms/frame':>9} {'queue':>6} {'frames':>9}\n", style="bold")
    for s in view.stages:
        t.append(f"{s.name:<{width}} {s.ms_per_frame:>9.2f} {s.queue_depth:>6} {s.frames:>9}\n")
    t.rstrip()
    return t


def _engines(view: RunView) -> Text:
    width = max(16, *(len(name) for name, _ in view.engines))
    t = Text(f"{'engine':<{width}} state\n", style="bold")
    for name, state in view.engines:
        t.append(f"{name:<{width}} ")
        t.append(f"{state}\n", style=ENGINE_STYLE.get(state, ""))
    t.rstrip()
    return t


def _analytics_line(sid: int, a: dict) -> Text:
    """``analytics 0: Exit 12 crossed  RF 3 in  OC 4 in CROWDED`` (cumulative crossings, objects in ROIs)."""
    t = Text(f"analytics {sid}:")
    for label, total in a.get("lines", {}).items():
        t.append(f"  {label} {total} crossed")
    for label, count in a.get("roi", {}).items():
        t.append(f"  {label} {count} in")
    for label, oc in a.get("overcrowding", {}).items():
        t.append(f"  {label} {oc['count']} in")
        if oc["crowded"]:
            t.append(" CROWDED", style="bold red")
    return t


def _broker_line(name: str, b: dict) -> Text:
    """``sink1 Redis 127.0.0.1:6379 connected  sent 120  queued 0  dropped 0``."""
    t = Text(f"{name} {b.get('protocol', '')} {b.get('address', '')} ")
    state = b.get("state", "connecting")
    t.append(state, style={"connected": "green", "down": "bold red"}.get(state, "yellow"))
    t.append(f"  sent {b.get('sent', 0)}  queued {b.get('queued', 0)}  dropped {b.get('dropped', 0)}")
    return t


class Dashboard:
    """Owns the rich Live display; ``update`` is called by the UI thread at its refresh rate."""

    def __init__(self, console: Console | None = None, *, keys: bool = False) -> None:
        self.console = console or Console()
        self.keys = keys
        self._live = Live(console=self.console, auto_refresh=False, transient=False,
                          redirect_stdout=True, redirect_stderr=True)

    def start(self) -> None:
        self._live.start()

    def update(self, view: RunView) -> None:
        self._live.update(render(view, keys=self.keys), refresh=True)

    def stop(self, view: RunView | None = None) -> None:
        if view is not None:
            self._live.update(render(view), refresh=True)  # leave the final figures on screen
        self._live.stop()
