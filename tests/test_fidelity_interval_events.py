"""The PGIE's ``interval`` counter across a run's events, against the port of gstnvinfer.cpp
(tests/reference/gstnvinfer.py ``FullFrameInterval``): gst_nvinfer_start sets the counter to 0, and of
the events gst_nvinfer_sink_event handles only the pipeline's GST_EVENT_EOS resets it — a stream added at
run time (GST_NVEVENT_PAD_ADDED) or ending (GST_NVEVENT_STREAM_EOS) leaves it where it is.

A real run: the graph with a live source list (nvmultiurisrcbin's), real H.264 clips, a real ONNX
detector with interval=2; a second stream is added while the first plays. Every batch the PGIE saw is
recorded in order and replayed through the port with the events DeepStream would have delivered.
"""

from __future__ import annotations

import threading

from infer_models import detectnet_model, load
from pipeline_helpers import make_clip
from reference.gstnvinfer import FullFrameInterval
from rest_client import live_config
from runner.config import load_app, load_nvinfer
from runner.pipeline.graph import build_graph
from runner.pipeline.infer import GieStage
from runner.pipeline.live_sources import LiveSources, live_source_list
from runner.pipeline.stats import RunStats

INTERVAL = 2


class Recorder:
    """After the PGIE: each batch's sources and PGIE flags, and each end of stream, in order."""

    name = "recorder"

    def __init__(self, gie_id: int) -> None:
        self.gie_id, self.events, self.batches = gie_id, [], threading.Event()
        self.counter_at_pipeline_eos = None

    def process(self, batch):
        self.events.append(("batch", batch.source_id.tolist(), batch.inferred[self.gie_id].tolist()))
        if sum(e[0] == "batch" for e in self.events) >= 5:
            self.batches.set()
        return batch

    def on_eos(self, source_ids) -> None:
        self.events.append(("stream_eos", list(source_ids), None))

    def close(self) -> None:
        pass


def test_a_stream_added_at_run_time_joins_the_batch_cadence_and_the_pipeline_eos_resets_it(tmp_path):
    detectnet_model(tmp_path / "det.onnx", [(0, 1, 1, 0.9, (10, 10, 40, 40))])
    (tmp_path / "pgie.txt").write_text(
        "[property]\nonnx-file=det.onnx\nnet-scale-factor=0.00392156862745098\nnum-detected-classes=2\n"
        f"gie-unique-id=1\nbatch-size=4\ninterval={INTERVAL}\n")
    nvinfer = load_nvinfer(tmp_path / "pgie.txt")
    pgie = GieStage(nvinfer, load(nvinfer, tmp_path / "engines"), name="primary-gie")
    recorder = Recorder(pgie.gie_id)
    long_clip = make_clip(tmp_path / "long.mp4", frames=120, size=(320, 240))
    short_clip = make_clip(tmp_path / "short.mp4", frames=31, size=(320, 240))

    app = load_app(live_config(tmp_path))
    graph = build_graph(app, RunStats(), stages=[pgie, recorder], sinks=[])
    live = LiveSources(graph, app, live_source_list(app))
    live.add("long", "long", long_clip.as_uri())

    def add_second_stream():
        assert recorder.batches.wait(120)
        graph.mux.paused.set()  # the first stream cannot end while the second joins
        try:
            live.add("short", "short", short_clip.as_uri())
        finally:
            graph.mux.paused.clear()

    adder = threading.Thread(target=add_second_stream)
    adder.start()
    try:
        outcome = graph.run()
    finally:
        graph.mux.paused.clear()
        adder.join(120)
    assert outcome.error is None

    counter, seen = FullFrameInterval(INTERVAL), set()
    batches = [e for e in recorder.events if e[0] == "batch"]
    assert sum(len(s) for _, s, _ in batches) == 120 + 31
    for kind, sources, flags in recorder.events:
        if kind == "stream_eos":
            counter.sink_event("stream_eos")
            continue
        for sid in sorted(set(sources) - seen):  # the pad is requested before its first buffer
            counter.sink_event("pad_added")
            seen.add(sid)
        want = [False] * len(sources)
        for i in counter.process_full_frame(len(sources)):
            want[i] = True
        assert flags == want, (sources, flags, want)
    assert seen == {0, 1} and any(1 in s and 0 in s for _, s, _ in batches)  # the streams shared batches
    assert [e[1] for e in recorder.events if e[0] == "stream_eos"] in ([[1], [0]], [[0], [1]], [[0, 1]],
                                                                         [[1, 0]])
    # after the last batch the pipeline's EOS reached the PGIE: its counter is where gst_nvinfer_sink_event
    # leaves it (0), not where the batches left it
    assert counter.interval_counter == len(batches) > 0
    counter.sink_event("eos")
    assert pgie._interval_counter == counter.interval_counter == 0
