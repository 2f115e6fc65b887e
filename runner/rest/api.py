"""DeepStream's REST API routes (``nvds_rest_server.cpp`` ``nvds_rest_server_start``) and what dsrun
does for each (the callbacks of gstdsnvmultiurisrcbin.cpp, ``s_*_api_impl``). docs/rest.md lists them.

Every POST route answers HTTP 200 with DeepStream's JSON ``{"status": "HTTP/1.1 <code> <text>",
"reason": "<STATUS_NAME>[, detail]"}`` — DeepStream puts the outcome in the body, not in the HTTP
status line; clients written for it read ``status``. A route DeepStream has and dsrun does not act on
answers ``501 Not Implemented`` in ``status`` with the reason; a route DeepStream does not have gets
an HTTP 404. A POST route asked with GET (or the reverse) gets an HTTP 405 (DeepStream: ``null``).

>>> reply(200, "QUIT_SUCCESS")
{'status': 'HTTP/1.1 200 OK', 'reason': 'QUIT_SUCCESS'}
"""

from __future__ import annotations

import json
import logging
from typing import Callable

from runner.pipeline.live_sources import LiveSources, StreamError
from runner.rest import parse
from runner.rest.parse import BadRequest

log = logging.getLogger("dsrun")

# NvDsServerStatusCodeToHttpStatusCode (nvds_rest_server.cpp)
HTTP_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
             500: "Internal Server Error", 501: "Not Implemented"}
VERSION = "DeepStream-SDK 9.1 - REST API Version v1"  # the API dsrun speaks (VersionInfo)
JSON = "application/json"

Response = tuple[int, str, bytes]


def reply(code: int, reason: str, **extra) -> dict:
    return {"status": f"HTTP/1.1 {code} {HTTP_TEXT.get(code, '')}".rstrip(), "reason": reason, **extra}


class RestApi:
    """Answers the REST routes for one run. ``sources``: the run's :class:`LiveSources`; ``graph``:
    the running Graph (streammux, stages); ``on_quit``: what ``/app/quit`` calls (drain the run)."""

    def __init__(self, sources: LiveSources, graph, on_quit: Callable[[], object]) -> None:
        self.sources, self.graph, self.on_quit = sources, graph, on_quit
        P = parse
        self._post: dict[str, Callable[[object], dict]] = {
            "/api/v1/stream/add": self._stream,
            "/api/v1/stream/remove": self._stream,
            "/api/v1/infer/set-interval": lambda b: self._per_stream(b, P.INFER_INTERVAL, self._set_interval,
                                                                     "Unable to find stream id for infer property updation"),
            "/api/v1/dec/drop-frame-interval": lambda b: self._per_stream(
                b, P.DROP_FRAME_INTERVAL, self._set_drop_frame_interval, "drop-frame-interval not set on decoder"),
            "/api/v1/mux/batched-push-timeout": self._batched_push_timeout,
            "/api/v1/osd/process-mode": lambda b: self._per_stream(
                b, P.PROCESS_MODE, self._set_osd_process_mode, "Unable to find stream id for osd property updation"),
            "/api/v1/enc/force-idr": lambda b: self._encoder_event(b, P.FORCE_IDR),
            "/api/v1/enc/force-intra": lambda b: self._encoder_event(b, P.FORCE_INTRA),
            "/api/v1/enc/bitrate": lambda b: self._encoder_event(b, P.BITRATE),
            "/api/v1/enc/iframe-interval": lambda b: self._encoder_event(b, P.IFRAME_INTERVAL),
            "/api/v1/roi/update": self._roi_update,
            "/api/v1/app/quit": self._quit,
            # dsrun's own (DeepStream triggers smart record from messages or its local timer only)
            "/api/v1/record/start": self._record_start,
            "/api/v1/record/stop": self._record_stop,
        }
        # DeepStream routes dsrun has no element for: parsed as DeepStream does, then refused with 501
        for path, field, why in (
                ("/api/v1/dec/skip-frames", P.SKIP_FRAMES, "dsrun's decoder decodes every frame"),
                ("/api/v1/dec/low-latency-mode", P.LOW_LATENCY_MODE, "dsrun has no NVDEC low-latency mode"),
                ("/api/v1/mux/max-latency", P.MAX_LATENCY, "max-latency belongs to the new nvstreammux"),
        ):
            self._post[path] = self._unsupported(field, why)
        for path, fail in (("/api/v1/conv/srccrop", "SRC_CROP_UPDATE_FAIL"),
                           ("/api/v1/conv/destcrop", "DEST_CROP_UPDATE_FAIL"),
                           ("/api/v1/conv/interpolation-method", "INTERPOLATION_METHOD_UPDATE_FAIL"),
                           ("/api/v1/conv/flip-method", "FLIP_METHOD_UPDATE_FAIL"),
                           ("/api/v1/inferserver/set-interval", "INFERSERVER_INTERVAL_UPDATE_FAIL"),
                           ("/api/v1/nvtracker/config-path", "NVTRACKER_CONFIG_UPDATE_FAIL"),
                           ("/api/v1/analytics/reload-config", "RELOAD_CONFIG_UPDATE_FAIL")):
            self._post[path] = (lambda f: lambda body: reply(
                501, f"{f}, dsrun has no element for this route — see docs/rest.md"))(fail)
        self._get: dict[str, Callable[[], dict]] = {
            "/api/v1/stream/get-stream-info": self._stream_info,
            "/version": lambda: {"version": VERSION},
        }

    # -- HTTP -------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes) -> Response | None:
        """The response to one request, or ``None`` when the path is not a REST route (the metrics and
        health routes answer those)."""
        path = path.split("?", 1)[0].rstrip("/") or "/"
        method = method.upper()
        if path in self._post:
            if method != "POST":
                return self._json(405, reply(405, "use POST for this route"))
            try:
                doc = json.loads(body or b"null")
            except (ValueError, UnicodeDecodeError):
                doc = None  # DeepStream's handlers then see an empty request
            log.debug("REST %s %s", method, path)
            try:
                answer = self._post[path](doc)
            except BadRequest as error:
                answer = reply(400, str(error))
            return self._json(200, answer)
        if path in self._get:
            if method != "GET":
                return self._json(405, reply(405, "use GET for this route"))
            return self._json(200, self._get[path]())
        return None

    @staticmethod
    def _json(status: int, doc: dict) -> Response:
        return status, JSON, json.dumps(doc, indent=2).encode()

    # -- streams ----------------------------------------------------------------------------------------

    def _stream(self, body) -> dict:
        """s_stream_api_impl: ``change`` decides (``add``/``streaming`` adds, ``remove`` removes) —
        whichever of the two routes was called."""
        req = parse.stream_request(body)
        try:
            if "add" in req.change or "streaming" in req.change:
                self.sources.add(req.camera_id, req.camera_name, req.camera_url)
                return reply(200, "STREAM_ADD_SUCCESS")
            if "remove" in req.change:
                self.sources.remove(req.camera_id, req.camera_url)
                return reply(200, "STREAM_REMOVE_SUCCESS")
        except StreamError as error:
            return reply(500, str(error))
        return reply(400, "Sensor API change string not supported")

    def _stream_info(self) -> dict:
        streams = [{"source_id": s.source_id, "camera_id": s.camera_id, "camera_name": s.camera_name}
                   for s in self.sources.streams()]
        return reply(200, "GET_LIVE_STREAM_INFO_SUCCESS",
                     **{"stream-info": {"stream-count": len(streams), "stream-info": streams}})

    # -- runtime parameters -----------------------------------------------------------------------------

    def _per_stream(self, body, field: parse.Field, apply: Callable[[int, int], None], missing: str) -> dict:
        """A route naming ``stream_id``: refused with 500 when no such stream is active."""
        stream_id, value = parse.field_request(body, field)
        sid = parse.source_id(stream_id)
        if sid is None or not self.sources.has(sid):
            return reply(500, f"{field.fail}, {missing}")
        apply(sid, 0 if value is None else value)
        return reply(200, field.fail.replace("_FAIL", "_SUCCESS"))

    def _set_interval(self, _sid: int, interval: int) -> None:
        """gst_nvevent_infer_interval_update: every nvinfer the event reaches takes the new interval
        (gstnvinfer.cpp sets ``nvinfer->interval``, for all of its streams)."""
        for stage in self.graph.stages:
            if hasattr(stage, "interval"):
                stage.interval = int(interval)
        log.info("REST: inference interval set to %d", interval)

    def _set_drop_frame_interval(self, sid: int, interval: int) -> None:
        self.sources.set_drop_frame_interval(sid, interval)
        log.info("REST: source %d drop-frame-interval set to %d", sid, interval)

    def _set_osd_process_mode(self, sid: int, mode: int) -> None:
        """Accepted: dsrun's OSD draws the same pixels in every process-mode (CPU drawing)."""
        log.info("REST: osd process-mode %d for source %d (dsrun draws the same in every mode)", mode, sid)

    def _batched_push_timeout(self, body) -> dict:
        _, value = parse.field_request(body, parse.BATCHED_PUSH_TIMEOUT)
        self.graph.mux.set_batched_push_timeout(-1 if value is None else value)
        log.info("REST: streammux batched-push-timeout set to %s µs", -1 if value is None else value)
        return reply(200, "BATCHED_PUSH_TIMEOUT_UPDATE_SUCCESS")

    # s_enc_api_impl: the nv-enc-* event each route pushes, and what an encoder does with it
    _ENC_EVENTS = {"force_idr": "nv-enc-force-idr", "force_intra": "nv-enc-force-intra",
                   "bitrate": "nv-enc-bitrate-update", "iframeinterval": "nv-enc-iframeinterval-update"}

    def _encoder_event(self, body, field: parse.Field) -> dict:
        """s_enc_api_impl: the encoders showing that stream (its own sinks, or every one showing the
        tiled picture) take the change from their next frame (runner/pipeline/sinks/encoder_control.py):
        force-idr/force-intra a keyframe, bitrate a new rate (H.264 encoders; H.265/MPEG-4 keep theirs),
        iframe-interval a new keyframe spacing."""
        stream_id, value = parse.field_request(body, field)
        sid = parse.source_id(stream_id)
        if sid is None or not self.sources.has(sid):
            return reply(500, f"{field.fail}, Not able to find source id")
        event = self._ENC_EVENTS[field.name]
        tiled = any(getattr(s, "name", "") == "tiler" for s in self.graph.stages)
        encoders = [s.encoder for s in self.graph.sinks if hasattr(s, "encoder")
                    and (tiled or getattr(s, "source_id", None) == sid)]
        if field is parse.BITRATE:
            if [e for e in encoders if not e.live_bitrate]:
                log.warning("REST: %s — H.265 and MPEG-4 encoders keep their bitrate", event)
            encoders = [e for e in encoders if e.live_bitrate]
        if not encoders:
            return reply(500, f"{field.fail}, {event} event not pushed")
        value = 0 if value is None else value  # DeepStream reads a missing value as 0
        if field is parse.BITRATE and not value:
            log.warning("REST: %s with bitrate 0 — the encoders keep their bitrate", event)
        for encoder in encoders:
            if field in (parse.FORCE_IDR, parse.FORCE_INTRA):
                if value:
                    encoder.request_keyframe()
            elif field is parse.BITRATE:
                if value:
                    encoder.set_bitrate(value)
            else:
                encoder.set_iframe_interval(value)
        log.info("REST: %s %d for source %d (%d encoder(s))", event, value, sid, len(encoders))
        return reply(200, field.fail.replace("_FAIL", "_SUCCESS"))

    def _roi_update(self, body) -> dict:
        """s_roi_api_impl: the stream must exist; the nv-roi-update event then goes down the pipeline,
        where Gst-nvdspreprocess (gst_nvdspreprocess_sink_event) replaces that stream's ROIs. dsrun
        runs no nvdspreprocess (an enabled [pre-process] is a warning: the run goes on without it), so
        the event reaches nothing that acts on it — and, as in a DeepStream pipeline without
        nvdspreprocess, the push succeeds and the answer is ROI_UPDATE_SUCCESS."""
        req = parse.roi_request(body)
        sid = parse.source_id(req.stream_id)
        if sid is None or not self.sources.has(sid):
            return reply(500, "ROI_UPDATE_FAIL, Unable to find stream id for ROI updation")
        log.warning("REST: roi/update for source %d (%d ROI(s)): no pre-process element in this pipeline "
                    "acts on it (dsrun runs no nvdspreprocess) — nothing changes", sid, len(req.rois))
        return reply(200, "ROI_UPDATE_SUCCESS")

    def _unsupported(self, field: parse.Field, why: str) -> Callable[[object], dict]:
        def answer(body) -> dict:
            parse.field_request(body, field)  # a malformed body still gets DeepStream's 400
            return reply(501, f"{field.fail}, {why} — see docs/rest.md")
        return answer

    # -- smart record -----------------------------------------------------------------------------------

    def _recorder(self, body, fail: str):
        """(the stream's SmartRecorder, None) or (None, the refusal)."""
        stream_id, _ = parse.field_request(body, parse.RECORD_START_TIME)
        sid = parse.source_id(stream_id)
        recorder = self.graph.recorders.get(sid) if sid is not None else None
        if recorder is None:
            return None, reply(500, f"{fail}, no smart-record on stream_id {stream_id!r} — set "
                                    "[sourceN] smart-record=1 for it")
        return recorder, None

    def _record_start(self, body) -> dict:
        """``{"stream": {"stream_id": "0", "start_time": 5, "duration": 10}}``: NvDsSRStart."""
        recorder, refused = self._recorder(body, "SMART_RECORD_START_FAIL")
        if refused:
            return refused
        _, start = parse.field_request(body, parse.RECORD_START_TIME)
        _, duration = parse.field_request(body, parse.RECORD_DURATION)
        if not recorder.start(start, duration):
            return reply(500, "SMART_RECORD_START_FAIL, a recording of this stream is already running")
        return reply(200, "SMART_RECORD_START_SUCCESS")

    def _record_stop(self, body) -> dict:
        recorder, refused = self._recorder(body, "SMART_RECORD_STOP_FAIL")
        if refused:
            return refused
        if not recorder.stop():
            return reply(500, "SMART_RECORD_STOP_FAIL, no recording of this stream is running")
        return reply(200, "SMART_RECORD_STOP_SUCCESS")

    # -- application ------------------------------------------------------------------------------------

    def _quit(self, body) -> dict:
        """s_appinstance_api_impl: ``app_quit`` true ends the pipeline (queued frames still finish)."""
        _, value = parse.field_request(body, parse.APP_QUIT)
        if value:
            log.info("REST: app/quit — finishing the frames already decoded, then exiting")
            self.on_quit()
        return reply(200, "QUIT_SUCCESS")
