"""``--report run.json``: what a run did, per source and in total, and how it ended.

``inference`` counts what the GIEs produced: ``{"objects": {gie-unique-id: {class-id: n}}, "labels":
{gie-unique-id: {label: n}}}`` (objects before the tracker, classifier labels attached to objects or
frames); ``totals.objects`` is their sum. With ``[nvds-analytics]``, ``analytics`` holds per source id the
cumulative crossings per line and the latest ROI/overcrowding counts; with ``[sinkN] type=6``, ``brokers``
holds per sink its protocol, address, state and how many payloads were sent, dropped or left queued.

Exit status (also in the report): 0 every source ended normally, 1 some source, stage or output failed
(the other sources still ran to the end), 2 config error, 3 model or engine error (the model cannot be
read, built or loaded), 130 Ctrl-C, 143 SIGTERM; the ``q`` key gives 0 with status ``stopped_by_user``,
or 1 when something failed during the run, as deepstream-app's ``q`` (see runner.stopping). Every one of them writes the report that was asked for.

>>> from runner.pipeline.stats import RunStats
>>> stats = RunStats(); s = stats.add_source(0, "file:///v.mp4"); s.state = "ended"
>>> exit_status(stats, interrupted=False, stage_error=None)
0
>>> s.state = "failed"; exit_status(stats, interrupted=False, stage_error=None)
1
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from runner.errors import DsrunError
from runner.pipeline.stats import RunStats
from runner.redact import redact

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_MODEL, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143
STATUS = {EXIT_OK: "ok", EXIT_FAILED: "failed", EXIT_CONFIG: "config_error", EXIT_MODEL: "model_error",
          EXIT_INTERRUPTED: "interrupted", EXIT_TERMINATED: "terminated"}


class ReportError(DsrunError):
    """The ``--report`` file cannot be written (full disk, read-only directory…)."""

    exit_code = EXIT_FAILED


def exit_status(stats: RunStats, interrupted: bool, stage_error) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if stage_error is not None or any(s.state == "failed" for s in stats.sources.values()) \
            or any(st.error for st in stats.stages.values()):  # an output that failed and stopped alone
        return EXIT_FAILED
    return EXIT_OK


def _fps(frames: int, start: float | None, end: float | None) -> float:
    if not frames or start is None or end is None or end <= start:
        return 0.0
    return round(frames / (end - start), 2)


def _since(when: float | None, start: float) -> float | None:
    """Seconds from the start of the run to ``when`` (None: never)."""
    return None if when is None else round(when - start, 3)


def build_report(stats: RunStats, *, config: str | Path | None, exit_code: int,
                 errors: list[str] = (), interrupted: bool = False) -> dict:
    """The report as a JSON-ready dict (every string already redacted)."""
    now = stats.clock()
    sources = []
    for sid, s in sorted(stats.sources.items()):
        end = s.last_output_at or s.ended_at or now
        sources.append({
            "source_id": sid, "uri": redact(s.uri), "state": s.state,
            "frames_decoded": s.frames_decoded, "frames_processed": s.frames_processed,
            "dropped": s.dropped, "reconnects": s.reconnects, "damaged_packets": s.damaged_packets,
            "errors": [redact(e) for e in s.errors],
            "fps": _fps(s.frames_processed, s.first_output_at or s.started_at, end),
            "first_output_s": _since(s.first_output_at, stats.started_at),
            "last_output_s": _since(s.last_output_at, stats.started_at),
        })
    elapsed = now - stats.started_at
    total = lambda key: sum(src[key] for src in sources)
    stages = {name: {"batches": st.batches, "frames": st.frames, "busy_s": round(st.busy_s, 4),
                     "ms_per_frame": round(st.ms_per_frame, 3), "error": redact(st.error) if st.error else None}
              for name, st in stats.stages.items()}
    inference = stats.inference.snapshot()  # objects per GIE and class id, classifier labels per GIE
    return {
        "config": str(config) if config else None,
        "exit_code": exit_code,
        # the dashboard's q: a successful run that the user ended early (runner.stopping)
        "status": "stopped_by_user" if stats.stopped_by == "q" and exit_code == EXIT_OK
        else STATUS.get(exit_code, "error"),
        "interrupted": interrupted or stats.stopped_by is not None,
        "stopped_by": stats.stopped_by,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "elapsed_s": round(elapsed, 3),
        "errors": [redact(e) for e in errors],
        "sources": sources,
        "totals": {
            "sources": len(sources),
            "sources_failed": sum(1 for s in sources if s["state"] == "failed"),
            "frames_decoded": total("frames_decoded"), "frames_processed": total("frames_processed"),
            "dropped": total("dropped"), "reconnects": total("reconnects"),
            "damaged_packets": total("damaged_packets"),
            "fps": round(total("frames_processed") / elapsed, 2) if elapsed > 0 else 0.0,
            "objects": sum(n for per_class in inference["objects"].values() for n in per_class.values()),
        },
        "stages": stages,
        "inference": inference,
        **({"analytics": {str(sid): a for sid, a in sorted(stats.analytics.items())}} if stats.analytics else {}),
        **({"brokers": {name: dict(b) for name, b in sorted(stats.brokers.items())}} if stats.brokers else {}),
    }


def write_report(path: str | Path, report: dict) -> None:
    """Write atomically (a reader never sees half a file); a disk that refuses it raises
    :class:`ReportError` and leaves nothing behind (no half-written temporary file on a full disk)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"--report {path}: cannot write it: {exc.strerror or exc} — free space on that disk "
                          "or give --report a path on another one") from None


def save_report(path: str | Path, report: dict) -> int:
    """:func:`write_report` for the end of a run: returns ``report["exit_code"]``, or 1 (said on stderr)
    when the file cannot be written — the run's other outputs are kept, never a traceback."""
    try:
        write_report(path, report)
    except ReportError as error:
        logging.getLogger("dsrun").error("%s", error)
        return report["exit_code"] or EXIT_FAILED
    return report["exit_code"]
