"""``dsrun CONFIG --workers N``: the sources split over N processes, one Python interpreter each.

One dsrun process is bound by Python work under one interpreter lock (README, "GPU throughput");
``--workers`` runs the same config in N child processes, each on its share of the sources:

    $ dsrun deepstream_app_config.txt --workers 4 --report run.json

- the parent loads the config, refuses outputs that cannot be split (:func:`check_splittable`), builds
  every engine once (children only load them from the cache), then starts the children:
  ``python -m runner run CONFIG --worker-of N --worker-index i``;
- child ``i`` reads the sources :func:`runner.pipeline.graph.worker_share` gives it (round-robin over
  the source ids in ascending order); source ids, streammux and every GIE setting are the config's;
- children start together: each loads its engines and builds its pipeline, says ``ready``, and waits
  for the parent's ``start``, sent once every child is ready (or has ended) — as deepstream-app sets
  the whole pipeline playing at once, so no source runs ahead while a slower child is still loading;
- each child sends its counters (``RunStats.snapshot()``) as JSON lines on its stdout every 0.2 s
  (what it prints itself goes to stderr); the parent copies them into a RunStats of its own, so the
  dashboard, ``**PERF`` lines (one stream, all sources), ``--metrics-port`` and ``--report`` work as in
  one process (times are ``time.monotonic()``, one clock for every process of the machine);
- the parent's stdin keys and Ctrl-C reach the children: ``q`` drains, ``p``/``r`` pause and resume
  (a line on the child's stdin), Ctrl-C is forwarded as SIGINT (once drains, twice stops now);
- exit status: the worst child's (the highest), 130 after Ctrl-C; a child that fails to start or dies
  is an error naming it and its sources, the other children run on.

Child side: :class:`WorkerLink` (started by ``runner.app.run_app`` in a child).
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

from runner.errors import DsrunError
from runner.pipeline.graph import worker_share
from runner.pipeline.report import EXIT_FAILED, EXIT_INTERRUPTED, build_report, write_report
from runner.pipeline.sinks import RunOptions
from runner.pipeline.source import source_specs
from runner.pipeline.stats import RunStats

log = logging.getLogger("dsrun")

STATS_INTERVAL_S = 0.2  # how often a child sends its counters
SPLITTABLE_SINKS = {1: "fakesink", 2: "display", 5: "display", 6: "message broker"}
_SINK_NAMES = {3: "encode to file", 4: "RTSP streaming"}
# copied from a child's snapshot; times first, so a reader never sees frames without their clock
_SOURCE_FIELDS = ("started_at", "ended_at", "first_output_at", "last_output_at", "latency_ms", "state",
                  "frames_decoded", "dropped", "reconnects", "frames_processed")


class WorkersError(DsrunError):
    """``--workers`` cannot run as asked (exit 2: fix the command line) or a worker failed."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------------------------------
# What can be split


def check_splittable(app, options: RunOptions) -> None:
    """Raise when the config's outputs need every source in one process: an enabled
    ``[tiled-display]``, or a sink other than fakesink/display (1, 2, 5) and message broker (6).
    ``--jsonl`` is refused too (one file per run); KITTI dumps are per source and frame, so they split.

    Raises ``ConfigError`` (exit 2) naming ``file:line [group] key`` for config problems."""
    from runner.config.diagnostics import ConfigError, Diagnostic

    if options.jsonl is not None:
        raise WorkersError("--jsonl cannot be combined with --workers: the processes would each write a "
                           "part of one file — run without --workers, or use [application] "
                           "gie-kitti-output-dir (one file per source and frame)")
    line = _line_finder(app)
    problems = []
    tiled = int(getattr(app.tiled_display, "enable", 0) or 0)
    if tiled:
        problems.append(Diagnostic(
            "error", "unsupported", str(app.path), line("tiled-display", "enable"), "tiled-display", "enable",
            f"enable={tiled} tiles every source into one picture, which --workers cannot make when the "
            "sources run in separate processes", "set enable=0 or run without --workers"))
    for sink in app.sinks:
        kind = int(sink.type)
        if sink.enable and kind not in SPLITTABLE_SINKS:
            group = sink.group or f"sink{sink.index}"
            what = _SINK_NAMES.get(kind, "this sink")
            problems.append(Diagnostic(
                "error", "unsupported", str(app.path), line(group, "type"), group, "type",
                f"type={kind} ({what}) needs every source in one process, which --workers does not keep",
                "use type=1 (fakesink) or 6 (message broker), set enable=0, or run without --workers"))
    if problems:
        raise ConfigError(problems)


def _line_finder(app):
    """``line(group, key)``: where the key (else its group) is written in the app config, or None."""
    from runner.config.files import read_document

    doc = read_document(Path(app.path), [], what="app config") if getattr(app, "path", None) else None

    def line(group: str, key: str) -> int | None:
        g = doc.groups.get(group) if doc is not None else None
        entry = g.entries.get(key) if g is not None else None
        return entry.line if entry is not None else (g.line if g is not None else None)

    return line


# ---------------------------------------------------------------------------------------------------
# Parent


class _Worker:
    def __init__(self, index: int, sources: list[int]) -> None:
        self.index, self.sources = index, sources
        self.proc: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None
        self.ready = False
        self.started = False  # the parent has told it to start
        self.end: dict | None = None  # the child's last message: exit_code, errors, interrupted
        self.stages: dict[str, dict] = {}  # its latest stage counters
        self.inference: dict = {}
        self._stdin_lock = threading.Lock()

    @property
    def name(self) -> str:
        ids = ", ".join(map(str, self.sources))
        return f"worker {self.index} (source{'s' if len(self.sources) != 1 else ''} {ids})"

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


class _MergedInference:
    """The children's ``InferCounters`` snapshots, summed (what ``--report`` and the dashboard read)."""

    def __init__(self, workers: list[_Worker]) -> None:
        self.workers = workers

    def snapshot(self) -> dict:
        out: dict[str, dict] = {"objects": {}, "labels": {}}
        for w in self.workers:
            for kind, per_gie in out.items():
                for gie, counts in w.inference.get(kind, {}).items():
                    merged = per_gie.setdefault(gie, {})
                    for key, n in counts.items():
                        merged[key] = merged.get(key, 0) + int(n)
        order = lambda k: (0, int(k), "") if str(k).lstrip("-").isdigit() else (1, 0, str(k))
        return {kind: {g: dict(sorted(c.items(), key=lambda kv: order(kv[0])))
                       for g, c in sorted(per_gie.items(), key=lambda kv: order(kv[0]))}
                for kind, per_gie in out.items()}


class WorkerPool:
    """The children of one ``--workers`` run; ``drain``/``pause``/``resume`` as ``Graph`` has them
    (the UI's keys call them)."""

    def __init__(self, app, options: RunOptions, stats: RunStats, config: str, debug: bool = False) -> None:
        ids = [s.source_id for s in source_specs(app)]
        count = max(1, min(options.workers, len(ids)))
        self.workers = [_Worker(i, worker_share(ids, count, i)) for i in range(count)]
        self.options, self.stats, self.config, self.debug = options, stats, config, debug
        self.errors: list[str] = []  # worker-level problems (the children print their own)
        self._lock = threading.Lock()
        stats.inference = _MergedInference(self.workers)

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
        cmd += ["run", self.config, "--no-dashboard", "--worker-of", str(len(self.workers)),
                "--worker-index", str(w.index)]
        if self.options.engine_dir is not None:
            cmd += ["--engine-dir", str(self.options.engine_dir)]
        return cmd

    def start(self) -> None:
        """Start every child; raises :class:`WorkersError` (after stopping the others) when one cannot."""
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[1])  # so `-m runner` finds this checkout
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env.update(_thread_share(len(self.workers)))
        log.info("%d workers: %s", len(self.workers), "; ".join(w.name for w in self.workers))
        for w in self.workers:
            try:
                w.proc = subprocess.Popen(self._command(w), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True, bufsize=1, env=env, start_new_session=True)
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
                w.ready = True  # wait() starts the children once none is still loading
            elif kind == "stats":
                self._apply(w, message["stats"])
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

    def _apply(self, w: _Worker, snap: dict) -> None:
        with self._lock:
            for sid, s in snap.get("sources", {}).items():
                dst = self.stats.add_source(int(sid), s["uri"])
                for name in _SOURCE_FIELDS:
                    setattr(dst, name, s[name])
                dst.errors = list(s["errors"])
            w.stages = snap.get("stages", {})
            w.inference = snap.get("inference", {})
            for name in dict.fromkeys(n for x in self.workers for n in x.stages):
                parts = [x.stages[name] for x in self.workers if name in x.stages]
                st = self.stats.add_stage(name, queue_depth=self._depth(name))
                st.batches = sum(p["batches"] for p in parts)
                st.frames = sum(p["frames"] for p in parts)
                st.busy_s = sum(p["busy_s"] for p in parts)
            for name, state in snap.get("engines", {}).items():
                self.stats.set_engine(name, state)

    def _depth(self, name: str):
        return lambda: sum(x.stages.get(name, {}).get("queue_depth", 0) for x in self.workers)

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
        self.errors.append(problem)
        for sid in w.sources:
            s = self.stats.sources.get(sid)
            if s is not None and s.state not in ("ended", "failed"):
                s.state = "failed"
                s.errors.append(problem)

    def exit_code(self, interrupted: bool) -> int:
        if interrupted:
            return EXIT_INTERRUPTED
        codes = [w.end["exit_code"] if w.end is not None else max(EXIT_FAILED, w.proc.returncode or 0)
                 for w in self.workers]
        return max(codes + ([EXIT_FAILED] if self.errors else []))

    def child_errors(self) -> list[str]:
        return [e for w in self.workers if w.end is not None for e in w.end.get("errors", ())]

    def describe(self) -> list[dict]:
        return [{"index": w.index, "sources": w.sources, "pid": w.proc.pid if w.proc else None,
                 "exit_code": w.proc.returncode if w.proc else None} for w in self.workers]


def run_workers(app, options: RunOptions, stats: RunStats, *, config: str, debug: bool = False,
                prepare_engines=None, start_ui=None) -> int:
    """The parent of a ``--workers`` run (called by ``runner.app.run_app``); returns the exit status.

    ``prepare_engines(app, options, stats)`` builds the engines (the parent closes them: children load
    them from the cache); ``start_ui(stats, app, options, controls)`` starts the dashboard or
    ``**PERF`` lines on the parent's RunStats. The caller has run :func:`check_splittable`."""
    if prepare_engines is not None:
        _close(prepare_engines(app, options, stats), app)
    if _uses_cuda() and not mps_running():
        log.warning("%d workers will share the GPU without CUDA MPS, taking turns on it: start MPS first "
                    "(`nvidia-cuda-mps-control -d`; 1.9x the throughput with 8 workers on an H100)",
                    options.workers)
    pool = WorkerPool(app, options, stats, config=str(Path(config).absolute()), debug=debug)
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
    code = pool.exit_code(was_interrupted)
    for message in pool.errors:
        print(f"dsrun: {message}", file=sys.stderr)
    if options.report:
        report = build_report(stats, config=config, exit_code=code, interrupted=was_interrupted,
                              errors=pool.child_errors() + pool.errors)
        report["workers"] = pool.describe()
        write_report(options.report, report)
    return code


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


def _thread_share(workers: int) -> dict[str, str]:
    """Each child's share of the cores for the CPU thread pools (PyTorch, OpenCV, numpy's BLAS,
    ONNX Runtime), so N children do not each start a pool as wide as the machine; what the user has
    set in the environment is kept."""
    share = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    return {name: share for name in ("OMP_NUM_THREADS", "OPENCV_FOR_THREADS_NUM") if name not in os.environ}


def _close(loader, app) -> None:
    """Release the parent's engines once built (they would hold memory the children need)."""
    if loader is None:
        return
    from runner.engine.commands import app_specs

    for name, _spec in app_specs(app):
        close = getattr(loader(None, name), "close", None)
        if close is not None:
            close()


# ---------------------------------------------------------------------------------------------------
# Child


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
        self._send({"kind": "ready", "worker": index, "sources": sorted(stats.sources)})
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
