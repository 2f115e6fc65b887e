"""A real full disk for the tests: a small tmpfs mounted in the test's tmp dir (root only), and a way to
fill it so the next write gets ``ENOSPC`` from the kernel — the error a camera recorder on a full disk sees.

>>> with small_disk(tmp_path / "disk", size_kib=256) as disk:   # doctest: +SKIP
...     fill(disk, leave_kib=16)       # 16 KiB left: the next outputs run out part-way
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(where: Path, size_kib: int):
    """Mount a ``size_kib`` tmpfs at ``where`` for the ``with`` block (skips the test where mounting is
    not allowed: not root, no CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0777", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave_kib: int = 0) -> None:
    """Fill ``disk`` until the kernel refuses a byte, then give back ``leave_kib`` KiB."""
    filler = disk / "filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    if leave_kib:
        os.truncate(filler, max(0, filler.stat().st_size - leave_kib * 1024))
