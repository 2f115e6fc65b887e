"""Gst-nvinfer configuration: ``[property]``, ``[class-attrs-all]``, ``[class-attrs-N]``.

Defaults are Gst-nvinfer's: memset-zero init params, then NvDsInferContext_ResetInitParams
(src/utils/nvdsinfer/nvdsinfer_context_impl.cpp: FP32, batch 1, scale 1.0, detector, auto-inc-mem 1,
max-gpu-mem-per 99), the element defaults of gst-nvinfer/gstnvinfer.cpp (gie-unique-id 15, full-frame,
operate-on-gie-id -1, scaling filter/compute "default") and gstnvinfer_property_parser.h for the
per-class detection defaults (pre-cluster 0.2, nms-iou 0.3, topk -1).

>>> NvInferConfig().class_attrs(3).pre_cluster_threshold
0.2
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from runner.config.enums import (Backend, CalibMethod, ClusterMode, ComputeHW, ModelColorFormat,
                                 NetworkMode, NetworkType, ProcessMode, ScalingFilter, TensorOrder)
from runner.config.fields import derived, key

NVDSINFER_MAX_BATCH_SIZE = 1024  # nvdsinfer_context.h
#: what NvDsInferContextImpl::initialize (nvdsinfer_context_impl.cpp) sets on every class of a detector
#: when nvdsinfer is built without OpenCV (the stock build: src/utils/nvdsinfer/Makefile WITH_OPENCV?=0)
#: and cluster-mode is 0: NMS instead of cv::groupRectangles, with these two values.
GROUP_RECTANGLES_AS_NMS = {"topk": 20, "nms_iou_threshold": 0.5}
REINFER_NEVER = 2**31 - 1  # gstnvinfer.cpp DEFAULT_REINFER_INTERVAL = G_MAXINT

Color = tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ClassAttrs:
    """Per-class detection parameters (``[class-attrs-all]`` merged with ``[class-attrs-N]``)."""
    threshold: float | None = key(None, lo=0, doc="legacy spelling of pre-cluster-threshold")
    pre_cluster_threshold: float = key(0.2, lo=0)
    post_cluster_threshold: float = key(0.0, lo=0)
    eps: float = key(0.0, lo=0)
    group_threshold: int = key(0, lo=0)
    minBoxes: int = key(0, lo=0)
    dbscan_min_score: float = key(0.0, lo=0)
    nms_iou_threshold: float = key(0.3, lo=0, hi=1)
    topk: int = key(-1, lo=0, doc="-1 (all) when unset; a written value must be >= 0 "
                                   "(gstnvinfer_property_parser.cpp)")
    roi_top_offset: int = key(0, lo=0)
    roi_bottom_offset: int = key(0, lo=0)
    detected_min_w: int = key(0, lo=0)
    detected_min_h: int = key(0, lo=0)
    detected_max_w: int = key(0, lo=0)
    detected_max_h: int = key(0, lo=0)
    border_color: Color = key((1.0, 0.0, 0.0, 1.0), lo=0, hi=1, length=4)
    bg_color: Color | None = key(None, lo=0, hi=1, length=4)


@dataclass(frozen=True, slots=True)
class NvInferConfig:
    """A Gst-nvinfer config file, with the app group's overrides already applied when it came from
    ``load_app`` (``GieConfig.nvinfer``). Paths are absolute, resolved against the file naming them.
    """
    gie_unique_id: int = key(15, lo=1)
    process_mode: ProcessMode = key(ProcessMode.FULL_FRAME)
    interval: int = key(0, lo=0)
    labelfile_path: Path | None = key(None, path="asset")
    gpu_id: int = key(0, lo=0)
    secondary_reinfer_interval: int = key(REINFER_NEVER, lo=0)
    output_tensor_meta: bool = key(False)
    disable_output_host_copy: bool = key(False)
    auto_inc_mem: int = key(1)
    max_gpu_mem_per: int = key(99, lo=0, hi=100)
    enable_dla: bool = key(False)
    use_dla_core: int = key(0, lo=0)
    dump_input_tensor: bool = key(False)
    dump_output_tensor: bool = key(False)
    overwrite_input_tensor: bool = key(False)
    overwrite_output_tensor: bool = key(False)
    ip_tensor_file: Path | None = key(None, path="asset")
    op_tensor_files: tuple[Path, ...] = key((), path="asset")
    raw_output_file_write: bool = key(False)
    batch_size: int = key(1, lo=1, hi=NVDSINFER_MAX_BATCH_SIZE)
    tensor_meta_pool_size: int = key(0, lo=0, doc="0: nvinfer's minimum output buffer pool")
    network_mode: NetworkMode = key(NetworkMode.FP32)
    model_engine_file: Path | None = key(None, path="asset")
    int8_calib_file: Path | None = key(None, path="asset")
    workspace_size: int = key(0, doc="MiB; 0: the builder's default")
    output_blob_names: tuple[str, ...] = key(())
    is_classifier: bool | None = key(None, doc="legacy: network-type 1 when set and network-type is not")
    network_type: NetworkType = key(NetworkType.DETECTOR)
    force_implicit_batch_dim: bool = key(False)
    infer_dims: tuple[int, ...] | None = key(None, lo=1, length=3, doc="C;H;W")
    output_io_formats: tuple[str, ...] = key(())
    layer_device_precision: tuple[str, ...] = key(())
    model_color_format: ModelColorFormat = key(ModelColorFormat.RGB)
    net_scale_factor: float = key(1.0)
    offsets: tuple[float, ...] = key(())
    mean_file: Path | None = key(None, path="asset")
    maintain_aspect_ratio: bool = key(False)
    symmetric_padding: bool = key(False)
    scaling_filter: ScalingFilter = key(ScalingFilter.DEFAULT)
    scaling_compute_hw: ComputeHW = key(ComputeHW.DEFAULT)
    network_input_order: TensorOrder = key(TensorOrder.NCHW)
    input_tensor_from_meta: bool = key(False)
    custom_lib_path: Path | None = key(None, path="asset")
    parse_bbox_func_name: str | None = key(None)
    parse_bbox_instance_mask_func_name: str | None = key(None)
    parse_segmentation_func_name: str | None = key(None)
    engine_create_func_name: str | None = key(None)
    parse_classifier_func_name: str | None = key(None)
    custom_network_config: Path | None = key(None, path="asset")
    model_file: Path | None = key(None, path="asset")
    proto_file: Path | None = key(None, path="asset")
    uff_file: Path | None = key(None, path="asset")
    uff_input_order: TensorOrder = key(TensorOrder.NCHW)
    input_dims: tuple[int, ...] | None = key(None, lo=0, length=4, doc="legacy: C;H;W;order")
    uff_input_dims: tuple[int, ...] | None = key(None, lo=0, length=4, doc="legacy: C;H;W;order")
    uff_input_blob_name: str | None = key(None)
    tlt_encoded_model: Path | None = key(None, path="asset")
    tlt_model_key: str | None = key(None)
    onnx_file: Path | None = key(None, path="asset")
    num_detected_classes: int = key(0, lo=0)
    enable_dbscan: bool | None = key(None, doc="deprecated: cluster-mode 1")
    cluster_mode: ClusterMode = key(ClusterMode.GROUP_RECTANGLES)
    crop_objects_to_roi_boundary: bool = key(False)
    strongly_typed: bool = key(False)
    dynamic_properties: str | None = key(None)
    warmup_engine: bool = key(False)
    stabilize_buffer_count: int = key(0, lo=0)
    classifier_type: str | None = key(None)
    classifier_threshold: float = key(0.0, lo=0)
    classifier_async_mode: bool = key(False)
    segmentation_threshold: float = key(0.0, lo=0)
    segmentation_output_order: TensorOrder = key(TensorOrder.NCHW)
    output_instance_mask: bool = key(False)
    input_object_min_width: int = key(0, lo=0)
    input_object_min_height: int = key(0, lo=0)
    input_object_max_width: int = key(0, lo=0)
    input_object_max_height: int = key(0, lo=0)
    operate_on_gie_id: int = key(-1, lo=-1)
    operate_on_class_ids: tuple[int, ...] = key((), lo=0)
    filter_out_class_ids: tuple[int, ...] = key((), lo=0)
    parse_func: int | None = key(None, doc="legacy, ignored by nvinfer")
    # dsrun extensions (docs/config.md)
    dsrun_backend: Backend = key(Backend.AUTO)
    dsrun_calib_images: Path | None = key(None, path="dir")
    dsrun_calib_method: CalibMethod = key(CalibMethod.ENTROPY)
    dsrun_opencv_clustering: bool = key(False, doc="cluster-mode=0 as an nvdsinfer built WITH_OPENCV=1: "
                                        "cv::groupRectangles (stock DeepStream runs NMS)")

    class_attrs_all: ClassAttrs = derived(ClassAttrs(), doc="[class-attrs-all]")
    class_attrs_by_id: Mapping[int, ClassAttrs] = derived(
        factory=lambda: MappingProxyType({}), doc="[class-attrs-N], each merged over [class-attrs-all]")
    path: Path | None = derived(None, doc="the nvinfer config file")

    def class_attrs(self, class_id: int) -> ClassAttrs:
        """The detection parameters for ``class_id``: ``[class-attrs-N]`` over ``[class-attrs-all]``.

        >>> NvInferConfig().class_attrs(0).topk
        -1
        """
        return self.class_attrs_by_id.get(class_id, self.class_attrs_all)

    @property
    def group_rectangles_as_nms(self) -> bool:
        """Whether stock nvdsinfer turns this detector's cluster-mode 0 into NMS (topk 20, IoU 0.5):
        ``NvDsInferContextImpl::initialize`` without ``WITH_OPENCV``; ``dsrun-opencv-clustering=1``
        keeps OpenCV's groupRectangles, as an nvdsinfer rebuilt with ``WITH_OPENCV=1`` does.

        >>> NvInferConfig().group_rectangles_as_nms, NvInferConfig().cluster_mode_run.name
        (True, 'NMS')
        """
        return (self.network_type == NetworkType.DETECTOR and self.cluster_mode == ClusterMode.GROUP_RECTANGLES
                and not self.dsrun_opencv_clustering)

    @property
    def cluster_mode_run(self) -> ClusterMode:
        """The clustering nvdsinfer runs (see :attr:`group_rectangles_as_nms`)."""
        return ClusterMode.NMS if self.group_rectangles_as_nms else self.cluster_mode

    def class_attrs_run(self, class_id: int) -> ClassAttrs:
        """:meth:`class_attrs` as nvdsinfer runs them: with :data:`GROUP_RECTANGLES_AS_NMS` applied
        when cluster-mode 0 runs as NMS.

        >>> a = NvInferConfig().class_attrs_run(0); (a.topk, a.nms_iou_threshold)
        (20, 0.5)
        """
        attrs = self.class_attrs(class_id)
        return replace(attrs, **GROUP_RECTANGLES_AS_NMS) if self.group_rectangles_as_nms else attrs

    @property
    def model_path(self) -> Path | None:
        """The model file nvinfer builds from: onnx-file, else the legacy uff/caffe/tlt files."""
        return self.onnx_file or self.tlt_encoded_model or self.uff_file or self.model_file
