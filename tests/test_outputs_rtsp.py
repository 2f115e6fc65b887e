"""[sinkN] type=4: a real gst-rtsp-server, read back by PyAV and ffprobe, frames carrying the OSD."""

import subprocess
import threading
import time
from types import SimpleNamespace

import av
import numpy as np
import pytest

from runner.pipeline.batch import Objects
from runner.pipeline.osd import OsdStage
from runner.pipeline.sinks.file import SinkError
from runner.pipeline.sinks.rtsp import make_rtsp_sink

from tests.mqtt_broker import free_port
from tests.outputs_support import make_batch, video_frames

W, H = 640, 360
BOX = [200, 100, 400, 260]


def sink_config(**over):
    base = dict(index=3, enable=1, type=4, rtsp_port=free_port(), udp_port=free_port(2), codec=1,
                bitrate=2_000_000, iframeinterval=10, source_id=0, sync=0)
    base.update(over)
    return SimpleNamespace(**base)


class Streamer:
    """Feeds OSD-drawn real frames to the sink at ~25 fps until stopped (a live pipeline's tail)."""

    def __init__(self, sink):
        self.sink, self.stop, self.sent = sink, threading.Event(), 0
        frames = video_frames(25, W, H)
        osd = OsdStage(SimpleNamespace(border_width=6, display_text=0),
                       border_colors={1: {-1: (0.0, 1.0, 0.0, 1.0)}})
        self.batches = []
        for k in range(len(frames)):
            b = make_batch(frames[k:k + 1].copy(), [0], [k],
                           Objects.from_columns(frame=[0], gie_id=1, xyxy=[BOX]))
            self.batches.append(osd.process(b))
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        k = 0
        while not self.stop.is_set():
            b = self.batches[k % len(self.batches)]
            b.pts = np.array([k * 40_000_000])
            self.sink.process(b)
            self.sent += 1
            k += 1
            time.sleep(0.04)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sink.close()


def read_frames(url, count, timeout=20):
    """Decoded RGB frames from the stream, starting at the first keyframe."""
    out = []
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=timeout) as c:
        started = False
        for frame in c.decode(video=0):
            started = started or frame.key_frame
            if started:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def test_rtsp_stream_at_ds_test_decodes_with_the_osd_box_drawn():
    sink = make_rtsp_sink(sink_config(), None, None)
    assert sink.url.endswith("/ds-test")
    streamer = Streamer(sink)
    try:
        frames = read_frames(sink.url, 5)
        assert len(frames) == 5 and frames[0].shape == (H, W, 3)
        x1, y1, x2, y2 = BOX
        for img in frames:
            edge = img[y1 + 1:y1 + 5, x1 + 10:x2 - 10].reshape(-1, 3).astype(int)  # inside the 6 px top border
            assert np.median(edge[:, 1]) > 200 and np.median(edge[:, 0]) < 60 and np.median(edge[:, 2]) < 60
            inside = img[y1 + 30:y2 - 30, x1 + 30:x2 - 30].reshape(-1, 3).astype(int)
            assert not (np.median(inside[:, 1]) > 200 and np.median(inside[:, 0]) < 60)  # not filled
        probe = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
                                "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", sink.url],
                               capture_output=True, text=True, timeout=30)
        assert probe.stdout.strip() == f"h264,{W},{H}", probe.stderr[-500:]
    finally:
        streamer.close()
    assert sink.server.proc.poll() is not None  # the server ends with the sink


def test_rtsp_h265_stream_is_readable():
    sink = make_rtsp_sink(sink_config(codec=2), None, None)
    streamer = Streamer(sink)
    try:
        with av.open(sink.url, options={"rtsp_transport": "tcp"}, timeout=20) as c:
            assert c.streams.video[0].codec_context.name == "hevc"
            frame = next(f for f in c.decode(video=0) if f.key_frame)
            assert (frame.width, frame.height) == (W, H)
    finally:
        streamer.close()


def test_rtsp_port_already_in_use_is_a_clear_error():
    first = make_rtsp_sink(sink_config(), None, None)
    try:
        with pytest.raises(SinkError, match=r"\[sink3\] rtsp-port \d+ is in use .* choose another rtsp-port"):
            make_rtsp_sink(sink_config(rtsp_port=first.server.rtsp_port), None, None)
    finally:
        first.close()
