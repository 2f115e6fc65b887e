"""Sinks (``[sinkN]``) and other run outputs, as stages at the end of the graph.

A registry maps a DeepStream sink ``type`` to a factory ``(sink_config, app, options) -> Stage``.
Factories live beside the sink they build and register themselves when their module is imported;
:data:`PROVIDERS` says which module provides which type, so only the sinks a config uses are loaded.

>>> sorted(PROVIDERS)[:3]
[1, 2, 3]
>>> register_sink(99, lambda cfg, app, options: None)   # a plug-in sink type

App-wide outputs that are not ``[sinkN]`` groups (``--jsonl``, KITTI dumps) register with
:func:`register_output`: a factory ``(app, options) -> Stage | None`` called once per run.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runner.pipeline.stage import Stage
from runner.pipeline.watchdog import DEFAULT_WATCHDOG_S

log = logging.getLogger("dsrun")

SinkFactory = Callable[..., "Stage | None"]
OutputFactory = Callable[..., "Stage | None"]

# DeepStream sink type -> module that registers its factory (NvDsSinkType numbers)
PROVIDERS: dict[int, str] = {
    1: "runner.pipeline.sinks.fake",  # fakesink
    2: "runner.pipeline.sinks.fake",  # EGL display: no display here, frames are discarded
    3: "runner.pipeline.sinks.file",  # encode to file
    4: "runner.pipeline.sinks.rtsp",  # RTSP streaming out (outputs helper)
    5: "runner.pipeline.sinks.fake",  # DRM overlay display: no display here
    6: "runner.pipeline.sinks.msgbroker",  # message converter + broker (outputs helper)
}
# modules providing app-wide outputs (register_output); a module not built yet is skipped
OUTPUT_PROVIDERS: tuple[str, ...] = ("runner.pipeline.sinks.jsonl", "runner.pipeline.sinks.kitti",
                                     "runner.pipeline.sinks.hook")

_SINKS: dict[int, SinkFactory] = {}
_OUTPUTS: list[OutputFactory] = []


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line options stages and the placement layer may need (``dsrun run`` flags)."""

    jsonl: Path | None = None
    jsonl_rotate: object = None  # --jsonl-rotate SIZE|TIME: a runner.pipeline.rotation.Rotation
    jsonl_keep: int = 0  # --jsonl-keep N: rotated --jsonl files kept (0: all)
    report: Path | None = None
    watchdog_s: float = DEFAULT_WATCHDOG_S  # --watchdog: no progress on any source for this long ends the run (0: off)
    dashboard: bool = True
    metrics_port: int | None = None
    rest_port: int | None = None  # --rest-port: DeepStream's REST API (runner.rest) on this port
    engine_dir: Path | None = None
    workers: int = 1  # --workers N: the sources split over N child processes (runner.placement)
    ray_address: str | None = None  # --ray [ADDRESS]: shards on Ray actors ("auto": RAY_ADDRESS or a new local cluster)
    ray_cpus: int | None = None  # --ray-cpus N: cores per actor where the cluster has no GPU
    shard: tuple[int, ...] | None = None  # in a worker: the source ids it runs (None: every source)
    resume: tuple[tuple[int, int], ...] = ()  # in a worker: (source id, decoded frames to skip)
    worker_index: int = 0  # in a worker: which shard it runs

    @classmethod
    def from_args(cls, args) -> "RunOptions":
        get = lambda name: getattr(args, name, None)
        shard = get("shard")
        return cls(jsonl=Path(get("jsonl")) if get("jsonl") else None,
                   jsonl_rotate=get("jsonl_rotate"), jsonl_keep=int(get("jsonl_keep") or 0),
                   report=Path(get("report")) if get("report") else None,
                   watchdog_s=DEFAULT_WATCHDOG_S if get("watchdog") is None else float(get("watchdog")),
                   dashboard=not get("no_dashboard"), metrics_port=get("metrics_port"),
                   rest_port=get("rest_port"),
                   engine_dir=Path(get("engine_dir")) if get("engine_dir") else None,
                   workers=int(get("workers") or 1), ray_address=get("ray"), ray_cpus=get("ray_cpus"),
                   shard=tuple(int(s) for s in shard.split(",") if s) if shard is not None else None,
                   resume=tuple((int(a), int(b)) for a, b in (p.split(":") for p in (get("resume") or "").split(",") if p)),
                   worker_index=int(get("worker_index") or 0))

    @property
    def split(self) -> bool:
        """The sources are split over several pipelines (``--workers`` > 1 or ``--ray``), by this process."""
        return self.shard is None and (self.workers > 1 or self.ray_address is not None)

    @property
    def placement_name(self) -> str:
        return "--ray" if self.ray_address is not None else "--workers"


def register_sink(sink_type: int, factory: SinkFactory) -> None:
    """Make ``[sinkN] type=sink_type`` build its stage with ``factory(sink_config, app, options)``."""
    _SINKS[int(sink_type)] = factory


def register_output(factory: OutputFactory) -> None:
    """Add an app-wide output: ``factory(app, options)`` returns a Stage or ``None`` (not wanted)."""
    if factory not in _OUTPUTS:
        _OUTPUTS.append(factory)


def _import_provider(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return False  # that feature is not built yet
        raise


def sink_factory(sink_type: int) -> SinkFactory | None:
    sink_type = int(sink_type)
    if sink_type not in _SINKS and sink_type in PROVIDERS:
        _import_provider(PROVIDERS[sink_type])
    return _SINKS.get(sink_type)


def build_sink_stages(app, options: RunOptions) -> list[Stage]:
    """A stage for every enabled ``[sinkN]`` and every wanted app-wide output, in config order."""
    stages: list[Stage] = []
    for i, cfg in enumerate(getattr(app, "sinks", ())):
        if not getattr(cfg, "enable", 1):
            continue
        index = getattr(cfg, "index", i)
        factory = sink_factory(cfg.type)
        if factory is None:
            log.warning("[sink%s] type=%s is not supported yet — that sink is skipped", index, int(cfg.type))
            continue
        stage = factory(cfg, app, options)
        if stage is not None:
            stage.name = getattr(stage, "name", None) or f"sink{index}"
            stages.append(stage)
    for module in OUTPUT_PROVIDERS:
        _import_provider(module)
    for factory in _OUTPUTS:
        stage = factory(app, options)
        if stage is not None:
            stages.append(stage)
    return stages


class Pacer:
    """``sync=1``: hold each batch until its PTS is due on the wall clock (first batch = now).

    >>> p = Pacer(); p.wait(0); p.wait(0)   # no sleep for the same PTS
    """

    def __init__(self) -> None:
        self._origin: tuple[float, int] | None = None

    def wait(self, pts_ns: int) -> None:
        now = time.monotonic()
        if self._origin is None or pts_ns < self._origin[1]:
            self._origin = (now, pts_ns)  # first frame, or the timeline restarted
            return
        due = self._origin[0] + (pts_ns - self._origin[1]) / 1e9
        if due - now > 2.0:  # a jump in the timeline (reconnect, loop): re-anchor instead of stalling
            self._origin = (now, pts_ns)
        elif due > now:
            time.sleep(due - now)
