"""Smart record ([sourceN] smart-record, smart-rec-*): clips remuxed from the source's own packets, with
the pre-roll and duration asked, within one GOP — gst-nvdssr starts a clip at the first keyframe of
the pre-roll. Expected frames are found by decoding the source with FFmpeg: a remuxed clip decodes to
exactly the source's frames (no re-encoding)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import av
import numpy as np
import pytest

import dsrun
from pipeline_helpers import make_clip
from rest_client import DsrunProcess
from rtsp_server import rtsp_server  # noqa: F401  (fixture)

FPS, GOP = 25, 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("sr") / "clip.mp4", frames=150, size=(160, 120), fps=FPS, gop=GOP)


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def config(folder: Path, uri: str, container: int = 0, kind: int = 3) -> Path:
    path = folder / "app.txt"
    path.write_text(f"""[source0]
enable=1
type={kind}
uri={uri}
smart-record=1
smart-rec-dir-path=clips
smart-rec-file-prefix=cam
smart-rec-container={container}
smart-rec-start-time=2
smart-rec-default-duration=2

[streammux]
width=160
height=120
batch-size=1

[sink0]
enable=1
type=1
""")
    return path


@pytest.mark.parametrize("container, suffix", [(0, "mp4"), (1, "mkv")])
def test_a_clip_triggered_from_the_hook_starts_one_gop_of_pre_roll_early_and_lasts_as_asked(
        tmp_path, clip, container, suffix):
    trigger = 75  # frame 75 = 3.0 s: pre-roll to 1.0 s, duration to 5.0 s

    def on_batch(batch):
        if trigger in batch.frame_num.tolist():
            assert batch.smart_record(0) is True
            assert batch.smart_record(0) is False  # one clip at a time per source (NvDsSRStart)

    assert dsrun.run(config(tmp_path, clip.as_uri(), container), on_batch=on_batch).exit_code == 0
    clips = sorted((tmp_path / "clips").iterdir())
    assert len(clips) == 1
    assert re.fullmatch(rf"cam_0_\d{{5}}_\d{{8}}-\d{{6}}_\d+\.{suffix}", clips[0].name)
    with av.open(str(clips[0])) as c:  # remuxed, not re-encoded: the source's codec and size
        assert c.streams.video[0].codec_context.name == "h264"
    source, recorded = decode(clip), decode(clips[0])
    first = next(k for k, frame in enumerate(source) if np.array_equal(frame, recorded[0]))
    asked_first = trigger - 2 * FPS
    assert asked_first <= first < asked_first + GOP
    assert all(np.array_equal(r, source[first + j]) for j, r in enumerate(recorded))
    asked_frames = (2 + 2) * FPS
    assert abs(len(recorded) - asked_frames) <= GOP


def test_the_rest_route_records_the_rtsp_camera_live(tmp_path, rtsp_server):
    cam = make_clip(tmp_path / "cam.mp4", frames=500, size=(160, 120), fps=FPS, gop=GOP)
    server = rtsp_server({"cam": cam})
    cfg = config(tmp_path, server.url("cam"), kind=4)
    with DsrunProcess(cfg, tmp_path) as run:
        run.wait(lambda: run.frames_processed(0) > 3 * FPS, what="3 s of the camera")
        clips_done = lambda n: lambda: run.log.read_text().count("clip done") >= n  # noqa: E731
        # one clip at a time: a start while one runs is refused. The clip refused against is a long one,
        # ended by the stop route: a 2 s clip could end between the two requests when the reader
        # catches up a backlog of the camera on a loaded machine (stream time jumps)
        assert run.post("/api/v1/record/start", {"stream": {"stream_id": "0", "start_time": 1, "duration": 60}}) \
            == {"status": "HTTP/1.1 200 OK", "reason": "SMART_RECORD_START_SUCCESS"}
        assert run.post("/api/v1/record/start", {"stream": {"stream_id": "0"}})["reason"] == \
            "SMART_RECORD_START_FAIL, a recording of this stream is already running"
        assert run.post("/api/v1/record/stop", {"stream": {"stream_id": "0"}})["reason"] == "SMART_RECORD_STOP_SUCCESS"
        run.wait(clips_done(1), what="the stopped clip to finish")
        assert run.post("/api/v1/record/start", {"stream": {"stream_id": "0", "start_time": 2, "duration": 2}}) \
            == {"status": "HTTP/1.1 200 OK", "reason": "SMART_RECORD_START_SUCCESS"}
        assert run.post("/api/v1/record/start", {"stream": {"stream_id": "3"}})["status"] == \
            "HTTP/1.1 500 Internal Server Error"
        run.wait(clips_done(2), what="the clip to finish")
        assert run.post("/api/v1/app/quit", {"value": {"app_quit": 1}})["reason"] == "QUIT_SUCCESS"
        assert run.finish() == 0
    clips = sorted((tmp_path / "clips").iterdir())  # named by a counter: in the order they were made
    assert len(clips) == 2
    recorded, source = decode(clips[1]), decode(cam)
    first = next(k for k, frame in enumerate(source) if np.array_equal(frame, recorded[0]))
    assert first % GOP == 0  # a clip starts on a keyframe
    assert all(np.array_equal(r, source[first + j]) for j, r in enumerate(recorded))
    assert abs(len(recorded) - 4 * FPS) <= GOP
