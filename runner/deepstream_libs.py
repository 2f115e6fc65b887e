"""DeepStream shared libraries and custom functions that dsrun implements itself.

One place for this knowledge, read by the config layer (a config naming one of these needs no
``.so`` at run time, so ``dsrun check`` does not ask for it) and by the pipeline (which picks its own
implementation from the same names). Nothing here imports either layer.

>>> replaced_library("ll_lib_file", "/opt/nvidia/deepstream/deepstream/lib/libnvds_nvmultiobjecttracker.so")
True
>>> broker_adaptor("/opt/nvidia/deepstream/deepstream/lib/libnvds_kafka_proto.so")
('kafka', 'Kafka')
>>> replaced_library("custom_lib_path", "libnvdsinfer_custom_impl_Yolo.so",
...                  {"parse_bbox_func_name": "NvDsInferParseYolo"})
True
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: ``parse-bbox-func-name`` → dsrun's parser (``module.function`` in runner.pipeline.parsers);
#: ``None`` is nvinfer's default parser (no name set).
BBOX_PARSE_FUNCS = {
    None: "detectnet_v2.parse_detectnet_v2",
    "NvDsInferParseCustomResnet": "detectnet_v2.parse_custom_resnet",
    "NvDsInferParseYolo": "yolo.parse_yolo",
    "NvDsInferParseYoloE": "yolo.parse_yolo_e",
    "NvDsInferParseYoloCuda": "yolo.parse_yolo_cuda",
    "NvDsInferParseCustomYoloV4": "yolo_nvidia.parse_yolov4",
    "NvDsInferParseCustomYoloV7": "yolo_nvidia.parse_yolov7",
    "NvDsInferParseCustomYoloV8": "yolo_nvidia.parse_yolov8",
    "NvDsInferParseYoloV11": "yolo_nvidia.parse_yolov11",
    "NvDsInferParseCustomYoloV7_cuda": "yolo_nvidia.parse_yolov7_cuda",
    "NvDsInferParseCustomYoloV8_cuda": "yolo_nvidia.parse_yolov8_cuda",
    "NvDsInferParseCustomYoloV11_cuda": "yolo_nvidia.parse_yolov11_cuda",
    "NvDsInferParseCustomDDETRTAO": "tao.parse_ddetr_tao",
    "NvDsInferParseYoloV5": "yolo.parse_yolov5_head",
    "NvDsInferParseYoloV8": "yolo.parse_yolov8_head",
    "NvDsInferParseCustomSSD": "ssd.parse_ssd_nms",
    "NvDsInferParseCustomTfSSD": "ssd.parse_tf_ssd",
    "NvDsInferParseDBText": "dbnet.parse_db_text",
}
#: ``parse-classifier-func-name`` → dsrun's parser, as above.
CLASSIFIER_PARSE_FUNCS = {
    None: "classifier.parse_softmax",
    "NvDsInferParseCTC": "ctc.parse_ctc",
}
#: ``engine-create-func-name`` → what dsrun does instead: DeepStream-Yolo's builder of Darknet models
#: (``custom-network-config`` + ``model-file``) is dsrun's Darknet → ONNX conversion (runner/engine/darknet.py).
ENGINE_CREATE_FUNCS = {"NvDsInferYoloCudaEngineGet": "darknet"}
#: ``parse-segmentation-func-name`` → dsrun's parser (None: nvinfer's argmax above segmentation-threshold).
SEGMENTATION_PARSE_FUNCS = {
    "NvDsInferParseCustomSegformerTAO": "tao.parse_segformer_tao",
}
#: the nvinfer keys naming a function in ``custom-lib-path``, and dsrun's built-ins for each
#: (a key with no entry, e.g. engine-create-func-name, has none).
_PARSE_FUNC_KEYS = {"parse_bbox_func_name": BBOX_PARSE_FUNCS,
                    "parse_classifier_func_name": CLASSIFIER_PARSE_FUNCS,
                    "parse_bbox_instance_mask_func_name": {},
                    "parse_segmentation_func_name": SEGMENTATION_PARSE_FUNCS,
                    "engine_create_func_name": ENGINE_CREATE_FUNCS}

#: ``msg-broker-proto-lib`` adaptors by a word of the library's file name → what it is;
#: dsrun publishes with its own clients for :data:`BROKERS_SUPPORTED`.
BROKER_ADAPTORS = {"mqtt": "MQTT", "kafka": "Kafka", "redis": "Redis", "amqp": "AMQP",
                   "azure": "Azure IoT"}
#: paho-mqtt, redis, pika, confluent-kafka (runner/pipeline/sinks/brokers/)
BROKERS_SUPPORTED = ("mqtt", "redis", "amqp", "kafka")

#: ``[tracker] ll-lib-file`` libraries dsrun's own trackers stand in for, by a word of the file
#: name → the tracker family (NvMultiObjectTracker: IOU / NvSORT / NvDCF / NvDeepSORT configs).
TRACKER_LIBS = {"nvmultiobjecttracker": "nvmultiobjecttracker", "bytetrack": "bytetrack"}

#: ``msg-conv-msg2p-lib`` libraries dsrun's MessageConverter replaces (DeepStream JSON schema).
MSGCONV_LIBS = ("libnvds_msgconv.so",)


def darknet_model(custom_network_config: object, model_file: object) -> bool:
    """Whether ``custom-network-config`` + ``model-file`` name a Darknet ``.cfg`` + ``.weights`` pair,
    which dsrun converts to ONNX itself (as DeepStream-Yolo's ``NvDsInferYoloCudaEngineGet`` builds it).

    >>> darknet_model("yolov4-tiny.cfg", "yolov4-tiny.weights"), darknet_model(None, "net.caffemodel")
    (True, False)
    """
    return bool(custom_network_config) and str(model_file or "").lower().endswith(".weights")


def tracker_library(path: str | Path | None) -> str | None:
    """The tracker family an ``ll-lib-file`` names, or None for a library dsrun does not know.

    >>> tracker_library("/opt/libByteTrack.so"), tracker_library("/opt/libmy_tracker.so")
    ('bytetrack', None)
    """
    name = Path(str(path or "")).name.lower()
    return next((family for word, family in TRACKER_LIBS.items() if word in name), None)


def broker_adaptor(path: str | Path | None) -> tuple[str, str] | None:
    """(word, protocol) of the broker adaptor a ``msg-broker-proto-lib`` names, or None."""
    name = Path(str(path or "")).name.lower()
    return next(((word, what) for word, what in BROKER_ADAPTORS.items() if word in name), None)


def builtin_parse_funcs(values: Mapping[str, object]) -> bool:
    """Whether every custom function an nvinfer ``[property]`` names (``values``: field name →
    value) is built into dsrun, with at least one named — then its ``custom-lib-path`` is not loaded."""
    named = [(key, values.get(key)) for key in _PARSE_FUNC_KEYS if values.get(key)]
    return bool(named) and all(name in _PARSE_FUNC_KEYS[key] for key, name in named)


def replaced_library(field: str, path: str | Path, values: Mapping[str, object] | None = None) -> bool:
    """Whether the shared library ``path``, named by config field ``field`` (DeepStream key with
    ``-`` → ``_``; ``values`` the other fields of its group), is one dsrun implements itself."""
    suffix = Path(str(path)).suffix.lower()
    if field == "ll_lib_file":
        return tracker_library(path) is not None
    if field == "msg_broker_proto_lib":
        found = broker_adaptor(path)
        return found is not None and found[0] in BROKERS_SUPPORTED
    if field == "msg_conv_msg2p_lib":
        return Path(str(path)).name in MSGCONV_LIBS
    if field == "custom_lib_path":
        return suffix != ".py" and builtin_parse_funcs(values or {})
    return False
