"""The local-processes policy, ``dsrun CONFIG --workers N``: the sources split over N child processes,
one Python interpreter each — on a machine with several GPUs, one worker per GPU.

One dsrun process is bound by Python work under one interpreter lock (README, "GPU throughput");
``--workers`` runs the same config in N child processes, each on its shard of the sources:

    $ dsrun deepstream_app_config.txt --workers 4 --report run.json

- the parent loads the config, refuses outputs that cannot be split
  (:func:`runner.placement.splitting.check_splittable`), builds every engine once (children only load
  them from the cache), then starts the children: ``python -m runner run CONFIG --shard IDS
  --worker-index i`` (:meth:`runner.placement.Shard.to_args`);
- shards are round-robin over the source ids (:func:`runner.placement.plan_shards`); source ids,
  streammux and every GIE setting are the config's;
- GPUs: with several visible (:func:`runner.placement.devices.visible_gpus`), worker ``i`` gets GPU
  ``i mod count`` as its ``CUDA_VISIBLE_DEVICES``, so its decoder, engines and CUDA graphs live there;
  with one, the workers share it (run CUDA MPS: a warning says so);
- children start together: each loads its engines and builds its pipeline, says ``ready``, and waits
  for the parent's ``start``, sent once every child is ready (or has ended) — as deepstream-app sets
  the whole pipeline playing at once, so no source runs ahead while a slower child is still loading;
- each child sends its counters (``RunStats.snapshot()``) as JSON lines on its stdout every 0.2 s
  (what it prints itself goes to stderr); the parent merges them (:class:`~runner.placement.merge.ShardMerger`),
  so the dashboard, ``**PERF`` lines (one stream, all sources), ``--metrics-port`` and ``--report``
  work as in one process (times are ``time.monotonic()``, one clock for every process of the machine);
- the parent's stdin keys and Ctrl-C reach the children: ``q`` drains, ``p``/``r`` pause and resume
  (a line on the child's stdin), Ctrl-C is forwarded as SIGINT (once drains, twice stops now);
- exit status: the worst child's (the highest), 130 after Ctrl-C; a child that fails to start or dies
  is an error naming it and its sources, the other children run on.

Child side: :class:`WorkerLink`, started by :func:`run_child`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from runner.pipeline.report import EXIT_FAILED, EXIT_INTERRUPTED
from runner.pipeline.sinks import RunOptions
from runner.pipeline.source import source_specs
from runner.pipeline.stats import RunStats
from runner.placement import Placed, Shard, plan_shards
from runner.placement.devices import visible_gpus
from runner.placement.merge import STATS_INTERVAL_S, ShardMerger, ShardState
from runner.placement.splitting import WorkersError

log = logging.getLogger("dsrun")


# ---------------------------------------------------------------------------------------------------
# Parent


class _Worker(ShardState):
    """One child process and the parent's view of its shard."""

    def __init__(self, shard: Shard) -> None:
        super().__init__(shard.index, shard.sources)
        self.shard = shard
        self.gpu_seen: str | None = None
        self.proc: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None
        self._stdin_lock = threading.Lock()

    def tell(self, command: str) -> None:
        with self._stdin_lock:
            try:
                if self.proc is not None and self.proc.poll() is None:
                    self.proc.stdin.write(command + "\n")
                    self.proc.stdin.flush()
            except (OSError, ValueError):
                pass  # it has just ended

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except OSError:
                pass


class WorkerPool:
    """The children of one ``--workers`` run; ``drain``/``pause``/``resume`` as ``Graph`` has them
    (the UI's keys call them)."""

    def __init__(self, app, options: RunOptions, stats: RunStats, config: str, debug: bool = False,
                 gpus: list[str] | None = None) -> None:
        ids = [s.source_id for s in source_specs(app)]
        gpus = visible_gpus() if gpus is None else gpus
        shards = plan_shards(ids, options.workers, gpus if len(gpus) > 1 else ())
        self.merger = ShardMerger(stats)
        self.workers = [self.merger.add(_Worker(shard)) for shard in shards]
        self.options, self.stats, self.config, self.debug = options, stats, config, debug
        self._lock = threading.Lock()

    @property
    def errors(self) -> list[str]:
        return self.merger.errors

    # -- control (UI keys, Ctrl-C) -------------------------------------------------------------------

    def drain(self) -> None:
        for w in self.workers:
            w.tell("drain")

    def pause(self) -> None:
        self.stats.paused = True
        for w in self.workers:
            w.tell("pause")

    def resume(self) -> None:
        self.stats.paused = False
        for w in self.workers:
            w.tell("resume")

    def interrupt(self) -> None:
        for w in self.workers:
            w.signal(signal.SIGINT)

    def kill(self) -> None:
        for w in self.workers:
            w.signal(signal.SIGKILL)

    # -- running -------------------------------------------------------------------------------------

    def _command(self, w: _Worker) -> list[str]:
        cmd = [sys.executable, "-m", "runner"] + (["--debug"] if self.debug else [])
        cmd += ["run", self.config, "--no-dashboard", *w.shard.to_args()]
        if self.options.engine_dir is not None:
            cmd += ["--engine-dir", str(self.options.engine_dir)]
        return cmd

    def start(self) -> None:
        """Start every child; raises :class:`WorkersError` (after stopping the others) when one cannot."""
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # so `-m runner` finds this checkout
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env.update(thread_share(len(self.workers)))
        log.info("%d workers: %s", len(self.workers), "; ".join(
            w.name + (f" on GPU {w.shard.gpu}" if w.shard.gpu is not None else "") for w in self.workers))
        for w in self.workers:
            child_env = env if w.shard.gpu is None else {**env, "CUDA_VISIBLE_DEVICES": w.shard.gpu}
            try:
                w.proc = subprocess.Popen(self._command(w), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True, bufsize=1, env=child_env, start_new_session=True)
            except OSError as exc:
                self.kill()
                raise WorkersError(f"{w.name} could not start: {exc.strerror or exc} — check that "
                                   f"{sys.executable} can run `-m runner`", exit_code=EXIT_FAILED) from exc
            w.reader = threading.Thread(target=self._read, args=(w,), name=f"worker-{w.index}", daemon=True)
            w.reader.start()

    def wait(self, on_interrupt=None) -> bool:
        """Wait until every child has ended; returns True when interrupted (Ctrl-C). Ctrl-C once
        drains the children, twice stops them now; after that they get 10 s before being killed."""
        interrupts, kill_at = 0, None
        while True:
            try:
                while any(w.proc.poll() is None for w in self.workers):
                    self._start_when_all_ready()
                    if kill_at is not None and time.monotonic() > kill_at:
                        self.kill()
                    time.sleep(0.05)
                break
            except KeyboardInterrupt:
                interrupts += 1
                if on_interrupt is not None:
                    on_interrupt(interrupts)
                self.interrupt()
                if interrupts >= 2 and kill_at is None:
                    kill_at = time.monotonic() + 10.0
        for w in self.workers:
            w.reader.join(timeout=5)
            self._settle(w)
        return interrupts > 0

    def _read(self, w: _Worker) -> None:
        for line in w.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not ours (the child sends only JSON lines here)
            kind = message.get("kind")
            if kind == "ready":
                w.gpu_seen = message.get("gpu")  # the CUDA_VISIBLE_DEVICES the child runs with
                w.ready = True  # wait() starts the children once none is still loading
            elif kind == "stats":
                self.merger.apply(w, message["stats"])
            elif kind == "end":
                w.end = message

    def _start_when_all_ready(self) -> None:
        """Tell every ready child to start once no child is still loading (a child that ended
        without becoming ready does not hold the others back)."""
        with self._lock:
            if any(not w.ready and w.proc is not None and w.proc.poll() is None for w in self.workers):
                return
            waiting = [w for w in self.workers if w.ready and not w.started]
            for w in waiting:
                w.started = True
        for w in waiting:
            w.tell("start")

    def _settle(self, w: _Worker) -> None:
        """A child that ended without saying so: an error naming it; its unfinished sources failed."""
        rc = w.proc.returncode
        if w.end is not None:
            return
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
        if not w.ready:
            problem = f"{w.name} failed to start: it {how} — its own message is printed above"
        else:
            problem = f"{w.name} {how} before its sources ended — run with --debug for details"
        self.merger.fail(w, problem)

    def exit_code(self, interrupted: bool) -> int:
        codes = [w.end["exit_code"] if w.end is not None else max(EXIT_FAILED, w.proc.returncode or 0)
                 for w in self.workers]
        return self.merger.exit_code(interrupted, codes)

    def describe(self) -> list[dict]:
        return [{"index": w.index, "sources": list(w.sources), "gpu": w.gpu_seen,
                 "pid": w.proc.pid if w.proc else None,
                 "exit_code": w.proc.returncode if w.proc else None} for w in self.workers]


def run_workers(app, options: RunOptions, stats: RunStats, *, config: str, debug: bool = False,
                prepare_engines=None, start_ui=None) -> Placed:
    """The parent of a ``--workers`` run (called by :func:`runner.placement.run_placed`).

    ``prepare_engines(app, options, stats)`` builds the engines (the parent closes them: children load
    them from the cache); ``start_ui(stats, app, options, controls)`` starts the dashboard or
    ``**PERF`` lines on the parent's RunStats."""
    if prepare_engines is not None:
        close_engines(prepare_engines(app, options, stats), app)
    pool = WorkerPool(app, options, stats, config=str(Path(config).absolute()), debug=debug)
    if _uses_cuda() and not any(w.shard.gpu for w in pool.workers) and not mps_running():
        log.warning("%d workers will share the GPU without CUDA MPS, taking turns on it: start MPS first "
                    "(`nvidia-cuda-mps-control -d`; 1.9x the throughput with 8 workers on an H100)",
                    options.workers)
    for spec in source_specs(app):  # every source is listed from the start (dashboard, **PERF, report)
        stats.add_source(spec.source_id, spec.name)
    ui = start_ui(stats, app, options, pool) if start_ui is not None else None

    def interrupted(count: int) -> None:
        log.info("stopping: the workers finish the frames already decoded (Ctrl-C again to stop now)"
                 if count == 1 else "stopping now")

    try:
        pool.start()
        was_interrupted = pool.wait(on_interrupt=interrupted)
    except BaseException:
        pool.kill()
        raise
    finally:
        if ui is not None:
            ui.stop()
    return Placed(pool.exit_code(was_interrupted), pool.merger.shard_errors() + pool.errors, was_interrupted,
                  report={"workers": pool.describe()}, stderr=list(pool.errors))


def _uses_cuda() -> bool:
    """The engines just built run on a GPU (PyTorch loaded and sees one)."""
    torch = sys.modules.get("torch")
    try:
        return torch is not None and torch.cuda.is_available()
    except Exception:
        return False


def mps_running(proc: Path = Path("/proc")) -> bool:
    """A CUDA MPS control daemon runs on this machine (a process named ``nvidia-cuda-mps-control``;
    the kernel keeps 15 characters of a name)."""
    for comm in proc.glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("nvidia-cuda-mps"):
                return True
        except OSError:
            continue  # the process has just ended
    return False


def thread_share(workers: int) -> dict[str, str]:
    """Each worker's share of the cores for the CPU thread pools (PyTorch, OpenCV, numpy's BLAS,
    ONNX Runtime), so N workers do not each start a pool as wide as the machine; what the user has
    set in the environment is kept."""
    share = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    return {name: share for name in ("OMP_NUM_THREADS", "OPENCV_FOR_THREADS_NUM") if name not in os.environ}


def close_engines(loader, app) -> None:
    """Release the parent's engines once built (they would hold memory the workers need)."""
    if loader is None:
        return
    from runner.engine.commands import app_specs

    for name, _spec in app_specs(app):
        close = getattr(loader(None, name), "close", None)
        if close is not None:
            close()


# ---------------------------------------------------------------------------------------------------
# Child


def run_child(app, options: RunOptions, stats: RunStats, *, prepare_engines=None) -> Placed:
    """A ``--workers`` child: build this shard's pipeline, say ready, wait for ``start``, run, and
    send the last counters and how it ended. Counters go to the parent; no UI here."""
    from runner.placement.inprocess import build_shard_graph, outcome_errors, run_graph

    engines = prepare_engines(app, options, stats) if prepare_engines is not None else None
    graph = build_shard_graph(app, options, stats, engines)
    link = WorkerLink(stats, graph, options.worker_index)
    try:
        link.wait_for_start()
    except KeyboardInterrupt:  # stopped before the parent said start: nothing ran
        link.finish(EXIT_INTERRUPTED, [], True)
        return Placed(EXIT_INTERRUPTED, [], True)
    outcome, code = run_graph(graph, stats, quiet=True)  # the parent says it
    errors = outcome_errors(outcome)
    link.finish(code, errors, outcome.interrupted)
    return Placed(code, errors, outcome.interrupted)


class WorkerLink:
    """A child's line to its parent: counters out (JSON lines on the original stdout, whose fd 1 then
    points at stderr so nothing else lands there), commands in (``drain``/``pause``/``resume`` lines on
    stdin; end of stdin — the parent is gone — drains). ``controls``: the Graph.

    The child says ``ready`` once its pipeline is built, then :meth:`wait_for_start` holds it until
    the parent's ``start`` line (every child is ready) or the end of stdin."""

    def __init__(self, stats: RunStats, controls, index: int) -> None:
        self.stats, self.controls = stats, controls
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._start = threading.Event()
        self._send({"kind": "ready", "worker": index, "sources": sorted(stats.sources),
                    "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")})
        for target, name in ((self._emit, "worker-stats"), (self._listen, "worker-control")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def _send(self, message: dict) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._out.write(json.dumps(message, default=_plain) + "\n")
                self._out.flush()
            except (OSError, ValueError):  # the parent is gone: finish what is decoded, then end
                self._closed = True
                self.controls.drain()

    def _emit(self) -> None:
        while not self._stop.wait(STATS_INTERVAL_S):
            self._send({"kind": "stats", "stats": self.stats.snapshot()})

    def _listen(self) -> None:
        actions = {"start": self._start.set, "drain": self.controls.drain, "pause": self.controls.pause,
                   "resume": self.controls.resume}
        for line in sys.stdin:
            action = actions.get(line.strip())
            if action is not None:
                action()
        if not self._stop.is_set():
            self.controls.drain()
        self._start.set()  # the parent is gone: run what is there to drain, then end

    def wait_for_start(self) -> None:
        """Block until the parent says ``start`` (Ctrl-C while waiting raises KeyboardInterrupt)."""
        while not self._start.wait(0.1):
            pass

    def finish(self, exit_code: int, errors: list[str], interrupted: bool) -> None:
        """The last counters and how the run ended; nothing is sent after this."""
        self._stop.set()
        self._send({"kind": "stats", "stats": self.stats.snapshot()})
        self._send({"kind": "end", "exit_code": exit_code, "errors": list(errors), "interrupted": interrupted})
        with self._lock:
            self._closed = True
            try:
                self._out.close()
            except OSError:
                pass


def _plain(value):
    """JSON for numpy scalars that reach the counters."""
    return value.item() if hasattr(value, "item") else str(value)
