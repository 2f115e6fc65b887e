"""``[sinkN] type=4``: RTSP streaming out, served by GStreamer's gst-rtsp-server as in deepstream-app.

Frames (the tiled image, or the ``source-id``'s frames: :func:`runner.pipeline.tiler.sink_frames`)
are encoded with PyAV (``codec`` 1=H.264 2=H.265 with the type-3 sink's encoders, ``bitrate``,
``iframeinterval``; ``sync=1`` paces to the PTS like the file sink) and the access units go to a helper run by Debian's ``/usr/bin/python3`` (``rtsp_gst_server.py``, which has GStreamer's ``gi``)
instead of a file. The helper payloads them as RTP to ``127.0.0.1:<udp-port>`` and serves
``rtsp://<host>:<rtsp-port>/ds-test`` from a shared ``udpsrc`` — deepstream-app's own arrangement, so
players and scripts written for deepstream-app connect unchanged. The server starts with the run, so
clients may connect before the first frame; each client starts decoding at the next keyframe
(every ``iframeinterval`` frames, 30 when unset).

Needs Debian's ``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``, ``gstreamer1.0-plugins-good`` and
``-bad`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av

import numpy as np

from runner.pipeline.batch import Batch
from runner.pipeline.sinks import Pacer, register_sink
from runner.pipeline.sinks.encoder_control import EncoderControl, vbv_options
from runner.pipeline.sinks.file import FileSink, SinkError
from runner.pipeline.tiler import sink_frames

__all__ = ["RtspSink", "RtspServer", "make_rtsp_sink", "MOUNT"]

MOUNT = "/ds-test"  # deepstream-app's mount point (start_rtsp_streaming)
SYSTEM_PYTHON = os.environ.get("DSRUN_GST_PYTHON", "/usr/bin/python3")
HELPER = Path(__file__).with_name("rtsp_gst_server.py")
_HEADER = struct.Struct(">qI")
_TIME_BASE = Fraction(1, 90000)
_INSTALL = ("apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
            "gstreamer1.0-plugins-bad")


class RtspServer:
    """The helper process: started at once, fed ``(pts_ns, access unit)``, ended by closing its stdin."""

    def __init__(self, name: str, rtsp_port: int, udp_port: int, codec: int, udp_buffer_size: int = 0) -> None:
        self.name, self.rtsp_port, self.udp_port = name, int(rtsp_port), int(udp_port)
        if shutil.which(SYSTEM_PYTHON) is None:
            raise SinkError(f"{name}: RTSP streaming needs Debian's {SYSTEM_PYTHON} with GStreamer — {_INSTALL}")
        _check_port(name, "udp-port", self.udp_port, socket.SOCK_DGRAM)
        args = [SYSTEM_PYTHON, str(HELPER), "--rtsp-port", str(self.rtsp_port), "--udp-port", str(self.udp_port),
                "--codec", "H265" if int(codec) == 2 else "H264", "--mount", MOUNT]
        if udp_buffer_size:
            args += ["--udp-buffer-size", str(int(udp_buffer_size))]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        if not line.startswith("READY"):
            err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()[-3:] if not line else []
            self.proc.kill()
            self.proc.wait()
            if line.startswith("ERROR"):
                raise SinkError(f"[{self.name}] rtsp-port {self.rtsp_port} is in use or not allowed — "
                                f"choose another rtsp-port")
            raise SinkError(f"{self.name}: the GStreamer RTSP server did not start ({' '.join(err)}) — {_INSTALL}")
        self.url = f"rtsp://127.0.0.1:{self.rtsp_port}{MOUNT}"

    def send(self, pts_ns: int, data: bytes) -> None:
        try:
            self.proc.stdin.write(_HEADER.pack(int(pts_ns), len(data)) + data)
        except (BrokenPipeError, OSError):
            raise SinkError(f"{self.name}: the RTSP server process ended (exit {self.proc.poll()}) — "
                            f"see the messages above") from None

    def flush(self) -> None:
        try:
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise SinkError(f"{self.name}: the RTSP server process ended (exit {self.proc.poll()})") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _check_port(name: str, key: str, port: int, kind: int) -> None:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            raise SinkError(f"[{name}] {key} {port} is in use — choose another {key}") from None


class RtspSink:
    """Encodes the frames a video sink shows (:func:`runner.pipeline.tiler.sink_frames`) and streams
    them through :class:`RtspServer`. The encoder is opened on the first frame (size known then)."""

    def __init__(self, name: str, *, rtsp_port: int = 8554, udp_port: int = 5000, codec: int = 1,
                 bitrate: int = 4_000_000, iframeinterval: int = 30, source_id: int = 0,
                 link_to_demux: bool = False, sync: bool = False, udp_buffer_size: int = 0) -> None:
        if int(codec) not in (1, 2):
            raise SinkError(f"[{name}] codec: {codec} cannot be streamed over RTSP — use codec=1 (H.264) or "
                            f"codec=2 (H.265)")
        self.name, self.codec, self.bitrate = name, int(codec), int(bitrate)
        self.gop, self.source_id, self.link_to_demux = max(1, int(iframeinterval)), int(source_id), link_to_demux
        self.pacer = Pacer() if sync else None
        self.server = RtspServer(name, rtsp_port, udp_port, codec, udp_buffer_size)
        self.url = self.server.url
        self._ctx = None
        self._last_pts = -1
        self.frames_sent = 0
        self.encoder = EncoderControl(self.gop, live_bitrate=self.codec == 1)  # REST /enc/* routes

    def _open(self, width: int, height: int) -> None:
        ctx = av.CodecContext.create(FileSink.codec_name(self.codec), "w")
        ctx.width, ctx.height, ctx.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        ctx.time_base = _TIME_BASE
        ctx.framerate = 30
        ctx.bit_rate = self.bitrate
        ctx.gop_size = self.gop
        if self.codec == 2:
            ctx.options = {"preset": "veryfast", "tune": "zerolatency", "forced-idr": "1",
                           "x265-params": "log-level=error:keyint=-1:bframes=0:scenecut=0"}
        else:  # one slice per frame: RTSP clients mis-assemble sliced-thread access units; rate and
            # keyframes as the file sink (x264enc's constant bitrate, keyframes from EncoderControl)
            ctx.options = {"preset": "veryfast", "tune": "zerolatency", **vbv_options(self.bitrate),
                           "x264-params": "sliced-threads=0:scenecut=0:keyint=infinite"}
        self._ctx = ctx

    def process(self, batch: Batch) -> Batch:
        pts = int(batch.pts.min()) if len(batch) else 0
        for sid, image in sink_frames(batch, source_id=self.source_id, link_to_demux=self.link_to_demux):
            t = pts if sid < 0 else int(batch.pts[np.flatnonzero(batch.source_id == sid)[0]])
            if self.pacer is not None:
                self.pacer.wait(t)
            self.write(image, t)
        return batch

    def write(self, image: np.ndarray, pts_ns: int) -> None:
        if self._ctx is None:
            self._open(image.shape[1], image.shape[0])
        w, h = self._ctx.width, self._ctx.height
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
        pts = max(int(pts_ns) * _TIME_BASE.denominator // 1_000_000_000, self._last_pts + 1)
        self._last_pts = pts
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = pts, _TIME_BASE
        self.encoder.apply(frame, self._ctx)
        self._send(self._ctx.encode(frame))
        self.frames_sent += 1

    def _send(self, packets) -> None:
        for packet in packets:
            t = packet.pts if packet.pts is not None else self._last_pts
            self.server.send(t * 1_000_000_000 // _TIME_BASE.denominator, bytes(packet))
        self.server.flush()

    def close(self) -> None:
        try:
            if self._ctx is not None and self.server.proc.poll() is None:
                self._send(self._ctx.encode(None))
        finally:
            self._ctx = None
            self.server.close()


def make_rtsp_sink(cfg, app, options) -> RtspSink:
    """Factory for ``[sinkN] type=4`` (registered with the sinks registry)."""
    index = getattr(cfg, "index", 0)
    get = lambda name, default: default if getattr(cfg, name, None) is None else getattr(cfg, name)
    return RtspSink(f"sink{index}", rtsp_port=get("rtsp_port", 8554), udp_port=get("udp_port", 5000),
                    codec=get("codec", 1), bitrate=get("bitrate", 4_000_000) or 4_000_000,
                    iframeinterval=get("iframeinterval", 30) or 30, source_id=get("source_id", 0),
                    link_to_demux=bool(get("link_to_demux", 0)), sync=bool(get("sync", 0)),
                    udp_buffer_size=get("udp_buffer_size", 0) or 0)


register_sink(4, make_rtsp_sink)
