"""Sources added and removed while the pipeline runs: what DeepStream's ``nvmultiurisrcbin`` does for
its REST server (gst-nvmultiurisrcbin/gstdsnvmultiurisrcbin.cpp ``s_stream_api_impl``, and
gst-nvmultiurisrcbincreator.cpp for source ids).

A config asks for it as deepstream-app configs do — ``[source-list] use-nvmultiurisrcbin=1`` with
``http-ip``, ``http-port`` and ``max-batch-size`` — or the command line does (``--rest-port``).
Then streammux batches up to ``max-batch-size`` frames (deepstream-app ignores ``[streammux]
batch-size`` in that mode), and :class:`LiveSources` adds and removes streams:

* **add** (``camera_id``, ``camera_name``, ``camera_url``): refused, and nothing changes, when
  ``max-batch-size`` sources are already active, when the camera id is already present, or when the
  URL cannot be opened; otherwise the stream gets the first free source id after the last one given
  (nvmultiurisrcbin's ``s_get_source_id``: ``(base + i) % max-batch-size``) and joins the running
  batch. Its other settings come from ``[source-attr-all]``, as nvmultiurisrcbin's do.
* **remove** (``camera_id`` and ``camera_url``, both must match): the stream stops decoding; frames
  it already decoded still go through the pipeline, then its end of stream; the others go on.

The run ends when the last source has ended — except while no source was ever added to an empty
list, or with ``[streammux] drop-pipeline-eos=1`` (the REST server then waits for new streams until
``/api/v1/app/quit`` or Ctrl-C).

>>> LiveSourceList(max_batch_size=2).next_id(used={0}, base=0)
1
>>> LiveSourceList(max_batch_size=2).next_id(used={0, 1}, base=0) is None
True
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

from runner.pipeline.source import URI, SourceError, SourceSpec, open_container, source_spec, source_specs
from runner.redact import redact

log = logging.getLogger("dsrun")

DEFAULT_HTTP_IP = "localhost"  # gstdsnvmultiurisrcbin.cpp DEFAULT_HTTP_IP
DEFAULT_HTTP_PORT = 9000  # DEFAULT_HTTP_PORT
DEFAULT_MAX_BATCH_SIZE = 30  # DEFAULT_MAX_BATCH_SIZE


@dataclass(frozen=True, slots=True)
class LiveSourceList:
    """Whether (and how) sources may join and leave the running pipeline."""

    http_ip: str = DEFAULT_HTTP_IP
    http_port: int = DEFAULT_HTTP_PORT
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    keep_running: bool = False  # [streammux] drop-pipeline-eos=1: all sources ended is not the end

    def next_id(self, used: set[int], base: int) -> int | None:
        """The first free source id from ``base`` on, wrapping at max-batch-size; None when full."""
        for i in range(self.max_batch_size):
            sid = (base + i) % self.max_batch_size
            if sid not in used:
                return sid
        return None


def live_source_list(app, rest_port: int | None = None) -> LiveSourceList | None:
    """The config's (or ``--rest-port``'s) live source list; ``None`` when sources are fixed."""
    sl = getattr(app, "source_list", None)
    wanted = bool(sl is not None and sl.use_nvmultiurisrcbin)
    if not wanted and rest_port is None:
        return None
    port = rest_port if rest_port is not None else int(sl.http_port or DEFAULT_HTTP_PORT)
    ip = (sl.http_ip if sl is not None and sl.http_ip else DEFAULT_HTTP_IP)
    size = (sl.max_batch_size if sl is not None and sl.max_batch_size else 0) or DEFAULT_MAX_BATCH_SIZE
    size = max(size, len(getattr(app, "sources", ())))
    mux = getattr(app, "streammux", None)
    return LiveSourceList(http_ip=ip, http_port=int(port), max_batch_size=int(size),
                          keep_running=bool(getattr(mux, "drop_pipeline_eos", False)))


class StreamError(Exception):
    """A stream add/remove DeepStream refuses; ``str()`` is nvmultiurisrcbin's ``stream_log``."""


@dataclass(frozen=True, slots=True)
class Stream:
    """One active stream as get-stream-info lists it (``url`` keeps credentials: never print it)."""

    source_id: int
    camera_id: str
    camera_name: str
    url: str


class LiveSources:
    """Adds and removes sources of a running :class:`runner.pipeline.graph.Graph`; thread-safe."""

    def __init__(self, graph, app, settings: LiveSourceList, open_timeout: float = 10.0) -> None:
        self.graph, self.app, self.settings = graph, app, settings
        self.open_timeout = open_timeout
        self._lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        for cfg, spec in zip(sorted(app.sources, key=lambda c: c.index), source_specs(app)):
            camera_id = cfg.sensor_id if cfg.sensor_id is not None else str(spec.source_id)
            self._streams[spec.source_id] = Stream(spec.source_id, camera_id, cfg.sensor_name or "", spec.uri)
        self._base = (max(self._streams) + 1) if self._streams else 0
        # source id -> (camera id, camera name): the metrics' sensor labels, added streams included
        self.sensors: dict[int, tuple[str, str]] = {
            s.source_id: (s.camera_id, s.camera_name) for s in self._streams.values()}
        self._template = self._spec_template(app)
        graph.mux.set_stay_open(settings.keep_running or not self._streams)

    @staticmethod
    def _spec_template(app) -> SourceSpec:
        """[source-attr-all] as a spec: what every added stream starts from."""
        attr = getattr(app, "source_attr_all", None)
        return source_spec(app, attr, 0) if attr is not None else SourceSpec(0, URI, "")

    # -- queries ---------------------------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        """The active streams, by source id (ended ones are dropped as streammux takes their EOS)."""
        with self._lock:
            self._forget_ended()
            return [self._streams[sid] for sid in sorted(self._streams)]

    def has(self, source_id: int) -> bool:
        return any(s.source_id == source_id for s in self.streams())

    def _forget_ended(self) -> None:
        for sid in [sid for sid in self._streams if not self.graph.mux.active(sid)]:
            del self._streams[sid]

    # -- changes ---------------------------------------------------------------------------------------

    def add(self, camera_id: str, camera_name: str, url: str) -> Stream:
        """Start a new stream; raises :class:`StreamError` with DeepStream's reason when refused."""
        with self._lock:
            self._forget_ended()
            if len(self._streams) >= self.settings.max_batch_size:
                log.warning("stream add %s refused: %d sources active, max-batch-size is %d", camera_id,
                            len(self._streams), self.settings.max_batch_size)
                raise StreamError("STREAM_ADD_FAIL, Active sources exceded max-batch-size of nvstreammux")
            if any(s.camera_id == camera_id for s in self._streams.values()):
                log.warning("stream add %s refused: that camera id is already streaming", camera_id)
                raise StreamError("STREAM_ADD_FAIL, Duplicate Camera id, unable to add stream")
            sid = self.settings.next_id(set(self._streams) | self.graph.mux.active_ids(), self._base)
            if sid is None:  # removed streams still draining hold the remaining ids
                raise StreamError("STREAM_ADD_FAIL, Active sources exceded max-batch-size of nvstreammux")
            spec = dataclasses.replace(self._template, source_id=sid, uri=url, type=URI)
            try:  # nvurisrcbin fails later, on the bus; we check before anything changes
                open_container(spec, self.open_timeout).close()
            except SourceError as error:
                log.warning("stream add %s refused: %s", camera_id, error)
                raise StreamError("STREAM_ADD_FAIL, Failed to add source stream") from None
            stats = self.graph.stats.add_source(sid, spec.name, fresh=True)
            self.graph.add_reader(self.graph.make_reader(spec, stats))
            stream = self._streams[sid] = Stream(sid, camera_id, camera_name, url)
            self.sensors[sid] = (camera_id, camera_name)
            self._base = sid + 1
            self.graph.mux.set_stay_open(self.settings.keep_running)
            self._relayout()
            log.info("stream added: source %d, camera %s (%s)", sid, camera_id, redact(url))
            return stream

    def remove(self, camera_id: str, url: str) -> Stream:
        """Stop a stream (its decoded frames still finish); both id and URL must match, as in
        gst_nvmultiurisrcbincreator_get_source_config."""
        with self._lock:
            self._forget_ended()
            match = [s for s in self._streams.values() if s.camera_id == camera_id and s.url == url]
            if not match:
                log.warning("stream remove %s refused: no such stream", camera_id)
                raise StreamError("STREAM_REMOVE_FAIL, No record found. Failed to remove source stream")
            stream = match[0]
            for reader in list(self.graph.readers):
                if reader.spec.source_id == stream.source_id:
                    reader.stop()
            del self._streams[stream.source_id]
            self._relayout()
            log.info("stream removed: source %d, camera %s", stream.source_id, camera_id)
            return stream

    def _relayout(self) -> None:
        """Stages placing sources by id (the tiler) lay out a grid for the streams present."""
        tiles = max(self._streams) + 1 if self._streams else 1
        for stage in self.graph.stages:
            if hasattr(stage, "relayout"):
                stage.relayout(tiles)

    def set_drop_frame_interval(self, source_id: int, interval: int) -> None:
        """``/dec/drop-frame-interval``: the decoder of that source outputs every Nth frame from now."""
        for reader in list(self.graph.readers):
            if reader.spec.source_id == source_id and reader.is_alive():
                reader.spec = dataclasses.replace(reader.spec, drop_frame_interval=int(interval))
