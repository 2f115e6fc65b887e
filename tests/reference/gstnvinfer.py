"""Gst-nvinfer (src/gst-plugins/gst-nvinfer/) — ported from the C++.

Files: ``gstnvinfer.cpp`` (gst_nvinfer_process_full_frame, should_infer_object,
gst_nvinfer_process_objects, cleanup_history_map, get_converted_buffer, the STREAM_EOS event),
``gstnvinfer_meta_utils.cpp`` (attach_metadata_detector, attach_metadata_classifier,
merge_classification_output) and ``gstnvinfer_property_parser.cpp`` (gst_nvinfer_parse_class_attrs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

F32 = np.float32
REINFER_AREA_THRESHOLD = 0.2
CLEANUP_ACCESS_CRITERIA = 150
MAP_CLEANUP_INTERVAL = 1800
DEFAULT_REINFER_INTERVAL = 2**31 - 1  # G_MAXINT
UNTRACKED_OBJECT_ID = -1


def parse_class_attrs(keys: list[tuple[str, float]], inherited: float) -> float:
    """gst_nvinfer_parse_class_attrs, the two keys that write ``preClusterThreshold``: the group's keys
    in file order (``keys``: (name, value)); each of ``threshold`` / ``pre-cluster-threshold`` overwrites
    the value inherited from [class-attrs-all] (or the default)."""
    value = inherited
    for name, v in keys:
        if name in ("threshold", "pre-cluster-threshold"):
            value = v
    return value


class FullFrameInterval:
    """The ``interval_counter`` of gst_nvinfer_process_full_frame: a whole batch is skipped unless
    ``interval_counter++ % (interval + 1) == 0``. gst_nvinfer_start sets the counter to 0; of the events
    gst_nvinfer_sink_event handles, only the pipeline's GST_EVENT_EOS sets it to 0 again."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.start()

    def start(self) -> None:
        """gst_nvinfer_start: ``nvinfer->interval_counter = 0``."""
        self.interval_counter = 0

    def process_full_frame(self, num_filled: int) -> list[int]:
        """Batch indices of the frames inferred in this batch (all of them, or none)."""
        skip_batch = self.interval_counter % (self.interval + 1) > 0
        self.interval_counter += 1
        return [] if skip_batch else list(range(num_filled))

    def sink_event(self, event: str, value: int | None = None) -> None:
        """gst_nvinfer_sink_event, as far as the interval goes: ``eos`` (GST_EVENT_EOS) resets the
        counter; ``infer_interval_update`` (GST_NVEVENT_INFER_INTERVAL_UPDATE) sets ``interval`` and
        leaves the counter; ``pad_added`` / ``pad_deleted`` / ``stream_eos`` (GST_NVEVENT_PAD_ADDED,
        _PAD_DELETED, _STREAM_EOS) change only the per-source info (source_info, object history)."""
        if event == "eos":
            self.interval_counter = 0
        elif event == "infer_interval_update":
            self.interval = int(value)
        elif event not in ("pad_added", "pad_deleted", "stream_eos"):
            raise ValueError(f"gst_nvinfer_sink_event does not handle {event!r}")


def get_converted_buffer_crop(left: float, top: float, width: float, height: float) -> tuple[int, int, int, int]:
    """get_converted_buffer's source rectangle: GST_ROUND_UP_2 of the (unsigned) left/top and
    GST_ROUND_DOWN_2 of the (unsigned) width/height of ``rect_params``."""
    def up2(v):
        return (int(v) + 1) & ~1

    def down2(v):
        return int(v) & ~1
    return up2(left), up2(top), down2(width), down2(height)


@dataclass
class ObjectHistory:
    """GstNvInferObjectHistory."""
    last_inferred_frame_num: int = 0
    last_accessed_frame_num: int = 0
    last_inferred_area: float = 0.0
    under_inference: bool = False
    cached_attributes: list = field(default_factory=list)
    cached_label: str = ""


@dataclass
class Obj:
    """The NvDsObjectMeta fields these functions read."""
    object_id: int
    unique_component_id: int
    class_id: int
    left: float
    top: float
    width: float
    height: float


@dataclass
class Element:
    """The GstNvInfer fields these functions read (a classifier unless ``detector``)."""
    operate_on_gie_id: int = -1
    min_w: int = 0
    min_h: int = 0
    max_w: int = 0
    max_h: int = 0
    operate_on_class_ids: list = field(default_factory=list)  # empty: all; else flags by class id
    secondary_reinfer_interval: int = DEFAULT_REINFER_INTERVAL
    detector: bool = False
    classifier_async_mode: bool = False
    current_batch_num: int = 0
    last_map_cleanup_frame_num: int = 0
    # source id -> {"map": {object_id: ObjectHistory}, "last_seen": int, "last_cleanup": int}
    source_info: dict = field(default_factory=dict)


def should_infer_object(e: Element, o: Obj, frame_num: int, history: ObjectHistory | None) -> bool:
    """should_infer_object (gstnvinfer.cpp)."""
    if e.operate_on_gie_id > -1 and o.unique_component_id != e.operate_on_gie_id:
        return False
    if o.width < e.min_w or o.height < e.min_h:
        return False
    if e.max_w > 0 and o.width > e.max_w:
        return False
    if e.max_h > 0 and o.height > e.max_h:
        return False
    if e.operate_on_class_ids and (len(e.operate_on_class_ids) <= o.class_id
                                   or not e.operate_on_class_ids[o.class_id]):
        return False
    if history is not None and not e.detector:
        reinfer = history.last_inferred_area * (1 + REINFER_AREA_THRESHOLD) < F32(o.width) * F32(o.height)
        if frame_num - history.last_inferred_frame_num > e.secondary_reinfer_interval:
            reinfer = True
        return reinfer
    if history is not None and e.detector:
        return (frame_num - history.last_inferred_frame_num > e.secondary_reinfer_interval
                or e.secondary_reinfer_interval == DEFAULT_REINFER_INTERVAL)
    return True


def process_objects(e: Element, frames: list[tuple[int, int, list[Obj]]], classify) -> list[list]:
    """gst_nvinfer_process_objects + the output thread, synchronous classifier: ``frames`` are
    (source id, frame_num, objects) of one batch; ``classify(obj)`` returns (attributes, label) as
    parseAttributesFromSoftmaxLayers does. Returns per frame, per object, the attached
    (attributes, label) or None — what attach_metadata_classifier attaches (see
    :func:`attach_metadata_classifier`)."""
    e.current_batch_num += 1
    attached = []
    for source_id, frame_num, objects in frames:
        info = e.source_info.setdefault(source_id, {"map": {}, "last_seen": 0, "last_cleanup": 0})
        info["last_seen"] = frame_num
        per_frame = []
        for o in objects:
            history = info["map"].get(o.object_id) if o.object_id != UNTRACKED_OBJECT_ID else None
            if not should_infer_object(e, o, frame_num, history):
                if not e.detector and history is not None:
                    history.last_accessed_frame_num = frame_num
                    per_frame.append(attach_metadata_classifier(history.cached_attributes, history.cached_label))
                else:
                    per_frame.append(None)
                continue
            if o.object_id != UNTRACKED_OBJECT_ID and history is None:
                history = info["map"][o.object_id] = ObjectHistory()
            if history is not None:
                history.under_inference = True
                history.last_inferred_frame_num = frame_num
                history.last_accessed_frame_num = frame_num
                history.last_inferred_area = F32(o.width) * F32(o.height)
            attrs, label = classify(o)
            if history is not None:  # output thread: merge_classification_output, then attach the cache
                history.under_inference = False
                history.cached_attributes, history.cached_label = list(attrs), label
                per_frame.append(attach_metadata_classifier(history.cached_attributes, history.cached_label))
            else:
                per_frame.append(attach_metadata_classifier(attrs, label))
        attached.append(per_frame)
    if e.current_batch_num - e.last_map_cleanup_frame_num > MAP_CLEANUP_INTERVAL:
        cleanup_history_map(e)
        e.last_map_cleanup_frame_num = e.current_batch_num
    return attached


def cleanup_history_map(e: Element) -> None:
    """cleanup_history_map (gstnvinfer.cpp)."""
    for info in e.source_info.values():
        if info["last_seen"] - info["last_cleanup"] < MAP_CLEANUP_INTERVAL:
            continue
        info["last_cleanup"] = info["last_seen"]
        for oid in list(info["map"]):
            h = info["map"][oid]
            if not h.under_inference and info["last_seen"] - h.last_accessed_frame_num > CLEANUP_ACCESS_CRITERIA:
                del info["map"][oid]


def stream_eos(e: Element, source_id: int) -> None:
    """gst_nvinfer_sink_event, GST_NVEVENT_STREAM_EOS: the source's object history map is cleared."""
    if source_id in e.source_info:
        e.source_info[source_id]["map"].clear()


def attach_metadata_classifier(attributes: list, label: str):
    """attach_metadata_classifier: nothing is attached when there are no attributes or the label
    string is empty; else every attribute (with its label or none)."""
    if len(attributes) == 0 or len(label) == 0:
        return None
    return list(attributes), label


def attach_metadata_detector(objects: list[dict], frame_w: int, frame_h: int, filt: list[dict],
                             crop_objects_to_roi_boundary: bool, scale_x: float = 1.0, scale_y: float = 1.0,
                             offset_left: float = 0.0, offset_top: float = 0.0) -> list[dict]:
    """attach_metadata_detector for a full frame (no parent, no nvdspreprocess ROI): the rect_params of
    every object attached. ``filt`` per class: detectionMinWidth/Height, detectionMaxWidth/Height,
    roiTopOffset, roiBottomOffset."""
    out = []
    for obj in objects:
        f = filt[obj["classIndex"]]
        left = F32((obj["left"] - offset_left) / scale_x)
        top = F32((obj["top"] - offset_top) / scale_y)
        width = F32(obj["width"] / scale_x)
        height = F32(obj["height"] / scale_y)
        if top < 0:
            top = F32(0)
        if left < 0:
            left = F32(0)
        if width < f["detectionMinWidth"] or height < f["detectionMinHeight"]:
            continue
        if f["detectionMaxWidth"] > 0 and width > f["detectionMaxWidth"]:
            continue
        if f["detectionMaxHeight"] > 0 and height > f["detectionMaxHeight"]:
            continue
        if crop_objects_to_roi_boundary:
            if top < f["roiTopOffset"]:
                top = F32(f["roiTopOffset"])
            if left + width >= frame_w:
                width = F32(frame_w - left)
            if top + height > frame_h - f["roiBottomOffset"]:
                height = F32(frame_h - f["roiBottomOffset"] - top)
        else:
            if top < f["roiTopOffset"]:
                continue
            if top + height > frame_h - f["roiBottomOffset"]:
                continue
        out.append({"classIndex": obj["classIndex"], "confidence": obj["confidence"],
                    "left": left, "top": top, "width": width, "height": height})
    return out
