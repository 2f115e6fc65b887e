"""The graph's lifecycle on real runs: failures name the stage and source, Ctrl-C (130), SIGTERM (143)
and the dashboard's q (0) drain and say who stopped the run, a second signal forces, and an encoded file
survives SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline_helpers import count_frames, load_config, make_clip, write_config
from processes import GENEROUS, collect, file_grew, lines_in, spawned, wait_until
from rest_client import free_port
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


def test_file_sink_codec_3_writes_mpeg4_part_2_with_a_keyframe_every_iframeinterval(tmp_path, clip):
    """``codec=3`` (deepstream_sink_bin.c: avenc_mpeg4): FFmpeg's mpeg4 encoder codes its time base in
    16 bits, so the sink times its frames in 1/30000 s; frame count and PTS order from FFmpeg's decode."""
    cfg = write_config(tmp_path, [{"uri": clip}], sinks=[{"type": 3, "output-file": "m4.mp4", "codec": 3,
                                                          "iframeinterval": 20}])
    assert main([str(cfg), "--no-dashboard"]) == 0
    with av.open(str(tmp_path / "m4.mp4")) as f:
        assert f.streams.video[0].codec_context.name == "mpeg4"
        packets = [p for p in f.demux(video=0) if p.size]
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 20, 40]
    with av.open(str(tmp_path / "m4.mp4")) as f:
        pts = [frame.pts for frame in f.decode(video=0)]
    assert len(pts) == count_frames(clip) == 50 and pts == sorted(set(pts))


def _spawn(cfg: Path, report: Path, *extra: str, **kwargs):
    """``dsrun CFG --report REPORT`` in a child, killed with its children when the block ends."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    io = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **kwargs}
    return spawned([sys.executable, "-m", "runner", str(cfg), "--report", str(report), *extra],
                   cwd=str(REPO), env=env, **io)


def _looping(tmp_path, clip, output: str, **sink):
    return write_config(tmp_path, [{"uri": clip}], tests={"file-loop": 1},
                        sinks=[{"type": 3, "output-file": output, **sink}])


@pytest.mark.parametrize("sig, code, status", [(signal.SIGINT, 130, "interrupted"),
                                               (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_or_sigterm_drains_closes_the_output_and_writes_the_report(tmp_path, clip, sig, code, status):
    """Ctrl-C, and SIGTERM (docker stop) alike: decoding stops, the frames in flight are written, the
    file is finalised and the report says who stopped the run (130 / 143: 128 + the signal)."""
    cfg = _looping(tmp_path, clip, "out.mp4", iframeinterval=10)
    report = tmp_path / "run.json"
    with _spawn(cfg, report, "--no-dashboard") as proc:
        wait_until(file_grew(tmp_path / "out.mp4", 60_000), proc, "60 kB of output")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=GENEROUS)
    assert proc.returncode == code, err
    doc = json.loads(report.read_text())
    assert (doc["status"], doc["interrupted"], doc["stopped_by"]) == (status, True, sig.name)
    processed = doc["sources"][0]["frames_processed"]
    assert processed >= 10
    assert count_frames(tmp_path / "out.mp4") == processed  # drained: every processed frame was written


@pytest.mark.parametrize("first, second", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGTERM),
                                           (signal.SIGTERM, signal.SIGINT)])
def test_a_second_signal_stops_at_once(tmp_path, clip, first, second):
    """The second signal does not wait for the drain (``sync=1`` paces the sink to real time, so a drain
    would take a while); the file is still playable and the report written."""
    cfg = _looping(tmp_path, clip, "out.mkv", container=2, sync=1)
    report = tmp_path / "run.json"
    with _spawn(cfg, report, "--no-dashboard") as proc:
        said = collect(proc.stderr)
        wait_until(file_grew(tmp_path / "out.mkv", 5_000), proc, "5 kB of output")
        proc.send_signal(first)
        wait_until(lambda: "stopping: finishing the frames" in "".join(said), proc, "the drain's message")
        proc.send_signal(second)
        proc.wait(timeout=GENEROUS)
    assert proc.returncode == (143 if first == signal.SIGTERM else 130)
    assert json.loads(report.read_text())["stopped_by"] == first.name
    assert count_frames(tmp_path / "out.mkv") > 0


def _press_q(cfg: Path, report: Path, jsonl: Path, ready, *extra: str) -> tuple[int, str]:
    """Run ``cfg`` in a real terminal (a pseudo-terminal the run controls), press ``q`` once ``ready``
    (given what the terminal shows) holds and 10 frames are in the JSONL; (exit status, terminal text)."""
    import fcntl
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    shown = bytearray()

    def read_terminal():  # the dashboard must be able to write; keep what it shows
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            shown.extend(data)

    def own_terminal():  # in the child: the pty becomes its controlling terminal, its group the foreground
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    reader = threading.Thread(target=read_terminal, daemon=True)
    try:
        with _spawn(cfg, report, "--jsonl", str(jsonl), *extra, stdin=slave, stdout=slave, stderr=slave,
                    text=False, start_new_session=True, preexec_fn=own_terminal) as proc:
            os.close(slave)
            slave = None
            reader.start()
            wait_until(lines_in(jsonl, 10), proc, "10 frames in the JSONL")
            wait_until(lambda: ready(shown.decode(errors="replace")), proc, "the run to be ready for q")
            os.write(master, b"q")
            proc.wait(timeout=GENEROUS)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    return proc.returncode, shown.decode(errors="replace")


def test_q_on_the_dashboard_drains_and_the_report_says_the_user_stopped_it(tmp_path, clip):
    """``q`` in a real terminal: the run drains and exits 0 as deepstream-app's ``q`` does
    (deepstream_app_main.c: the main loop quits, ``return_value`` stays 0), and the report does not pass
    it off as a complete run."""
    cfg = _looping(tmp_path, clip, "out.mp4", iframeinterval=10)
    report, jsonl = tmp_path / "run.json", tmp_path / "frames.jsonl"
    code, shown = _press_q(cfg, report, jsonl, lambda text: True)
    assert code == 0, shown[-2000:]
    doc = json.loads(report.read_text())
    assert (doc["status"], doc["interrupted"], doc["stopped_by"]) == ("stopped_by_user", True, "q")
    processed = doc["sources"][0]["frames_processed"]
    assert count_frames(tmp_path / "out.mp4") == processed == len(jsonl.read_text().splitlines())


def test_q_after_a_source_failed_exits_as_a_failed_run(tmp_path, clip):
    """deepstream-app's ``q`` returns ``return_value``, which an element's error has set to -1 ("App run
    failed"); dsrun's ``q`` after a source failed exits 1 (its failure status), report status failed."""
    data = bytearray(clip.read_bytes())
    start, end = data.find(b"mdat") + 4, data.find(b"moov") - 4  # every packet demuxes, none decodes
    data[start:end] = np.random.default_rng(1).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    (tmp_path / "garbage.mp4").write_bytes(bytes(data))
    cfg = write_config(tmp_path, [{"uri": clip}, {"uri": tmp_path / "garbage.mp4"}], tests={"file-loop": 1},
                       streammux={"batch-size": 2})
    report, jsonl = tmp_path / "run.json", tmp_path / "frames.jsonl"
    port = free_port()

    def failed(_shown) -> bool:  # the garbage source's state, read from the run's Prometheus metrics
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            return False
        return 'dsrun_source_state{source_id="1",state="failed"} 1.0' in text

    code, shown = _press_q(cfg, report, jsonl, failed, "--no-dashboard", "--metrics-port", str(port))
    assert code == 1, shown[-2000:]
    doc = json.loads(report.read_text())
    assert (doc["status"], doc["stopped_by"]) == ("failed", "q")
    assert doc["sources"][1]["state"] == "failed" and doc["sources"][0]["frames_processed"] >= 10


@pytest.mark.parametrize("name,container", [("killed.mp4", 1), ("killed.mkv", 2)])
def test_output_file_of_a_sigkilled_run_still_plays(tmp_path, clip, name, container):
    cfg = write_config(tmp_path, [{"uri": clip}], tests={"file-loop": 1},
                       sinks=[{"type": 3, "output-file": name, "container": container, "iframeinterval": 10}])
    with _spawn(cfg, tmp_path / "run.json", "--no-dashboard") as proc:
        wait_until(file_grew(tmp_path / name, 150_000), proc, "150 kB of output")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=GENEROUS)
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


def test_frames_leaving_the_pipeline_are_counted_per_source_with_the_latest_frames_latency():
    clock = [100.0]
    stats = RunStats(clock=lambda: clock[0])
    for sid in (1, 2, 3):
        stats.add_source(sid, f"file:///v{sid}.mp4")
    now = time.time_ns()
    # a batch with source 1 twice (its second frame is the later one) and source 3 once
    stats.frames_processed(np.array([1, 3, 1]), np.array([now - 50_000_000, now - 10_000_000, now - 20_000_000]))
    s1, s2, s3 = stats.sources[1], stats.sources[2], stats.sources[3]
    assert (s1.frames_processed, s2.frames_processed, s3.frames_processed) == (2, 0, 1)
    assert (s1.first_output_at, s2.first_output_at, s3.last_output_at) == (100.0, None, 100.0)
    # the latency is the latest frame's (20 ms old for source 1, not its first frame's 50 ms)
    assert 20 <= s1.latency_ms < 20 + GENEROUS * 1000
    assert s1.latency_ms - s3.latency_ms == pytest.approx(10.0)  # one wall clock for the batch
    clock[0] = 101.0
    stats.frames_processed([2, 2])  # lists and no timestamps: counts only
    assert (s2.frames_processed, s2.first_output_at, s2.latency_ms) == (2, 101.0, None)
    assert s1.first_output_at == 100.0 and s1.frames_processed == 2


def test_objects_leaving_the_pipeline_are_counted_per_source_gie_and_class_when_read():
    """Counted by hand: batch 1 holds source 0's two gie-1 class-0 objects, its gie-2 class-3 object and
    source 1's gie-1 class-0 object; batch 2 adds one more gie-1 class-0 object of source 0."""
    stats = RunStats()
    for sid in (0, 1, 2):
        stats.add_source(sid, f"file:///v{sid}.mp4")
    stats.objects_processed(np.array([0, 1, 0, 0]), np.array([1, 1, 2, 1]), np.array([0, 0, 3, 0]))
    stats.objects_processed(np.array([0]), np.array([1]), np.array([0]))
    stats.objects_processed(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))
    snap = stats.snapshot()["sources"]
    assert snap[0]["objects"] == {"1:0": 3, "2:3": 1} and snap[1]["objects"] == {"1:0": 1}
    assert snap[2]["objects"] == {} and stats.sources[0].objects == {"1:0": 3, "2:3": 1}
    # counts read go on from where they were; a stream re-using an id (fresh) starts from zero
    stats.objects_processed(np.array([1, 1]), np.array([1, 1]), np.array([5, 0]))
    stats.add_source(0, "file:///new.mp4", fresh=True)
    assert stats.sources[0].objects == {} and stats.sources[1].objects == {"1:0": 2, "1:5": 1}
    # --workers' parent sets a source's counts from a shard's snapshot
    stats.sources[2].objects = {"1:7": 4}
    stats.objects_processed(np.array([2]), np.array([1]), np.array([7]))
    assert stats.snapshot()["sources"][2]["objects"] == {"1:7": 5}


def test_object_counts_stay_exact_when_many_batches_wait_unread():
    """Past FOLD_ROWS waiting rows the columns are grouped without a reader: 300 batches of 1,000
    objects, source = row % 4, class = row % 3 — source 0 holds rows 0, 4, 8, …: 250 per batch, of
    which rows ≡ 0 (mod 12) are class 0, i.e. 84 of 1,000 (0, 12, …, 996) per batch."""
    from runner.pipeline.tally import FOLD_ROWS

    stats = RunStats()
    for sid in range(4):
        stats.add_source(sid, f"file:///v{sid}.mp4")
    rows = np.arange(1000)
    for _ in range(300):
        stats.objects_processed(rows % 4, np.ones(1000, np.int32), rows % 3)
    assert 300 * 1000 > FOLD_ROWS
    counts = stats.sources[0].objects
    assert counts["1:0"] == 300 * 84 and sum(counts.values()) == 300 * 250
    assert sum(sum(s["objects"].values()) for s in stats.snapshot()["sources"].values()) == 300 * 1000
