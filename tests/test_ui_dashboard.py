"""The dashboard, rendered to a recording rich Console for a known run state, shows the right numbers."""

import io

from rich.console import Console

from runner.pipeline.stats import RunStats
from runner.ui import start_ui
from runner.ui.dashboard import render
from runner.ui.gpu import GpuMonitor
from runner.ui.view import Sampler


class Clock:
    def __init__(self):
        self.steps = 0  # tenths of a second since t=100

    def __call__(self):
        return 100 + self.steps / 10


def known_run():
    """Two sources, three stages, two engines, 4 s into the run, sampled at t=102 and t=104."""
    clock = Clock()
    stats = RunStats(clock=clock)
    cam = stats.add_source(0, "file:///videos/bikes.mp4")
    rtsp = stats.add_source(1, "rtsp://camera-7/stream")
    waiting = [0, 5]
    pgie = stats.add_stage("pgie", queue_depth=lambda: waiting[0])
    osd = stats.add_stage("osd", queue_depth=lambda: waiting[1])
    stats.set_engine("resnet10.onnx_b2_gpu0_fp16.engine", "loaded")
    stats.set_engine("yolo.onnx_b2_gpu0_fp16.engine", "building")
    sampler = Sampler(stats)

    def run_for(seconds, fps0, fps1, pgie_ms):
        steps = round(seconds * 10)
        for _ in range(steps):
            clock.steps += 1
            n0, n1 = round(fps0 / 10), round(fps1 / 10)
            cam.frames_decoded += n0
            rtsp.frames_decoded += n1
            stats.frames_processed([0] * n0 + [1] * n1)
            pgie.batches += 1
            pgie.frames += n0 + n1
            pgie.busy_s += (n0 + n1) * pgie_ms / 1000
            osd.frames += n0 + n1
            osd.busy_s += (n0 + n1) * 0.002

    cam.state = rtsp.state = "playing"
    run_for(2.0, 30, 10, 4.0)   # t=100.1..102.0
    sampler.sample()            # t=102
    run_for(2.0, 20, 0, 8.0)    # t=102.1..104.0: source 1 stalls, pgie slows down
    cam.dropped = 3
    rtsp.state, rtsp.reconnects = "reconnecting", 2
    rtsp.errors.append("source 1 rtsp://camera-7/stream: connection refused — check the camera")
    waiting[0] = 2
    return stats, sampler


def text_of(view, width=160):
    console = Console(record=True, width=width, color_system=None)
    console.print(render(view, keys=True))
    return console.export_text()


def row(text, first_cell):
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [first_cell])


def test_dashboard_shows_each_sources_state_current_and_average_fps_frames_drops_reconnects_error():
    stats, sampler = known_run()
    text = text_of(sampler.sample())  # t=104, rates over t=102..104
    # source 0: 60 + 40 frames; 40 in the last 2 s = 20 fps; first frame at t=100.1: 100 / 3.9 s
    # 160 columns: the whole (redacted) URI fits, so it is shown whole
    assert row(text, "0")[:8] == ["0", "file:///videos/bikes.mp4", "playing", "20.00", f"{100 / 3.9:.2f}", "100", "3", "0"]
    # source 1: 20 frames, none in the window; still reconnecting so its average keeps falling
    assert row(text, "1")[:8] == ["1", "rtsp://camera-7/stream", "reconnecting", "0.00", f"{20 / 3.9:.2f}", "20", "0", "2"]
    assert "connection refused — check the camera" in text
    assert "00:00:04  2 sources  120 frames  20.00 fps  3 dropped" in text.splitlines()[0]


def test_dashboard_shows_stage_ms_per_frame_over_the_window_queue_depths_and_engines():
    stats, sampler = known_run()
    text = text_of(sampler.sample())
    assert row(text, "pgie") == ["pgie", "8.00", "2", "120"]  # 8 ms/frame lately (4 ms before)
    assert row(text, "osd") == ["osd", "2.00", "5", "120"]
    assert row(text, "resnet10.onnx_b2_gpu0_fp16.engine")[1] == "loaded"
    assert row(text, "yolo.onnx_b2_gpu0_fp16.engine")[1] == "building"
    assert "q quit  p pause  r resume" in text


def test_paused_run_is_marked_and_the_gpu_line_shows_only_where_nvml_finds_a_gpu():
    stats, sampler = known_run()
    stats.paused = True
    monitor = GpuMonitor()  # a CPU-only machine: no driver (or no nvidia-ml-py), no error
    sampler.gpu = monitor
    view = sampler.sample()
    text = text_of(view)
    assert "PAUSED" in text.splitlines()[0]
    if monitor.available:
        assert len(view.gpus) >= 1 and "GPU 0 " in text and "GiB" in text
    else:
        assert view.gpus == () and "GPU" not in text


def test_no_dashboard_on_a_pipe_even_when_asked_for():
    stats, _ = known_run()
    out = io.StringIO()
    handle = start_ui(stats, None, dashboard=True, stdout=out, stdin=io.StringIO())
    handle.stop()
    assert handle.dashboard is None and "dsrun" not in out.getvalue()


def test_gpu_line_shows_utilisation_and_memory_when_nvml_reports_a_gpu():
    from runner.ui.gpu import GpuReading

    stats, sampler = known_run()
    view = sampler.sample()
    h100 = GpuReading(0, "NVIDIA H100 80GB HBM3", 45.0, 3.25, 79.6)
    text = text_of(type(view)(view.elapsed_s, view.paused, view.sources, view.stages, view.engines, (h100,)))
    assert "GPU 0 NVIDIA H100 80GB HBM3: 45 % busy  3.2 / 79.6 GiB" in text and "NVDEC" not in text
    decoding = GpuReading(0, "NVIDIA H100 80GB HBM3", 45.0, 3.25, 79.6, decoder_pct=98.0)
    text = text_of(type(view)(view.elapsed_s, view.paused, view.sources, view.stages, view.engines, (decoding,)))
    assert "GPU 0 NVIDIA H100 80GB HBM3: 45 % busy  3.2 / 79.6 GiB  NVDEC 98 % busy" in text
