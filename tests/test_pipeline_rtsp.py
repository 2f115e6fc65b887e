"""RTSP sources against a real GStreamer RTSP server on loopback: reconnection, give-up, credentials,
and streammux's batched-push-timeout with a slow live source beside a fast file."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from pipeline_helpers import load_config, make_clip, write_config
from rtsp_server import played_whole, rtsp_server  # noqa: F401  (rtsp_server: fixture)
from runner.cli import main
from runner.pipeline.graph import build_graph
from runner.pipeline.report import exit_status
from runner.pipeline.stats import RunStats


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("rtsp")
    return {"long": make_clip(d / "long.mp4", frames=250, size=(160, 120), fps=25),
            "short": make_clip(d / "short.mp4", frames=25, size=(160, 120), fps=25),
            "slow": make_clip(d / "slow.mp4", frames=10, size=(160, 120), fps=5, gop=5),
            "file": make_clip(d / "file.mp4", frames=100, size=(160, 120), fps=25)}


class ArrivalTimes:
    name = "arrivals"

    def __init__(self):
        self.times = {}

    def process(self, batch):
        now = time.monotonic()
        for sid in batch.source_id.tolist():
            self.times.setdefault(sid, []).append(now)
        return batch

    def close(self):
        pass


def start_run(app, stages=()):
    stats = RunStats()
    graph = build_graph(app, stats, stages=list(stages), sinks=[])
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("outcome", graph.run()), daemon=True)
    thread.start()
    return graph, stats, thread, result


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def rtsp_source(url, **keys):
    return {"type": 4, "uri": url, "select-rtp-protocol": 4, **keys}


def test_rtsp_source_reconnects_after_the_server_restarts_and_the_run_continues(tmp_path, media, rtsp_server):
    server = rtsp_server({"cam": media["long"]})
    cfg = write_config(tmp_path, [rtsp_source(server.url("cam"), **{"rtsp-reconnect-interval-sec": 1}),
                                  {"uri": media["file"]}], streammux={"batch-size": 2})
    graph, stats, thread, result = start_run(load_config(cfg))
    cam = stats.sources.get
    assert wait_for(lambda: cam(0) and cam(0).frames_processed >= 10)
    server.stop()
    time.sleep(1.5)
    before = cam(0).frames_processed
    server.start()
    assert wait_for(lambda: cam(0).frames_processed >= before + 10), "no frames after the server came back"
    graph.drain()
    thread.join(15)
    assert not thread.is_alive()
    assert cam(0).reconnects >= 1 and cam(0).state == "ended" and not cam(0).errors
    assert cam(1).frames_processed == 100 and cam(1).state == "ended"
    assert result["outcome"].error is None


def test_exhausted_reconnect_attempts_fail_that_source_and_the_others_finish(tmp_path, media, rtsp_server):
    server = rtsp_server({"cam": media["long"]})
    cfg = write_config(tmp_path, [rtsp_source(server.url("cam"), **{"rtsp-reconnect-interval-sec": 1,
                                                                     "rtsp-reconnect-attempts": 2}),
                                  {"uri": media["file"]}], streammux={"batch-size": 2})
    graph, stats, thread, result = start_run(load_config(cfg))
    assert wait_for(lambda: stats.sources[0].frames_processed >= 5)
    server.stop()  # and it never comes back
    thread.join(30)
    assert not thread.is_alive(), "the run did not end after the attempts were exhausted"
    cam = stats.sources[0]
    assert cam.state == "failed" and cam.reconnects == 2
    assert cam.errors[0].startswith("source 0 (rtsp://127.0.0.1:") and "gave up after 2" in cam.errors[0]
    assert stats.sources[1].frames_processed == 100 and stats.sources[1].state == "ended"
    assert exit_status(stats, False, result["outcome"].error) == 1


def test_rtsp_password_never_appears_in_report_logs_or_errors(tmp_path, media, rtsp_server, capsys):
    server = rtsp_server({"cam": media["short"]}, auth=("admin", "s3cretPW"))
    good = server.url("cam", "admin", "s3cretPW")
    bad = server.url("cam", "admin", "wrongPW")
    cfg = write_config(tmp_path, [rtsp_source(good), rtsp_source(bad)], streammux={"batch-size": 2})
    report = tmp_path / "run.json"
    code = main([str(cfg), "--report", str(report), "--no-dashboard", "--debug"])
    text, err = report.read_text(), capsys.readouterr()
    for secret in ("s3cretPW", "wrongPW"):
        assert secret not in text and secret not in err.err and secret not in err.out
    doc = json.loads(text)
    assert code == 1 and doc["exit_code"] == 1
    by_id = {s["source_id"]: s for s in doc["sources"]}
    assert played_whole(by_id[0]), by_id[0]
    assert by_id[0]["uri"] == f"rtsp://***:***@127.0.0.1:{server.port}/cam"
    assert by_id[1]["state"] == "failed" and "access denied" in by_id[1]["errors"][0]
    assert "source 1 (rtsp://***:***@127.0.0.1" in err.err


def test_batched_push_timeout_keeps_a_fast_file_moving_beside_a_slow_live_source(tmp_path, media, rtsp_server):
    server = rtsp_server({"slow": media["slow"]})  # 5 frames per second
    cfg = write_config(tmp_path, [rtsp_source(server.url("slow")), {"uri": media["file"]}],
                       streammux={"batch-size": 2, "batched-push-timeout": 30000})  # 30 ms
    arrivals = ArrivalTimes()
    graph, stats, thread, result = start_run(load_config(cfg), [arrivals])
    thread.join(30)
    assert not thread.is_alive()
    fast = np.diff(arrivals.times[1])
    assert len(arrivals.times[1]) == 100
    assert len(arrivals.times.get(0, [])) >= 3  # the slow source was playing meanwhile
    # without the timeout every file frame would wait for a live frame (200 ms apart)
    assert np.percentile(fast, 90) < 0.1, f"file frames stalled: 90th percentile gap {np.percentile(fast, 90):.3f}s"
    assert fast.max() < 0.5


def test_select_rtp_protocol_0_plays_over_udp_like_4_over_tcp(tmp_path, media, rtsp_server):
    server = rtsp_server({"cam": media["short"]})
    cfg = write_config(tmp_path, [{"type": 4, "uri": server.url("cam"), "select-rtp-protocol": 0, "latency": 200},
                                  rtsp_source(server.url("cam"))], streammux={"batch-size": 2})
    graph, stats, thread, result = start_run(load_config(cfg))
    thread.join(30)
    assert not thread.is_alive() and result["outcome"].error is None
    for sid in (0, 1):
        assert played_whole(stats.sources[sid]), stats.sources[sid]
