"""Child processes in tests: waited for on observable events (a line printed, a file grown) with limits
that only a hang reaches, and always killed — with every process they started — when the test ends.

``conftest.py`` also makes the test session a child subreaper, so a process orphaned by a killed parent
(a ``--workers`` child) stays the session's descendant, and fails the run if any is alive at its end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

GENEROUS = 300.0  # seconds: far beyond any healthy run here, even on a loaded 2-core machine


def descendants(pid: int) -> list[int]:
    """Every live (not zombie) process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` and everything below it, then reap it (its pipes closed)."""
    for pid in [*descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):
        proc.wait(timeout=30)


@contextmanager
def spawned(cmd: list[str], **kwargs) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen(cmd, **kwargs)``, killed with its descendants when the block ends."""
    proc = subprocess.Popen(cmd, **kwargs)
    try:
        yield proc
    finally:
        kill_tree(proc)


def wait_until(done: Callable[[], bool], proc: subprocess.Popen | None, what: str,
               timeout: float = GENEROUS) -> None:
    """Poll ``done()`` until it holds; fail naming ``what`` if ``proc`` ends first or the limit passes."""
    deadline = time.monotonic() + timeout
    while not done():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}:\n{err or out}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.1)


def collect(stream) -> list[str]:
    """The lines ``stream`` (a child's text pipe) gives, appended by a thread as they come."""
    import threading

    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    return lines


def file_grew(path: Path, min_bytes: int) -> Callable[[], bool]:
    return lambda: path.exists() and path.stat().st_size >= min_bytes


def lines_in(path: Path, n: int) -> Callable[[], bool]:
    return lambda: path.exists() and path.read_bytes().count(b"\n") >= n
