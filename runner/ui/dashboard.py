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
from rich.table import Table
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


def _short(uri: str, width: int = 32) -> str:
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
    for g in view.gpus:
        parts.append(Text(f"GPU {g.index} {g.name}: {g.utilization_pct:.0f} % busy  "
                          f"{g.memory_used_gb:.1f} / {g.memory_total_gb:.1f} GiB"))
    if keys:
        parts.append(Text(KEYS_HINT, style="dim"))
    return Group(*parts)


def _sources(view: RunView) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold")
    for col, justify in (("id", "right"), ("source", "left"), ("state", "left"), ("fps", "right"),
                         ("avg fps", "right"), ("frames", "right"), ("dropped", "right"),
                         ("reconnects", "right"), ("latency ms", "right"), ("last error", "left")):
        t.add_column(col, justify=justify, no_wrap=col != "last error")
    for s in view.sources:
        t.add_row(str(s.source_id), _short(s.uri), Text(s.state, style=STATE_STYLE.get(s.state, "")),
                  f"{s.fps:.2f}", f"{s.avg_fps:.2f}", str(s.frames), str(s.dropped), str(s.reconnects),
                  "" if s.latency_ms is None else f"{s.latency_ms:.1f}",
                  Text(s.last_error or "", style="red"))
    return t


def _stages(view: RunView) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("stage", "ms/frame", "queue", "frames"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for s in view.stages:
        t.add_row(s.name, f"{s.ms_per_frame:.2f}", str(s.queue_depth), str(s.frames))
    return t


def _engines(view: RunView) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold")
    t.add_column("engine")
    t.add_column("state")
    for name, state in view.engines:
        t.add_row(name, Text(state, style=ENGINE_STYLE.get(state, "")))
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
