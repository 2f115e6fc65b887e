"""Request bodies of DeepStream's REST API, read as ``src/utils/nvds_rest_server/nvds_*_parse.cpp`` read
them: every top-level key of the JSON object holds the request's fields (``{"stream": {...}}`` or
``{"value": {...}}`` — the key's name is not checked), later keys overriding earlier ones; a value out
of DeepStream's range is refused with its ``*_FAIL`` reason and 400.

>>> stream_request({"key": "sensor", "value": {"camera_id": "cam1", "camera_name": "door",
...                 "camera_url": "file:///v.mp4", "change": "camera_add"}})
StreamRequest(camera_id='cam1', camera_name='door', camera_url='file:///v.mp4', change='camera_add')
>>> stream_request({"value": {"camera_id": "cam1", "change": "camera_add"}})
Traceback (most recent call last):
...
runner.rest.parse.BadRequest: STREAM_ADD_FAIL, Source url empty
>>> field_request({"stream": {"stream_id": "0", "interval": 33}}, INFER_INTERVAL)
Traceback (most recent call last):
...
runner.rest.parse.BadRequest: INFER_INTERVAL_UPDATE_FAIL, interval value not parsed correctly, Unsigned Integer. Range: 0 - 32
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class BadRequest(Exception):
    """A body DeepStream's parser refuses (HTTP status 400 in the response's ``status``)."""


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """``/stream/add`` and ``/stream/remove`` (NvDsServerStreamInfo's ``value_*`` fields)."""

    camera_id: str
    camera_name: str
    camera_url: str
    change: str


@dataclass(frozen=True, slots=True)
class RoiRequest:
    """``/roi/update`` (NvDsServerRoiInfo): a stream's new ROIs as ``(roi_id, left, top, width, height)``."""

    stream_id: str
    roi_count: int
    rois: tuple[tuple[str, int, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class Field:
    """One runtime parameter: its JSON name, its range, and DeepStream's reason when out of range."""

    name: str
    lo: int
    hi: int
    fail: str  # the *_FAIL status name
    range_text: str  # the tail of DeepStream's message


# nvds_infer_parse.cpp, nvds_dec_parse.cpp, nvds_mux_parse.cpp, nvds_enc_parse.cpp, nvds_osd_parse.cpp
INFER_INTERVAL = Field("interval", 0, 32, "INFER_INTERVAL_UPDATE_FAIL",
                       "interval value not parsed correctly, Unsigned Integer. Range: 0 - 32")
DROP_FRAME_INTERVAL = Field("drop_frame_interval", 0, 30, "DROP_FRAME_INTERVAL_UPDATE_FAIL",
                            "drop_frame_interval value not parsed correctly, Range: 0 - 30")
SKIP_FRAMES = Field("skip_frames", 0, 2, "SKIP_FRAMES_UPDATE_FAIL",
                    "skip_frames value not parsed correctly, Range: 0-2")
LOW_LATENCY_MODE = Field("low_latency_mode", 0, 1, "LOW_LATENCY_MODE_UPDATE_FAIL", "")
BATCHED_PUSH_TIMEOUT = Field("batched_push_timeout", -1, 2**31 - 1, "BATCHED_PUSH_TIMEOUT_UPDATE_FAIL",
                             "batched_push_timeout value not parsed correctly,  Range: -1 - 2147483647")
MAX_LATENCY = Field("max_latency", 0, 2**32 - 1, "MAX_LATENCY_UPDATE_FAIL", "")
PROCESS_MODE = Field("process_mode", -2**31, 2**31 - 1, "PROCESS_MODE_UPDATE_FAIL", "")
BITRATE = Field("bitrate", 0, 2**32 - 1, "BITRATE_UPDATE_FAIL",
                "bitrate value not parsed correctly, Unsigned Integer. Range: 0 - 4294967295")
FORCE_IDR = Field("force_idr", 0, 1, "FORCE_IDR_UPDATE_FAIL", "")
FORCE_INTRA = Field("force_intra", 0, 1, "FORCE_INTRA_UPDATE_FAIL", "")
IFRAME_INTERVAL = Field("iframeinterval", 0, 256, "IFRAME_INTERVAL_UPDATE_FAIL",
                        "iframeinterval value not parsed correctly, Unsigned Integer Range: 0 - 4294967295")
APP_QUIT = Field("app_quit", 0, 1, "QUIT_FAIL", "")
# dsrun's smart-record routes (DeepStream has none): seconds, as NvDsSRStart takes them
RECORD_START_TIME = Field("start_time", 0, 2**31 - 1, "SMART_RECORD_START_FAIL",
                          "start_time value not parsed correctly, seconds >= 0")
RECORD_DURATION = Field("duration", 0, 2**31 - 1, "SMART_RECORD_START_FAIL",
                        "duration value not parsed correctly, seconds >= 0")


def _objects(body: Any):
    """The request's field objects: the values of the body's top-level keys that are objects."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict):
                yield value


def _text(obj: dict, key: str) -> str:
    value = obj.get(key, "")
    return "" if value is None else str(value)


def stream_request(body: Any) -> StreamRequest:
    """nvds_stream_parse.cpp: ``value`` (or ``event``) holds camera_id, camera_name, camera_url, change."""
    fields = {"camera_id": "", "camera_name": "", "camera_url": "", "change": ""}
    if isinstance(body, dict):
        for key in ("value", "event"):
            obj = body.get(key)
            if isinstance(obj, dict):
                fields = {k: _text(obj, k) for k in fields}
                action = "ADD" if "add" in fields["change"] else "REMOVE"
                if not fields["camera_url"]:
                    raise BadRequest(f"STREAM_{action}_FAIL, Source url empty")
                if not fields["camera_id"]:
                    raise BadRequest(f"STREAM_{action}_FAIL, Source id empty")
    return StreamRequest(**fields)


def _number(value: Any, field: Field) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise BadRequest(f"{field.fail}, error: {field.name} is not an integer")


def field_request(body: Any, field: Field) -> tuple[str, int | None]:
    """``(stream_id, value)`` of a one-parameter route; ``value`` is None when the body has none."""
    stream_id, value = "", None
    for obj in _objects(body):
        stream_id = _text(obj, "stream_id") or stream_id
        if field.name in obj:
            value = _number(obj[field.name], field)
            if not field.lo <= value <= field.hi:
                raise BadRequest(f"{field.fail}, {field.range_text}")
    return stream_id, value


def _as_uint(value: Any) -> int:
    """jsoncpp's ``Value::asUInt``: null 0, booleans 0/1, numbers in range truncated; anything else
    raises with jsoncpp's message (DeepStream's parsers answer ``*_FAIL, error: <message>``)."""
    if value is None or isinstance(value, bool):
        return int(bool(value))
    if isinstance(value, int):
        if not 0 <= value <= 2**32 - 1:
            raise ValueError("LargestInt out of UInt range")
        return value
    if isinstance(value, float):
        if not 0 <= value <= 2**32 - 1:
            raise ValueError("double out of UInt range")
        return int(value)
    raise ValueError("Value is not convertible to UInt.")


def roi_request(body: Any) -> RoiRequest:
    """nvds_roi_parse.cpp: ``stream_id`` (required), ``roi_count`` (not 0) and the ``roi`` array of
    ``{"roi_id", "left", "top", "width", "height"}``.

    >>> roi_request({"stream": {"stream_id": "0", "roi_count": 1,
    ...              "roi": [{"roi_id": "0", "left": 100, "top": 300, "width": 400, "height": 500}]}})
    RoiRequest(stream_id='0', roi_count=1, rois=(('0', 100, 300, 400, 500),))
    >>> roi_request({"stream": {"stream_id": "0", "roi_count": 1}})
    Traceback (most recent call last):
    ...
    runner.rest.parse.BadRequest: ROI_UPDATE_FAIL, roi is empty
    """
    req = RoiRequest("", 0, ())
    for obj in _objects(body):
        try:
            stream_id = _text(obj, "stream_id")
            if not stream_id:
                raise BadRequest("ROI_UPDATE_FAIL, stream_id value not parsed correctly")
            count = _as_uint(obj.get("roi_count", 0))
            if count == 0:
                raise BadRequest("ROI_UPDATE_FAIL, roi id is 0")
            rois = obj.get("roi", "")
            if rois == "":
                raise BadRequest("ROI_UPDATE_FAIL, roi is empty")
            items = rois if isinstance(rois, list) else []
            req = RoiRequest(stream_id, count, tuple(
                (_text(r, "roi_id"), *(_as_uint(r.get(k)) for k in ("left", "top", "width", "height")))
                for r in (i if isinstance(i, dict) else {} for i in items)))
        except ValueError as error:
            raise BadRequest(f"ROI_UPDATE_FAIL, error: {error}") from None
    return req


def source_id(stream_id: str) -> int | None:
    """``stream_id`` as a source id (DeepStream's ``std::stoi``); None when it is not a number."""
    try:
        return int(str(stream_id).strip())
    except ValueError:
        return None
