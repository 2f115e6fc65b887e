"""Output groups of a deepstream-app config: ``[sinkN]``, ``[message-converter]``,
``[message-consumerN]``, ``[img-save]`` (defaults: deepstream_config_file_parser.c parse_sink,
parse_msgconv, parse_msgconsumer, parse_image_save).

>>> SinkConfig().codec.name, SinkConfig().msg_conv_frame_interval
('H264', 30)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.config.enums import ContainerType, EncoderCodec, EncoderType, SinkType
from runner.config.fields import derived, key


@dataclass(frozen=True, slots=True)
class MessageConverterKeys:
    """The message-converter keys, read in ``[message-converter]`` and in a type-6 ``[sinkN]``."""

    msg_conv_config: Path | None = key(None, path="config")
    msg_conv_payload_type: int = key(0, lo=0)
    msg_conv_msg2p_lib: Path | None = key(None, path="asset")
    msg_conv_comp_id: int = key(0, lo=0)
    debug_payload_dir: Path | None = key(None, path="output")
    multiple_payloads: bool = key(False)
    msg_conv_msg2p_new_api: bool = key(False)
    msg_conv_frame_interval: int = key(30, lo=1)
    msg_conv_dummy_payload: bool = key(False)
    msg_conv_embedding_filter: str | None = key(None)


@dataclass(frozen=True, slots=True)
class MessageConverterConfig(MessageConverterKeys):
    enable: bool = key(False)


@dataclass(frozen=True, slots=True)
class SinkConfig(MessageConverterKeys):
    enable: bool = key(False)
    type: SinkType = key(SinkType.FAKE)
    sync: int = key(0, lo=0)
    qos: bool = key(False)
    source_id: int = key(0, lo=0)
    gpu_id: int = key(0, lo=0)
    nvbuf_memory_type: int = key(0, lo=0)
    link_to_demux: bool = key(False)
    nvdslogger: bool = key(False)
    show_fps: bool = key(False)
    show_latency: bool = key(False)
    width: int = key(0, lo=0)
    height: int = key(0, lo=0)
    container: ContainerType = key(ContainerType.MP4)
    codec: EncoderCodec = key(EncoderCodec.H264)
    enc_type: EncoderType = key(EncoderType.HW)
    copy_meta: bool = key(False)
    output_io_mode: int = key(0, lo=0)
    sw_preset: int = key(0, lo=0)
    bitrate: int = key(0, lo=0)
    profile: int = key(0, lo=0)
    iframeinterval: int = key(0, lo=0)
    output_file: Path | None = key(None, path="output")
    rtsp_port: int = key(8554, lo=0, hi=65535)
    udp_port: int = key(5000, lo=0, hi=65535)
    udp_buffer_size: int = key(0, lo=0)
    color_range: int = key(-1, lo=-1)
    conn_id: int = key(0, lo=0)
    plane_id: int = key(0, lo=0)
    set_mode: int = key(-1, lo=-1)
    compute_hw: int = key(0, lo=0)
    msg_broker_proto_lib: Path | None = key(None, path="asset")
    msg_broker_conn_str: str | None = key(None)
    topic: str | None = key(None)
    msg_broker_config: Path | None = key(None, path="config")
    msg_broker_comp_id: int = key(0, lo=0)
    disable_msgconv: bool = key(False)
    new_api: bool = key(False)
    sleep_time: int = key(0, lo=0)

    index: int = derived(0, doc="N of [sinkN]")
    group: str = derived("")


@dataclass(frozen=True, slots=True)
class MessageConsumerConfig:
    enable: bool = key(False)
    config_file: Path | None = key(None, path="config")
    proto_lib: Path | None = key(None, path="asset")
    conn_str: str | None = key(None)
    sensor_list_file: Path | None = key(None, path="config")
    subscribe_topic_list: tuple[str, ...] = key(())

    index: int = derived(0)


@dataclass(frozen=True, slots=True)
class ImageSaveConfig:
    enable: bool = key(False)
    gpu_id: int = key(0, lo=0)
    output_folder_path: Path | None = key(None, path="output")
    frame_to_skip_rules_path: Path | None = key(None, path="config")
    min_confidence: float = key(0.0, lo=0, hi=1)
    max_confidence: float = key(1.0, lo=0, hi=1)
    min_box_width: int = key(1, lo=0)
    min_box_height: int = key(1, lo=0)
    save_img_full_frame: bool = key(True)
    save_img_cropped_obj: bool = key(False)
    second_to_skip_interval: int = key(600, lo=0)
