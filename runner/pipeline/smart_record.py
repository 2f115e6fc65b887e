"""Smart record (``[sourceN] smart-record``, ``smart-rec-*``): clips of a source's compressed video,
cut on request with seconds of pre-roll, remuxed without re-encoding — DeepStream's gst-nvdssr.

How gst-nvdssr.c does it, and dsrun with it:

* a cache holds the last ``smart-rec-cache`` seconds (default 30, ``NVDSSR_DEFAULT_CACHE_DURATION``)
  of the source's packets as demuxed;
* ``start(start_time, duration)`` (``NvDsSRStart``) keeps only the last ``start_time`` seconds of the
  cache (0 means 1, as NvDsSRStart does), then writes from the first keyframe among them — so a clip
  starts at most one GOP after the pre-roll asked — and goes on for ``duration`` seconds
  (``smart-rec-default-duration`` when 0, itself 10 by default; at most 300 s); one clip at a time per
  source (a second start while recording is refused, ``NVDSSR_STATUS_INVALID_OP``); ``stop()`` ends it
  early;
* files are ``<smart-rec-dir-path>/<prefix>_<NNNNN>_<YYYYmmdd-HHMMSS>_<pid>.<mp4|mkv>`` where
  prefix is ``<smart-rec-file-prefix>_<camera-id>`` or ``Smart_Record`` (``SetNewFileName``,
  deepstream_source_bin.c), ``smart-rec-container`` 0 MP4, 1 MKV.

dsrun measures pre-roll and duration in **stream time** (packet timestamps), where gst-nvdssr uses the
pipeline clock: the same thing for a live camera, and the only meaningful one for a file read faster
than real time. ``smart-record=2`` adds deepstream-app's local events: every ``smart-rec-interval``
seconds (default 10) of stream time, start a clip (``smart-rec-start-time``, ``smart-rec-duration``)
or stop the one running (``smart_record_event_generator``). Triggers: the REST API
(``/api/v1/record/start`` and ``/stop``, dsrun's routes: DeepStream has none) and the Python hook
(``batch.smart_record(source_id)``, docs/python.md).

>>> clip_name(SmartRecordSpec(source_id=0, camera_id=3, prefix="door"), 7, stamp="20261203-101500", pid=42)
'door_3_00007_20261203-101500_42.mp4'
>>> clip_name(SmartRecordSpec(source_id=0, container=1), 8, stamp="20261203-101500", pid=42)
'Smart_Record_00008_20261203-101500_42.mkv'
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av

log = logging.getLogger("dsrun")

DEFAULT_CACHE_S = 30  # NVDSSR_DEFAULT_CACHE_DURATION
DEFAULT_DURATION_S = 10  # NVDSSR_DEFAULT_RECORD_DURATION
MAX_DURATION_S = 300  # NVDSSR_MAX_RECORD_DURATION
DEFAULT_INTERVAL_S = 10  # deepstream-app's local event period without smart-rec-interval
_COUNTER = itertools.count()  # gst-nvdssr numbers clips across the process


@dataclass(frozen=True, slots=True)
class SmartRecordSpec:
    source_id: int
    camera_id: int = 0
    mode: int = 1  # 1: on request; 2: also deepstream-app's local start/stop events
    directory: Path = Path(".")
    prefix: str | None = None
    container: int = 0  # 0 MP4, 1 MKV
    cache_s: int = DEFAULT_CACHE_S
    start_time_s: int = 0
    default_duration_s: int = DEFAULT_DURATION_S
    duration_s: int = 0
    interval_s: int = DEFAULT_INTERVAL_S


def clip_name(spec: SmartRecordSpec, counter: int, *, stamp: str | None = None, pid: int | None = None) -> str:
    prefix = f"{spec.prefix}_{spec.camera_id}" if spec.prefix else "Smart_Record"
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    ext = "mkv" if spec.container == 1 else "mp4"
    return f"{prefix}_{counter:05d}_{stamp}_{os.getpid() if pid is None else pid}.{ext}"


def smart_record_specs(app) -> dict[int, SmartRecordSpec]:
    """The sources of ``app`` with ``smart-record`` set, by source id."""
    out = {}
    for i, cfg in enumerate(app.sources):
        mode = int(getattr(cfg, "smart_record", 0) or 0)
        if not mode:
            continue
        sid = int(getattr(cfg, "index", i))
        directory = getattr(cfg, "smart_rec_dir_path", None) or Path(getattr(app, "path", ".")).parent
        out[sid] = SmartRecordSpec(
            source_id=sid, camera_id=int(getattr(cfg, "camera_id", 0) or 0), mode=mode,
            directory=Path(directory), prefix=getattr(cfg, "smart_rec_file_prefix", None),
            container=int(cfg.smart_rec_container or 0),
            cache_s=int(cfg.smart_rec_cache or cfg.smart_rec_video_cache or 0) or DEFAULT_CACHE_S,
            start_time_s=int(cfg.smart_rec_start_time or 0),
            default_duration_s=int(cfg.smart_rec_default_duration or 0) or DEFAULT_DURATION_S,
            duration_s=int(cfg.smart_rec_duration or 0),
            interval_s=int(cfg.smart_rec_interval or 0) or DEFAULT_INTERVAL_S)
    return out


class SmartRecorder:
    """One source's cache and clip writer. ``on_packet`` runs on the source's reader thread;
    ``start``/``stop`` may be called from any thread (they only leave a request)."""

    def __init__(self, spec: SmartRecordSpec) -> None:
        self.spec = spec
        self.clips: list[Path] = []  # finished clips, in order
        self._cache: collections.deque = collections.deque()  # (t, keyframe, packet)
        self._lock = threading.Lock()
        self._request: tuple[float, float, float | None] | None = None  # start_s, duration_s, at_s
        self._stop = False
        self._out = None  # (container, stream, end_t, path) while recording
        self._t0: float | None = None  # first packet's time: stream time starts at 0 like Batch.pts
        self._last_t = 0.0
        self._next_event: float | None = None

    @property
    def recording(self) -> bool:
        return self._out is not None or self._request is not None

    def start(self, start_time: float | None = None, duration: float | None = None,
              at: float | None = None) -> bool:
        """Ask for a clip with ``start_time`` s of pre-roll and ``duration`` s after the trigger (``at``:
        stream seconds, like ``Batch.pts / 1e9``; default: the newest packet). False while one runs."""
        with self._lock:
            if self.recording:
                return False
            start = self.spec.start_time_s if start_time is None else start_time
            self._request = (float(start or 1), float(duration or 0), at)
            return True

    def stop(self) -> bool:
        with self._lock:
            if not self.recording:
                return False
            self._stop = True
            return True

    # -- the reader thread ----------------------------------------------------------------------------

    def on_packet(self, packet, stream) -> None:
        if packet.size == 0:
            return
        base = stream.time_base
        ticks = packet.pts if packet.pts is not None else packet.dts
        if ticks is None or base is None:
            t = self._last_t + 1e-6  # gst-nvdssr: a missing PTS continues the previous one
        else:
            t = float(ticks * base)
            self._t0 = t if self._t0 is None else self._t0
            t -= self._t0
        self._last_t = t
        self._cache.append((t, bool(packet.is_keyframe), packet))
        while self._cache and self._cache[0][0] < t - self.spec.cache_s:
            self._cache.popleft()
        self._local_event(t)
        with self._lock:
            request, stop, self._request, self._stop = self._request, self._stop, None, False
        if request is not None:
            self._begin(request, t, stream)
        elif self._out is not None:
            self._write(packet, stream)
        if self._out is not None and (stop or t >= self._out[2]):
            self._finish()

    def close(self) -> None:
        """The source ended: a clip being written ends with it."""
        if self._out is not None:
            self._finish()

    def _local_event(self, t: float) -> None:
        """smart-record=2: deepstream-app's smart_record_event_generator, on stream time."""
        if self.spec.mode != 2:
            return
        if self._next_event is None:
            self._next_event = t + self.spec.interval_s
        elif t >= self._next_event:
            self._next_event += self.spec.interval_s
            if self.recording:
                self.stop()
            else:
                self.start(self.spec.start_time_s, self.spec.duration_s)

    def _begin(self, request, now: float, stream) -> None:
        start_s, duration_s, at = request
        trigger = now if at is None else min(at, now)
        duration = duration_s if 0 < duration_s < MAX_DURATION_S else self.spec.default_duration_s
        first = next((i for i, (t, key, _) in enumerate(self._cache) if key and t >= trigger - start_s), None)
        if first is None:  # no keyframe in the pre-roll: start at the next one (gotKeyFrame)
            with self._lock:
                self._request = (start_s, duration_s, trigger)
            return
        self.spec.directory.mkdir(parents=True, exist_ok=True)
        path = self.spec.directory / clip_name(self.spec, next(_COUNTER))
        container = av.open(str(path), "w", format="matroska" if self.spec.container == 1 else "mp4")
        out_stream = container.add_stream_from_template(stream)
        self._out = (container, out_stream, trigger + duration, path, self._cache[first][2])
        log.info("smart record: source %d → %s (from %.2f s, until %.2f s)", self.spec.source_id, path,
                 self._cache[first][0], trigger + duration)
        for _, _, packet in list(self._cache)[first:]:
            self._write(packet, stream)

    def _write(self, packet, stream) -> None:
        container, out_stream, _, _, first = self._out
        copy = av.Packet(bytes(packet))
        origin = first.dts if first.dts is not None else first.pts or 0
        copy.pts = None if packet.pts is None else packet.pts - origin
        copy.dts = None if packet.dts is None else packet.dts - origin
        copy.time_base = stream.time_base
        copy.is_keyframe = packet.is_keyframe
        copy.stream = out_stream
        container.mux(copy)

    def _finish(self) -> None:
        container, _, _, path, _ = self._out
        self._out = None
        try:
            container.close()
            self.clips.append(path)
            log.info("smart record: source %d clip done: %s", self.spec.source_id, path)
        except Exception as error:  # a clip failing must not stop the source
            log.warning("smart record: source %d clip %s failed: %s", self.spec.source_id, path, error)
