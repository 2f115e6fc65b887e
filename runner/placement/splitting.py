"""What can be split over shards: outputs that need every source in one process are refused, located
at the config line, before anything starts (``--workers`` and ``--ray`` alike)."""

from __future__ import annotations

from pathlib import Path

from runner.errors import DsrunError
from runner.pipeline.sinks import RunOptions

SPLITTABLE_SINKS = {1: "fakesink", 2: "display", 5: "display", 6: "message broker"}
_SINK_NAMES = {3: "encode to file", 4: "RTSP streaming"}


class WorkersError(DsrunError):
    """A split run cannot run as asked (exit 2: fix the command line) or a worker failed."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_splittable(app, options: RunOptions) -> None:
    """Raise when the config's outputs need every source in one process: an enabled
    ``[tiled-display]``, or a sink other than fakesink/display (1, 2, 5) and message broker (6).
    ``--jsonl`` is refused too (one file per run); KITTI dumps are per source and frame, so they split.

    Raises ``ConfigError`` (exit 2) naming ``file:line [group] key`` for config problems."""
    from runner.config.diagnostics import ConfigError, Diagnostic

    how = options.placement_name
    if options.jsonl is not None:
        raise WorkersError(f"--jsonl cannot be combined with {how}: the processes would each write a "
                           f"part of one file — run without {how}, or use [application] "
                           "gie-kitti-output-dir (one file per source and frame)")
    if options.rest_port is not None:
        raise WorkersError(f"--rest-port cannot be combined with {how}: streams added at run time join "
                           f"one process's batch — run without {how}")
    line = _line_finder(app)
    problems = []
    sl = getattr(app, "source_list", None)
    if sl is not None and sl.use_nvmultiurisrcbin:
        problems.append(Diagnostic(
            "error", "unsupported", str(app.path), line("source-list", "use-nvmultiurisrcbin"), "source-list",
            "use-nvmultiurisrcbin", f"streams added through the REST API join one process's batch, which "
            f"{how} splits", f"set use-nvmultiurisrcbin=0 or run without {how}"))
    tiled = int(getattr(app.tiled_display, "enable", 0) or 0)
    if tiled:
        problems.append(Diagnostic(
            "error", "unsupported", str(app.path), line("tiled-display", "enable"), "tiled-display", "enable",
            f"enable={tiled} tiles every source into one picture, which {how} cannot make when the "
            "sources run in separate processes", f"set enable=0 or run without {how}"))
    for sink in app.sinks:
        kind = int(sink.type)
        if sink.enable and kind not in SPLITTABLE_SINKS:
            group = sink.group or f"sink{sink.index}"
            what = _SINK_NAMES.get(kind, "this sink")
            problems.append(Diagnostic(
                "error", "unsupported", str(app.path), line(group, "type"), group, "type",
                f"type={kind} ({what}) needs every source in one process, which {how} does not keep",
                f"use type=1 (fakesink) or 6 (message broker), set enable=0, or run without {how}"))
    if problems:
        raise ConfigError(problems)


def _line_finder(app):
    """``line(group, key)``: where the key (else its group) is written in the app config, or None."""
    from runner.config.files import read_document

    doc = read_document(Path(app.path), [], what="app config") if getattr(app, "path", None) else None

    def line(group: str, key: str) -> int | None:
        g = doc.groups.get(group) if doc is not None else None
        entry = g.entries.get(key) if g is not None else None
        return entry.line if entry is not None else (g.line if g is not None else None)

    return line
