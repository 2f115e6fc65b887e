"""A stalled pipeline never stays silent: with no progress on any source for the watchdog's time the run
ends with a clear error (exit 1), and --debug's dump says where each stage waits. Real video, the real
graph; the stall is a stage that stops returning, as a hung custom parser or a deadlocked library would."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline_helpers import load_config, make_clip, write_config
from runner.pipeline.graph import build_graph
from runner.pipeline.report import exit_status
from runner.pipeline.sinks import RunOptions
from runner.pipeline.stats import RunStats
from runner.pipeline.watchdog import PipelineStalled


class Hang:
    """Passes batches on until the ``after``-th, then waits for ``release`` (which the test sets)."""

    name = "hang"

    def __init__(self, after: int) -> None:
        self.after, self.seen, self.release = after, 0, threading.Event()

    def process(self, batch):
        self.seen += 1
        if self.seen >= self.after:
            self.release.wait()
        return batch

    def close(self):
        pass


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("watchdog") / "cam.mp4", frames=120, size=(160, 120), fps=25)


def _run(graph):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("outcome", graph.run()), daemon=True)
    thread.start()
    return thread, result


def test_a_stage_that_stops_returning_ends_the_run_with_a_stall_error_and_a_dump(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}, {"uri": clip}], streammux={"batch-size": 2})
    stats, hang = RunStats(), Hang(after=5)
    graph = build_graph(load_config(cfg), stats, stages=[hang], sinks=[], options=RunOptions(watchdog_s=2))
    thread, result = _run(graph)
    try:
        thread.join(60)
        assert not thread.is_alive(), "the stalled run never ended"
    finally:
        hang.release.set()
    outcome = result["outcome"]
    assert isinstance(outcome.error, PipelineStalled)
    assert str(outcome.error).startswith("the pipeline stalled: no source decoded a frame and no frame left "
                                         "the pipeline for 2 s (sources 0: playing, 1: playing)")
    assert "run with --debug to see where each stage waits" in str(outcome.error)
    dump = outcome.traceback
    assert dump.startswith("where each pipeline thread waits:")
    assert "stage-hang" in dump and "in process: self.release.wait()" in dump
    assert exit_status(stats, False, outcome.error) == 1
    assert stats.sources[0].frames_processed < 120  # what was lost: the frames behind the hung stage
    print(f"stalled stage: {120 - stats.sources[0].frames_processed} of 120 frames per source never came out")


def test_a_paused_run_is_not_a_stall_and_finishes_every_frame(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}])
    stats = RunStats()
    graph = build_graph(load_config(cfg), stats, sinks=[], options=RunOptions(watchdog_s=1))
    graph.pause()
    thread, result = _run(graph)
    try:
        time.sleep(2.5)  # paused for longer than the watchdog's time
        assert thread.is_alive()
    finally:
        graph.resume()
    thread.join(60)
    assert result["outcome"].error is None and stats.sources[0].frames_processed == 120


def test_watchdog_0_turns_it_off(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}])
    graph = build_graph(load_config(cfg), RunStats(), sinks=[], options=RunOptions(watchdog_s=0))
    outcome = graph.run()
    assert outcome.error is None and not any(t.name == "dsrun-watchdog" for t in threading.enumerate())
