"""``--jsonl-rotate SIZE|TIME`` and ``--jsonl-keep N``: a line output that runs for days without
filling the disk.

The file named on the command line is always the one being written. When the next batch of lines
would take it past ``SIZE`` (``500MB``, ``2GB``, ``64KiB``…), or when it has been open for ``TIME``
(``30s``, ``15m``, ``1h``, ``1d``), it is closed and renamed with the next number before the suffix
(``frames.jsonl`` → ``frames.000001.jsonl``, ``frames.000002.jsonl``…) and a new one is started. Files
hold whole lines only (a batch's lines never straddle two files). ``--jsonl-keep N`` deletes the oldest
rotated files beyond the newest ``N`` (0, the default: keep them all), an earlier run's too; a run
started again numbers on from the files already there.

>>> parse_rotation("500MB"), parse_rotation("64KiB"), parse_rotation("1h"), parse_rotation("15m")
(Rotation(max_bytes=500000000, max_seconds=None), Rotation(max_bytes=65536, max_seconds=None), \
Rotation(max_bytes=None, max_seconds=3600.0), Rotation(max_bytes=None, max_seconds=900.0))
>>> parse_rotation("10 parsecs")
Traceback (most recent call last):
...
ValueError: '10 parsecs' is neither a size (500MB, 2GB, 64KiB) nor a time (30s, 15m, 1h, 1d)
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from runner.pipeline.output_files import open_output, write_whole

_SIZES = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4,
          "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}
_TIMES = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Rotation:
    max_bytes: int | None = None
    max_seconds: float | None = None


def parse_rotation(text: str) -> Rotation:
    """``SIZE`` (decimal KB/MB/GB/TB or binary KiB/MiB/GiB/TiB, B) or ``TIME`` (s, m, h, d)."""
    m = _SPEC.match(str(text))
    unit = m.group(2) if m else ""
    if m and unit.lower() in _SIZES and unit not in _TIMES:
        value = int(float(m.group(1)) * _SIZES[unit.lower()])
        if value > 0:
            return Rotation(max_bytes=value)
    if m and unit in _TIMES and float(m.group(1)) > 0:
        return Rotation(max_seconds=float(m.group(1)) * _TIMES[unit])
    raise ValueError(f"{text!r} is neither a size (500MB, 2GB, 64KiB) nor a time (30s, 15m, 1h, 1d)")


class RotatingLines:
    """Appends whole batches of lines to ``path``, rotating by ``rotation`` and keeping ``keep`` old files."""

    def __init__(self, path: Path, rotation: Rotation | None = None, keep: int = 0,
                 clock=time.monotonic) -> None:
        self.path, self.rotation, self.keep, self.clock = Path(path), rotation or Rotation(), int(keep), clock
        self.rotated = self._existing()  # oldest first, earlier runs' included (--jsonl-keep counts them)
        # a restarted run numbers on: it never overwrites an earlier run's files
        self._number = int(self.rotated[-1].name.split(".")[-2]) if self.rotated else 0
        self._fd = open_output(self.path)
        self._size, self._opened = 0, clock()

    def _rotated_name(self, number: int) -> Path:
        suffix = self.path.suffix
        stem = self.path.name[: -len(suffix)] if suffix else self.path.name
        return self.path.with_name(f"{stem}.{number:06d}{suffix}")

    def _existing(self) -> list[Path]:
        suffix = self.path.suffix
        stem = self.path.name[: -len(suffix)] if suffix else self.path.name
        pattern = re.compile(re.escape(stem) + r"\.(\d{6})" + re.escape(suffix) + "$")
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return []
        return [self.path.with_name(n) for n in sorted(n for n in names if pattern.match(n))]

    def _due(self, incoming: int) -> bool:
        r = self.rotation
        if self._size == 0:
            return False
        if r.max_bytes is not None and self._size + incoming > r.max_bytes:
            return True
        return r.max_seconds is not None and self.clock() - self._opened >= r.max_seconds

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = None
        self._number += 1
        target = self._rotated_name(self._number)
        os.replace(self.path, target)
        self.rotated.append(target)
        while self.keep and len(self.rotated) > self.keep:
            self.rotated.pop(0).unlink(missing_ok=True)
        self._fd = open_output(self.path)
        self._size, self._opened = 0, self.clock()

    def write(self, data: bytes) -> None:
        """``data`` (whole lines) into the current file, rotating first when it is due."""
        if self._due(len(data)):
            self._rotate()
        write_whole(self._fd, data, self.path)
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
