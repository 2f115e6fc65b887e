"""The graph's lifecycle on real runs: failures name the stage and source, Ctrl-C drains (130),
a second Ctrl-C forces, and an encoded file survives SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from pipeline_helpers import count_frames, load_config, make_clip, write_config
from runner.cli import main
from runner.pipeline.graph import build_graph
from runner.pipeline.stats import RunStats

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("graph") / "clip.mp4", frames=50, size=(320, 240))


class Explode:
    name = "explode"

    def __init__(self, on_batch: int):
        self.on_batch, self.seen, self.closed = on_batch, 0, False

    def process(self, batch):
        self.seen += 1
        if self.seen == self.on_batch:
            raise ValueError("bad tensor shape (1, 3)")
        return batch

    def close(self):
        self.closed = True


def test_a_failing_stage_stops_the_run_naming_stage_and_source(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}], tests={"file-loop": 1},  # endless without the failure
                       streammux={"batch-size": 1})
    stage = Explode(on_batch=5)
    graph = build_graph(load_config(cfg), RunStats(), stages=[stage], sinks=[])
    t0 = time.monotonic()
    outcome = graph.run()
    assert time.monotonic() - t0 < 10
    assert str(outcome.error).startswith("stage 'explode' failed on source 0: ValueError: bad tensor shape")
    assert outcome.error.exit_code == 1 and stage.closed
    assert "Traceback" in outcome.traceback


def test_an_unwritable_output_file_fails_the_run_with_the_sink_named(tmp_path, clip, capsys):
    cfg = write_config(tmp_path, [{"uri": clip}], sinks=[{"type": 3, "output-file": "/proc/nope/out.mp4"}])
    assert main([str(cfg), "--no-dashboard"]) == 1
    err = capsys.readouterr().err
    assert "sink0 stopped after 0 frame(s): cannot write /proc/nope/out.mp4: " in err


def test_file_sink_writes_every_frame_of_its_source_id(tmp_path, clip):
    other = make_clip(tmp_path / "other.mkv", frames=12, size=(160, 120))
    cfg = write_config(tmp_path, [{"uri": clip}, {"uri": other}],
                       sinks=[{"type": 3, "output-file": "s1.mkv", "container": 2, "codec": 2, "source-id": 1},
                              {"type": 3, "output-file": "s0.mp4", "container": 1, "codec": 1,
                               "bitrate": 500000}])
    assert main([str(cfg), "--no-dashboard"]) == 0
    assert count_frames(tmp_path / "s1.mkv") == 12 and count_frames(tmp_path / "s0.mp4") == 50
    with av.open(str(tmp_path / "s1.mkv")) as f:
        s = f.streams.video[0]
        assert (s.codec_context.name, s.width, s.height) == ("hevc", 320, 240)


def _spawn(cfg: Path, report: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "runner", str(cfg), "--report", str(report), "--no-dashboard"],
                            cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_file(path: Path, min_bytes: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= min_bytes:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {min_bytes} bytes")


def test_ctrl_c_drains_closes_the_output_and_exits_130(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}], tests={"file-loop": 1},
                       sinks=[{"type": 3, "output-file": "out.mp4", "iframeinterval": 10}])
    report = tmp_path / "run.json"
    proc = _spawn(cfg, report)
    _wait_for_file(tmp_path / "out.mp4", 60_000, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    doc = json.loads(report.read_text())
    assert doc["status"] == "interrupted" and doc["interrupted"]
    processed = doc["sources"][0]["frames_processed"]
    assert processed >= 10
    assert count_frames(tmp_path / "out.mp4") == processed  # drained: every processed frame was written


def test_second_ctrl_c_forces_the_stop(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}], tests={"file-loop": 1},
                       sinks=[{"type": 3, "output-file": "out.mkv", "container": 2, "sync": 1}])
    proc = _spawn(cfg, tmp_path / "run.json")
    _wait_for_file(tmp_path / "out.mkv", 5_000, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert count_frames(tmp_path / "out.mkv") > 0


@pytest.mark.parametrize("name,container", [("killed.mp4", 1), ("killed.mkv", 2)])
def test_output_file_of_a_sigkilled_run_still_plays(tmp_path, clip, name, container):
    cfg = write_config(tmp_path, [{"uri": clip}], tests={"file-loop": 1},
                       sinks=[{"type": 3, "output-file": name, "container": container, "iframeinterval": 10}])
    proc = _spawn(cfg, tmp_path / "run.json")
    _wait_for_file(tmp_path / name, 150_000, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    frames = 0
    with av.open(str(tmp_path / name)) as f:  # demuxes and decodes to the last complete fragment
        for frame in f.decode(video=0):
            frames += 1
            assert frame.width == 320
    assert frames >= 10


class Slow:
    name = "slow"

    def process(self, batch):
        time.sleep(0.02)
        return batch

    def close(self):
        pass


def test_live_source_drops_to_the_newest_frame_when_the_pipeline_is_slower_and_counts_drops(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}], streammux={"live-source": 1, "batch-size": 1})
    stats = RunStats()
    outcome = build_graph(load_config(cfg), stats, stages=[Slow()], sinks=[]).run()
    src = stats.sources[0]
    assert outcome.error is None and src.state == "ended"
    assert src.dropped > 0 and src.frames_processed < 50
    assert src.frames_decoded == 50 == src.frames_processed + src.dropped  # every frame accounted for


def test_config_error_exits_2_and_the_report_says_so(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}], streammux={"batch-size": "four"})
    report = tmp_path / "run.json"
    assert main([str(cfg), "--report", str(report), "--no-dashboard"]) == 2
    doc = json.loads(report.read_text())
    assert doc["exit_code"] == 2 and doc["status"] == "config_error" and "batch-size" in doc["errors"][0]
