"""The running graph: sources → streammux → stages → sinks, in threads joined by bounded queues.

:func:`build_graph` turns an ``AppConfig`` into a :class:`Graph`; :meth:`Graph.run` starts it, waits
until every source has ended and every batch has reached the sinks, and stops cleanly:

* each stage runs in its own thread; a full queue blocks the stage before it (backpressure), up to the
  source readers (files wait, live sources drop to their newest frame);
* end of stream travels per source in ``Batch.eos`` (stages may define ``on_eos(source_ids)``, called
  for batches that hold only an EOS too) and, for the whole pipeline, after the last batch
  (``on_pipeline_eos()``, GStreamer's EOS event);
* Ctrl-C drains (no new frames are decoded, queued batches reach the sinks, files are closed); a
  second Ctrl-C stops at once;
* an exception in a stage stops the run with a :class:`StageError` naming the stage and the
  batch's sources — never a hang;
* an output (a sink: file, ``--jsonl``, KITTI, RTSP out, broker) that fails stops alone: its error
  (``runner.pipeline.output_files.output_failure``: path, frames written, what to do) goes to its
  ``StageStats.error``, it takes no more batches, and the sources and other outputs go on;
* a pipeline that makes no progress for ``watchdog_s`` seconds (``--watchdog``,
  ``runner.pipeline.watchdog``) ends with a ``PipelineStalled`` error; the outcome's traceback then
  says where each thread waits (printed with ``--debug``).

The stage list is written out in :func:`build_stages` — the place where features plug in (see
docs/pipeline.md). A stage is anything with ``name``, ``process(batch) -> batch`` and ``close()``
(``runner.pipeline.stage.Stage``).
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

from runner.errors import DsrunError
from runner.pipeline.batch import Batch
from runner.pipeline.gpu_streams import StageStreams
from runner.pipeline.mux import MuxInput, MuxSpec, StreamMux, rgb_converter
from runner.pipeline.nvdec import NvdecPumps, NvdecReader, nvdec_usable
from runner.pipeline.output_files import output_failure
from runner.pipeline.prepare_ahead import PrepareAhead
from runner.pipeline.smart_record import SmartRecorder, smart_record_specs
from runner.pipeline.sinks import RunOptions, build_sink_stages
from runner.pipeline.source import SourceReader, redact, source_specs
from runner.pipeline.stage import Stage
from runner.pipeline.stats import RunStats
from runner.pipeline.watchdog import DEFAULT_WATCHDOG_S, Watchdog

log = logging.getLogger("dsrun")

QUEUE_SIZE = 2  # batches waiting between two stages: enough to overlap, small for latency
_END = object()


class StageError(DsrunError):
    """A stage raised while processing a batch; the message names the stage and the sources."""

    exit_code = 1


class _Abort(Exception):
    pass


def feature(module: str) -> ModuleType | None:
    """Import one of *our* optional feature modules; ``None`` only when that module is not built yet.

    Any other ImportError (a missing dependency inside the module) is a real error and propagates."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


# ---------------------------------------------------------------------------------------------------
# Building


def build_stages(app, engines: Any, stats: RunStats | None = None) -> list[Stage]:
    """The processing stages between streammux and the sinks, in deepstream-app's order:
    PGIE → tracker → nvdsanalytics → SGIEs → tiler → OSD.

    Each block is a hook owned by another part of dsrun; a feature that is not built yet is skipped.
    ``engines`` is what ``runner.engine.prepare.prepare_engines`` returned: ``loader(gie, name)``.
    The GIE stages count their objects and classifier labels into ``stats.inference`` (``--report``)."""
    stages: list[Stage] = []
    infer = feature("runner.pipeline.infer")  # [primary-gie], [secondary-gieN]
    counters = stats.inference if stats is not None else None
    gies = infer.build_gie_stages(app, engines, counters=counters) if infer is not None else []
    primary = [s for s in gies if s.name == "primary-gie"]
    stages += primary
    tracking = feature("runner.pipeline.tracker.stage")  # [tracker]
    if tracking is not None:
        pgie = getattr(app, "primary_gie", None)
        pgie_id = getattr(getattr(pgie, "nvinfer", None), "gie_unique_id", None) if pgie is not None else None
        stages += [s for s in [tracking.build_tracker_stage(app, pgie_id)] if s is not None]
    analytics = feature("runner.pipeline.analytics.stage")  # [nvds-analytics]
    if analytics is not None:
        stages += [s for s in [analytics.build_analytics_stage(app, stats)] if s is not None]
    stages += [s for s in gies if s.name != "primary-gie"]
    tiler = feature("runner.pipeline.tiler")  # [tiled-display]
    if tiler is not None:
        stages += [s for s in [tiler.build_tiler_stage(app)] if s is not None]
    osd = feature("runner.pipeline.osd")  # [osd]
    if osd is not None:
        stages += [s for s in [osd.build_osd_stage(app)] if s is not None]
    return stages


def build_graph(app, stats: RunStats, engines: Any = None, options: RunOptions | None = None,
                stages: list[Stage] | None = None, sinks: list[Stage] | None = None) -> "Graph":
    """An ``AppConfig`` as a ready-to-run :class:`Graph` (``stages``/``sinks`` override the config's).
    In a worker of a split run (``options.shard``, see ``runner.placement``) only that shard's sources
    are read, ids kept, each file source skipping the frames ``options.resume`` says are done."""
    options = options or RunOptions()
    specs = source_specs(app)
    if options.shard is not None:
        mine, resume = set(options.shard), dict(options.resume)
        specs = [replace(s, skip_frames=resume.get(s.source_id, 0)) for s in specs if s.source_id in mine]
    mux_spec = MuxSpec.from_config(app.streammux, len(specs))
    inputs = MuxInput(stats, {s.source_id: s.live for s in specs})
    to_rgb = rgb_converter(mux_spec)

    recorders = {sid: SmartRecorder(rec) for sid, rec in smart_record_specs(app).items()}
    pumps = NvdecPumps(inputs)  # NVDEC sources share a few threads (started by the first reader)

    def make_reader(spec, source_stats):
        if nvdec_usable(spec) and spec.source_id not in recorders:  # smart record needs PyAV's packets
            return NvdecReader(spec, inputs, source_stats, (mux_spec.width, mux_spec.height), pump=pumps)
        reader = SourceReader(spec, inputs, source_stats, to_rgb)
        reader.recorder = recorders.get(spec.source_id)
        return reader

    readers = [make_reader(s, stats.add_source(s.source_id, s.name)) for s in specs]
    mux = StreamMux(mux_spec, inputs, stats, first_frame_num={
        s.source_id: s.skip_frames // max(1, s.drop_frame_interval) for s in specs if s.skip_frames})
    stages = build_stages(app, engines, stats) if stages is None else stages
    sinks = build_sink_stages(app, options) if sinks is None else sinks
    for sink in sinks:  # sinks with counters of their own (message brokers) publish them in the run stats
        if hasattr(sink, "bind_stats"):
            sink.bind_stats(stats)
    graph = Graph(readers, inputs, mux, stages, sinks, stats)
    graph.watchdog_s = options.watchdog_s
    graph.make_reader = make_reader
    graph.recorders = recorders
    for sink in sinks:  # the batch hook triggers smart record (batch.smart_record)
        if hasattr(sink, "recorders"):
            sink.recorders = recorders
    return graph


# ---------------------------------------------------------------------------------------------------
# Running


@dataclass
class Outcome:
    """How a run ended: ``interrupted`` by Ctrl-C, ``error`` from a stage (None when none failed)."""

    interrupted: bool = False
    forced: bool = False
    error: DsrunError | None = None
    traceback: str | None = None
    source_errors: dict[int, str] = field(default_factory=dict)
    output_errors: list[str] = field(default_factory=list)  # sinks that failed and stopped alone


class Graph:
    def __init__(self, readers: list[SourceReader], inputs: MuxInput, mux: StreamMux,
                 stages: list[Stage], sinks: list[Stage], stats: RunStats, queue_size: int = QUEUE_SIZE):
        self.readers, self.inputs, self.mux = readers, inputs, mux
        self.stages, self.sinks, self.stats = list(stages), list(sinks), stats
        self.queue_size = queue_size
        self._streams = StageStreams()  # a CUDA stream per stage thread (GPU frames only)
        self.outcome = Outcome()
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.watchdog_s = DEFAULT_WATCHDOG_S  # --watchdog: no progress for this long ends the run (0: off)
        self._give_up_at: float | None = None  # stalled: threads still stuck by then are left behind
        self.make_reader = None  # (spec, SourceStats) -> reader; set by build_graph (sources added live)
        self.recorders: dict = {}  # source id -> SmartRecorder ([sourceN] smart-record)

    # -- control -----------------------------------------------------------------------------------

    def drain(self) -> None:
        """Stop decoding; let what is queued reach the sinks; then every thread ends."""
        for r in list(self.readers):
            r.stop()
        self.mux.drain()

    def add_reader(self, reader) -> None:
        """A source joining the running graph (``runner.pipeline.live_sources``): its queue is
        registered with streammux before its reader thread starts."""
        sid = reader.spec.source_id
        self.inputs.add_source(sid, reader.spec.live)
        self.mux.joined(sid)
        with self._lock:
            self.readers.append(reader)
        if self._threads:  # running: start now (else _start starts every reader)
            reader.start()

    def pause(self) -> None:
        """Hold batches at streammux (the dashboard's ``p`` key); files wait, live sources drop."""
        self.mux.paused.set()
        self.stats.paused = True

    def resume(self) -> None:
        self.mux.paused.clear()
        self.stats.paused = False

    def abort(self) -> None:
        """Stop now: queued batches are dropped; stages are still closed (files stay playable)."""
        self._abort.set()
        self.drain()
        self.inputs.close()

    def _fail(self, stage_name: str, batch: Batch | None, exc: BaseException) -> None:
        with self._lock:
            if self.outcome.error is None:
                ids = sorted({int(s) for s in batch.source_id}) if batch is not None and len(batch) else []
                where = f"source {ids[0]}" if len(ids) == 1 else f"sources {ids}" if ids else "no source"
                what = str(exc) if isinstance(exc, DsrunError) else f"{type(exc).__name__}: {exc}"
                hint = "" if isinstance(exc, DsrunError) else " — run with --debug for the traceback"
                self.outcome.error = StageError(redact(f"stage '{stage_name}' failed on {where}: {what}{hint}"))
                self.outcome.traceback = redact("".join(traceback.format_exception(exc)))
        self.abort()

    # -- threads -------------------------------------------------------------------------------------

    def _get(self, q: queue.Queue):
        while True:
            if self._abort.is_set():
                raise _Abort
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    def _put(self, q: queue.Queue, item) -> None:
        while True:
            if self._abort.is_set():
                raise _Abort
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _emit(self, batch: Batch, outs: list[queue.Queue], count: bool) -> None:
        if count and len(batch):
            self.stats.frames_processed(batch.source_id, batch.ntp_ts)
            objects = batch.objects
            if len(objects):
                self.stats.objects_processed(batch.source_id[objects.frame], objects.gie_id, objects.class_id)
        for q in outs:
            self._put(q, batch)

    def _run_mux(self, outs: list[queue.Queue], count: bool) -> None:
        batch = None
        try:
            for batch in self.mux.batches():
                self._emit(batch, outs, count)
        except _Abort:
            pass
        except BaseException as exc:  # a bug in streammux still ends the run cleanly
            self._fail(self.mux.name, batch, exc)
        finally:
            self.inputs.close()
            self._finish(outs)

    def _output_failed(self, stage: Stage, st, exc: BaseException) -> None:
        """A sink failed: it stops alone (the caller keeps emptying its queue); the run goes on."""
        st.error = redact(output_failure(stage.name, exc, frames=st.frames, path=getattr(stage, "path", None)))
        log.error("%s", st.error)
        with self._lock:
            if self.outcome.traceback is None:
                self.outcome.traceback = redact("".join(traceback.format_exception(exc)))

    def _discard(self, inq: queue.Queue) -> None:
        """Take (and drop) batches until the end, so a failed output never holds the others back."""
        try:
            while self._get(inq) is not _END:
                pass
        except _Abort:
            pass

    def _run_stage(self, stage: Stage, inq: queue.Queue, outs: list[queue.Queue], count: bool,
                   output: bool = False) -> None:
        st = self.stats.add_stage(stage.name, queue_depth=inq.qsize)
        on_eos = getattr(stage, "on_eos", None)
        on_pipeline_eos = getattr(stage, "on_pipeline_eos", None)
        ahead: list[PrepareAhead] = []  # a stage that splits: its first steps, each on a thread of its own
        for step_name, step in (getattr(stage, "ahead", ()) if not output else ()):
            ahead.append(PrepareAhead(
                f"stage-{stage.name}-{step_name}", ahead[-1].out if ahead else inq,
                lambda b, step=step: self._streams.process(stage, b, step),
                lambda b, exc: self._fail(stage.name, b, exc), self._abort,
                ahead[-1].taken if ahead else None, self.stats.add_stage(f"{stage.name}:{step_name}")))
        for thread in ahead:
            thread.start()
        batch = None
        try:
            while True:
                batch = self._get(ahead[-1].out if ahead else inq)
                if ahead:
                    ahead[-1].taken()
                if batch is _END:
                    if on_pipeline_eos is not None:
                        on_pipeline_eos()
                    break
                if len(batch):
                    t0 = time.perf_counter()
                    batch = self._streams.process(stage, batch)
                    st.busy_s += time.perf_counter() - t0
                    st.batches += 1
                    st.frames += len(batch)
                if on_eos is not None and batch.eos:
                    on_eos(batch.eos)
                self._emit(batch, outs, count)
        except _Abort:
            pass
        except Exception as exc:
            if not output:
                self._fail(stage.name, batch if isinstance(batch, Batch) else None, exc)
            else:
                self._output_failed(stage, st, exc)
                try:
                    stage.close()  # keeps what it wrote whole; its own errors add nothing
                except Exception:
                    pass
                self._discard(inq)
                return
        except BaseException as exc:
            self._fail(stage.name, batch if isinstance(batch, Batch) else None, exc)
        for thread in ahead:  # ended by the end marker, or the abort that every failure sets
            thread.join()
        try:
            stage.close()
        except Exception as exc:
            if output:
                self._output_failed(stage, st, exc)
            else:
                self._fail(stage.name, None, exc)
        except BaseException as exc:
            self._fail(stage.name, None, exc)
        finally:
            self._finish(outs)

    def _finish(self, outs: list[queue.Queue]) -> None:
        for q in outs:
            try:
                self._put(q, _END)
            except _Abort:
                return

    def _start(self) -> None:
        chain = self.stages
        queues = [queue.Queue(self.queue_size) for _ in chain]
        sink_queues = [queue.Queue(self.queue_size) for _ in self.sinks]
        first_outs = [queues[0]] if chain else sink_queues
        self._threads.append(threading.Thread(target=self._run_mux, args=(first_outs, not chain),
                                              name="streammux", daemon=True))
        for i, stage in enumerate(chain):
            last = i == len(chain) - 1
            outs = sink_queues if last else [queues[i + 1]]
            self._threads.append(threading.Thread(target=self._run_stage, args=(stage, queues[i], outs, last),
                                                  name=f"stage-{stage.name}", daemon=True))
        for sink, q in zip(self.sinks, sink_queues):
            self._threads.append(threading.Thread(target=self._run_stage, args=(sink, q, [], False, True),
                                                  name=f"sink-{sink.name}", daemon=True))
        for r in self.readers:
            r.start()
        for t in self._threads:
            t.start()

    def _alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _stalled(self, error: DsrunError, dump: str) -> None:
        """The watchdog saw no progress: end the run with ``error``; ``dump`` is for --debug."""
        with self._lock:
            if self.outcome.error is None:
                self.outcome.error, self.outcome.traceback = error, dump
        self._give_up_at = time.monotonic() + 5.0
        self.abort()

    def run(self, on_interrupt=None) -> Outcome:
        """Run to the end; returns the :class:`Outcome`. Ctrl-C once drains, twice forces."""
        switch = os.environ.get("DSRUN_SWITCH_INTERVAL_MS", "").strip()
        if switch:  # how long a thread may hold the interpreter lock while another waits (Python: 5 ms)
            sys.setswitchinterval(float(switch) / 1000)
        self._start()
        watchdog = Watchdog(self.stats, self.watchdog_s, self._stalled,
                            stays_open=lambda: bool(getattr(self.mux, "stay_open", False))
                            ) if self.watchdog_s > 0 else None
        if watchdog is not None:
            watchdog.start()
        interrupts = 0
        force_deadline = None
        while True:
            try:
                while self._alive():
                    deadline = min(d for d in (force_deadline, self._give_up_at, float("inf")) if d is not None)
                    if time.monotonic() > deadline:
                        break  # a stage stuck inside process(): give up on it (daemon thread)
                    time.sleep(0.05)
                break
            except KeyboardInterrupt:
                interrupts += 1
                self.outcome.interrupted = True
                if on_interrupt is not None:
                    on_interrupt(interrupts)
                if interrupts == 1:
                    self.drain()
                else:
                    self.outcome.forced = True
                    self.abort()
                    force_deadline = time.monotonic() + 5.0
        if watchdog is not None:
            watchdog.stop()
        readers = list(self.readers)
        for r in readers:
            r.stop()
        deadline = time.monotonic() + 1.0  # a reader blocked in a network read is left behind (daemon)
        for r in readers:
            if r.ident is not None:  # started
                r.join(max(0.0, deadline - time.monotonic()))
        self.outcome.source_errors = {r.spec.source_id: str(r.error) for r in readers if r.error}
        self.outcome.output_errors = [st.error for st in self.stats.stages.values() if st.error]
        return self.outcome


def describe(graph: Graph) -> str:
    """One line per element, for ``--debug`` and docs: ``sources → streammux → stages → sinks``."""
    parts = [f"{len(graph.readers)} source(s)", "streammux"] + [s.name for s in graph.stages]
    sinks = ", ".join(s.name for s in graph.sinks) or "none"
    return " → ".join(parts) + f" → sinks [{sinks}]"

