"""Where a run's sources are processed: the placement layer around one pipeline.

A run is: config → shards of sources → one pipeline (:class:`runner.pipeline.graph.Graph`) per shard
→ one :class:`~runner.pipeline.stats.RunStats` (dashboard, ``**PERF``, Prometheus, ``--report``).
``runner.app.run_app`` loads the config and hands it to :func:`run_placed` once; where the shards run
is a policy chosen from the command line (or ``[application] dsrun-ray-address``):

==================  =========================================  =====================================
policy              shards                                     module
==================  =========================================  =====================================
in-process          one shard, every source, this process      :mod:`runner.placement.inprocess`
local processes     ``--workers N`` child processes; on a      :mod:`runner.placement.processes`
                    machine with several GPUs one per GPU
Ray                 ``--ray [ADDRESS]``: one actor per GPU, or  :mod:`runner.placement.ray_actors`
                    per N CPU cores; lost actors restarted
==================  =========================================  =====================================

Every policy but in-process runs the same shard runner (:func:`runner.placement.inprocess.run_shard`)
somewhere else and merges what the shards report (:class:`runner.placement.merge.ShardMerger`).

>>> plan_shards([7, 0, 3, 12, 5], 3)
[Shard(index=0, sources=(0, 7), resume={}, gpu=None), Shard(index=1, sources=(3, 12), resume={}, gpu=None), Shard(index=2, sources=(5,), resume={}, gpu=None)]
>>> plan_shards([0, 1, 2], 2, gpus=["3", "5"])[1].gpu
'5'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

from runner.pipeline.sinks import RunOptions
from runner.pipeline.stats import RunStats


@dataclass(frozen=True, slots=True)
class Shard:
    """The sources one pipeline runs. ``resume``: source id → decoded frames already done by a lost
    worker (a file source skips them); ``gpu``: the ``CUDA_VISIBLE_DEVICES`` value its process gets."""

    index: int
    sources: tuple[int, ...]
    resume: Mapping[int, int] = field(default_factory=dict)
    gpu: str | None = None

    @property
    def name(self) -> str:
        return shard_name(self.index, self.sources)

    def to_args(self) -> list[str]:
        """The hidden ``dsrun run`` options that make a child process run this shard."""
        args = ["--shard", ",".join(map(str, self.sources)), "--worker-index", str(self.index)]
        if self.resume:
            args += ["--resume", ",".join(f"{s}:{n}" for s, n in sorted(self.resume.items()))]
        return args


def shard_name(index: int, sources: Sequence[int]) -> str:
    """How messages name a shard: ``worker 1 (sources 1, 3)``."""
    ids = ", ".join(map(str, sources))
    return f"worker {index} (source{'s' if len(sources) != 1 else ''} {ids})"


def plan_shards(source_ids: Sequence[int], count: int, gpus: Sequence[str] = ()) -> list[Shard]:
    """``count`` shards, round-robin over the source ids in ascending order (deterministic; the
    shares differ by at most one source); shard ``i`` gets ``gpus[i % len(gpus)]`` when GPUs are given."""
    ids = sorted(int(s) for s in source_ids)
    count = max(1, min(count, len(ids))) if ids else 1
    return [Shard(i, tuple(ids[i::count]), gpu=gpus[i % len(gpus)] if gpus else None) for i in range(count)]


@dataclass
class Placed:
    """What a placed run gives back to ``run_app``: exit status, errors to print and report, whether
    it was interrupted, and fields the report gains (``workers``, ``restarts``)."""

    exit_code: int
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    report: dict = field(default_factory=dict)
    stderr: list[str] | None = None  # what run_app prints (None: every error; child processes print their own)


StartUi = Callable[[RunStats, object, RunOptions, object], object]


def placement_options(app, options: RunOptions) -> RunOptions:
    """``options`` with the config's placement keys filled in where the command line left them unset
    (``[application] dsrun-ray-address``, ``dsrun-ray-cpus``; a worker never re-reads them)."""
    application = getattr(app, "application", None)
    address = getattr(application, "dsrun_ray_address", None)
    cpus = getattr(application, "dsrun_ray_cpus", None)
    if options.shard is not None or (address is None and cpus is None):
        return options
    return replace(options, ray_address=options.ray_address or address, ray_cpus=options.ray_cpus or cpus)


def check_placement(app, options: RunOptions) -> None:
    """Refuse, before anything starts, a placement the config's outputs cannot be split for
    (``ConfigError`` / ``WorkersError``, exit 2). Nothing to check for one in-process shard."""
    if options.split:
        from runner.placement.splitting import check_splittable

        check_splittable(app, options)


def run_placed(app, options: RunOptions, stats: RunStats, *, config: str, debug: bool = False,
               prepare_engines=None, start_ui: StartUi | None = None) -> Placed:
    """Run ``app`` under the placement ``options`` asks for; returns how it ended (``Placed``)."""
    if options.shard is not None:  # a child process of --workers: this process runs one shard
        from runner.placement.processes import run_child

        return run_child(app, options, stats, prepare_engines=prepare_engines)
    if options.ray_address is not None:
        from runner.placement.ray_actors import run_on_ray

        return run_on_ray(app, options, stats, config=config, debug=debug, prepare_engines=prepare_engines,
                          start_ui=start_ui)
    if options.workers > 1:
        from runner.placement.processes import run_workers

        return run_workers(app, options, stats, config=config, debug=debug, prepare_engines=prepare_engines,
                           start_ui=start_ui)
    from runner.placement.inprocess import run_in_process

    return run_in_process(app, options, stats, debug=debug, prepare_engines=prepare_engines, start_ui=start_ui)
