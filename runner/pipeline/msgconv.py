"""nvmsgconv's DeepStream JSON payloads, built from a batch's metadata.

dsrun produces what nvmsgconv's frame-metadata path produces (``dsmeta_payload.cpp``,
``msg2p-newapi=1``), whatever ``msg-conv-msg2p-new-api`` says — dsrun has no application callback that
would attach NvDsEventMsgMeta for the old path. Payloads are made for frames whose ``frame_num`` is a
multiple of ``msg-conv-frame-interval`` (default 30):

- ``msg-conv-payload-type=0`` (PAYLOAD_DEEPSTREAM, full): one message per object::

    {"messageid": <uuid4>, "mdsversion": "1.0", "@timestamp": "2024-05-01T10:00:00.123Z",
     "place": {...} | null, "sensor": {...} | null, "analyticsModule": {...} | null,
     "object": {"id": "<track id>", "speed": 0, "direction": 0, "orientation": 0,
                "<label>": {"confidence": 0.9, "<classifier-type>": "<classifier label>", ...},
                "bbox": {"topleftx": 10, "toplefty": 20, "bottomrightx": 110, "bottomrighty": 220},
                "location": {}, "coordinate": {}},
     "event": {"id": <uuid4>, "type": ""}, "videoPath": ""}

- ``msg-conv-payload-type=1`` (PAYLOAD_DEEPSTREAM_MINIMAL): one message per frame::

    {"version": "4.0", "id": "<frame_num>", "@timestamp": "...", "sensorId": "<sensor id or 0>",
     "objects": ["<track id>|<left>|<top>|<right>|<bottom>|<label>[|#|<classifier labels>...|<conf>]"]}

``place``/``sensor``/``analyticsModule`` come from the ``msg-conv-config`` file's ``[placeN]``,
``[sensorN]``, ``[analyticsN]`` groups (N = source id). Boxes are streammux-frame pixels (nvmsgconv's
scale factor evaluates to 1: the same numbers), ``@timestamp`` is the UTC time the payload is made, and
an untracked object's id is 18446744073709551615, as DeepStream prints it.

With ``[nvds-analytics]`` (a dsrun addition: the nvmsgconv sources are not part of DeepStream 9.1's
open tree, so its own analytics fields cannot be followed) a full payload's ``object`` carries
``"analytics"`` for objects with nvdsanalytics results, and a minimal payload carries the frame's
``"analytics"`` counts (both as in ``--jsonl``, :mod:`runner.pipeline.analytics.records`).

>>> import json, numpy as np
>>> from runner.pipeline.batch import Batch, Objects
>>> b = Batch(frames=None, source_id=np.array([0]), frame_num=np.array([30]), pts=np.array([0]),
...           ntp_ts=np.array([0]), source_size=np.array([[64, 48]]),
...           objects=Objects.from_columns(frame=[0], gie_id=1, class_id=[0], confidence=[0.5],
...                                        xyxy=[[1.5, 2, 11, 22]], track_id=[4]))
>>> conv = MessageConverter(payload_type=1, frame_interval=30, labels={1: ["car"]})
>>> json.loads(conv.convert(b)[0][1])["objects"]
['4|1.5|2|11|22|car']
"""

from __future__ import annotations

import configparser
import datetime as _dt
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from runner.errors import DsrunError
from runner.pipeline.analytics.records import frame_analytics, object_analytics
from runner.pipeline.batch import Batch
from runner.pipeline.labels import object_ids, object_labels

__all__ = ["MessageConverter", "MsgConvError", "MsgConvConfig", "read_msgconv_config", "PAYLOAD_FULL",
           "PAYLOAD_MINIMAL", "rfc3339_now"]

PAYLOAD_FULL, PAYLOAD_MINIMAL = 0, 1  # NVDS_PAYLOAD_DEEPSTREAM, NVDS_PAYLOAD_DEEPSTREAM_MINIMAL


class MsgConvError(DsrunError):
    """A message-converter setting or file dsrun cannot use."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class MsgConvConfig:
    """The ``msg-conv-config`` file: per source id, the sensor/place/analytics objects of payloads."""

    sensors: dict[int, dict] = field(default_factory=dict)
    places: dict[int, dict] = field(default_factory=dict)
    analytics: dict[int, dict] = field(default_factory=dict)


def _triple(value, what: str, path: Path, group: str) -> list[float]:
    parts = [p for p in str(value).split(";") if p.strip()]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) != 3:
        raise MsgConvError(f"{path} [{group}] {what}: {value!r} is not three numbers a;b;c — "
                           f"write e.g. {what}=1.0;2.0;3.0")
    return nums


def _groups(path: Path) -> dict[str, dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MsgConvError(f"msg-conv-config: cannot read {path}: {exc.strerror} — fix the path") from None
    if path.suffix in (".yml", ".yaml"):
        import yaml

        data = yaml.safe_load(text) or {}
        return {str(g): {str(k): str(v) for k, v in (vals or {}).items()} for g, vals in data.items()
                if isinstance(vals, dict)}
    parser = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=("#",))
    parser.optionxform = str
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise MsgConvError(f"{path}: {exc.message.splitlines()[0]} — fix the key file syntax") from None
    return {g: dict(parser[g]) for g in parser.sections()}


def read_msgconv_config(path: Path | str | None) -> MsgConvConfig:
    """Parse nvmsgconv's config file (key-file or YAML); None gives an empty config."""
    if path is None:
        return MsgConvConfig()
    path = Path(path)
    out = MsgConvConfig()
    for group, keys in _groups(path).items():
        kind = group.rstrip("0123456789")
        if kind == group or kind not in ("sensor", "place", "analytics"):
            continue
        if str(keys.get("enable", "1")).strip().lower() in ("0", "false"):
            continue
        n = int(group[len(kind):])
        if kind == "sensor":
            out.sensors[n] = {
                "id": keys.get("id", ""), "type": keys.get("type", ""),
                "description": keys.get("description", ""),
                "location": dict(zip(("lat", "lon", "alt"),
                                     _triple(keys.get("location", "0;0;0"), "location", path, group))),
                "coordinate": dict(zip("xyz", _triple(keys.get("coordinate", "0;0;0"), "coordinate", path,
                                                      group)))}
        elif kind == "place":
            out.places[n] = {
                "id": keys.get("id", ""), "name": keys.get("name", ""), "type": keys.get("type", ""),
                "location": dict(zip(("lat", "lon", "alt"),
                                     _triple(keys.get("location", "0;0;0"), "location", path, group))),
                "place-sub-field": {
                    "id": keys.get("place-sub-field1", ""), "name": keys.get("place-sub-field2", ""),
                    "level": keys.get("place-sub-field3", ""),
                    "coordinate": dict(zip("xyz", _triple(keys.get("coordinate", "0;0;0"), "coordinate",
                                                          path, group)))}}
        else:
            out.analytics[n] = {"id": keys.get("id", ""), "description": keys.get("description", ""),
                                "source": keys.get("source", ""), "version": keys.get("version", "")}
    return out


def rfc3339_now() -> str:
    """UTC now as nvmsgconv writes it: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _g(x: float) -> str:
    """C++ ostream's default float formatting (``%g``, 6 significant digits)."""
    return f"{x:g}"


class MessageConverter:
    """Batch metadata → ``(source_id, payload)`` strings (see the module docstring).

    ``labels``: gie-unique-id → class labels; ``classifier_types``: gie-unique-id → nvinfer
    ``classifier-type`` (the key of a classifier's result in full payloads; classifiers without one are
    left out, as nvmsgconv does).
    """

    def __init__(self, *, payload_type: int = PAYLOAD_FULL, frame_interval: int = 30,
                 config: MsgConvConfig | None = None, labels: Mapping[int, Sequence[str]] | None = None,
                 classifier_types: Mapping[int, str] | None = None,
                 clock: Callable[[], str] = rfc3339_now) -> None:
        if payload_type not in (PAYLOAD_FULL, PAYLOAD_MINIMAL):
            raise MsgConvError(f"msg-conv-payload-type: {payload_type} is not supported yet — use 0 "
                               f"(DeepStream JSON) or 1 (minimal JSON)")
        self.payload_type = payload_type
        self.frame_interval = max(int(frame_interval), 1)
        self.config = config or MsgConvConfig()
        self.labels = labels or {}
        self.classifier_types = classifier_types or {}
        self.clock = clock

    def convert(self, batch: Batch) -> list[tuple[int, str]]:
        frames = np.flatnonzero(batch.frame_num % self.frame_interval == 0)
        if not len(frames):
            return []
        objs = batch.objects
        labels = object_labels(objs, self.labels)
        ids = object_ids(objs)
        per_obj = self._classifier_results(batch)
        extra = object_analytics(batch.analytics_objects)
        frame_extra = frame_analytics(batch.analytics_frames, len(batch))
        out: list[tuple[int, str]] = []
        for i in frames.tolist():
            sid = int(batch.source_id[i])
            rows = np.flatnonzero(objs.frame == i).tolist()
            if self.payload_type == PAYLOAD_MINIMAL:
                out.append((sid, self._minimal(batch, i, rows, labels, ids, per_obj, frame_extra[i])))
            else:
                out += [(sid, self._full(sid, r, labels, ids, per_obj, objs, extra.get(r))) for r in rows]
        return out

    def _classifier_results(self, batch: Batch) -> dict[int, list[tuple[int, str]]]:
        """object row → [(gie id, label)] ordered by gie id, as deepstream-app sorts classifier metas."""
        cls = batch.classifications
        out: dict[int, list[tuple[int, str]]] = {}
        rows = np.flatnonzero(cls.obj >= 0)
        for r in rows[np.lexsort((cls.head[rows], cls.gie_id[rows]))].tolist():
            out.setdefault(int(cls.obj[r]), []).append((int(cls.gie_id[r]), str(cls.label[r])))
        return out

    def _full(self, sid, r, labels, ids, per_obj, objs, analytics=None) -> str:
        x1, y1, x2, y2 = (float(v) for v in objs.xyxy[r])
        attrs = {"confidence": float(objs.confidence[r])}
        for gid, label in per_obj.get(r, []):
            ctype = self.classifier_types.get(gid)
            if ctype:
                attrs[ctype] = label
        obj = {"id": str(ids[r]), "speed": 0.0, "direction": 0.0, "orientation": 0.0, labels[r]: attrs,
               "bbox": {"topleftx": int(x1), "toplefty": int(y1), "bottomrightx": int(x1 + (x2 - x1)),
                        "bottomrighty": int(y1 + (y2 - y1))},
               "location": {}, "coordinate": {}}
        if analytics is not None:
            obj["analytics"] = analytics
        msg = {"messageid": str(uuid.uuid4()), "mdsversion": "1.0", "@timestamp": self.clock(),
               "place": self.config.places.get(sid), "sensor": self.config.sensors.get(sid),
               "analyticsModule": self.config.analytics.get(sid), "object": obj,
               "event": {"id": str(uuid.uuid4()), "type": ""}, "videoPath": ""}
        return json.dumps(msg, indent=2)

    def _minimal(self, batch, i, rows, labels, ids, per_obj, analytics=None) -> str:
        objs = batch.objects
        items = []
        for r in rows:
            x1, y1, x2, y2 = (float(v) for v in objs.xyxy[r])
            text = f"{ids[r]}|{_g(x1)}|{_g(y1)}|{_g(x2)}|{_g(y2)}|{labels[r]}"
            results = per_obj.get(r)
            if results:
                text += "|#" + "".join(f"|{label}" for _, label in results) + \
                    f"|{_g(float(objs.confidence[r]))}"
            items.append(text)
        sensor = self.config.sensors.get(int(batch.source_id[i]))
        msg = {"version": "4.0", "id": str(int(batch.frame_num[i])), "@timestamp": self.clock(),
               "sensorId": sensor["id"] if sensor else "0", "objects": items}
        if analytics is not None:
            msg["analytics"] = analytics
        return json.dumps(msg, indent=2)
