"""Engines for a run: every GIE's engine built or loaded before the first frame is decoded.

``dsrun CONFIG`` calls :func:`prepare_engines` (the same progress as ``dsrun build-engines``), then
hands the returned loader to the inference stages; each GIE gets an
:class:`~runner.engine.hotswap.EngineHandle`, so a replaced engine file is swapped in between batches.
"""

from __future__ import annotations

from typing import Any, Callable

from runner.engine.commands import app_specs
from runner.engine.hotswap import EngineHandle
from runner.engine.spec import EngineSpec


def prepare_engines(app: Any, engine_dir=None, stats=None, progress=None) -> Callable[[Any, str], EngineHandle]:
    """Build what is missing, load every engine; returns ``loader(gie_config, name) -> EngineHandle``.

    Raises the first :class:`~runner.engine.base.EngineError` (the run cannot start without it)."""
    handles: dict[str, EngineHandle] = {}
    on_state = stats.set_engine if stats is not None else None
    for name, spec in app_specs(app):
        if not isinstance(spec, EngineSpec):
            raise spec
        handles[name] = EngineHandle(spec, name=name, engine_dir=engine_dir, on_state=on_state,
                                     progress=progress)
    return lambda gie, name: handles[name]
