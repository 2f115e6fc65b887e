"""The Ray policy, ``dsrun CONFIG --ray [ADDRESS]``: shards on long-lived Ray actors, one per GPU of the
cluster (``num_gpus=1``: Ray gives each its own ``CUDA_VISIBLE_DEVICES``), or one per ``--ray-cpus``
cores (default 2) where the cluster has no GPU; placement spread over the nodes, restarts done here.

    $ ray start --head                        # on the first host
    $ ray start --address HEAD:6379           # on every other host
    $ dsrun deepstream_app_config.txt --ray HEAD:6379 --report run.json

- Every node must see the config, its models and its file sources at the same paths (a shared
  filesystem or the same image) and have dsrun installed; the actors are started with this process's
  ``runner`` package on their ``PYTHONPATH``.
- Engines: the driver builds them for its own node; each actor loads them from its node's engine cache
  (``--engine-dir`` on a shared filesystem: built once for the whole cluster; otherwise once per node,
  the cache's lock keeping actors of one node from building twice).
- Counters: the driver polls each actor every 0.2 s for ``RunStats.snapshot()`` and merges them
  (:class:`~runner.placement.merge.ShardMerger`): one dashboard, one stream of ``**PERF`` lines, one
  ``--metrics-port``, one ``--report``.
- Faults: an actor that dies (its process, or its node) has its unfinished sources restarted at once in
  a new actor on the surviving nodes, beside the actors there (it reserves no cores or GPU, so it never
  waits for capacity). A file source resumes after the last frame the lost actor had *reported*
  processed (:func:`~runner.placement.merge.resume_point`): frames it processed after its last report
  are processed again (at most 0.2 s of that source, written twice by the outputs), none is lost; a
  live source reconnects. An actor Ray reports only *temporarily unavailable* is polled again, lost
  after :data:`UNAVAILABLE_LIMIT_S` of that (restarting a live actor's sources would run them twice).
  ``--report`` gains ``restarts``: each lost actor, its sources, the frame each file resumed at.
- Refused like ``--workers`` (exit 2): a tiler, file and RTSP sinks, ``--jsonl``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from runner.errors import DsrunError
from runner.extras import MissingExtra
from runner.pipeline.report import EXIT_FAILED
from runner.pipeline.sinks import RunOptions
from runner.pipeline.source import source_specs
from runner.pipeline.stats import RunStats
from runner.placement import Placed, Shard, plan_shards
from runner.placement.merge import STATS_INTERVAL_S, ShardMerger, ShardState, resume_point

log = logging.getLogger("dsrun")

DEFAULT_CPUS_PER_ACTOR = 2
POLL_TIMEOUT_S = 10.0  # an actor that does not answer a poll for this long is asked again
# An actor Ray calls "temporarily unavailable" (its node or the connection to it is slow: a loaded
# machine, a node that is dying) is polled again; only this long without an answer makes it lost.
# A dead node's actors are reported dead once Ray's health checks notice (~30 s by default).
UNAVAILABLE_LIMIT_S = 120.0
PLACE_TIMEOUT_S = 1800.0  # an actor not built (placed, engines loaded or built) by then is given up
MAX_RESTARTS = 3  # a source whose actor is lost more often than this fails (it may be what kills them)


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise MissingExtra("ray", "--ray") from exc
    return ray


# ---------------------------------------------------------------------------------------------------
# Actor side


class ShardActor:
    """One shard's pipeline inside a Ray actor: built in the constructor (engines loaded), run by
    :meth:`start` in a thread, read by :meth:`poll`."""

    def __init__(self, config: str, sources: list[int], resume: dict, index: int, engine_dir: str | None,
                 prepare_engines) -> None:
        from runner.config import load_app
        from runner.placement.inprocess import build_shard_graph

        logging.getLogger("dsrun").setLevel(logging.INFO)
        self.stats = RunStats()
        self.options = RunOptions(dashboard=False, engine_dir=Path(engine_dir) if engine_dir else None,
                                  shard=tuple(sources), resume=tuple(sorted(resume.items())), worker_index=index)
        app = load_app(config)
        engines = prepare_engines(app, self.options, self.stats) if prepare_engines is not None else None
        self.graph = build_shard_graph(app, self.options, self.stats, engines)
        self.end: dict | None = None
        self._thread: threading.Thread | None = None

    def where(self) -> dict:
        import ray

        context = ray.get_runtime_context()
        return {"node": context.get_node_id(), "ip": ray.util.get_node_ip_address(),
                "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}

    def start(self) -> None:
        from runner.placement.inprocess import outcome_errors, run_graph

        def run() -> None:
            try:
                outcome, code = run_graph(self.graph, self.stats, quiet=True)
                self.end = {"exit_code": code, "errors": outcome_errors(outcome),
                            "interrupted": outcome.interrupted}
            except BaseException as exc:  # never leave the driver waiting for an end
                self.end = {"exit_code": EXIT_FAILED, "errors": [f"{type(exc).__name__}: {exc}"],
                            "interrupted": False}

        self._thread = threading.Thread(target=run, name="shard", daemon=True)
        self._thread.start()

    def poll(self) -> dict:
        return {"stats": self.stats.snapshot(), "end": self.end}

    def drain(self) -> None:
        self.graph.drain()

    def pause(self) -> None:
        self.graph.pause()

    def resume(self) -> None:
        self.graph.resume()


# ---------------------------------------------------------------------------------------------------
# Driver side


class _Actor(ShardState):
    def __init__(self, shard: Shard, handle, replacement_of: int | None = None) -> None:
        super().__init__(shard.index, shard.sources)
        self.shard, self.handle, self.replacement_of = shard, handle, replacement_of
        self.where: dict = {}
        self.lost: str | None = None
        self.unavailable_since: float | None = None  # first poll answered "temporarily unavailable"


class RayPool:
    """The actors of one ``--ray`` run; ``drain``/``pause``/``resume`` as ``Graph`` has them."""

    def __init__(self, app, options: RunOptions, stats: RunStats, config: str, prepare_engines) -> None:
        self.ray = _ray()
        self.app, self.options, self.stats, self.config = app, options, stats, config
        self.prepare_engines = prepare_engines
        self.merger = ShardMerger(stats)
        self.specs = {s.source_id: s for s in source_specs(app)}
        self.restarts: list[dict] = []
        self.lost_nodes: set[str] = set()
        self.lost_count: dict[int, int] = {}  # source id -> times its actor was lost
        self._next_index = 0
        self._paused = False
        self._lock = threading.Lock()

    # -- placement -----------------------------------------------------------------------------------

    def plan(self) -> tuple[list[Shard], dict]:
        """Shards and the Ray resources each actor asks for: one per GPU of the cluster, else one per
        ``cpus`` cores (``--ray-cpus`` / ``[application] dsrun-ray-cpus``, default 2)."""
        total = self.ray.cluster_resources()
        gpus = int(total.get("GPU", 0))
        if gpus:
            count, resources = gpus, {"num_gpus": 1}
        else:
            cpus = int(self.options.ray_cpus or DEFAULT_CPUS_PER_ACTOR)
            count, resources = max(1, int(total.get("CPU", 1)) // cpus), {"num_cpus": cpus}
        shards = plan_shards(list(self.specs), count)
        self._next_index = len(shards)
        return shards, resources

    def _actor_class(self, resources: dict):
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        return self.ray.remote(ShardActor).options(
            **{"scheduling_strategy": "SPREAD", **resources}, max_restarts=0, max_task_retries=0,
            runtime_env={"env_vars": env})

    def launch(self, shard: Shard, resources: dict, replacement_of: int | None = None) -> _Actor:
        cls = self._actor_class(resources)
        engine_dir = str(self.options.engine_dir) if self.options.engine_dir else None
        handle = cls.remote(self.config, list(shard.sources), dict(shard.resume), shard.index, engine_dir,
                            self.prepare_engines)
        return self.merger.add(_Actor(shard, handle, replacement_of))

    # -- control (UI keys) ---------------------------------------------------------------------------

    def _tell(self, method: str) -> None:
        for a in list(self.merger.shards):
            getattr(a.handle, method).remote()

    def drain(self) -> None:
        self._tell("drain")

    def pause(self) -> None:
        self.stats.paused = self._paused = True
        self._tell("pause")

    def resume(self) -> None:
        self.stats.paused = self._paused = False
        self._tell("resume")

    # -- running -------------------------------------------------------------------------------------

    def start_all(self, actors: list[_Actor]) -> None:
        """Wait until every actor has built its pipeline, then start them together."""
        for a in actors:
            try:
                a.where = self.ray.get(a.handle.where.remote(), timeout=PLACE_TIMEOUT_S)
                a.ready = True
            except self.ray.exceptions.GetTimeoutError:
                self.ray.kill(a.handle)
                self._lose(a, f"not running after {PLACE_TIMEOUT_S:.0f} s (no node has the resources it asks "
                              "for, or its engines are still building) — check `ray status`")
            except self.ray.exceptions.RayError as exc:
                self._lose(a, _reason(exc))
        for a in actors:
            if a.ready and a.lost is None:
                if self._paused:
                    a.handle.pause.remote()
                a.handle.start.remote()
                a.started = True
                log.info("%s on node %s (%s)%s", a.name, a.where.get("ip", "?"), a.where.get("node", "?")[:8],
                         f", GPU {a.where['gpu']}" if a.where.get("gpu") else "")

    def wait(self) -> bool:
        """Poll until every actor has ended; returns True when interrupted (Ctrl-C: once drains,
        twice kills the actors)."""
        interrupts = 0
        while True:
            try:
                while self._poll_once():
                    time.sleep(STATS_INTERVAL_S)
                return interrupts > 0
            except KeyboardInterrupt:
                interrupts += 1
                log.info("stopping: the actors finish the frames already decoded (Ctrl-C again to stop now)"
                         if interrupts == 1 else "stopping now")
                if interrupts == 1:
                    self.drain()
                else:
                    for a in list(self.merger.shards):
                        self.ray.kill(a.handle)
                    return True

    def _poll_once(self) -> bool:
        """One round of counters; handles lost actors; ``False`` once every actor has ended."""
        live = [a for a in self.merger.shards if a.end is None and a.lost is None]
        if not live:
            return False
        refs = {a.handle.poll.remote(): a for a in live}
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=POLL_TIMEOUT_S)
        for ref in ready:
            a = refs[ref]
            try:
                answer = self.ray.get(ref)
            except self.ray.exceptions.ActorUnavailableError as exc:
                # not dead: restarting its sources now would run them twice, into the same outputs
                now = time.monotonic()
                a.unavailable_since = a.unavailable_since or now
                if now - a.unavailable_since > UNAVAILABLE_LIMIT_S:
                    self._lose(a, f"unavailable for {UNAVAILABLE_LIMIT_S:.0f} s: {_reason(exc)}")
                continue
            except self.ray.exceptions.RayError as exc:
                self._lose(a, _reason(exc))
                continue
            a.unavailable_since = None
            self.merger.apply(a, answer["stats"])
            if answer["end"] is not None:
                a.end = answer["end"]
        return True

    def _lose(self, a: _Actor, why: str) -> None:
        """An actor is gone: its finished sources keep their counts; the others restart elsewhere."""
        a.lost = why
        where = f" on node {a.where['ip']}" if a.where.get("ip") else ""
        log.warning("%s was lost%s: %s — restarting its unfinished sources on the other nodes", a.name, where, why)
        carry, resume, unfinished = {}, {}, []
        for sid in a.sources:
            seen = a.sources_seen.get(sid)
            if seen is not None and seen["state"] in ("ended", "failed"):
                carry[sid] = {**seen, "errors": list(seen.get("errors", ()))}
                continue
            spec = self.specs[sid]
            unfinished.append(sid)
            already = a.shard.resume.get(sid, 0)  # a replacement itself lost: it had skipped these
            if seen is None:  # nothing reported: its sources start where it started them
                if already:
                    resume[sid] = already
                continue
            if spec.live:
                carry[sid] = {**seen, "reconnects": int(seen["reconnects"]) + 1, "errors": []}
            else:
                carry[sid] = resume_point(seen, spec.drop_frame_interval)
                resume[sid] = already + carry[sid]["frames_decoded"]
        self.merger.retire(a, carry)
        for sid in list(unfinished):
            self.lost_count[sid] = self.lost_count.get(sid, 0) + 1
            if self.lost_count[sid] > MAX_RESTARTS:  # it keeps taking its actor down: stop trying
                unfinished.remove(sid)
                self._give_up(sid, f"source {sid}: its worker was lost {self.lost_count[sid]} times (last: {why}) "
                                   "— not restarted again; run it alone with --debug to see why")
        if not unfinished:
            return
        shard = Shard(self._next_index, tuple(unfinished), resume)
        self._next_index += 1
        self.restarts.append({"lost": a.name, "reason": why, "node": a.where.get("node"),
                              "sources": unfinished, "resumed_at_frame": {str(k): v for k, v in resume.items()},
                              "replaced_by": shard.index})
        if a.where.get("node"):
            self.lost_nodes.add(a.where["node"])
        replacement = self.launch(shard, {"num_cpus": 0, "num_gpus": 0, **self._survivor()}, replacement_of=a.index)
        self.start_all([replacement])

    def _give_up(self, sid: int, problem: str) -> None:
        self.merger.errors.append(problem)
        s = self.stats.sources.get(sid)
        if s is not None:
            s.state = "failed"
            s.errors.append(problem)

    def _survivor(self) -> dict:
        """Scheduling for a replacement: a live node that no lost actor was on, the one running the
        fewest actors (soft: Ray may still choose another if that one goes too). Ray takes a while to
        declare a killed node dead; until then it could place the replacement there."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = [n["NodeID"] for n in self.ray.nodes() if n.get("Alive") and n["NodeID"] not in self.lost_nodes]
        if not alive:
            return {}
        load = {n: sum(1 for x in self.merger.shards if x.where.get("node") == n) for n in alive}
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(min(alive, key=load.get), soft=True)}

    def exit_code(self, interrupted: bool) -> int:
        for a in self.merger.shards:
            if a.end is None and a.lost is None:
                self.merger.fail(a, f"{a.name} never reported its end — run with --debug for details")
        codes = [a.end["exit_code"] if a.end is not None else EXIT_FAILED
                 for a in self.merger.shards if a.lost is None]
        return self.merger.exit_code(interrupted, codes)

    def describe(self) -> list[dict]:
        return [{"index": a.index, "sources": list(a.sources), "node": a.where.get("node"), "ip": a.where.get("ip"),
                 "gpu": a.where.get("gpu"), "pid": a.where.get("pid"),
                 "exit_code": a.end["exit_code"] if a.end is not None else None,
                 **({"lost": a.lost} if a.lost else {}),
                 **({"replaces": a.replacement_of} if a.replacement_of is not None else {})}
                for a in self.merger.shards + self.merger.retired]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def run_on_ray(app, options: RunOptions, stats: RunStats, *, config: str, debug: bool = False,
               prepare_engines=None, start_ui=None) -> Placed:
    """The driver of a ``--ray`` run (called by :func:`runner.placement.run_placed`)."""
    ray = _ray()
    address = None if options.ray_address in (None, "auto") else options.ray_address
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=debug,
                 include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DsrunError(f"--ray {options.ray_address}: cannot reach the Ray cluster ({_reason(exc)}) — "
                         "start it with `ray start --head`, or give its address (HOST:6379)") from exc
    try:
        if prepare_engines is not None:  # built once here; actors on this node load them from the cache
            from runner.placement.processes import close_engines

            close_engines(prepare_engines(app, options, stats), app)
        pool = RayPool(app, options, stats, str(Path(config).absolute()), prepare_engines)
        shards, resources = pool.plan()
        for spec in source_specs(app):  # every source is listed from the start
            stats.add_source(spec.source_id, spec.name)
        ui = start_ui(stats, app, options, pool) if start_ui is not None else None
        try:
            pool.start_all([pool.launch(s, resources) for s in shards])
            interrupted = pool.wait()
        finally:
            if ui is not None:
                ui.stop()
        code = pool.exit_code(interrupted)
        return Placed(code, pool.merger.shard_errors() + pool.merger.errors, interrupted,
                      report={"workers": pool.describe(), "restarts": pool.restarts})
    finally:
        ray.shutdown()
