"""Sources (``[sourceN]``, ``[source-list]``): camera, file/URI, multi-URI and RTSP, decoded by PyAV.

Each source runs in its own background thread (:class:`SourceReader`) that opens the stream, decodes
frames to RGB at the streammux resolution and hands them to streammux's input
(:class:`runner.pipeline.mux.MuxInput`). Files deliver every frame (the reader waits when streammux is
behind); live sources (RTSP, camera, or ``[streammux] live-source=1``) keep only the newest frame and
count the ones they drop. RTSP streams reconnect with backoff (``rtsp-reconnect-interval-sec``,
``rtsp-reconnect-attempts``, ``init-rtsp-reconnect-interval-sec``).

Every failure is a :class:`SourceError` subclass naming the source with its credentials redacted:

>>> redact("rtsp://admin:s3cret@10.0.0.7:554/live?token=abc&ch=1")
'rtsp://***:***@10.0.0.7:554/live?token=***&ch=1'
>>> str(SourceNotFound(1, "rtsp://u:p@cam/x", "the server has no such stream", "check the path"))
'source 1 (rtsp://***:***@cam/x): the server has no such stream — check the path'
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol
from urllib.parse import unquote, urlsplit

import av

from runner.errors import DsrunError
from runner.pipeline.rtsp_probe import rtsp_server_silent
from runner.pipeline.stats import SourceStats
from runner.redact import redact  # re-exported: runner.pipeline.source.redact stays importable

log = logging.getLogger("dsrun")

CAMERA_V4L2, URI, URI_MULTIPLE, RTSP, CAMERA_CSI = 1, 2, 3, 4, 5  # DeepStream's NvDsSourceType
_NETWORK = ("rtsp", "rtsps", "http", "https", "rtmp")
_SCHEMES = ("file", "v4l2") + _NETWORK


# ---------------------------------------------------------------------------------------------------
# Errors


class SourceError(DsrunError):
    """A source that cannot be opened or read; ``str()`` names it (redacted) and says what to do."""

    exit_code = 1

    def __init__(self, source_id: int, uri: str, problem: str, hint: str) -> None:
        self.source_id, self.uri = source_id, redact(uri)
        self.problem, self.hint = redact(problem), redact(hint)
        super().__init__(f"source {source_id} ({self.uri}): {self.problem} — {self.hint}")


class SourceNotFound(SourceError):
    """The file, device, server path or stream does not exist."""


class SourceAuthFailed(SourceError):
    """The server refused the credentials (or asked for some)."""


class SourceTimeout(SourceError):
    """No connection or no data within the time allowed; also: reconnect attempts exhausted."""


class SourceUnsupported(SourceError):
    """Unsupported URI scheme, source type, container or codec."""


class SourceCorruptData(SourceError):
    """The data cannot be demuxed or decoded: truncated or damaged file, broken stream."""


def classify_av_error(spec: "SourceSpec", exc: BaseException) -> SourceError:
    """Map a PyAV/FFmpeg (or OS) exception to the typed :class:`SourceError` a user can act on."""
    sid, uri = spec.source_id, spec.uri
    detail = redact(str(getattr(exc, "strerror", None) or exc))
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError, PermissionError)):
        return SourceAuthFailed(sid, uri, f"access denied ({detail})",
                                "check the user name and password in the URI, and the file permissions")
    if isinstance(exc, (av.error.HTTPNotFoundError, FileNotFoundError, IsADirectoryError)):
        return SourceNotFound(sid, uri, f"not found ({detail})", "check the path or stream name in 'uri'")
    if isinstance(exc, (ConnectionRefusedError, av.error.ConnectionRefusedError)):
        return SourceTimeout(sid, uri, f"connection refused ({detail})",
                             "check that the server is running and the host/port are right")
    if isinstance(exc, (TimeoutError, av.error.TimeoutError, av.error.ExitError, ConnectionError)):
        return SourceTimeout(sid, uri, f"no data ({detail})",
                             "check the network and the server; raise rtsp-reconnect-interval-sec for slow links")
    if isinstance(exc, (av.error.DecoderNotFoundError, av.error.DemuxerNotFoundError,
                        av.error.ProtocolNotFoundError, av.error.PatchWelcomeError)):
        return SourceUnsupported(sid, uri, f"unsupported format or codec ({detail})",
                                 "re-encode it as H.264/H.265 in MP4, MKV or a raw .h264 stream")
    if isinstance(exc, (av.error.InvalidDataError, av.error.EOFError, av.error.UndefinedError)):
        return SourceCorruptData(sid, uri, f"corrupt or truncated data ({detail})",
                                 "the file is damaged or was cut off; re-copy or re-record it")
    return SourceCorruptData(sid, uri, f"{type(exc).__name__}: {detail}", "check the stream with ffprobe")


# ---------------------------------------------------------------------------------------------------
# What to open


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One source, resolved from its config group: what the reader needs and nothing else.

    ``uri`` keeps credentials (FFmpeg needs them); print ``name``, never ``uri``.

    >>> SourceSpec(0, URI, "rtsp://u:p@cam/1").live, SourceSpec(0, URI, "file:///v.mp4").live
    (True, False)
    """

    source_id: int
    type: int
    uri: str
    live_source: bool = False  # [streammux] live-source=1: treat files as live too
    file_loop: bool = False
    drop_frame_interval: int = 0
    camera_dev_node: int = 0  # type=1: /dev/video<N> (deepstream_source_bin.c, set_camera_v4l2_params)
    # the camera's mode; 0 = unset. DeepStream puts them in a caps filter, where 0 fails to negotiate;
    # here 0 leaves the camera's current mode.
    camera_width: int = 0
    camera_height: int = 0
    camera_fps_n: int = 0
    camera_fps_d: int = 0
    latency_ms: int = 100
    select_rtp_protocol: int = 0  # 0: UDP with TCP fallback, 4: TCP only
    rtsp_reconnect_interval_sec: float = 0  # 0: no reconnection (DeepStream's default)
    rtsp_reconnect_attempts: int = -1  # -1: unlimited
    init_rtsp_reconnect_interval_sec: float = 0
    skip_frames: int = 0  # decoded frames already done elsewhere (a lost worker's file, runner.placement)

    @property
    def name(self) -> str:
        return redact(self.uri)

    @property
    def scheme(self) -> str:
        if self.type == CAMERA_V4L2:
            return "v4l2"
        return urlsplit(self.uri).scheme.lower() if "://" in self.uri else "file"

    @property
    def network(self) -> bool:
        return self.scheme in _NETWORK

    @property
    def rtsp(self) -> bool:
        return self.scheme in ("rtsp", "rtsps")

    @property
    def live(self) -> bool:
        """Drops to the newest frame when downstream is slower (RTSP, camera, live-source=1)."""
        return self.live_source or self.type in (CAMERA_V4L2, RTSP) or self.scheme in ("rtsp", "rtsps", "v4l2")

    @property
    def device(self) -> Path:
        """The V4L2 device: ``/dev/video<camera-v4l2-dev-node>`` for ``type=1`` (as deepstream-app),
        the path of a ``v4l2://`` URI otherwise."""
        return Path(f"/dev/video{self.camera_dev_node}") if self.type == CAMERA_V4L2 else self.path

    @property
    def path(self) -> Path:
        """The local file of a ``file://`` URI or plain path."""
        if "://" in self.uri:
            parts = urlsplit(self.uri)
            return Path(unquote(parts.netloc + parts.path))
        return Path(self.uri)


def _field(cfg, name: str, default):
    value = getattr(cfg, name, None)
    return default if value is None else value


def source_specs(app) -> list[SourceSpec]:
    """The sources of an ``AppConfig`` (already enabled-only and expanded: ``[sourceN]`` with
    ``num-sources``, ``[source-list]``) as specs, by source id."""
    specs = [source_spec(app, cfg, int(_field(cfg, "index", i))) for i, cfg in enumerate(app.sources)]
    return sorted(specs, key=lambda s: s.source_id)


def source_spec(app, cfg, source_id: int) -> SourceSpec:
    """One source group (``SourceConfig``) of ``app`` as the spec of source ``source_id``."""
    tests_loop = bool(_field(getattr(app, "tests", None), "file_loop", 0))
    live = bool(_field(getattr(app, "streammux", None), "live_source", 0))
    return SourceSpec(
        source_id=source_id, type=int(cfg.type), uri=str(_field(cfg, "uri", "")),
        live_source=live, file_loop=tests_loop,
        drop_frame_interval=int(_field(cfg, "drop_frame_interval", 0)),
        camera_dev_node=int(_field(cfg, "camera_v4l2_dev_node", 0)),
        camera_width=int(_field(cfg, "camera_width", 0)),
        camera_height=int(_field(cfg, "camera_height", 0)),
        camera_fps_n=int(_field(cfg, "camera_fps_n", 0)),
        camera_fps_d=int(_field(cfg, "camera_fps_d", 0)),
        latency_ms=int(_field(cfg, "latency", 100)),
        select_rtp_protocol=int(_field(cfg, "select_rtp_protocol", 0)),
        rtsp_reconnect_interval_sec=float(_field(cfg, "rtsp_reconnect_interval_sec", 0)),
        rtsp_reconnect_attempts=int(_field(cfg, "rtsp_reconnect_attempts", -1)),
        init_rtsp_reconnect_interval_sec=float(_field(cfg, "init_rtsp_reconnect_interval_sec", 0)),
    )


def unsupported(spec: SourceSpec) -> SourceUnsupported | None:
    """Why this source cannot be read here at all (asked when it opens, and by runner/preflight.py)."""
    if spec.type == CAMERA_CSI:
        return SourceUnsupported(spec.source_id, spec.uri, "CSI cameras (type=5) need a Jetson",
                                 "use type=1 with camera-v4l2-dev-node for a V4L2 camera")
    if spec.scheme not in _SCHEMES:
        return SourceUnsupported(spec.source_id, spec.uri, f"URI scheme '{spec.scheme}' is not supported",
                                 "use file://, rtsp://, http(s):// or a plain path")
    return None


def open_container(spec: SourceSpec, read_timeout: float = 10.0):
    """Open the source with PyAV; raises a typed :class:`SourceError`."""
    sid, uri = spec.source_id, spec.uri
    refused = unsupported(spec)
    if refused is not None:
        raise refused
    try:
        if spec.scheme == "v4l2":
            return _open_camera(spec, read_timeout)
        if spec.network:
            options = {}
            if spec.scheme.startswith("rtsp"):
                if spec.select_rtp_protocol == 4:
                    options["rtsp_transport"] = "tcp"
                options["max_delay"] = str(max(0, spec.latency_ms) * 1000)  # jitter buffer, µs
                options["timeout"] = str(int(read_timeout * 1e6))  # socket I/O, µs
            return av.open(spec.uri, options=options, timeout=(max(read_timeout, 5.0), read_timeout))
        path = spec.path
        if not path.is_file():
            raise SourceNotFound(sid, uri, "file not found" if not path.exists() else "not a file",
                                 "check 'uri' (relative file:// paths are relative to the config file)")
        return av.open(str(path))
    except SourceError:
        raise
    except Exception as exc:
        error = classify_av_error(spec, exc)
        silent = rtsp_server_silent(uri) if isinstance(error, SourceCorruptData) and spec.rtsp else None
        if silent:  # FFmpeg's "invalid data" from a server that accepted and then said nothing
            raise SourceTimeout(sid, uri, f"network timeout: the server accepted the connection but sent no "
                                f"stream within {read_timeout:g} s (an RTSP OPTIONS probe got: {silent})",
                                "check that the camera or RTSP server is not hung and that nothing on the "
                                "network path holds RTSP back; raise rtsp-reconnect-interval-sec on slow links"
                                ) from None
        raise error from None


def _cameras() -> str:
    found = sorted(str(p) for p in Path("/dev").glob("video*"))
    return ", ".join(found) if found else "none on this machine"


def _open_camera(spec: SourceSpec, read_timeout: float):
    """A V4L2 camera: the device checked, then opened by FFmpeg's v4l2 input with the config's mode."""
    import stat

    sid, device = spec.source_id, spec.device
    key = (f"camera-v4l2-dev-node={spec.camera_dev_node} names {device}" if spec.type == CAMERA_V4L2
           else f"'uri' names {device}")
    try:
        mode = device.stat().st_mode
    except FileNotFoundError:
        raise SourceNotFound(sid, str(device), "no such V4L2 device",
                             f"{key}; the video devices here: {_cameras()}") from None
    except OSError as exc:
        raise SourceNotFound(sid, str(device), f"cannot read it ({exc.strerror})",
                             "check its permissions (the video group)") from None
    if not stat.S_ISCHR(mode):
        raise SourceUnsupported(sid, str(device), "not a device (a camera is a character device)",
                                f"{key}; the video devices here: {_cameras()}")
    options = {}
    if spec.camera_width and spec.camera_height:
        options["video_size"] = f"{spec.camera_width}x{spec.camera_height}"
    if spec.camera_fps_n:
        options["framerate"] = f"{spec.camera_fps_n}/{spec.camera_fps_d or 1}"
    try:
        return av.open(str(device), format="v4l2", options=options, timeout=(10.0, read_timeout))
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        if getattr(exc, "errno", None) in (errno.ENOTTY, errno.EINVAL, errno.ENODEV):
            raise SourceUnsupported(sid, str(device), f"not a V4L2 camera ({reason})",
                                    f"{key}; the video devices here: {_cameras()} "
                                    "(v4l2-ctl --list-devices tells the capture ones)") from None
        raise SourceUnsupported(sid, str(device), f"the camera refused the mode {options or '(its own)'} "
                                f"({reason})", "check camera-width/height/fps-n/fps-d against "
                                f"v4l2-ctl -d {device} --list-formats-ext") from None


# ---------------------------------------------------------------------------------------------------
# The reader thread


class FrameSink(Protocol):
    """What a reader delivers to (streammux's input side)."""

    def put(self, source_id: int, image, pts_ns: int, size: tuple[int, int]) -> bool: ...
    def finish(self, source_id: int) -> None: ...


def _pts_ns(frame, fallback_index: int, rate) -> int:
    if frame.pts is not None and frame.time_base is not None:
        return int(frame.pts * frame.time_base * 1_000_000_000)
    return int(fallback_index * 1_000_000_000 / float(rate or 30))


class SourceReader(threading.Thread):
    """Decodes one source in a background thread and feeds streammux; never raises.

    A failure ends the source with a typed error in ``self.error`` and ``stats.errors``; the run goes
    on with the other sources."""

    def __init__(self, spec: SourceSpec, sink: FrameSink, stats: SourceStats,
                 to_rgb: Callable, stop: threading.Event | None = None) -> None:
        super().__init__(name=f"source-{spec.source_id}", daemon=True)
        self.spec, self.sink, self.stats, self.to_rgb = spec, sink, stats, to_rgb
        self.stop_event = stop or threading.Event()
        self.error: SourceError | None = None
        self.recorder = None  # smart record (runner.pipeline.smart_record): sees every demuxed packet
        self._decoded = 0
        self._skipped = 0  # of spec.skip_frames
        self._pts_offset = 0  # file-loop: each pass continues the previous pass's timeline

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        try:
            self._play()
            self.stats.state = "ended"
        except Exception as exc:  # a source never takes the run down: it ends with its error
            self._failed(exc)
        finally:
            self._ended()

    def _failed(self, exc: BaseException) -> None:
        """End with ``exc`` as the source's typed error (in ``self.error`` and its statistics)."""
        self.error = classify_av_error(self.spec, exc)
        self.stats.errors.append(str(self.error))
        self.stats.state = "failed"

    def _ended(self) -> None:
        """The source is over, whichever way: its recorder closed, end of stream to streammux."""
        self.stats.ended_at = time.monotonic()
        if self.recorder is not None:
            self.recorder.close()
        self.sink.finish(self.spec.source_id)

    # -- lifecycle ----------------------------------------------------------------------------------

    def _play(self) -> None:
        spec = self.spec
        failures = 0  # consecutive failed (re)connections
        while not self.stop_event.is_set():
            frames_before = self._decoded
            try:
                with open_container(spec, self._read_timeout()) as container:
                    try:
                        self._decode(container)
                    except (av.error.FFmpegError, OSError) as exc:  # demux/decode failure mid-stream
                        raise classify_av_error(spec, exc) from None
                if not spec.network and not (spec.file_loop and self._decoded > frames_before):
                    return  # file, camera or HTTP stream ended normally
                if not spec.network:
                    continue  # file-loop: play it again
                if spec.rtsp_reconnect_interval_sec <= 0:
                    self._ended_by_server()  # reconnection off: a normal end only if the server ended it
                    return
                raise SourceTimeout(spec.source_id, spec.uri, "the stream ended",
                                    "the server closed it; check the camera or server")
            except SourceError as error:
                if self.stop_event.is_set():
                    return
                if self._decoded > frames_before:
                    failures = 0  # it played for a while: a fresh loss
                delay = self._retry_delay(error, failures, ever_played=self._decoded > 0)
                if delay is None:
                    raise
                failures += 1
                self.stats.reconnects += 1
                self.stats.state = "reconnecting"
                if self.stop_event.wait(delay):
                    return

    def _ended_by_server(self) -> None:
        """Raise :class:`SourceTimeout` when an RTSP stream ended without the server ending it.

        FFmpeg reports end of file both when the server sent RTCP BYE (the stream's end) and when the
        connection dropped (camera or server dead, network gone); the server that ended a stream still
        answers, a dead one does not (``runner.pipeline.rtsp_probe``)."""
        spec = self.spec
        if not spec.rtsp or self.stop_event.is_set():
            return
        silent = rtsp_server_silent(spec.uri)
        if silent:
            raise SourceTimeout(spec.source_id, spec.uri,
                                f"the stream stopped after {self._decoded} frame(s) without an end-of-stream, "
                                f"and the server no longer answers ({silent})",
                                "the camera or RTSP server died or the network dropped: check it, or set "
                                "rtsp-reconnect-interval-sec to reconnect automatically")

    def _read_timeout(self) -> float:
        s = self.spec
        interval = s.rtsp_reconnect_interval_sec if self._decoded else (
            s.init_rtsp_reconnect_interval_sec or s.rtsp_reconnect_interval_sec)
        return float(interval) if interval > 0 else 10.0

    def _retry_delay(self, error: SourceError, failures: int, ever_played: bool) -> float | None:
        """Seconds to wait before reconnecting, or ``None`` to give up (the error ends the source)."""
        s = self.spec
        if not s.network or isinstance(error, (SourceAuthFailed, SourceNotFound, SourceUnsupported)):
            return None
        interval = s.rtsp_reconnect_interval_sec if ever_played else (
            s.init_rtsp_reconnect_interval_sec or s.rtsp_reconnect_interval_sec)
        if interval <= 0:
            return None
        if 0 <= s.rtsp_reconnect_attempts <= failures:
            raise SourceTimeout(s.source_id, s.uri,
                                f"gave up after {failures} reconnection attempt(s); last: {error.problem}",
                                "check the camera/server, or raise rtsp-reconnect-attempts (-1 = forever)")
        return min(interval * (2 ** failures), max(interval, 30.0))  # exponential backoff, capped

    # -- decoding ------------------------------------------------------------------------------------

    def _skip(self) -> bool:
        """``True`` for each of the first ``spec.skip_frames`` decoded frames: another worker already
        processed them (not counted here; the placement layer carries that worker's counts)."""
        if self._skipped < self.spec.skip_frames:
            self._skipped += 1
            return True
        return False

    def _count_decoded(self) -> bool:
        """Count one decoded frame; ``False`` when ``drop-frame-interval`` drops it (the decoder
        outputs every Nth frame)."""
        self._decoded += 1
        stats = self.stats
        stats.frames_decoded += 1
        if stats.started_at is None:
            stats.started_at = time.monotonic()
        stats.state = "playing"
        if (self._decoded - 1) % max(1, self.spec.drop_frame_interval):
            stats.dropped += 1
            return False
        return True

    def _frames_of(self, packet) -> list:
        """The frames ``packet`` decodes to. A packet the decoder rejects as damaged is skipped and
        counted (``SourceStats.damaged_packets``), and decoding goes on with the next one — FFmpeg's
        own behaviour (fftools' decoder loop logs the error and continues): the decoder resynchronises at
        the next unit it can decode, so damage in the middle of a file costs only the frames it hit."""
        try:
            return packet.decode()
        except av.error.InvalidDataError:
            self.stats.damaged_packets += 1
            return []

    def _decode(self, container) -> None:
        spec = self.spec
        if not container.streams.video:
            raise SourceUnsupported(spec.source_id, spec.uri, "no video stream", "give a video file or stream")
        stream = container.streams.video[0]
        if not spec.live:
            stream.thread_type = "AUTO"  # frame threads: throughput over latency
        rate = stream.average_rate or stream.guessed_rate
        expected, packets, first_pts, last_pts = stream.frames, 0, None, 0
        if not spec.network and spec.type != CAMERA_V4L2 and not spec.file_loop:  # the dashboard's progress
            duration = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                        else (container.duration or 0) / 1e6)
            self.stats.total_frames = expected or (round(duration * float(rate)) if duration and rate else None)
        for packet in container.demux(stream):
            if self.stop_event.is_set():
                return
            if packet.size:
                packets += 1
            for frame in self._frames_of(packet):
                if self._skip():
                    first_pts = _pts_ns(frame, self._skipped - 1, rate) if first_pts is None else first_pts
                    continue
                if not self._count_decoded():
                    continue
                pts = _pts_ns(frame, self._decoded - 1, rate)
                first_pts = pts if first_pts is None else first_pts
                last_pts = pts
                image = self.to_rgb(frame)
                if not self.sink.put(spec.source_id, image, self._pts_offset + pts - (first_pts or 0),
                                     (frame.width, frame.height)):
                    return  # the run is stopping
            if self.recorder is not None:
                self.recorder.on_packet(packet, stream)
        if self.stats.damaged_packets:
            if not self._decoded and not self._skipped:
                raise SourceCorruptData(spec.source_id, spec.uri, f"no frame decodes: all {packets} packet(s) "
                                        "are damaged", "the file is not playable; re-copy or re-record it")
            log.warning("source %d (%s): skipped %d damaged packet(s); the decoder resynchronised after each, "
                        "as FFmpeg does", spec.source_id, spec.name, self.stats.damaged_packets)
        if not spec.network and spec.type != CAMERA_V4L2 and expected and packets < expected:
            raise SourceCorruptData(spec.source_id, spec.uri,
                                    f"the file ends after {packets} of its {expected} frames (truncated)",
                                    "the file was cut off while being written; re-copy or re-record it")
        if first_pts is not None:
            step = int(1e9 / float(rate)) if rate else 0
            self._pts_offset += last_pts - first_pts + step

