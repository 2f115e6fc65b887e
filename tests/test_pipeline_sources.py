"""Sources and streammux on real encoded video: every frame once, typed errors, scaling, drops."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from pipeline_helpers import count_frames, load_config, make_clip, truncate, write_config
from runner.cli import main
from runner.pipeline.graph import build_graph
from runner.pipeline.mux import letterbox
from runner.pipeline.source import (SourceAuthFailed, SourceCorruptData, SourceNotFound, SourceSpec,
                                    SourceUnsupported, open_container, redact)
from runner.pipeline.stats import RunStats


class Recorder:
    """A stage that keeps every batch's columns (and a copy of the first frame of each source)."""

    name = "recorder"

    def __init__(self, stop_after: int | None = None, on_stop=None):
        self.rows, self.eos, self.shapes, self.first = [], [], set(), {}
        self.stop_after, self.on_stop = stop_after, on_stop

    def process(self, batch):
        self.shapes.add(batch.frames.shape[1:])
        for i, (sid, n, pts) in enumerate(zip(batch.source_id, batch.frame_num, batch.pts)):
            self.rows.append((int(sid), int(n), int(pts)))
            self.first.setdefault(int(sid), batch.frames[i].copy())
        if self.stop_after and len(self.rows) >= self.stop_after and self.on_stop:
            self.on_stop()
        return batch

    def on_eos(self, source_ids):
        self.eos.extend(source_ids)

    def close(self):
        pass

    def frames_of(self, sid):
        return [n for s, n, _ in self.rows if s == sid]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    a = make_clip(d / "a.mp4", frames=40, size=(320, 240))
    b = make_clip(d / "b.mkv", frames=23, size=(640, 360))
    c = make_clip(d / "c.mp4", frames=30, size=(320, 240), faststart=True)
    return {"a": a, "b": b, "c": c, "trunc_moov": truncate(a, d / "t1.mp4", 0.5),
            "trunc_data": truncate(c, d / "t2.mp4", 0.6), "dir": d}


def run_graph(config: Path, stage=None):
    app = load_config(config)
    stats = RunStats()
    graph = build_graph(app, stats, stages=[stage] if stage else [], sinks=[])
    return graph.run(), stats, graph


def test_every_frame_of_each_file_is_processed_exactly_once(tmp_path, clips):
    cfg = write_config(tmp_path, [{"uri": f"file://{clips['a']}"}, {"uri": clips["b"]}],
                       streammux={"batch-size": 4, "batched-push-timeout": -1})
    rec = Recorder()
    outcome, stats, _ = run_graph(cfg, rec)
    assert outcome.error is None and not outcome.source_errors
    for sid, clip in ((0, clips["a"]), (1, clips["b"])):
        assert rec.frames_of(sid) == list(range(count_frames(clip)))  # each once, in order
        assert stats.sources[sid].frames_processed == count_frames(clip)
        pts = [p for s, _, p in rec.rows if s == sid]
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert rec.shapes == {(240, 320, 3)}  # both sizes scaled to streammux width x height
    assert sorted(rec.eos) == [0, 1]


def test_corrupt_files_fail_with_typed_errors_while_good_sources_finish(tmp_path, clips, capsys):
    cfg = write_config(tmp_path, [{"uri": clips["a"]}, {"uri": clips["trunc_moov"]},
                                  {"uri": clips["trunc_data"]}, {"uri": clips["c"]}])
    report = tmp_path / "run.json"
    assert main([str(cfg), "--report", str(report), "--no-dashboard"]) == 1
    doc = json.loads(report.read_text())
    by_id = {s["source_id"]: s for s in doc["sources"]}
    assert by_id[0]["state"] == by_id[3]["state"] == "ended"
    assert by_id[0]["frames_processed"] == 40 and by_id[3]["frames_processed"] == 30
    for sid, name in ((1, "t1.mp4"), (2, "t2.mp4")):
        assert by_id[sid]["state"] == "failed"
        assert by_id[sid]["errors"][0].startswith(f"source {sid} (") and name in by_id[sid]["errors"][0]
        assert "corrupt" in by_id[sid]["errors"][0] or "truncated" in by_id[sid]["errors"][0]
    assert by_id[2]["frames_processed"] < 30  # what was decodable before the cut still went through
    assert doc["exit_code"] == 1 and doc["totals"]["sources_failed"] == 2
    assert "source 1 (" in capsys.readouterr().err


def test_missing_file_wrong_scheme_and_camera_are_typed_errors_naming_the_source(tmp_path, clips):
    cases = [(SourceSpec(3, 2, str(tmp_path / "nope.mp4")), SourceNotFound),
             (SourceSpec(4, 2, "ftp://user:pw@host/v.mp4"), SourceUnsupported),
             (SourceSpec(6, 5, ""), SourceUnsupported)]
    for spec, kind in cases:
        with pytest.raises(kind) as err:
            open_container(spec)
        assert str(err.value).startswith(f"source {spec.source_id} (") and " — " in str(err.value)
        assert "pw@" not in str(err.value)


def _camera_config(tmp_path: Path, node: int) -> Path:
    path = tmp_path / "camera.txt"
    path.write_text("\n".join([
        "[application]", "enable-perf-measurement=0", "", "[streammux]", "batch-size=1", "width=320",
        "height=240", "live-source=1", "", "[source0]", "enable=1", "type=1", f"camera-v4l2-dev-node={node}",
        "camera-width=640", "camera-height=480", "camera-fps-n=30", "camera-fps-d=1", "", "[sink0]",
        "enable=1", "type=1", ""]))
    return path


def _free_video_node() -> int:
    return next(n for n in range(90, 200) if not Path(f"/dev/video{n}").exists())


def test_a_v4l2_camera_opens_dev_video_n_and_an_absent_node_is_named_with_its_key(tmp_path, capsys):
    """``type=1`` opens ``/dev/video<camera-v4l2-dev-node>`` (deepstream_source_bin.c,
    set_camera_v4l2_params), never the (empty) uri; an absent node fails that source, naming the key."""
    node = _free_video_node()
    report = tmp_path / "run.json"
    assert main([str(_camera_config(tmp_path, node)), "--no-dashboard", "--report", str(report)]) == 1
    (source,) = json.loads(report.read_text())["sources"]
    assert source["uri"] == "" and source["state"] == "failed"
    assert source["errors"] == [f"source 0 (/dev/video{node}): no such V4L2 device — camera-v4l2-dev-node={node} "
                                f"names /dev/video{node}; the video devices here: "
                                + (", ".join(sorted(str(p) for p in Path("/dev").glob("video*"))) or "none on this machine")]
    assert "Is a directory" not in capsys.readouterr().err


def test_a_video_node_that_is_not_a_camera_is_refused_by_the_real_v4l2_open(tmp_path):
    """A character device that answers no V4L2 query (a node with /dev/null's numbers, made for the test)
    goes through FFmpeg's v4l2 input and is refused as 'not a V4L2 camera'; a plain file as 'not a device'."""
    import os
    import stat

    node = _free_video_node()
    device = Path(f"/dev/video{node}")
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except OSError as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    try:
        with pytest.raises(SourceUnsupported) as err:
            open_container(SourceSpec(0, 1, "", camera_dev_node=node, camera_width=640, camera_height=480,
                                      camera_fps_n=30, camera_fps_d=1))
        assert str(err.value).startswith(f"source 0 (/dev/video{node}): not a V4L2 camera (")
        assert f"camera-v4l2-dev-node={node} names /dev/video{node}" in str(err.value)
    finally:
        device.unlink()
    plain = tmp_path / "video0"
    plain.write_bytes(b"not a camera")
    with pytest.raises(SourceUnsupported) as err:
        open_container(SourceSpec(1, 2, f"v4l2://{plain}"))
    assert "not a device (a camera is a character device)" in str(err.value)


def test_drop_frame_interval_keeps_every_nth_frame_and_counts_the_rest(tmp_path, clips):
    cfg = write_config(tmp_path, [{"uri": clips["a"], "drop-frame-interval": 3}])
    rec = Recorder()
    outcome, stats, _ = run_graph(cfg, rec)
    assert len(rec.rows) == 14 and stats.sources[0].dropped == 26  # frames 0,3,...,39 of 40
    assert stats.sources[0].frames_decoded == 40


def test_enable_padding_keeps_aspect_ratio_with_centred_black_bands(tmp_path, clips):
    cfg = write_config(tmp_path, [{"uri": clips["b"]}], streammux={"enable-padding": 1})
    rec = Recorder()
    run_graph(cfg, rec)
    x, y, w, h = letterbox(640, 360, 320, 240)
    assert (x, y, w, h) == (0, 30, 320, 180)
    frame = rec.first[0]
    assert frame[:y].max() == 0 and frame[y + h:].max() == 0  # bands are black
    assert frame[y:y + h].mean() > 20  # the picture is inside


def test_file_loop_replays_with_continuous_frame_numbers_until_drained(tmp_path, clips):
    cfg = write_config(tmp_path, [{"uri": clips["c"]}], tests={"file-loop": 1})
    app = load_config(cfg)
    stats = RunStats()
    holder = {}
    rec = Recorder(stop_after=75, on_stop=lambda: holder["g"].drain())
    holder["g"] = graph = build_graph(app, stats, stages=[rec], sinks=[])
    outcome = graph.run()
    nums = rec.frames_of(0)
    assert len(nums) >= 75 and nums == list(range(len(nums)))  # > 2 passes over 30 frames
    pts = [p for _, _, p in rec.rows]
    assert all(b > a for a, b in zip(pts, pts[1:]))  # the timeline continues across loops
    assert outcome.error is None and stats.sources[0].state == "ended"


def test_http_source_plays_and_a_missing_http_path_is_not_found(tmp_path, clips):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clips["dir"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # c.mp4 has its index first: a plain HTTP server (no Range requests) can stream it
        cfg = write_config(tmp_path, [{"uri": f"{base}/c.mp4"}, {"uri": f"{base}/missing.mp4"}])
        rec = Recorder()
        outcome, stats, _ = run_graph(cfg, rec)
    finally:
        server.shutdown()
    assert rec.frames_of(0) == list(range(30))
    assert stats.sources[1].state == "failed" and "not found" in stats.sources[1].errors[0]


def test_redaction_hides_user_password_and_secret_query_values():
    text = "could not open 'rtsp://admin:s3cret@10.1.1.1/live?token=abc' or https://u:p@h/x?sig=zz&a=1"
    out = redact(text)
    assert "s3cret" not in out and "abc" not in out and "u:p@" not in out and "zz" not in out
    assert "10.1.1.1/live" in out and "a=1" in out
    err = SourceAuthFailed(2, "rtsp://admin:s3cret@cam/x", "denied rtsp://admin:s3cret@cam/x", "fix it")
    assert "s3cret" not in str(err) and err.uri == "rtsp://***:***@cam/x"


def test_multi_uri_source_expands_to_num_sources_each_delivering_the_whole_file(tmp_path, clips):
    cfg = write_config(tmp_path, [{"type": 3, "uri": clips["c"], "num-sources": 3}],
                       streammux={"batch-size": 3})
    rec = Recorder()
    outcome, stats, _ = run_graph(cfg, rec)
    assert sorted(stats.sources) == [0, 1, 2]
    for sid in range(3):
        assert rec.frames_of(sid) == list(range(30))
