"""THE table of keys dsrun acts on, per group kind. Everything else a config sets is accepted and
listed by ``dsrun check`` as "accepted, not yet supported".

Helpers implementing a feature add the keys it honours here (one place). Group kinds are the names
of runner.config.groups (``sourceN``, ``sinkN``, ``secondary-gieN``, ``property``, ``class-attrs-N``,
the tracker YAML's sections…); ``gie`` entries apply to both primary-gie and secondary-gieN.
Indexed keys are written with ``<N>`` (``bbox-border-color<N>`` covers ``bbox-border-color0``).

:data:`CONFIG_LAYER` holds what the config layer itself acts on; :data:`RUNTIME` what the pipeline,
the engine layer and the UI act on — tests/test_config_supported.py checks every RUNTIME entry
against the code that reads it, and that nothing that code reads is missing here.

>>> is_supported("primary-gie", "config-file"), is_supported("primary-gie", "bbox-border-color2")
(True, True)
>>> is_supported("sinkN", "bitrate"), is_supported("sinkN", "enc-type")
(True, False)
"""

from __future__ import annotations

import re

_SOURCE = frozenset({
    "type", "uri", "latency", "drop-frame-interval", "camera-v4l2-dev-node", "camera-width",
    "camera-height", "camera-fps-n", "camera-fps-d", "select-rtp-protocol", "rtsp-reconnect-interval-sec",
    "init-rtsp-reconnect-interval-sec", "rtsp-reconnect-attempts",
    # smart record (runner/pipeline/smart_record.py); camera-id names the clips
    "smart-record", "smart-rec-dir-path", "smart-rec-file-prefix", "smart-rec-cache", "smart-rec-video-cache",
    "smart-rec-container", "smart-rec-start-time", "smart-rec-default-duration", "smart-rec-duration",
    "smart-rec-interval", "camera-id"})
_NVINFER_GIE = frozenset({  # nvinfer keys an app's GIE group may set too (they override [property])
    "batch-size", "interval", "gie-unique-id", "model-engine-file", "gpu-id",
    "dsrun-backend", "dsrun-calib-images", "dsrun-calib-method"})
_CLASS_ATTRS = frozenset({
    "threshold", "pre-cluster-threshold", "post-cluster-threshold", "eps", "group-threshold", "minBoxes",
    "dbscan-min-score", "nms-iou-threshold", "topk", "roi-top-offset", "roi-bottom-offset",
    "detected-min-w", "detected-min-h", "detected-max-w", "detected-max-h"})
_TRACKER_AGES = frozenset({"minDetectorConfidence", "maxTargetsPerStream", "probationAge",
                           "maxShadowTrackingAge", "earlyTerminationAge"})

#: what runner/config acts on: enable flags, file references, source expansion, GIE overrides,
#: legacy spellings turned into their modern keys
CONFIG_LAYER: dict[str, frozenset[str]] = {
    # labelfile-path: deepstream-app only opens it (a missing file stops it); nvinfer reads its own
    "gie": frozenset({"enable", "plugin-type", "config-file", "labelfile-path"}),
    "source-list": frozenset({"list", "num-source-bins", "sensor-id-list", "sensor-name-list"}),
    "source": frozenset({"csv-file-path"}),
    "sourceN": frozenset({"enable", "type", "uri", "num-sources"}),
    "source-attr-all": frozenset({"enable", "type"}),
    "tracker": frozenset({"enable", "ll-config-file"}),
    "property": frozenset({"is-classifier", "enable-dbscan",
                           # DeepStream-Yolo's Darknet builder: dsrun's conversion (runner/deepstream_libs.py)
                           "engine-create-func-name",
                           "dsrun-opencv-clustering"}),  # NvInferConfig.group_rectangles_as_nms
    # the nvdsanalytics file is read whole by runner/config/load_analytics.py (its own key checks)
    "nvds-analytics": frozenset({"enable", "config-file"}),
}

#: what runner/pipeline, runner/engine (EngineSpec.from_nvinfer) and runner/ui act on
RUNTIME: dict[str, frozenset[str]] = {
    "application": frozenset({"enable-perf-measurement", "perf-measurement-interval-sec",
                              "gie-kitti-output-dir", "kitti-track-output-dir", "dsrun-batch-hook"}),
    "tests": frozenset({"file-loop"}),
    "sourceN": _SOURCE,
    "source-attr-all": _SOURCE,
    "streammux": frozenset({"width", "height", "batch-size", "batched-push-timeout", "live-source",
                            "enable-padding", "drop-pipeline-eos"}),
    # nvmultiurisrcbin and its REST server (runner/pipeline/live_sources.py, runner/rest/)
    "source-list": frozenset({"use-nvmultiurisrcbin", "max-batch-size", "http-ip", "http-port"}),
    "gie": _NVINFER_GIE | {"enable", "bbox-border-color<N>", "bbox-bg-color<N>"},
    "secondary-gieN": frozenset({"operate-on-gie-id", "operate-on-class-ids"}),
    "tracker": frozenset({"enable", "ll-lib-file", "operate-on-class-ids", "display-tracking-id"}),
    "osd": frozenset({"enable", "border-width", "text-size", "text-color", "text-bg-color", "font",
                      "show-clock", "clock-x-offset", "clock-y-offset", "clock-text-size", "clock-color",
                      "display-text", "display-bbox", "display-mask"}),
    "tiled-display": frozenset({"enable", "rows", "columns", "width", "height"}),
    "sinkN": frozenset({
        "enable", "type", "sync", "source-id", "link-to-demux", "container", "codec", "bitrate", "profile",
        "iframeinterval", "sw-preset", "output-file", "rtsp-port", "udp-port", "udp-buffer-size",
        "msg-conv-config", "msg-conv-payload-type", "msg-conv-frame-interval", "msg-broker-proto-lib",
        "msg-broker-conn-str", "topic", "disable-msgconv", "msg-broker-config"}),
    "message-converter": frozenset({"enable", "msg-conv-config", "msg-conv-payload-type",
                                    "msg-conv-frame-interval"}),
    "property": _NVINFER_GIE | {"labelfile-path",
        # process-mode: the GIE's place decides (primary 1, secondary 2), as deepstream-app does
        "process-mode", "secondary-reinfer-interval", "output-tensor-meta", "network-mode", "int8-calib-file",
        "workspace-size", "network-type", "infer-dims", "input-dims", "model-color-format", "net-scale-factor",
        "offsets", "maintain-aspect-ratio", "symmetric-padding", "scaling-filter", "network-input-order",
        "custom-lib-path", "parse-bbox-func-name", "parse-classifier-func-name", "parse-segmentation-func-name",
        "onnx-file",
        # a Darknet cfg + weights pair (runner/engine/darknet.py)
        "custom-network-config", "model-file",
        "num-detected-classes", "cluster-mode", "crop-objects-to-roi-boundary", "classifier-type",
        "classifier-threshold", "classifier-async-mode", "segmentation-threshold",
        "segmentation-output-order", "input-object-min-width", "input-object-min-height",
        "input-object-max-width", "input-object-max-height", "operate-on-gie-id", "operate-on-class-ids",
        "filter-out-class-ids"},
    "class-attrs-all": _CLASS_ATTRS,
    "class-attrs-N": _CLASS_ATTRS,
    # NvMultiObjectTracker YAML (ll-config-file): what dsrun's IOU/SORT/ByteTrack trackers use
    "BaseConfig": frozenset({"minDetectorConfidence", "checkClassMatch"}),
    "TargetManagement": _TRACKER_AGES - {"minDetectorConfidence"} | {"minIouDiff4NewTarget"},
    "DataAssociator": frozenset({"checkClassMatch", "minMatchingScore4Overall",
                                 "minMatchingScore4SizeSimilarity", "minMatchingScore4Iou",
                                 "minMatchingScore4TentativeIou", "matchingScoreWeight4Iou",
                                 "matchingScoreWeight4SizeSimilarity"}),
    "StateEstimator": frozenset({"stateEstimatorType", "processNoiseVar4Loc", "processNoiseVar4Size",
                                 "processNoiseVar4Vel", "measurementNoiseVar4Detector", "noiseWeightVar4Loc",
                                 "noiseWeightVar4Vel", "useAspectRatio"}),
    "VisualTracker": frozenset({"visualTrackerType"}),  # > 0 selects the SORT-class tracker (with a warning)
    "ReID": frozenset({"reidType"}),  # likewise
    "NvDCF": _TRACKER_AGES,
}

#: keys that switch a whole feature on when non-zero: in an enabled group, a switch dsrun does not act
#: on (not in SUPPORTED) is a warning at check time and when the run starts (runner/preflight.py)
FEATURE_SWITCHES: dict[str, tuple[str, ...]] = {"sourceN": ("smart-record",),
                                                "source-attr-all": ("smart-record",)}

SUPPORTED: dict[str, frozenset[str]] = {
    kind: CONFIG_LAYER.get(kind, frozenset()) | RUNTIME.get(kind, frozenset())
    for kind in {**CONFIG_LAYER, **RUNTIME}}

_INDEX = re.compile(r"\d+$")


def is_supported(group_kind: str, key: str) -> bool:
    """Whether dsrun acts on ``key`` of a group of this kind (``bbox-border-color0`` → ``…<N>``)."""
    kind = "gie" if group_kind in ("primary-gie", "secondary-gieN") else group_kind
    keys = SUPPORTED.get(kind, frozenset()) | (SUPPORTED.get(group_kind, frozenset()) if kind != group_kind
                                               else frozenset())
    return key in keys or _INDEX.sub("<N>", key) in keys
