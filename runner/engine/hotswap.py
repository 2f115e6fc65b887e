"""Hot swap: replace a running engine between batches when its files change, with no downtime.

The inference stage holds an :class:`EngineHandle` and calls :meth:`EngineHandle.maybe_swap` between
batches. The handle watches ``model-engine-file`` (a new engine uploaded in place) and ``onnx-file``
(a new model: rebuilt in the background while the old engine keeps serving). A replacement is swapped
in only after it loads, has the same input/output signature and runs a batch; otherwise it is refused
with a message and the old engine keeps running.

>>> handle = EngineHandle(spec, name="primary-gie", on_state=stats.set_engine)  # doctest: +SKIP
>>> for batch in batches:                                                     # doctest: +SKIP
...     outputs = handle.maybe_swap().infer(batch.tensor)
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from runner.engine.base import Engine, EngineError, signature
from runner.engine.build import load_engine, plan_engine
from runner.engine.cache import file_sha256
from runner.engine.progress import Progress
from runner.engine.spec import EngineSpec

log = logging.getLogger("dsrun.engine")
StateCallback = Callable[[str, str], None]


def _stat(path: Path | None) -> tuple[int, int, int] | None:
    try:
        st = path.stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino) if st else None


class EngineHandle:
    """The current engine of one GIE, swappable while running.

    ``on_state(name, state)`` receives ``"building"``, ``"loaded"``, ``"swapped"`` and ``"failed"``
    (the pipeline passes ``RunStats.set_engine``); ``on_message(text)`` receives refusals and swaps
    (default: the ``dsrun.engine`` logger). ``check_interval_s`` bounds how often files are stat'ed.
    """

    def __init__(self, spec: EngineSpec, *, name: str | None = None,
                 engine_dir: str | Path | None = None, on_state: StateCallback | None = None,
                 on_message: Callable[[str], None] | None = None, progress: Progress | None = None,
                 check_interval_s: float = 1.0) -> None:
        self.spec = spec
        self.name = name or spec.name
        self.engine_dir = engine_dir
        self.progress = progress
        self.check_interval_s = check_interval_s
        self._on_state = on_state or (lambda name, state: None)
        self._on_message = on_message or log.warning
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"swap-{self.name}")
        self._pending: Future | None = None
        self._last_check = 0.0
        self.swaps = 0
        self.messages: list[str] = []
        self._retired: list[Engine] = []  # replaced engines, closed one swap later
        self._on_state(self.name, "building")
        try:
            self._current = load_engine(spec, engine_dir, progress)
        except BaseException:
            self._on_state(self.name, "failed")
            raise
        self._on_state(self.name, "loaded")
        self._seen = self._snapshot()

    @property
    def current(self) -> Engine:
        return self._current

    def maybe_swap(self) -> Engine:
        """Between batches: finish a validated swap, or notice changed files. Cheap (a stat at most
        every ``check_interval_s``). Returns the engine to use for the next batch."""
        if self._pending is not None and self._pending.done():
            self._finish(self._pending)
            self._pending = None
        now = time.monotonic()
        if self._pending is None and now - self._last_check >= self.check_interval_s:
            self._last_check = now
            changed = self._changed()
            if changed:
                self._pending = self._pool.submit(self._prepare, changed)
        return self._current

    def wait(self, timeout: float = 60.0) -> Engine:
        """Block until a replacement being prepared is swapped in or refused (tests, tools)."""
        deadline = time.monotonic() + timeout
        self.check_interval_s, interval = 0.0, self.check_interval_s
        try:
            self.maybe_swap()
            while self._pending is not None and time.monotonic() < deadline:
                self._pending.exception(timeout=max(0.0, deadline - time.monotonic()))
                self.maybe_swap()
        finally:
            self.check_interval_s = interval
        return self._current

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for engine in self._retired + [self._current]:
            engine.close()
        self._retired = []

    # -- internals ----------------------------------------------------------------------------

    def _watched(self) -> dict[str, Path]:
        files = {"onnx-file": self.spec.onnx_file}
        if self.spec.model_engine_file is not None:
            files["model-engine-file"] = self.spec.model_engine_file
        return files

    def _snapshot(self) -> dict[str, tuple]:
        return {key: (_stat(path), _hash(path)) for key, path in self._watched().items()}

    def _changed(self) -> dict[str, tuple] | None:
        """The watched files whose bytes changed since the last accepted or refused version."""
        out = {}
        for key, path in self._watched().items():
            st = _stat(path)
            old_st, old_hash = self._seen.get(key, (None, None))
            if st is None or st == old_st:
                continue
            digest = _hash(path)
            if digest == old_hash:
                self._seen[key] = (st, digest)  # touched, not changed
                continue
            out[key] = (st, digest)
        return out or None

    def _prepare(self, changed: dict[str, tuple]) -> tuple[dict[str, tuple], Engine | str]:
        """In the background: build/load and validate the replacement (never raises)."""
        what = "model-engine-file" if "model-engine-file" in changed else "onnx-file"
        path = self._watched()[what]
        try:
            if what == "model-engine-file" and "onnx-file" not in changed:
                plan = plan_engine(self.spec)
                engine = plan.module().load(path, plan)
                engine.origin = "engine-file"
            else:  # a rebuild while the dashboard's live view owns the terminal: messages only
                engine = load_engine(self.spec, self.engine_dir, _Messages(self._on_message))
            problem = _incompatible(self._current, engine)
            if problem:
                engine.close()
                return changed, f"{path}: replacement refused — {problem}; still running {self._current.path}"
            return changed, engine
        except EngineError as exc:
            return changed, f"{path}: replacement refused — {exc}; still running {self._current.path}"
        except Exception as exc:  # a broken file must never stop the running pipeline
            return changed, (f"{path}: replacement refused — it does not load ({type(exc).__name__}: "
                             f"{exc}); still running {self._current.path}")

    def _finish(self, future: Future) -> None:
        changed, result = future.result()
        self._seen.update(changed)
        if isinstance(result, str):
            self.messages.append(result)
            self._on_message(result)
            return
        old, self._current = self._current, result
        self._seen = self._snapshot()  # our own rebuild may have rewritten model-engine-file
        self.swaps += 1
        text = f"{self.name}: swapped in {result.path} ({result.describe()})"
        self.messages.append(text)
        self._on_message(text)
        self._on_state(self.name, "swapped")
        # a call that began on the old engine (an async classifier, say) may still be running:
        # release it at the next swap, not now
        for engine in self._retired:
            engine.close()
        self._retired = [old]


class _Messages(Progress):
    """Build progress for a background rebuild: the outcome as one message, no live display."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.title, self.t0 = say, "", 0.0

    def start(self, title: str) -> None:
        self.title, self.t0 = title, time.monotonic()

    def finish(self, outcome: str) -> None:
        self.say(f"engine {self.title}: {outcome} in {time.monotonic() - self.t0:.1f}s (hot swap)")

    def message(self, text: str) -> None:
        self.say(text)


def _hash(path: Path | None) -> str | None:
    try:
        return file_sha256(path) if path else None
    except OSError:
        return None


def _incompatible(old: Engine, new: Engine) -> str | None:
    if signature(old.inputs) != signature(new.inputs):
        return (f"its inputs ({', '.join(map(str, new.inputs))}) differ from the running engine's "
                f"({', '.join(map(str, old.inputs))})")
    if [o.name for o in old.outputs] != [o.name for o in new.outputs]:
        return (f"its outputs ({', '.join(o.name for o in new.outputs)}) differ from the running "
                f"engine's ({', '.join(o.name for o in old.outputs)})")
    feeds = {s.name: np.zeros(s.batched(1), s.dtype) for s in new.inputs if all(d > 0 for d in s.shape)}
    if len(feeds) == len(new.inputs):
        try:
            new.infer(feeds)
        except Exception as exc:
            return f"a test batch fails on it ({exc})"
    return None
