"""The engine interface every backend implements, and the error the engine layer raises.

An :class:`Engine` is a loaded, runnable model: named inputs and outputs with per-sample shapes and
dtypes (DeepStream's convention: ``infer-dims=3;544;960`` is the shape *without* the batch axis),
a maximum batch, and :meth:`Engine.infer`.

>>> spec = TensorSpec("input_1", (3, 544, 960), np.dtype("float32"))
>>> spec.batched(4)
(4, 3, 544, 960)
>>> str(spec)
'input_1 float32[3x544x960]'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from runner.errors import DsrunError


class EngineError(DsrunError):
    """A model or engine problem a person can fix; the message names the file and what to do."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output: ``shape`` excludes the batch axis; ``-1`` marks a dynamic dimension."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def batched(self, n: int) -> tuple[int, ...]:
        return (n, *self.shape)

    def __str__(self) -> str:
        dims = "x".join("?" if d < 0 else str(d) for d in self.shape)
        return f"{self.name} {np.dtype(self.dtype).name}[{dims}]"


def signature(specs: tuple[TensorSpec, ...]) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    """A comparable form of an IO list (hot swap refuses an engine whose signature differs)."""
    return tuple((s.name, tuple(s.shape), np.dtype(s.dtype).str) for s in specs)


class Engine:
    """A loaded engine. Backends set the attributes and implement :meth:`_run`.

    Attributes: ``inputs``/``outputs`` (tuples of :class:`TensorSpec`), ``max_batch``, ``path`` (the
    artefact it was loaded from), ``backend`` (``"onnxruntime"``/``"tensorrt"``), ``device``
    (``"cpu"``, ``"cuda:0"``), ``precision`` (``"fp32"``/``"fp16"``/``"int8"``), ``origin``
    (``"built"``, ``"cache"`` or ``"engine-file"``: how :func:`runner.engine.load_engine` got it).
    """

    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    max_batch: int = 1
    path: Path | None = None
    backend: str = ""
    device: str = "cpu"
    precision: str = "fp32"
    origin: str = "built"

    def infer(self, feeds: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """Run one batch. ``feeds`` maps input names to ``(n, *shape)`` arrays (a bare array is
        accepted for single-input models); returns output name → ``(n, ...)`` array on the host.

        Batches of up to ``max_batch`` rows are accepted; the first axis of every input must agree.
        """
        feeds = self._normalise(feeds)
        return self._run(feeds)

    def close(self) -> None:
        """Release the runtime's resources (sessions, device memory)."""

    def describe(self) -> str:
        ins = ", ".join(map(str, self.inputs))
        outs = ", ".join(map(str, self.outputs))
        return (f"{self.backend} {self.precision} on {self.device}, max batch {self.max_batch}: "
                f"in {ins}; out {outs}")

    # -- for backends ---------------------------------------------------------------------------

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _normalise(self, feeds: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        if isinstance(feeds, np.ndarray):
            if len(self.inputs) != 1:
                names = ", ".join(s.name for s in self.inputs)
                raise EngineError(f"{self.path}: the model has {len(self.inputs)} inputs ({names}); "
                                  "pass a dict of name → array")
            feeds = {self.inputs[0].name: feeds}
        out: dict[str, np.ndarray] = {}
        n = None
        for spec in self.inputs:
            if spec.name not in feeds:
                raise EngineError(f"{self.path}: input {spec.name!r} missing from the batch "
                                  f"(got {sorted(feeds)})")
            arr = np.asarray(feeds[spec.name])
            if arr.dtype != spec.dtype:
                arr = arr.astype(spec.dtype, copy=False)
            if arr.ndim != len(spec.shape) + 1 or any(
                    d >= 0 and a != d for a, d in zip(arr.shape[1:], spec.shape)):
                raise EngineError(f"{self.path}: input {spec.name!r} expects (n, "
                                  f"{', '.join(map(str, spec.shape))}), got {arr.shape}")
            if n is not None and arr.shape[0] != n:
                raise EngineError(f"{self.path}: inputs disagree on the batch size "
                                  f"({n} vs {arr.shape[0]})")
            n = arr.shape[0]
            out[spec.name] = np.ascontiguousarray(arr)
        if n is not None and n > self.max_batch:
            raise EngineError(f"{self.path}: batch of {n} exceeds the engine's max batch "
                              f"{self.max_batch} — raise batch-size and rebuild")
        return out
