"""dsrun from Python: run a DeepStream config and get every batch's results in your own code.

Import it as ``dsrun`` (the package's own name, so it collides with nothing else a user has)::

    import dsrun

    def on_batch(batch):                      # called once per batch, in pipeline order
        for sid, n in zip(batch.source_id, batch.frame_num):
            ...
        cars = batch.objects[batch.objects.class_id == 0]   # columnar: one numpy row per object

    result = dsrun.run("deepstream_app_config.txt", on_batch=on_batch)
    result.exit_code                          # 0: every source ended normally

    for batch in dsrun.batches("deepstream_app_config.txt", frames=True):
        image = batch.frames[0]               # (H, W, 3) uint8 RGB at the streammux size
        break                                 # leaving the loop stops the run cleanly

A batch (:class:`runner.pipeline.sinks.hook.HookBatch`) has the columns of
:class:`runner.pipeline.batch.Batch` — ``source_id``, ``frame_num``, ``pts``, ``ntp_ts``,
``objects`` (``frame``, ``gie_id``, ``class_id``, ``confidence``, ``xyxy``, ``track_id``…),
``classifications``, ``masks``, ``eos`` — plus ``labels`` ({gie-unique-id: class names}).
``frames`` is ``None`` unless ``frames=True`` (copying pixels out costs time). ``dsrun.to_detections``
turns one frame's objects into ``supervision.Detections``.

A callback that raises stops the run (queued batches are dropped, output files are closed) and
:func:`run` raises :class:`HookError` naming the file, line and exception.

>>> import dsrun, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "app.txt").write_text("[source0]\\nenable=1\\ntype=3\\nuri=file://" + str(CLIP) +
...     "\\n[streammux]\\nwidth=64\\nheight=48\\nbatch-size=1\\n[sink0]\\nenable=1\\ntype=1\\n")
>>> numbers = []
>>> dsrun.run(folder / "app.txt", on_batch=lambda b: numbers.extend(b.frame_num.tolist())).exit_code
0
>>> numbers == list(range(len(numbers))) and len(numbers) > 0
True
>>> next(iter(dsrun.batches(folder / "app.txt", frames=True))).frames.shape
(1, 48, 64, 3)
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from runner.pipeline.sinks.hook import HookBatch, HookError, HookStage

__all__ = ["run", "batches", "RunResult", "HookError", "HookBatch"]


@dataclass
class RunResult:
    """How a run ended: ``exit_code`` as ``dsrun CONFIG`` would exit, ``errors`` (sources or stages
    that failed, credentials redacted), ``report`` (what ``--report`` writes)."""

    exit_code: int
    errors: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)


def _prepare(config, on_batch: Callable | None, *, frames: bool, jsonl, report, engine_dir):
    from runner.app import prepare_engines
    from runner.config import load_app
    from runner.pipeline.graph import build_graph
    from runner.pipeline.labels import app_labels
    from runner.pipeline.sinks import RunOptions, build_sink_stages
    from runner.pipeline.stats import RunStats

    app = load_app(str(config))
    options = RunOptions(jsonl=Path(jsonl) if jsonl else None, report=Path(report) if report else None,
                         dashboard=False, engine_dir=Path(engine_dir) if engine_dir else None)
    stats = RunStats()
    engines = prepare_engines(app, options, stats)
    sinks = build_sink_stages(app, options)
    hook = None
    if on_batch is not None:
        where = getattr(on_batch, "__qualname__", "on_batch")
        hook = HookStage(on_batch, frames=frames, labels=app_labels(app), where=where)
        sinks.append(hook)
    graph = build_graph(app, stats, engines=engines, options=options, sinks=sinks)
    return graph, stats, options, hook


def _finish(graph, stats, options, hook, config) -> RunResult:
    from runner.pipeline.report import build_report, write_report
    from runner.placement.inprocess import outcome_errors, run_graph

    outcome, code = run_graph(graph, stats, quiet=True)
    errors = outcome_errors(outcome)
    doc = build_report(stats, config=str(config), exit_code=code, errors=errors,
                       interrupted=outcome.interrupted)
    if options.report:
        write_report(options.report, doc)
    if hook is not None and hook.failure is not None:
        raise hook.failure
    return RunResult(code, errors, doc)


def run(config: str | Path, on_batch: Callable[[HookBatch], object] | None = None, *, frames: bool = False,
        jsonl: str | Path | None = None, report: str | Path | None = None,
        engine_dir: str | Path | None = None) -> RunResult:
    """Run ``config`` to its end (its own sinks too), calling ``on_batch`` with every batch.

    ``frames=True`` hands the batch's pixels too. ``jsonl``/``report``/``engine_dir`` are the
    command line's ``--jsonl``, ``--report``, ``--engine-dir``. Config errors raise
    ``runner.config.ConfigError`` (``file:line [group] key: problem — fix``)."""
    prepared = _prepare(config, on_batch, frames=frames, jsonl=jsonl, report=report, engine_dir=engine_dir)
    return _finish(*prepared, config)


_END = object()


def batches(config: str | Path, *, frames: bool = False, buffer: int = 2, **kwargs) -> Iterator[HookBatch]:
    """Iterate over the batches of a run of ``config`` (in pipeline order). The pipeline runs in a
    background thread and waits while you hold a batch (at most ``buffer`` wait in between);
    leaving the loop early stops the run and closes its outputs. A failed run raises at the end."""
    pending: queue.Queue = queue.Queue(maxsize=max(1, buffer))
    stop = threading.Event()

    def hand_over(batch) -> None:
        while not stop.is_set():
            try:
                pending.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    prepared = _prepare(config, hand_over, frames=frames, **{
        k: kwargs.get(k) for k in ("jsonl", "report", "engine_dir")})
    graph = prepared[0]
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = _finish(*prepared, config)
        except BaseException as exc:  # handed to the consumer
            outcome["error"] = exc
        finally:
            pending.put(_END)

    thread = threading.Thread(target=work, name="dsrun-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = pending.get()
            if item is _END:
                break
            yield item
    finally:
        stop.set()
        graph.drain()
        while thread.is_alive():  # let the hook's queue drain so the run can finish
            try:
                pending.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
