"""deepstream-app configuration as frozen dataclasses: one class per group.

Naming rule: a field is the DeepStream key with ``-`` → ``_`` and keeps DeepStream's units;
``metadata`` (see :mod:`runner.config.fields`) holds the range and path kind the schema and the
loader use. Defaults are deepstream-app's (src/apps/common/src/deepstream_config_file_parser.c:
parse_source sets latency 100, 16 decode surfaces, rtsp-reconnect-attempts -1; parse_streammux sets
batched-push-timeout/frame-duration -1 and attach-sys-ts-as-ntp/async-process on; parse_sink sets
rtsp-port 8554, udp-port 5000, H264 in MP4, msg-conv-frame-interval 30; parse_osd draws text and boxes;
parse_tracker shows tracking ids and uses 32 user metas; parse_image_save's thresholds); everything else
starts at zero as the C structs do.

GIE keys that override the nvinfer file (batch-size, interval, gie-unique-id, …) default to ``None``
here (= not set in the app group); ``GieConfig.nvinfer`` is the effective nvinfer config.

>>> SinkConfig().rtsp_port, MuxConfig().batched_push_timeout
(8554, -1)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from runner.config.enums import Backend, CalibMethod, OsdMode, PluginType, SourceType
from runner.config.fields import derived, key
from runner.config.model_nvinfer import ClassAttrs, NvInferConfig  # noqa: F401  (re-exported)
from runner.config.model_output import (ImageSaveConfig, MessageConsumerConfig,  # noqa: F401
                                        MessageConverterConfig, SinkConfig)
from runner.config.model_analytics import AnalyticsConfig
from runner.config.model_tracker import NvMultiObjectTrackerConfig

Color = tuple[float, ...]
COLOR = dict(lo=0, hi=1, length=4)


@dataclass(frozen=True, slots=True)
class ApplicationConfig:
    enable_perf_measurement: bool = key(False)
    perf_measurement_interval_sec: int = key(0, lo=0)
    gie_kitti_output_dir: Path | None = key(None, path="output")
    kitti_track_output_dir: Path | None = key(None, path="output")
    reid_track_output_dir: Path | None = key(None, path="output")
    terminated_track_output_dir: Path | None = key(None, path="output")
    shadow_track_output_dir: Path | None = key(None, path="output")
    global_gpu_id: int = key(-1, lo=-1)
    # dsrun extensions (docs/scale-out.md): run on a Ray cluster, as --ray ADDRESS / --ray-cpus N do
    dsrun_ray_address: str | None = key(None)
    dsrun_ray_cpus: int | None = key(None, lo=1)
    dsrun_batch_hook: str | None = key(None, doc="dsrun extension: file.py:function called with every batch "
                                                 "(file relative to the config; docs/python.md)")


@dataclass(frozen=True, slots=True)
class TestsConfig:
    file_loop: bool = key(False)
    pipeline_recreate_sec: int = key(0, lo=0)


@dataclass(frozen=True, slots=True)
class SourceListConfig:
    """``[source-list]``: sources given as one list (expanded into ``AppConfig.sources``)."""
    num_source_bins: int = key(0, lo=0)
    list: tuple[str, ...] = key(())
    sensor_id_list: tuple[str, ...] = key(())
    sensor_name_list: tuple[str, ...] = key(())
    use_nvmultiurisrcbin: bool = key(False)
    dummy_payload: bool = key(False)
    custom_ts_to_rfc: bool = key(False)
    batched_sensor_name: str | None = key(None)
    stream_name_display: bool = key(False)
    max_batch_size: int = key(0, lo=0)
    http_ip: str | None = key(None)
    http_port: str | None = key(None)
    sgie_batch_size: int = key(0, lo=0)
    extract_sei_type5_data: bool = key(False)
    low_latency_mode: bool = key(False)
    sei_uuid: str | None = key(None)
    enable_error_propagation: bool = key(False)
    proto_lib: Path | None = key(None, path="asset")
    conn_str: str | None = key(None)
    topic: str | None = key(None)


@dataclass(frozen=True, slots=True)
class SourceCsvConfig:
    """YAML app configs' ``source:`` group: the sources are rows of a CSV file (one column per key)."""
    csv_file_path: Path | None = key(None, path="config")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One input stream. ``index`` is DeepStream's source id (the streammux pad, the tile order)."""
    enable: bool = key(False)
    type: SourceType = key(SourceType.URI)
    uri: str | None = key(None, doc="file:// URIs are made absolute against the config file")
    num_sources: int = key(1, lo=1)
    gpu_id: int = key(0, lo=0)
    camera_width: int = key(0, lo=0)
    camera_height: int = key(0, lo=0)
    camera_fps_n: int = key(0, lo=0)
    camera_fps_d: int = key(0, lo=0)
    camera_csi_sensor_id: int = key(0, lo=0)
    camera_v4l2_dev_node: int = key(0, lo=0)
    camera_id: int = key(0, lo=0)
    alsa_device: str | None = key(None)
    udp_buffer_size: int = key(0, lo=0)
    sensorID_padID_mapping: bool = key(False)
    video_format: str | None = key(None)
    latency: int = key(100, lo=0)
    num_decode_surfaces: int = key(16, lo=0)
    num_extra_surfaces: int = key(1, lo=0)
    drop_frame_interval: int = key(0, lo=0)
    drop_on_latency: bool = key(False)
    rtsp_reconnect_interval_sec: int = key(0, lo=0)
    init_rtsp_reconnect_interval_sec: int = key(0, lo=0)
    rtsp_reconnect_attempts: int = key(-1, lo=-1)
    simulate_fps_interval_ms: int = key(0, lo=0)
    intra_decode_enable: bool = key(False)
    low_latency_decode: bool = key(False)
    cudadec_memtype: int = key(0, lo=0)
    nvbuf_memory_type: int = key(0, lo=0)
    select_rtp_protocol: int = key(0, lo=0)
    set_rtp_protocol: int = key(0, lo=0)
    leaky: int = key(0, lo=0)
    max_size_buffers: int = key(0, lo=0)
    buffer_mode: int = key(0, lo=0)
    source_id: int = key(0, lo=0)
    smart_record: int = key(0, lo=0, doc="non-zero enables it (deepstream_source_bin.c tests != 0)")
    smart_rec_dir_path: Path | None = key(None, path="output")
    smart_rec_file_prefix: str | None = key(None)
    smart_rec_video_cache: int = key(0, lo=0, doc="legacy spelling of smart-rec-cache")
    smart_rec_cache: int = key(0, lo=0)
    smart_rec_container: int = key(0, lo=0, hi=1)
    smart_rec_start_time: int = key(0, lo=0)
    smart_rec_default_duration: int = key(0, lo=0)
    smart_rec_duration: int = key(0, lo=0)
    smart_rec_interval: int = key(0, lo=0)
    extract_sei_type5_data: bool = key(False)
    copy_hw: int = key(0, lo=0)

    index: int = derived(0, doc="DeepStream source id")
    group: str = derived("", doc="the group it came from: source0, source-list, or a CSV row")
    sensor_id: str | None = derived(None, doc="[source-list] sensor-id-list entry")
    sensor_name: str | None = derived(None, doc="[source-list] sensor-name-list entry")


@dataclass(frozen=True, slots=True)
class MuxConfig:
    """``[streammux]``. batch-size 0 means "the number of sources" (deepstream-app's rule)."""
    width: int = key(0, lo=0)
    height: int = key(0, lo=0)
    batch_size: int = key(0, lo=0)
    batched_push_timeout: int = key(-1, lo=-1, doc="microseconds; -1 waits for a full batch")
    live_source: bool = key(False)
    enable_padding: bool = key(False)
    gpu_id: int = key(0, lo=0)
    nvbuf_memory_type: int = key(0, lo=0)
    buffer_pool_size: int = key(0, lo=0)
    compute_hw: int = key(0, lo=0)
    frame_duration: int = key(-1, lo=-1)
    sort_batch: bool = key(False)
    cache_buffer: bool = key(False)
    cache_buffer_timeout: int = key(-1, lo=-1)
    sync_inputs_ntp: bool = key(False)
    attach_sys_ts_as_ntp: bool = key(True)
    attach_sys_ts: bool | None = key(None, doc="YAML spelling of attach-sys-ts-as-ntp")
    interpolation_method: int = key(0, lo=0, doc="read by the YAML parser only")
    frame_num_reset_on_stream_reset: bool = key(False)
    frame_num_reset_on_eos: bool = key(False)
    config_file_path: Path | None = key(None, path="config")
    sync_inputs: bool = key(False)
    max_latency: int = key(0, lo=0)
    async_process: bool = key(True)
    drop_pipeline_eos: bool = key(False)
    num_surfaces_per_frame: int = key(1, lo=1)
    extract_sei_type5_data: bool = key(False)
    extract_sei_sim_time: bool = key(False)
    align_first_buffer: bool = key(False)
    failsafe_flush_count: int = key(0, lo=0)
    drop_backward_sei: bool = key(False)


@dataclass(frozen=True, slots=True)
class PreProcessConfig:
    enable: bool = key(False)
    operate_on_gie_id: int = key(-1, lo=-1)
    config_file: Path | None = key(None, path="config")


@dataclass(frozen=True, slots=True)
class GieConfig:
    """``[primary-gie]`` / ``[secondary-gieN]``. ``nvinfer`` holds the effective model settings."""
    enable: bool = key(False)
    plugin_type: PluginType = key(PluginType.NVINFER)
    config_file: Path | None = key(None, path="config")
    batch_size: int | None = key(None, lo=1)
    interval: int | None = key(None, lo=0)
    gie_unique_id: int | None = key(None, lo=1)
    operate_on_gie_id: int | None = key(None, lo=-1)
    operate_on_class_ids: tuple[int, ...] | None = key(None, lo=0)
    model_engine_file: Path | None = key(None, path="asset")
    labelfile_path: Path | None = key(None, path="asset")
    gpu_id: int | None = key(None, lo=0)
    nvbuf_memory_type: int = key(0, lo=0)
    input_tensor_meta: bool = key(False)
    infer_raw_output_dir: Path | None = key(None, path="output")
    audio_transform: str | None = key(None)
    audio_framesize: int = key(0, lo=0)
    audio_hopsize: int = key(0, lo=0)
    audio_input_rate: int = key(0, lo=0)
    model_variant: str | None = key(None)
    device: str | None = key(None)
    min_crop_size: int = key(0, lo=0)
    verbose: bool = key(False)
    backend: str | None = key(None)
    triton_url: str | None = key(None)
    triton_model: str | None = key(None)
    bbox_border_color: Mapping[int, Color] = key(factory=lambda: MappingProxyType({}), **COLOR,
                                                 name="bbox-border-color<N>")
    bbox_bg_color: Mapping[int, Color] = key(factory=lambda: MappingProxyType({}), **COLOR,
                                             name="bbox-bg-color<N>")
    # dsrun extensions, also accepted in nvinfer [property] (docs/config.md)
    dsrun_backend: Backend | None = key(None)
    dsrun_calib_images: Path | None = key(None, path="dir")
    dsrun_calib_method: CalibMethod | None = key(None)

    nvinfer: NvInferConfig | None = derived(None, doc="effective nvinfer config (plugin-type 0)")
    group: str = derived("", doc="primary-gie, secondary-gie0, …")


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """``[tracker]``; ``ll_config`` is the NvMultiObjectTracker YAML it names, when readable."""
    enable: bool = key(False)
    tracker_width: int = key(0, lo=0)
    tracker_height: int = key(0, lo=0)
    gpu_id: int = key(0, lo=0)
    tracker_surface_type: int = key(0, lo=0)
    ll_config_file: Path | None = key(None, path="config")
    ll_lib_file: Path | None = key(None, path="asset")
    tracking_surface_type: int = key(0, lo=0)
    display_tracking_id: bool = key(True)
    tracking_id_reset_mode: int = key(0, lo=0, hi=3)
    input_tensor_meta: bool = key(False)
    tensor_meta_gie_id: int = key(0, lo=-1)
    compute_hw: int = key(0, lo=0)
    user_meta_pool_size: int = key(32, lo=1)
    sub_batches: str | None = key(None)
    sub_batch_err_recovery_trial_cnt: int = key(0, lo=-1)
    operate_on_class_ids: tuple[int, ...] = key((), lo=0)

    ll_config: NvMultiObjectTrackerConfig | None = derived(None)


@dataclass(frozen=True, slots=True)
class DsAnalyticsConfig:
    """``[nvds-analytics]``; ``analytics`` is the Gst-nvdsanalytics file it names, when readable."""
    enable: bool = key(False)
    config_file: Path | None = key(None, path="config")

    analytics: AnalyticsConfig | None = derived(None)


@dataclass(frozen=True, slots=True)
class OsdConfig:
    enable: bool = key(False)
    process_mode: OsdMode = key(OsdMode.GPU)
    border_width: int = key(0, lo=0)
    text_size: int = key(0, lo=0)
    text_color: Color = key((0.0, 0.0, 0.0, 0.0), **COLOR)
    text_bg_color: Color | None = key(None, **COLOR)
    font: str | None = key(None)
    show_clock: bool = key(False)
    clock_x_offset: int = key(0, lo=0)
    clock_y_offset: int = key(0, lo=0)
    clock_text_size: int = key(0, lo=0)
    clock_color: Color = key((0.0, 0.0, 0.0, 0.0), **COLOR)
    hw_blend_color_attr: str | None = key(None)
    nvbuf_memory_type: int = key(0, lo=0)
    gpu_id: int = key(0, lo=0)
    display_text: bool = key(True)
    display_bbox: bool = key(True)
    display_mask: bool = key(False)


@dataclass(frozen=True, slots=True)
class SegVisualConfig:
    enable: bool = key(False)
    width: int = key(1280, lo=1)
    height: int = key(720, lo=1)
    batch_size: int = key(1, lo=1)
    nvbuf_memory_type: int = key(0, lo=0)
    gpu_id: int = key(0, lo=0)


@dataclass(frozen=True, slots=True)
class TiledDisplayConfig:
    """``[tiled-display]``; enable 2 is deepstream-app's "tiler off until a source is picked"."""
    enable: int = key(0, lo=0, hi=2)
    rows: int = key(0, lo=0)
    columns: int = key(0, lo=0)
    width: int = key(0, lo=0)
    height: int = key(0, lo=0)
    gpu_id: int = key(0, lo=0)
    nvbuf_memory_type: int = key(0, lo=0)
    compute_hw: int = key(0, lo=0)
    buffer_pool_size: int = key(0, lo=0)
    square_seq_grid: bool = key(False)


@dataclass(frozen=True, slots=True)
class AppConfig:
    """A whole deepstream-app config: every group, sources expanded, GIEs with their nvinfer files.

    >>> AppConfig().streammux.batched_push_timeout
    -1
    """
    application: ApplicationConfig = derived(ApplicationConfig())
    tests: TestsConfig = derived(TestsConfig())
    source_list: SourceListConfig | None = derived(None)
    source_attr_all: SourceConfig | None = derived(None)
    sources: tuple[SourceConfig, ...] = derived((), doc="enabled sources, expanded, by index")
    streammux: MuxConfig = derived(MuxConfig())
    pre_process: PreProcessConfig | None = derived(None)
    primary_gie: GieConfig | None = derived(None)
    secondary_pre_process: tuple[PreProcessConfig, ...] = derived(())
    secondary_gies: tuple[GieConfig, ...] = derived(())
    tracker: TrackerConfig | None = derived(None)
    nvds_analytics: DsAnalyticsConfig | None = derived(None)
    osd: OsdConfig = derived(OsdConfig())
    segvisual: SegVisualConfig | None = derived(None)
    tiled_display: TiledDisplayConfig = derived(TiledDisplayConfig())
    sinks: tuple[SinkConfig, ...] = derived((), doc="every [sinkN], enabled or not, by N")
    message_converter: MessageConverterConfig | None = derived(None)
    message_consumers: tuple[MessageConsumerConfig, ...] = derived(())
    img_save: ImageSaveConfig | None = derived(None)
    path: Path | None = derived(None)
    unsupported: tuple[str, ...] = derived((), doc="'[group] key' set in the file that dsrun accepts "
                                                   "but does not act on yet")
    warnings: tuple = derived((), doc="Diagnostic warnings found while loading")

    @property
    def batch_size(self) -> int:
        """The streammux batch size deepstream-app uses: batch-size, else the number of sources."""
        return self.streammux.batch_size or max(1, len(self.sources))
