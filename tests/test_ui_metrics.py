"""--metrics-port: a real HTTP server on loopback, scraped with urllib; DeepStream 9.x's metric names."""

import io
import json
import socket
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runner.pipeline.stats import RunStats
from runner.ui import start_ui
from runner.ui.metrics import MetricsError


class Clock:
    def __init__(self):
        self.steps = 0

    def __call__(self):
        return 50 + self.steps / 10


def get(port, path, accept=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


CONFIG = """\
[application]
enable-perf-measurement=1
perf-measurement-interval-sec=5

[source-list]
num-source-bins=2
list=file://a.mp4;file://b.mp4
sensor-id-list=cam-a;cam-b
sensor-name-list=Gate;Dock

[source-attr-all]
enable=1
type=3

[streammux]
batch-size=2
width=640
height=480

[sink0]
enable=1
type=1
"""


@pytest.fixture
def run(tmp_path):
    from runner.config import load_app

    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "app.txt").write_text(CONFIG)
    config = load_app(tmp_path / "app.txt")  # sensor ids/names come from [source-list]
    clock = Clock()
    stats = RunStats(clock=clock)
    a = stats.add_source(0, "file:///videos/bikes.mp4")
    b = stats.add_source(1, "rtsp://camera-7/stream")
    stage = stats.add_stage("pgie", queue_depth=lambda: 3)
    stats.set_engine("detector.engine", "loaded")
    handle = start_ui(stats, config, dashboard=False, metrics_port=0, metrics_host="127.0.0.1",
                      stdout=io.StringIO(), stdin=io.StringIO())
    yield SimpleNamespace(stats=stats, clock=clock, a=a, b=b, stage=stage, handle=handle,
                          port=handle.metrics_port)
    handle.stop()


def advance(run, seconds, per_step):
    """0.1 s steps; source 0 outputs ``per_step`` frames each step, source 1 one frame every step.
    Each batch entered streammux 40 ms before it left (``Batch.ntp_ts``)."""
    import time

    for _ in range(round(seconds * 10)):
        run.clock.steps += 1
        ids = [0] * per_step + [1]
        run.a.frames_decoded += per_step
        run.b.frames_decoded += 1
        run.stats.frames_processed(ids, ntp_ts=[time.time_ns() - 40_000_000] * len(ids))
        run.stage.frames += len(ids)
        run.stage.busy_s += len(ids) * 0.005


def test_metrics_use_deepstream_names_and_labels_with_fps_latency_and_frame_numbers(run):
    run.a.state = run.b.state = "playing"
    run.handle.sampler.sample()             # t=50.0
    advance(run, 2.0, 3)                    # 30 fps and 10 fps for 2 s
    run.a.dropped = 4
    run.handle.sampler.sample()             # what the UI thread does every 0.5 s
    status, content_type, body = get(run.port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    got = samples(body)

    def ds(family, metric, sid, sensor=("", "")):
        return got[(family, tuple(sorted({"app_name": "ds", "metric_name": metric, "sensor_id": sensor[0],
                                          "sensor_name": sensor[1], "source_id": str(sid)}.items())))]

    assert ds("fps_metrics", "stream_fps", 0, ("cam-a", "Gate")) == pytest.approx(30.0)
    assert ds("fps_metrics", "stream_fps", 1, ("cam-b", "Dock")) == pytest.approx(10.0)
    assert ds("frame_number_metrics", "stream_frame_number", 0, ("cam-a", "Gate")) == 60
    assert ds("frame_number_metrics", "stream_frame_number", 1, ("cam-b", "Dock")) == 20
    assert 40 <= ds("latency_metrics", "stream_latency_ms", 1, ("cam-b", "Dock")) < 1000
    assert got[("stream_count", (("app_name", "ds"), ("metric_name", "stream_count")))] == 2
    assert got[("dsrun_frames_dropped_total", (("source_id", "0"),))] == 4
    assert got[("dsrun_frames_decoded_total", (("source_id", "1"),))] == 20
    assert got[("dsrun_stage_queue_depth", (("stage", "pgie"),))] == 3
    assert got[("dsrun_stage_ms_per_frame", (("stage", "pgie"),))] == pytest.approx(5.0)
    assert got[("dsrun_engine_state", (("engine", "detector.engine"), ("state", "loaded")))] == 1
    assert 0 <= got[("utilization_metrics", (("app_name", "ds"), ("metric_name", "system_cpu_utilization")))] <= 100


def test_api_v1_metrics_answers_deepstreams_json_or_prometheus_text_by_accept_header(run):
    run.a.state = "playing"
    run.handle.sampler.sample()
    advance(run, 1.0, 2)
    run.handle.sampler.sample()
    status, content_type, body = get(run.port, "/api/v1/metrics")
    doc = json.loads(body)
    assert status == 200 and content_type == "application/json"
    info = doc["metrics-info"]
    assert info["stream-count"] == 2
    assert [(s["source_id"], s["sensor_id"], s["frame_number"]) for s in info["stream-stats"]] == \
        [(0, "cam-a", 20), (1, "cam-b", 10)]
    assert info["stream-stats"][0]["fps"] == pytest.approx(20.0)
    assert set(info["system-stats"]) == {"GPU_gb", "RAM_gb", "cpu_util", "gpu_util"}
    assert info["system-stats"]["RAM_gb"] > 0
    status, content_type, body = get(run.port, "/api/v1/metrics", accept="text/plain")
    assert content_type.startswith("text/plain") and 'metric_name="stream_fps"' in body


def test_ready_only_once_a_source_plays_and_live_while_the_run_goes(run):
    run.handle.sampler.sample()
    status, _, body = get(run.port, "/api/v1/ready")
    assert status == 503 and json.loads(body)["ready-info"] == {"ds-ready": "NO"}
    assert get(run.port, "/api/v1/live")[0] == 200
    assert json.loads(get(run.port, "/live")[2])["live-info"] == {"ds-liveness": "YES"}

    run.b.state = "playing"
    run.handle.sampler.sample()
    status, _, body = get(run.port, "/api/v1/ready")
    assert status == 200 and json.loads(body) == {"ready-info": {"ds-ready": "YES"},
                                                  "reason": "GET_READY_INFO_SUCCESS",
                                                  "status": "HTTP/1.1 200 OK"}
    status, _, body = get(run.port, "/api/v1/ready", accept="text/plain")
    assert samples(body)[("ready_metrics", (("app_name", "ds"), ("metric_name", "ds_ready")))] == 1
    assert get(run.port, "/nope")[0] == 404


def test_a_busy_port_is_a_clear_error_naming_the_flag():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsError, match=rf"--metrics-port {port}: cannot listen .* — choose a free port"):
            start_ui(RunStats(), None, dashboard=False, metrics_port=port, metrics_host="127.0.0.1",
                     stdout=io.StringIO(), stdin=io.StringIO())
