"""What to build: every field that changes an engine, in one frozen object.

:class:`EngineSpec` is filled from a Gst-nvinfer config by :meth:`EngineSpec.from_nvinfer` (the
config layer's ``NvInferConfig``, whose field names are the DeepStream keys with ``-`` → ``_``), or
directly by scripts and tests.

>>> spec = EngineSpec(onnx_file=Path("/models/det.onnx"), precision="fp16", batch_size=4)
>>> spec.profile_batches
(1, 4, 4)
>>> spec.replace(batch_size=8).batch_size
8
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.engine.base import EngineError
from runner.deepstream_libs import darknet_model
from runner.engine.darknet import check_files, converted_path

#: DeepStream's network-mode numbers (NvDsInferNetworkMode) → dsrun precision names.
NETWORK_MODES = {0: "fp32", 1: "int8", 2: "fp16", 3: "best"}
PRECISIONS = ("fp32", "fp16", "int8", "best")
BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")
PROVIDERS = ("auto", "cpu", "cuda")
CALIB_METHODS = ("entropy", "percentile")

#: Model formats DeepStream accepts that dsrun does not build from (nvinfer key → what it is).
LEGACY_MODEL_KEYS = {
    "model_file": "a Caffe model (model-file)",
    "proto_file": "a Caffe prototxt (proto-file)",
    "tlt_encoded_model": "an encrypted TAO/TLT model (tlt-encoded-model)",
    "uff_file": "a UFF model (uff-file)",
}


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """Everything that matters for building one engine.

    ``onnx_file``: the model. ``model_engine_file``: where the user wants the engine (honoured: a
    matching one is used, anything else is rebuilt there). ``precision``: fp32/fp16/int8/best.
    ``batch_size``: the maximum batch (DeepStream's ``batch-size``); ``min_batch``/``opt_batch``
    complete the optimisation profile of a dynamic batch axis. ``infer_dims``: per-sample input shape
    in the model's axis order (``from_nvinfer`` turns ``infer-dims`` C;H;W into H;W;C for
    ``network-input-order=1``), filling dynamic axes and checked against fixed ones.
    ``workspace_size``: MiB (TensorRT). ``int8_calib_file``: calibration table, read if it exists,
    written after calibrating otherwise. ``calib_images`` + ``calib_method``: the images to calibrate
    on. ``net_scale_factor``/``offsets``/``model_color_format``/``network_input_order``: the
    pre-processing calibration applies (nvinfer's). ``custom_lib_path``/``parse_func``: a custom
    parser (part of the cache key). ``version_compatible``: a TensorRT engine later TensorRT versions
    can run. ``backend``: auto/onnxruntime/tensorrt/torch; ``provider``: the ONNX
    Runtime execution provider (auto/cpu/cuda). ``source``: the config file, for messages.
    ``darknet_cfg``/``darknet_weights``: a Darknet model (``custom-network-config`` + ``model-file``);
    ``onnx_file`` is then where its conversion lives (:mod:`runner.engine.darknet`).
    """

    onnx_file: Path
    model_engine_file: Path | None = None
    precision: str = "fp32"
    batch_size: int = 1
    min_batch: int = 1
    opt_batch: int | None = None
    infer_dims: tuple[int, ...] | None = None
    workspace_size: int | None = None
    int8_calib_file: Path | None = None
    calib_images: Path | None = None
    calib_method: str = "entropy"
    calib_max_images: int = 500
    net_scale_factor: float = 1.0
    offsets: tuple[float, ...] = ()
    model_color_format: int = 0
    network_input_order: int = 0
    custom_lib_path: Path | None = None
    parse_func: str | None = None
    gpu_id: int = 0
    version_compatible: bool = False
    backend: str = "auto"
    provider: str = "auto"
    source: Path | None = None
    darknet_cfg: Path | None = None
    darknet_weights: Path | None = None

    def __post_init__(self) -> None:
        where = f"{self.source}: " if self.source else ""
        if self.precision not in PRECISIONS:
            raise EngineError(f"{where}precision {self.precision!r} is not one of {PRECISIONS}")
        if self.backend not in BACKENDS:
            raise EngineError(f"{where}dsrun-backend {self.backend!r} is not one of "
                              f"{', '.join(BACKENDS)} — fix the key")
        if self.provider not in PROVIDERS:
            raise EngineError(f"{where}provider {self.provider!r} is not one of {PROVIDERS}")
        if self.calib_method not in CALIB_METHODS:
            raise EngineError(f"{where}dsrun-calib-method {self.calib_method!r} is not one of "
                              f"{', '.join(CALIB_METHODS)} — fix the key")
        if not 1 <= self.min_batch <= (self.opt_batch or self.batch_size) <= self.batch_size:
            raise EngineError(f"{where}batch profile min {self.min_batch} / opt {self.opt_batch} / "
                              f"max {self.batch_size} must satisfy 1 <= min <= opt <= max")

    @property
    def profile_batches(self) -> tuple[int, int, int]:
        """(min, opt, max) of the batch axis."""
        return (self.min_batch, self.opt_batch or self.batch_size, self.batch_size)

    @property
    def name(self) -> str:
        """The model's name in the cache and in messages: the ONNX file's stem."""
        return self.onnx_file.stem

    def replace(self, **changes: Any) -> "EngineSpec":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_nvinfer(cls, cfg: Any, *, backend: str | None = None,
                     provider: str | None = None) -> "EngineSpec":
        """Adapt a Gst-nvinfer config (``runner.config.NvInferConfig``; duck-typed on the naming
        rule: field = DeepStream key with ``-`` → ``_``).

        A config that names only a Caffe/UFF/TAO model gets "convert to ONNX first"; a Darknet
        ``custom-network-config`` + ``model-file`` pair is converted by dsrun (DeepStream-Yolo's way).
        """
        source = _get(cfg, "path")
        onnx_file = _get(cfg, "onnx_file")
        darknet = (_get(cfg, "custom_network_config"), _get(cfg, "model_file"))
        if onnx_file is None and darknet_model(*darknet):
            check_files(*darknet, source=source)
            onnx_file = converted_path(*darknet)
        else:
            darknet = (None, None)
        if onnx_file is None:
            legacy = [(k, what) for k, what in LEGACY_MODEL_KEYS.items() if _get(cfg, k)]
            where = f"{source}: " if source else ""
            if legacy:
                key, what = legacy[0]
                raise EngineError(
                    f"{where}[property] {key.replace('_', '-')}: {_get(cfg, key)} is {what}; dsrun "
                    "builds engines from ONNX only — convert the model to ONNX first (TAO: "
                    "`tao model <task> export`; Caffe/UFF: export from the training framework) and "
                    "set onnx-file")
            raise EngineError(f"{where}[property] onnx-file: not set — name the model's ONNX "
                              "file (dsrun builds engines from ONNX)")
        mode = _get(cfg, "network_mode", 0)
        mode = int(getattr(mode, "value", mode))
        if mode not in NETWORK_MODES:
            raise EngineError(f"{source}: [property] network-mode={mode} is not 0 (FP32), 1 (INT8), "
                              "2 (FP16) or 3 (best)")
        dims = _get(cfg, "infer_dims") or _get(cfg, "input_dims")
        dims = tuple(int(d) for d in dims)[:3] if dims else None
        order = _get(cfg, "network_input_order", 0)
        order = int(getattr(order, "value", order) or 0)
        if dims and order == 1:  # infer-dims is always C;H;W; an NHWC model's axes are H, W, C
            dims = (dims[1], dims[2], dims[0])
        offsets = _get(cfg, "offsets") or ()
        parse = (_get(cfg, "parse_bbox_func_name") or _get(cfg, "parse_classifier_func_name")
                 or _get(cfg, "parse_segmentation_func_name"))
        return cls(
            onnx_file=Path(onnx_file),
            model_engine_file=_path(_get(cfg, "model_engine_file")),
            precision=NETWORK_MODES[mode],
            batch_size=int(_get(cfg, "batch_size", 1) or 1),
            infer_dims=dims or None,
            workspace_size=_get(cfg, "workspace_size") or None,
            int8_calib_file=_path(_get(cfg, "int8_calib_file")),
            calib_images=_path(_get(cfg, "dsrun_calib_images")),
            calib_method=str(_get(cfg, "dsrun_calib_method", None) or "entropy"),
            net_scale_factor=float(_get(cfg, "net_scale_factor", 1.0) or 1.0),
            offsets=tuple(float(o) for o in offsets),
            model_color_format=int(_get(cfg, "model_color_format", 0) or 0),
            network_input_order=order,
            custom_lib_path=_path(_get(cfg, "custom_lib_path")),
            parse_func=parse,
            gpu_id=int(_get(cfg, "gpu_id", 0) or 0),
            backend=backend or str(_get(cfg, "dsrun_backend", None) or "auto"),
            provider=provider or device_preference(),
            source=_path(source),
            darknet_cfg=_path(darknet[0]),
            darknet_weights=_path(darknet[1]),
        )


def device_preference() -> str:
    """``DSRUN_DEVICE``: ``cpu`` keeps decode and inference off the GPU, ``gpu`` requires it, anything
    else (the default) uses the GPU when there is one. Returned as an execution provider name."""
    value = os.environ.get("DSRUN_DEVICE", "auto").strip().lower()
    return {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda"}.get(value, "auto")


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    value = getattr(cfg, name, default)
    return default if value is None else value


def _path(value: Any) -> Path | None:
    return Path(value) if value not in (None, "") else None
