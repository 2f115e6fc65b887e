"""DeepStream enumerations with DeepStream's numbers (the values written in config files).

Sources: deepstream_sources.h (NvDsSourceType), deepstream_sinks.h (NvDsSinkType, NvDsContainerType,
NvDsEncoderType, NvDsEncHwSwType), deepstream_gie.h (NvDsGiePluginType), nvdsinfer_context.h
(NvDsInferNetworkMode/NetworkType/ClusterMode/TensorOrder), gstnvinfer_property_parser.cpp
(model-color-format 0/1/2, process-mode 1/2) and nvbufsurftransform.h (scaling filter / compute).

>>> SinkType(3).name
'ENCODE_FILE'
"""

from enum import IntEnum, StrEnum


class SourceType(IntEnum):
    CAMERA_V4L2 = 1
    URI = 2
    URI_MULTIPLE = 3
    RTSP = 4
    CAMERA_CSI = 5
    AUDIO_WAV = 6
    AUDIO_URI = 7
    ALSA_SRC = 8
    IPC = 9


class SinkType(IntEnum):
    FAKE = 1
    RENDER_EGL = 2  # RENDER_3D on Jetson: same number
    ENCODE_FILE = 3
    UDPSINK = 4  # RTSP streaming (udp-port + rtsp-port)
    RENDER_DRM = 5
    MSG_CONV_BROKER = 6


class ContainerType(IntEnum):
    MP4 = 1
    MKV = 2


class EncoderCodec(IntEnum):
    H264 = 1
    H265 = 2
    MPEG4 = 3


class EncoderType(IntEnum):
    HW = 0
    SW = 1


class PluginType(IntEnum):
    NVINFER = 0
    NVINFERSERVER = 1
    VIDEO_TEMPLATE = 2
    VISION_ENCODER = 3


class NetworkMode(IntEnum):
    FP32 = 0
    INT8 = 1
    FP16 = 2
    BEST = 3


class NetworkType(IntEnum):
    DETECTOR = 0
    CLASSIFIER = 1
    SEGMENTATION = 2
    INSTANCE_SEGMENTATION = 3
    OTHER = 100


class ModelColorFormat(IntEnum):
    RGB = 0
    BGR = 1
    GRAY = 2


class ClusterMode(IntEnum):
    GROUP_RECTANGLES = 0
    DBSCAN = 1
    NMS = 2
    DBSCAN_NMS_HYBRID = 3
    NONE = 4


class ProcessMode(IntEnum):
    FULL_FRAME = 1
    OBJECTS = 2


class TensorOrder(IntEnum):
    NCHW = 0
    NHWC = 1
    NC = 2


class ScalingFilter(IntEnum):
    NEAREST = 0
    BILINEAR = 1
    ALGO1 = 2
    ALGO2 = 3
    ALGO3 = 4
    ALGO4 = 5
    DEFAULT = 6


class ComputeHW(IntEnum):
    DEFAULT = 0
    GPU = 1
    VIC = 2


class Backend(StrEnum):
    """dsrun extension ``dsrun-backend``: which engine runs the model (``auto`` picks)."""
    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"
    TORCH = "torch"


class CalibMethod(StrEnum):
    """dsrun extension ``dsrun-calib-method``: how INT8 ranges are taken from calibration images."""
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


class OsdMode(IntEnum):
    CPU = 0
    GPU = 1
    HW = 2
