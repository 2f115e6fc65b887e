"""``[sinkN] type=3``: encode to a file with PyAV (``container`` 1=mp4 2=mkv, ``codec`` 1=H.264
2=H.265 3=MPEG-4, ``bitrate`` bit/s, ``profile``, ``iframeinterval``, ``sw-preset``, ``output-file``,
``sync``).

The file stays playable whatever happens to the process: MP4 is written fragmented
(``movflags=frag_keyframe+empty_moov``, a fragment per ``iframeinterval`` frames), Matroska as a
stream, and bytes reach the file only in whole units (:class:`_WholeUnits`: one ``write`` per muxed
packet, after FFmpeg flushed it), so a run killed with SIGKILL leaves a file that plays, without a
decode error, up to its last complete fragment.

Which frames: the tiler's composite (``Batch.tiled``) when there is one, else the frames of the
sink's ``source-id`` (deepstream-app feeds per-source sinks through nvstreamdemux when
``[tiled-display]`` is off).

>>> FileSink.codec_name(1), FileSink.codec_name(2)
('libx264', 'libx265')
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from runner.errors import DsrunError
from runner.pipeline.batch import Batch
from runner.pipeline.output_files import OutputFileError, open_output, write_whole
from runner.pipeline.sinks import Pacer, register_sink
from runner.pipeline.sinks.encoder_control import EncoderControl, vbv_options

_CODECS = {1: "libx264", 2: "libx265", 3: "mpeg4"}
# nvv4l2h264enc / nvv4l2h265enc profile numbers -> x264 / x265 profile names
_PROFILES = {1: {0: "baseline", 1: "baseline", 2: "main", 4: "high"}, 2: {0: "main", 1: "main10"}}
_TIME_BASE = Fraction(1, 90000)
# MPEG-4 Part 2 codes its time base in 16 bits (vop_time_increment_resolution <= 65535): FFmpeg's mpeg4
# encoder refuses 1/90000, so its frames are timed in 1/30000 s
_MPEG4_TIME_BASE = Fraction(1, 30000)
# sw-preset (x264enc/x265enc speed-preset numbers); 0 = unset -> superfast (CPU time matters here)
_PRESETS = ("superfast", "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
            "slower", "veryslow", "placebo")


class SinkError(DsrunError):
    exit_code = 1


class _WholeUnits(io.RawIOBase):
    """Non-seekable output that holds FFmpeg's bytes until :meth:`commit` (after each muxed packet)
    and then writes them with one system call: the file never ends inside a fragment or block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = open_output(path)
        self._pending = bytearray()
        self._broken = False

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:
        self._pending += data
        return len(data)

    def commit(self) -> None:
        """Write what FFmpeg produced since the last commit, whole or not at all (a full disk leaves
        the file at its last complete unit: it still plays)."""
        pending, self._pending = self._pending, bytearray()
        if self._broken:
            return  # after a refused unit nothing more goes in: the file ends at its last whole unit
        try:
            write_whole(self._fd, pending, self.path)
        except OutputFileError:
            self._broken = True
            raise

    def close(self) -> None:
        if not self.closed:
            try:
                self.commit()
            finally:
                os.close(self._fd)
                super().close()


class FileSink:
    """Encodes the frames it receives into ``path``; opened on the first frame (size known then)."""

    def __init__(self, name: str, path: Path, container: int = 1, codec: int = 1, bitrate: int = 4_000_000,
                 profile: int = 0, iframeinterval: int = 30, source_id: int = 0, sync: bool = False,
                 sw_preset: int = 0) -> None:
        self.name, self.path, self.container, self.codec = name, Path(path), int(container), int(codec)
        self.bitrate, self.profile, self.gop = int(bitrate), int(profile), max(1, int(iframeinterval))
        self.source_id, self.pacer = int(source_id), Pacer() if sync else None
        self.preset = _PRESETS[int(sw_preset)] if 0 <= int(sw_preset) < len(_PRESETS) else _PRESETS[0]
        self._out = None
        self._file: _WholeUnits | None = None
        self._stream = None
        self._last_pts = -1
        self.frames_written = 0
        # keyframes, GOP and bitrate as the REST API's /enc/* routes change them
        self.encoder = EncoderControl(self.gop, live_bitrate=self.codec == 1)

    @staticmethod
    def codec_name(codec: int) -> str:
        return _CODECS.get(int(codec), "libx264")

    def _open(self, width: int, height: int) -> None:
        try:
            self._file = _WholeUnits(self.path)  # creates the directory
            if self.container == 2:
                self._out = av.open(self._file, "w", format="matroska", options={"flush_packets": "1"})
            else:
                self._out = av.open(self._file, "w", format="mp4", options={
                    "movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"})
        except OutputFileError:
            raise
        except (OSError, av.error.FFmpegError) as exc:
            raise SinkError(f"{self.name}: cannot write output-file {self.path}: {exc} — check the directory "
                            "exists and is writable") from None
        stream = self._out.add_stream(self.codec_name(self.codec), rate=30)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        self._tb = _MPEG4_TIME_BASE if self.codec == 3 else _TIME_BASE
        stream.time_base = self._tb
        ctx = stream.codec_context
        ctx.time_base = self._tb
        ctx.bit_rate = self.bitrate
        ctx.gop_size = self.gop
        opts = {}
        if self.codec == 1:
            # constant bitrate as x264enc's pass=cbr (VBV maximum = bitrate, 600 ms buffer), so that
            # /api/v1/enc/bitrate can change it; keyframes placed by EncoderControl only (endless GOP
            # here, scene-cut keyframes off), every iframeinterval frames as DeepStream's encoders
            opts = {"preset": self.preset, "bf": "0", "profile": _PROFILES[1].get(self.profile, "high"),
                    "x264-params": "scenecut=0:keyint=infinite", **vbv_options(self.bitrate)}
        elif self.codec == 2:
            opts = {"preset": self.preset, "forced-idr": "1",
                    "x265-params": "log-level=error:keyint=-1:bframes=0:scenecut=0"}
        ctx.options = opts
        self._stream = stream

    def _frames(self, batch: Batch) -> tuple[list[np.ndarray], list[int]]:
        if batch.tiled is not None:
            return [np.asarray(batch.tiled)], [int(batch.pts.min())]
        rows = np.flatnonzero(batch.source_id == self.source_id)
        host = batch.host_frames()
        return [host[i] for i in rows], [int(batch.pts[i]) for i in rows]

    def process(self, batch: Batch) -> Batch:
        images, pts = self._frames(batch)
        for image, t in zip(images, pts):
            if self.pacer is not None:
                self.pacer.wait(t)
            self.write(image, t)
        return batch

    def write(self, image: np.ndarray, pts_ns: int) -> None:
        if self._out is None:
            self._open(image.shape[1], image.shape[0])
        w, h = self._stream.width, self._stream.height
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
        pts = int(pts_ns * self._tb.denominator // 1_000_000_000)
        pts = max(pts, self._last_pts + 1)  # strictly increasing (loops, reconnects, equal PTS)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, self._tb
        self.encoder.apply(frame, self._stream.codec_context)
        self._out.mux(self._stream.encode(frame))
        self._file.commit()
        self.frames_written += 1

    def close(self) -> None:
        if self._out is None:
            return
        out, file, self._out, self._file = self._out, self._file, None, None
        try:
            out.mux(self._stream.encode(None))
        finally:
            try:
                out.close()
            finally:
                file.close()


def make_file_sink(cfg, app, options) -> FileSink:
    index = getattr(cfg, "index", 0)
    get = lambda name, default: default if getattr(cfg, name, None) is None else getattr(cfg, name)
    path = get("output_file", None)
    if not path:
        raise SinkError(f"[sink{index}] type=3 needs output-file — add output-file=out.mp4")
    path = Path(path)
    if not path.is_absolute() and getattr(app, "path", None):
        path = Path(app.path).parent / path
    return FileSink(f"sink{index}", path, container=get("container", 1), codec=get("codec", 1),
                    bitrate=get("bitrate", 4_000_000) or 4_000_000, profile=get("profile", 0),
                    iframeinterval=get("iframeinterval", 30) or 30, source_id=get("source_id", 0),
                    sync=bool(get("sync", 0)), sw_preset=get("sw_preset", 0))


register_sink(3, make_file_sink)
