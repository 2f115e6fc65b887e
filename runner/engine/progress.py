"""Build progress: a rich progress bar with phase and elapsed time on a terminal, plain log lines
otherwise (CI logs, pipes). Backends call ``phase(name, total)`` and ``advance()``.

>>> import io
>>> out = io.StringIO()
>>> p = PlainProgress(stream=out, clock=iter([0.0, 0.5, 1.5, 2.0]).__next__)
>>> p.start("det.onnx fp16 b4")
>>> p.phase("parse"); p.phase("serialise"); p.finish("built")
>>> print(out.getvalue().strip())
engine det.onnx fp16 b4: parse (0.5s)
engine det.onnx fp16 b4: serialise (1.5s)
engine det.onnx fp16 b4: built in 2.0s
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

#: The phases of a build, in order (backends may skip some).
PHASES = ("parse", "optimise", "convert", "calibrate", "quantise", "serialise", "validate")


class Progress:
    """Silent progress; the base of the two visible kinds."""

    def start(self, title: str) -> None: ...

    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self, outcome: str) -> None: ...

    def message(self, text: str) -> None: ...


class PlainProgress(Progress):
    """One line per phase (and every 10% of a counted phase), with seconds since the start."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.clock = clock
        self.title = ""
        self.t0 = 0.0
        self.total: int | None = None
        self.done = 0
        self.name = ""

    def start(self, title: str) -> None:
        self.title, self.t0 = title, self.clock()

    def phase(self, name: str, total: int | None = None) -> None:
        self.name, self.total, self.done = name, total, 0
        suffix = f" 0/{total}" if total else ""
        self._line(f"{name}{suffix}")

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.total:
            step = max(1, self.total // 10)
            if self.done % step == 0 or self.done == self.total:
                self._line(f"{self.name} {self.done}/{self.total}")

    def finish(self, outcome: str) -> None:
        print(f"engine {self.title}: {outcome} in {self.clock() - self.t0:.1f}s",
              file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(f"engine {self.title}: {text}", file=self.stream, flush=True)

    def _line(self, text: str) -> None:
        print(f"engine {self.title}: {text} ({self.clock() - self.t0:.1f}s)", file=self.stream,
              flush=True)


class RichProgress(Progress):
    """A live bar while building (``⠋ det.onnx fp16 b4  calibrate 37/100 ━━━━━╸   0:00:12``), then
    one summary line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, SpinnerColumn,
                                   TextColumn, TimeElapsedColumn)

        self.console = Console(file=stream or sys.stderr)
        self.bar = Bar(SpinnerColumn(), TextColumn("[bold]{task.fields[title]}"),
                       TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), console=self.console, transient=True)
        self.task = None
        self.title = ""
        self.t0 = 0.0

    def start(self, title: str) -> None:
        self.title, self.t0 = title, time.monotonic()
        self.bar.start()
        self.task = self.bar.add_task("start", total=None, title=title)

    def phase(self, name: str, total: int | None = None) -> None:
        self.bar.update(self.task, description=name, total=total, completed=0)

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)

    def finish(self, outcome: str) -> None:
        self.bar.stop()  # the live bar goes; one summary line stays
        self.bar.remove_task(self.task)
        self.console.print(f"engine {self.title}: {outcome} in {time.monotonic() - self.t0:.1f}s")

    def message(self, text: str) -> None:
        self.console.print(f"engine {self.title}: {text}")


def auto_progress(stream: TextIO | None = None) -> Progress:
    """Rich on a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    return RichProgress(stream) if getattr(stream, "isatty", lambda: False)() else PlainProgress(stream)
