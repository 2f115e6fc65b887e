"""Output files that never end inside a unit, and the error a failing output gives.

Every file dsrun writes while running (``[sinkN] type=3`` fragments, ``--jsonl`` lines, KITTI dumps)
reaches the disk in whole units: :func:`write_whole` writes a unit with as many ``write`` calls as it
takes and, when the disk refuses part of it (``ENOSPC``, ``EDQUOT``, ``EIO``), cuts the file back to
where the unit began. A reader never sees half a line or half an MP4 fragment, even on a full disk.

A failing output stops alone (the graph keeps the other outputs and the sources going, see
``runner.pipeline.graph``); :func:`output_failure` is the message it leaves, naming the output, its
path, how far it got and what to do:

>>> import errno
>>> output_failure("sink0", OSError(errno.ENOSPC, "No space left on device"), frames=120,
...                path="/mnt/full/out.mp4")
"sink0 stopped after 120 frame(s): cannot write /mnt/full/out.mp4: No space left on device — free space on that disk or write this output to another one; the other outputs and sources went on"
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from runner.errors import DsrunError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class OutputFileError(DsrunError):
    """An output file cannot be written; the message names the file and what to do."""

    exit_code = 1

    def __init__(self, path: str | Path, exc: OSError) -> None:
        self.path, self.errno = str(path), exc.errno
        self.reason, self.hint = str(exc.strerror or exc), disk_hint(exc)
        super().__init__(f"cannot write {path}: {self.reason} — {self.hint}")


def disk_hint(exc: BaseException) -> str:
    """What to do about an ``OSError`` from writing an output."""
    code = getattr(exc, "errno", None)
    if code in _DISK_FULL:
        return "free space on that disk or write this output to another one"
    if code in _NOT_WRITABLE:
        return "make the directory writable or write this output elsewhere"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "check the directories in the path (dsrun creates missing ones where it may)"
    return "check the disk and the path"


def output_failure(name: str, exc: BaseException, *, frames: int, path: str | Path | None = None) -> str:
    """The one-line error of output ``name`` that stopped on ``exc`` after ``frames`` frames."""
    if isinstance(exc, OutputFileError):
        what = str(exc)
    elif isinstance(exc, OSError):
        where = exc.filename or path
        what = (f"cannot write {where}: " if where else "") + f"{exc.strerror or exc} — {disk_hint(exc)}"
    elif isinstance(exc, DsrunError):
        what = str(exc)
    else:
        what = f"{type(exc).__name__}: {exc} — run with --debug for the traceback"
    return f"{name} stopped after {frames} frame(s): {what}; the other outputs and sources went on"


def write_whole(fd: int, data: bytes | bytearray | memoryview, path: str | Path) -> None:
    """Append ``data`` to the file open at ``fd`` entirely, or not at all (:class:`OutputFileError`)."""
    try:
        start = os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:  # a pipe or terminal: nothing to cut back
        start = None
    with memoryview(data) as view:
        done = 0
        try:
            while done < len(view):
                done += os.write(fd, view[done:])
        except OSError as exc:
            if done and start is not None:
                try:
                    os.ftruncate(fd, start)  # give back the part of the unit that got in
                    os.lseek(fd, start, os.SEEK_SET)
                except OSError:
                    pass
            raise OutputFileError(path, exc) from None


def open_output(path: str | Path) -> int:
    """Create (or empty) ``path`` for writing and return its descriptor; :class:`OutputFileError`."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise OutputFileError(path, exc) from None


def write_file(path: str | Path, data: bytes) -> None:
    """Write a whole small file (a KITTI dump): complete, or absent (:class:`OutputFileError`)."""
    fd = open_output(path)
    try:
        write_whole(fd, data, path)
    except OutputFileError:
        os.close(fd)
        Path(path).unlink(missing_ok=True)
        raise
    os.close(fd)
