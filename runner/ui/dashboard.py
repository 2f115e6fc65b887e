"""The live console view (rich), shown when stdout is a terminal and ``--no-dashboard`` is not given.

``render(view)`` turns one RunView into a renderable: a title line (elapsed, totals, paused), a line per
source (state, fps now and average, frames, drops, reconnects, latency, progress through a file and
time left — or ``live`` —, an fps sparkline), its objects per class below it and its last error (one
line; in full after the ``e`` key), a table per stage (ms/frame, queue depth), engines and GPUs when
there are any, and the key line. Source names use the width there is: the middle of a long URI is
cut, never its file name. Below ``COMPACT_BELOW`` columns a compact line per source replaces the
table. ``Dashboard`` keeps it on screen with ``rich.live.Live``, refreshed by the UI thread.

>>> from rich.console import Console
>>> from runner.ui.view import RunView, SourceView
>>> view = RunView(12.0, False, (SourceView(0, "file:///v/bikes.mp4", "playing", 29.97, 30.0, 360,
...                361, 1, 0, None, 41.5, total_frames=722, decode_fps=30.0),), (), (), ())
>>> console = Console(record=True, width=120, color_system=None)
>>> console.print(render(view, width=120))  # doctest: +ELLIPSIS
dsrun  00:00:12  1 source  360 frames  29.97 fps ...
...bikes.mp4...50% 00:00:12...
>>> middle("rtsp://***:***@10.0.0.7:554/site/north/gate/stream1.mp4", 32)
'rtsp://***:***@10.0…/stream1.mp4'
>>> sparkline([0, 5, 10])
'▁▅█'
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from runner.ui.view import RunView

COMPACT_BELOW = 100  # columns: narrower terminals get one short line per source
SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 16
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "v4l2")  # sources without an end
STATE_STYLE = {"starting": "yellow", "playing": "green", "reconnecting": "yellow", "paused": "cyan",
               "ended": "dim", "failed": "bold red"}
ENGINE_STYLE = {"building": "yellow", "loaded": "green", "swapped": "cyan", "failed": "bold red"}
KEYS_HINT = "keys: q quit  p pause  r resume  e errors in full  h help"


def clock(seconds: float) -> str:
    """Elapsed seconds as hh:mm:ss.

    >>> clock(3725.2)
    '01:02:05'
    """
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def middle(uri: str, width: int) -> str:
    """``uri`` in ``width`` columns: whole when it fits, else its middle cut (``…``), keeping the file
    name (and as much of the start as fits); only a file name longer than ``width`` loses its start."""
    if len(uri) <= width:
        return uri
    name = uri.rsplit("/", 1)[-1] or uri
    if len(name) + 2 >= width:
        return "…" + name[-(width - 1):]
    return uri[:width - len(name) - 2] + "…/" + name


def sparkline(values, width: int = SPARK_WIDTH) -> str:
    """The last ``width`` values as block characters scaled to their maximum."""
    values = list(values)[-width:]
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values)


def render(view: RunView, *, keys: bool = False, width: int = 120, errors: bool = False,
           labels: dict | None = None) -> Group:
    """``width``: the terminal's columns; ``errors``: last errors in full; ``labels``: {gie id: class
    names} for the objects lines."""
    n = len(view.sources)
    title = Text.assemble(("dsrun", "bold"), f"  {clock(view.elapsed_s)}  {n} source{'s' * (n != 1)}  ",
                          f"{view.total_frames} frames  {view.total_fps:.2f} fps  "
                          f"{view.total_dropped} dropped")
    if view.paused:
        title.append("  PAUSED", style="bold cyan")
    compact = width < COMPACT_BELOW
    sources = _compact(view, width) if compact else _sources(view, width, errors, labels or {})
    parts = [title, sources]
    if view.stages and not compact:
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
_FIXED = 96  # columns of a source line besides its name


def _progress(s) -> tuple[str, str]:
    """(progress, time left) cells: ``42%`` and ``00:01:23`` for a file, ``live`` for a live source."""
    if s.progress is None:
        live = s.uri.split("://", 1)[0].lower() in LIVE_SCHEMES
        return ("live" if live and s.state not in ("ended", "failed") else ""), ""
    eta = s.eta_s
    return f"{100 * s.progress:.0f}%", "" if eta is None else clock(eta)


def _objects(s, labels: dict) -> str:
    out = []
    for key, count in s.objects:
        gie, cls = (int(v) for v in key.split(":"))
        names = labels.get(gie) or []
        out.append(f"{names[cls] if 0 <= cls < len(names) else f'class {cls}'} {count}")
    return "  ".join(out)


def _sources(view: RunView, width: int, errors: bool, labels: dict) -> Text:
    """One line per source, its objects per class and its last error below it."""
    name_w = max(14, width - _FIXED)
    t = Text(f"{'id':>3}  {'source':<{name_w}} {'state':<12}{'fps':>7} {'avg fps':>7} {'frames':>8} "
             f"{'drops':>5} {'reconn':>6} {'lat ms':>7} {'done':>5} {'left':>8}  fps history\n", style="bold")
    for s in view.sources:
        t.append(f"{s.source_id:>3}  {middle(s.uri, name_w):<{name_w}} ")
        t.append(f"{s.state:<12}", style=STATE_STYLE.get(s.state, ""))
        latency = "" if s.latency_ms is None else f"{s.latency_ms:.1f}"
        done, left = _progress(s)
        t.append(f"{s.fps:>7.2f} {s.avg_fps:>7.2f} {s.frames:>8} {s.dropped:>5} {s.reconnects:>6} "
                 f"{latency:>7} {done:>5} {left:>8}  ")
        t.append(sparkline(s.fps_history) + "\n", style="cyan")
        if s.objects:
            t.append(f"     objects: {_objects(s, labels)}\n")
        if s.last_error:
            error = f"     last error: {s.last_error}"
            more = " … (e: in full)"
            if not errors and len(error) >= width:  # the last column stays free: no wrap
                error = error[:width - 1 - len(more)] + more
            t.append(error + "\n", style="red")
    t.rstrip()
    return t


def _compact(view: RunView, width: int) -> Text:
    """A narrow terminal: id, name, state, fps and progress on one short line per source."""
    name_w = max(8, width - 40)
    t = Text(f"{'id':>3} {'source':<{name_w}} {'state':<12}{'fps':>7} {'done':>6}\n", style="bold")
    for s in view.sources:
        done, _ = _progress(s)
        t.append(f"{s.source_id:>3} {middle(s.uri, name_w):<{name_w}} ")
        t.append(f"{s.state:<12}", style=STATE_STYLE.get(s.state, ""))
        t.append(f"{s.fps:>7.2f} {done:>6}\n")
        if s.last_error:
            t.append(f"    error: {s.last_error}"[:width] + "\n", style="red")
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

    def __init__(self, console: Console | None = None, *, keys: bool = False, labels: dict | None = None) -> None:
        self.console = console or Console()
        self.keys = keys
        self.labels = labels or {}
        self.errors = False  # the ``e`` key: last errors in full
        self._live = Live(console=self.console, auto_refresh=False, transient=False,
                          redirect_stdout=True, redirect_stderr=True)

    def start(self) -> None:
        self._live.start()

    def toggle_errors(self) -> None:
        self.errors = not self.errors

    def _render(self, view: RunView, keys: bool):
        return render(view, keys=keys, width=self.console.width, errors=self.errors, labels=self.labels)

    def update(self, view: RunView) -> None:
        self._live.update(self._render(view, self.keys), refresh=True)

    def stop(self, view: RunView | None = None) -> None:
        if view is not None:
            self._live.update(self._render(view, False), refresh=True)  # leave the final figures on screen
        self._live.stop()
