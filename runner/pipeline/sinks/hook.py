"""Per-batch Python hooks: your function called with every batch that leaves the pipeline.

Two ways in (docs/python.md):

* ``dsrun.run(config, on_batch=fn)`` / ``dsrun.batches(config)`` (runner.api);
* the config: ``[application] dsrun-batch-hook=hooks.py:on_batch`` (the file relative to the config,
  like ``custom-lib-path`` parsers), for ``dsrun CONFIG`` runs.

The function gets a :class:`~runner.pipeline.batch.Batch` — per-frame columns (``source_id``,
``frame_num``, ``pts``…) and columnar ``objects`` / ``classifications`` — with ``batch.labels``
({gie-unique-id: class names}); ``frames`` only when asked (``frames=True``; else ``None``). It runs
on the hook's own thread, beside the other sinks, so a slow hook slows the pipeline (backpressure) but
never reorders it. A hook that raises stops the run cleanly (queued batches are dropped, files
closed, exit status 1) with an error naming the file, the line and the exception.

>>> seen = []
>>> stage = HookStage(lambda b: seen.append(b.frame_num.tolist()), where="test")
>>> import numpy as np
>>> from runner.pipeline.batch import Batch
>>> b = Batch(frames=np.zeros((1, 2, 2, 3), np.uint8), source_id=np.array([0]), frame_num=np.array([7]),
...           pts=np.array([0]), ntp_ts=np.array([0]), source_size=np.array([[2, 2]]))
>>> stage.process(b) is b, seen
(True, [[7]])
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import traceback
from pathlib import Path
from typing import Callable

from runner.errors import DsrunError
from runner.pipeline.batch import Batch
from runner.pipeline.sinks import register_output

KEY = "dsrun-batch-hook"


class HookError(DsrunError):
    """The batch hook raised (exit 1) or could not be loaded (exit 2); the message names file, line and
    function."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass
class HookBatch:
    """What a hook receives: the batch's columns, its labels, and frames only when asked."""

    batch: Batch
    labels: dict[int, list[str]]

    recorders: dict = dataclasses.field(default_factory=dict)

    def __getattr__(self, name):  # source_id, frame_num, objects, classifications, masks, eos…
        return getattr(self.batch, name)

    def smart_record(self, source_id: int, start_time: float | None = None,
                     duration: float | None = None) -> bool:
        """Start a smart-record clip of ``source_id`` (its ``[sourceN] smart-record`` must be set),
        ``start_time`` s before this batch's frame of it and ``duration`` s after (the config's
        ``smart-rec-start-time`` / ``smart-rec-default-duration`` when omitted). False when that source
        is already recording; ``KeyError`` when it has no smart record."""
        rows = (self.batch.source_id == source_id).nonzero()[0]
        at = float(self.batch.pts[rows[-1]]) / 1e9 if len(rows) else None
        return self.recorders[int(source_id)].start(start_time, duration, at=at)

    def __len__(self) -> int:
        return len(self.batch)


class HookStage:
    """A sink stage calling ``fn(batch)`` for every batch with frames (EOS-only batches are skipped)."""

    def __init__(self, fn: Callable, *, frames: bool = False, labels: dict | None = None,
                 where: str = "on_batch") -> None:
        self.fn, self.frames, self.labels, self.where = fn, frames, dict(labels or {}), where
        self.name = "batch-hook"
        self.failure: HookError | None = None  # what the hook raised (the run stopped on it)
        self.recorders: dict = {}  # source id -> SmartRecorder, set by build_graph

    def process(self, batch: Batch) -> Batch:
        if not len(batch):
            return batch
        view = batch if self.frames else dataclasses.replace(batch, frames=None, tiled=None)
        try:
            self.fn(HookBatch(view, self.labels, self.recorders))
        except Exception as exc:
            self.failure = HookError(_located(exc, self.fn, self.where))
            raise self.failure from exc
        return batch

    def close(self) -> None:
        pass


def _located(exc: BaseException, fn: Callable, where: str) -> str:
    """``hooks.py:12 on_batch raised ValueError: … — fix the hook``: the innermost frame of the hook's
    own file (else of the call)."""
    code = getattr(fn, "__code__", None)
    home = code.co_filename if code is not None else None
    frames = traceback.extract_tb(exc.__traceback__)[1:] or traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename == home] or frames
    spot = mine[-1] if mine else None
    at = f"{spot.filename}:{spot.lineno}" if spot is not None else where
    return (f"{at} [batch hook] {where} raised {type(exc).__name__}: {exc} — fix the hook "
            "(docs/python.md says what it receives)")


def load_hook(spec: str, base: Path, where: str) -> Callable:
    """``file.py:function`` (file relative to ``base``) as a function; :class:`HookError` otherwise."""
    path_text, _, name = spec.rpartition(":")
    if not path_text or not name:
        raise HookError(f"{where} {KEY}: {spec!r} is not file.py:function — write e.g. "
                        f"{KEY}=hooks.py:on_batch", exit_code=2)
    path = Path(path_text)
    path = path if path.is_absolute() else (base / path)
    if not path.is_file():
        raise HookError(f"{where} {KEY}: {path} does not exist — point it at a .py file next to the config",
                        exit_code=2)
    module_spec = importlib.util.spec_from_file_location(f"dsrun_hook_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise HookError(f"{where} {KEY}: importing {path} failed: {type(exc).__name__}: {exc} "
                        "— fix the Python file", exit_code=2) from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        funcs = [n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")]
        raise HookError(f"{where} {KEY}: {path} has no function {name!r} (it defines: "
                        f"{', '.join(funcs) or 'none'}) — fix the name or the file", exit_code=2)
    return fn


def _config_hook(app, options):
    """The config's ``[application] dsrun-batch-hook``, as an app-wide output."""
    spec = getattr(getattr(app, "application", None), "dsrun_batch_hook", None)
    if not spec:
        return None
    from runner.pipeline.labels import app_labels

    path = Path(getattr(app, "path", "") or ".")
    where = f"{path}:[application]"
    fn = load_hook(spec, path.parent, where)
    return HookStage(fn, frames=False, labels=app_labels(app), where=spec)


register_output(_config_hook)
