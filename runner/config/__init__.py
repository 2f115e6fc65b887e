"""DeepStream configs → typed, validated, frozen dataclasses (knows nothing of pipelines).

>>> from runner.config import load_app, load_nvinfer, ConfigError  # the public API
"""

from runner.config.diagnostics import ConfigError, Diagnostic
from runner.config.enums import (Backend, CalibMethod, ClusterMode, ComputeHW, ContainerType,
                                 EncoderCodec, EncoderType, ModelColorFormat, NetworkMode, NetworkType,
                                 OsdMode, PluginType, ProcessMode, ScalingFilter, SinkType, SourceType,
                                 TensorOrder)
from runner.config.load import (inspect_app, inspect_nvinfer, inspect_tracker, load_app, load_nvinfer,
                                load_tracker)
from runner.config.model import (AppConfig, ApplicationConfig, ClassAttrs, DsAnalyticsConfig,
                                 GieConfig, ImageSaveConfig, MessageConsumerConfig,
                                 MessageConverterConfig, MuxConfig, NvInferConfig, OsdConfig,
                                 PreProcessConfig, SegVisualConfig, SinkConfig, SourceConfig,
                                 SourceListConfig, TestsConfig, TiledDisplayConfig, TrackerConfig)
from runner.config.model_tracker import NvMultiObjectTrackerConfig
from runner.config.supported import SUPPORTED

__all__ = [
    "AppConfig", "ApplicationConfig", "Backend", "CalibMethod", "ClassAttrs", "ClusterMode",
    "ComputeHW", "ConfigError", "ContainerType", "Diagnostic", "DsAnalyticsConfig", "EncoderCodec",
    "EncoderType", "GieConfig", "ImageSaveConfig", "MessageConsumerConfig", "MessageConverterConfig",
    "ModelColorFormat", "MuxConfig", "NetworkMode", "NetworkType", "NvInferConfig",
    "NvMultiObjectTrackerConfig", "OsdConfig", "OsdMode", "PluginType", "PreProcessConfig",
    "ProcessMode", "SUPPORTED", "ScalingFilter", "SegVisualConfig", "SinkConfig", "SinkType",
    "SourceConfig", "SourceListConfig", "SourceType", "TensorOrder", "TestsConfig",
    "TiledDisplayConfig", "TrackerConfig", "inspect_app", "inspect_nvinfer", "inspect_tracker",
    "load_app", "load_nvinfer", "load_tracker",
]
