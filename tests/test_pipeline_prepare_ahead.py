"""A stage that splits (``ahead`` steps, then ``process``; runner.pipeline.prepare_ahead) on real runs of
the graph: batches keep their order through every step, each step is at most one batch ahead of the
next, a failure in any step ends the run naming the stage and source, and no thread outlives the run."""

from __future__ import annotations

import threading

import pytest

from pipeline_helpers import load_config, make_clip, write_config
from runner.pipeline.graph import build_graph
from runner.pipeline.stats import RunStats

FRAMES = 40


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("ahead") / "clip.mp4", frames=FRAMES, size=(160, 120))


class Halves:
    """``prepare`` (on a thread of its own), optionally ``check`` (a second step, on another) and then
    ``process`` of each batch; records what each step saw and where it ran."""

    name = "halves"

    def __init__(self, fail_prepare_at: int | None = None, fail_process_at: int | None = None,
                 two_steps: bool = False):
        self.fail_prepare_at, self.fail_process_at = fail_prepare_at, fail_process_at
        self.ahead = (("prepare", self.prepare),) + ((("check", self.check),) if two_steps else ())
        self.lock = threading.Lock()
        self.prepared, self.checked, self.processed, self.eos = [], [], [], []
        self.most_ahead = 0  # batches prepared and not processed yet when a prepare() started
        self.threads = {"prepare": set(), "check": set(), "process": set()}
        self.ahead_started = threading.Event()
        self.closed_with_prepare_thread_alive = None

    def prepare(self, batch):
        with self.lock:
            self.most_ahead = max(self.most_ahead, len(self.prepared) - len(self.processed))
            self.threads["prepare"].add(threading.current_thread().name)
            if len(self.prepared) == len(self.ahead) + 1:
                self.ahead_started.set()
        if len(self.prepared) + 1 == self.fail_prepare_at:
            raise ValueError("prepare broke")
        with self.lock:
            self.prepared.append(batch.frame_num.tolist())
        return batch

    def check(self, batch):
        with self.lock:
            self.threads["check"].add(threading.current_thread().name)
            assert self.prepared[len(self.checked)] == batch.frame_num.tolist()  # the batch prepared
            self.checked.append(batch.frame_num.tolist())
        return batch

    def process(self, batch):
        self.threads["process"].add(threading.current_thread().name)
        if not self.processed:
            # the first batch takes a while: threads that ran more than one batch ahead each would
            # start preparing one batch more than a step each now (counted in most_ahead); bounded
            # ones cannot
            self.ahead_started.wait(1.0)
        if len(self.processed) + 1 == self.fail_process_at:
            raise ValueError("process broke")
        with self.lock:
            assert self.prepared[len(self.processed)] == batch.frame_num.tolist()  # the batch prepared
            assert not self.checked or self.checked[len(self.processed)] == batch.frame_num.tolist()
            self.processed.append(batch.frame_num.tolist())
        return batch

    def on_eos(self, source_ids):
        self.eos.append(tuple(source_ids))

    def close(self):
        self.closed_with_prepare_thread_alive = _prepare_threads() != []


class Sink:
    name = "sink"

    def __init__(self):
        self.frames = []

    def process(self, batch):
        self.frames += batch.frame_num.tolist()
        return batch

    def close(self):
        pass


def _prepare_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.endswith(("-prepare", "-check"))]


def _graph(tmp_path, clip, stage, sink=None, loop: bool = False):
    cfg = write_config(tmp_path, [{"uri": clip}], streammux={"batch-size": 2, "batched-push-timeout": -1},
                       tests={"file-loop": int(loop)})
    return build_graph(load_config(cfg), RunStats(), stages=[stage], sinks=[sink] if sink else [])


@pytest.mark.parametrize("two_steps", [False, True])
def test_batches_go_through_each_step_one_ahead_on_a_thread_of_their_own_and_in_order(tmp_path, clip, two_steps):
    stage, sink = Halves(two_steps=two_steps), Sink()
    graph = _graph(tmp_path, clip, stage, sink)
    outcome = graph.run()
    assert outcome.error is None
    frames = [[n, n + 1] for n in range(0, FRAMES, 2)]
    assert stage.prepared == stage.processed == frames and stage.checked == (frames if two_steps else [])
    assert sink.frames == list(range(FRAMES))
    assert stage.eos == [(0,)]  # the end of stream still reaches the stage (after its last batch)
    # each step one batch ahead of the next, never more: 1 prepared batch not processed with one step,
    # 2 with two (one checked, one being prepared)
    assert stage.most_ahead == len(stage.ahead)
    assert stage.threads == {"prepare": {"stage-halves-prepare"}, "process": {"stage-halves"},
                             "check": {"stage-halves-check"} if two_steps else set()}
    assert stage.closed_with_prepare_thread_alive is False and _prepare_threads() == []
    for name in ["halves", "halves:prepare"] + (["halves:check"] if two_steps else []):
        st = graph.stats.stages[name]  # every thread's batches, frames and time, in a row of its own
        assert (st.batches, st.frames) == (FRAMES // 2, FRAMES) and st.busy_s > 0, name
    # the first batch's process() waited in Halves.process: the stage's row has that time, the steps' not
    assert graph.stats.stages["halves"].busy_s > graph.stats.stages["halves:prepare"].busy_s


@pytest.mark.parametrize("side", ["prepare", "process"])
def test_a_failure_on_either_side_ends_the_run_naming_the_stage_and_leaves_no_thread(tmp_path, clip, side):
    stage = Halves(**{f"fail_{side}_at": 5}, two_steps=True)
    graph = _graph(tmp_path, clip, stage, loop=True)  # endless without the failure
    outcome = graph.run()
    assert str(outcome.error) == (f"stage 'halves' failed on source 0: ValueError: {side} broke"
                                  " — run with --debug for the traceback")
    assert len(stage.processed) == 4 and stage.closed_with_prepare_thread_alive is False
    assert _prepare_threads() == []


def test_an_abort_stops_the_preparing_thread_too(tmp_path, clip):
    class Stop(Sink):
        name = "stop"

        def process(self, batch):
            if batch.frame_num[0] >= 10:
                graph.abort()
            return super().process(batch)

    stage = Halves(two_steps=True)
    graph = _graph(tmp_path, clip, stage, Stop(), loop=True)
    outcome = graph.run()
    # the sink stops at the 6th batch; the stage is at most its queues (2 + 2) and two in hand ahead
    assert outcome.error is None and 6 <= len(stage.processed) <= 12 and len(stage.prepared) <= 14
    assert stage.closed_with_prepare_thread_alive is False and _prepare_threads() == []
