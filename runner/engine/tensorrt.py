"""TensorRT backend, imported lazily: only machines with TensorRT and a GPU ever load it.

NOT RUN YET: TensorRT cannot be installed where dsrun is developed. Every TensorRT and CUDA name used
here is listed in :data:`TRT_NAMES`, :data:`TRT10_NAMES` and :data:`CUDART_NAMES`, and
``tests/test_engine_tensorrt.py`` checks them against the real ``tensorrt-cu13-bindings==11.4.0.106``
module and ``cuda-bindings``; behaviour is untested until it runs on a GPU machine (docs/engines.md).

- TensorRT 11 (strongly typed networks only): the ONNX is first brought to the plan's precision by the
  ONNX Runtime backend's :func:`~runner.engine.onnxruntime.prepare` (FP16 casts, or INT8 Q/DQ from
  calibration), then parsed with ``STRONGLY_TYPED`` so precision comes from the graph.
- TensorRT 10: the original ONNX with ``BuilderFlag.FP16``/``INT8`` and an ``IInt8EntropyCalibrator2``
  over the calibration images (or the ``int8-calib-file`` table).
- Both: one optimisation profile (batch min/opt/max, spatial axes from ``infer-dims``), workspace
  limit, a timing cache per device and version under ``<engine-dir>/timing/``, optional
  version-compatible engines, a progress monitor (Ctrl-C cancels the build), execution on a CUDA
  stream through cuda-python.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from runner.engine.base import EngineError
from runner.engine.cache import atomic_write
from runner.engine.progress import Progress
from runner.extras import MissingExtra

if TYPE_CHECKING:  # pragma: no cover
    from runner.engine.build import Plan

NAME = "tensorrt"
ARTEFACT = "engine.plan"
SIDECAR_SUFFIX = ".dsrun.json"

#: TensorRT attributes used with TensorRT 10 and 11 ("Class.member" or "function").
TRT_NAMES = (
    "__version__", "Logger", "Logger.WARNING", "Builder", "Builder.create_network",
    "Builder.create_builder_config", "Builder.create_optimization_profile",
    "Builder.build_serialized_network", "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
    "INetworkDefinition.num_inputs", "INetworkDefinition.get_input", "ITensor.name", "ITensor.shape",
    "OnnxParser", "OnnxParser.parse_from_file", "OnnxParser.num_errors", "OnnxParser.get_error",
    "ParserError.desc", "ParserError.node_operator", "ParserError.node_name",
    "IBuilderConfig.set_memory_pool_limit", "MemoryPoolType.WORKSPACE",
    "IBuilderConfig.add_optimization_profile", "IOptimizationProfile.set_shape",
    "IBuilderConfig.set_flag", "BuilderFlag.VERSION_COMPATIBLE", "IBuilderConfig.create_timing_cache",
    "IBuilderConfig.set_timing_cache", "IBuilderConfig.get_timing_cache", "ITimingCache.serialize",
    "IBuilderConfig.progress_monitor", "IProgressMonitor", "IProgressMonitor.phase_start",
    "IProgressMonitor.step_complete", "IProgressMonitor.phase_finish",
    "Runtime", "Runtime.deserialize_cuda_engine", "Runtime.engine_host_code_allowed",
    "ICudaEngine.num_io_tensors", "ICudaEngine.get_tensor_name", "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_shape", "ICudaEngine.get_tensor_dtype",
    "ICudaEngine.get_tensor_profile_shape", "ICudaEngine.create_execution_context",
    "TensorIOMode.INPUT", "nptype", "IExecutionContext.set_input_shape",
    "IExecutionContext.get_tensor_shape", "IExecutionContext.set_tensor_address",
    "IExecutionContext.execute_async_v3",
)
#: Used only when TensorRT's major version is 10 (removed in 11: implicit precision, calibrators).
TRT10_NAMES = ("BuilderFlag.FP16", "BuilderFlag.INT8", "IInt8EntropyCalibrator2",
               "IBuilderConfig.int8_calibrator")
#: cuda-python runtime functions (``cuda.bindings.runtime``, or ``cuda.cudart`` in cuda-python 11/12).
CUDART_NAMES = ("cudaSetDevice", "cudaStreamCreate", "cudaStreamDestroy", "cudaStreamSynchronize",
                "cudaMalloc", "cudaFree", "cudaMemcpyAsync", "cudaMemcpyKind.cudaMemcpyHostToDevice",
                "cudaMemcpyKind.cudaMemcpyDeviceToHost", "cudaError_t.cudaSuccess",
                "cudaGetErrorString")


@functools.lru_cache(maxsize=1)
def _trt():
    try:
        import tensorrt
    except ImportError:
        try:
            import tensorrt_bindings as tensorrt  # the bare bindings wheel
        except ImportError:
            raise MissingExtra("tensorrt", "the TensorRT backend (dsrun-backend=tensorrt)") from None
    return tensorrt


def _cudart():
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError:
            raise MissingExtra("cuda", "the TensorRT backend (dsrun-backend=tensorrt)") from None
    return runtime


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """TensorRT's Python module imports (its libraries are present)."""
    try:
        _trt()
    except (ImportError, OSError):
        return False
    return True


def require() -> None:
    """Nothing to check before :func:`provider`, which says what is missing (TensorRT, or a GPU)."""


def major() -> int:
    return int(_trt().__version__.split(".")[0])


def version() -> str:
    return _trt().__version__


def provider(requested: str) -> str:
    if requested == "cpu":
        raise EngineError("dsrun-backend=tensorrt runs on a GPU only — use dsrun-backend=onnxruntime "
                          "for the CPU")
    if not available():
        raise EngineError("dsrun-backend=tensorrt: TensorRT is not installed here — `pip install "
                          "\"dsrun[tensorrt]\"` on a machine with an NVIDIA GPU, or set dsrun-backend=auto")
    return "cuda"


def device(prov: str, gpu_id: int) -> str:
    from runner.engine import onnxruntime as ort_backend

    return ort_backend.device("cuda", gpu_id)


@functools.lru_cache(maxsize=1)
def _logger():
    trt = _trt()
    return trt.Logger(trt.Logger.WARNING)


# -- build ---------------------------------------------------------------------------------------

def build(plan: "Plan", out_dir: Path, progress: Progress) -> str:
    trt = _trt()
    _check(_cudart().cudaSetDevice(plan.spec.gpu_id), "cudaSetDevice")
    typed = major() >= 11
    source = plan.spec.onnx_file
    if typed and plan.precision != "fp32":  # TensorRT 11 takes precision from the graph
        from runner.engine import onnxruntime as ort_backend

        source = ort_backend.prepare(plan, out_dir, progress)
    progress.phase("parse")
    builder = trt.Builder(_logger())
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, _logger())
    if not parser.parse_from_file(str(source)):
        raise _parse_error(parser, plan.spec.onnx_file)
    config = builder.create_builder_config()
    if plan.spec.workspace_size:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(plan.spec.workspace_size) << 20)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        low, opt, high = _profile(tensor, plan, first=(i == 0))
        profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(profile)
    if not typed:
        _set_precision_flags(trt, config, plan, progress)
    if plan.spec.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    timing = _timing_cache_path(plan)
    cache = config.create_timing_cache(timing.read_bytes() if timing and timing.is_file() else b"")
    config.set_timing_cache(cache, False)
    monitor = _monitor(progress)
    config.progress_monitor = monitor
    progress.phase("optimise")
    blob = builder.build_serialized_network(network, config)
    if monitor.cancelled:
        raise KeyboardInterrupt
    if blob is None:
        raise EngineError(f"{plan.spec.onnx_file}: TensorRT {version()} could not build an engine (see "
                          "the TensorRT messages above) — try a larger workspace-size, or "
                          "dsrun-backend=onnxruntime")
    progress.phase("serialise")
    (out_dir / ARTEFACT).write_bytes(memoryview(blob))
    if timing is not None:
        timing.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(timing, bytes(memoryview(config.get_timing_cache().serialize())))
    for scratch in out_dir.glob("*.onnx"):
        scratch.unlink()
    return ARTEFACT


def _profile(tensor, plan: "Plan", first: bool) -> tuple[tuple[int, ...], ...]:
    dims = tuple(tensor.shape)
    per = dims[1:]
    if first and plan.spec.infer_dims and len(plan.spec.infer_dims) == len(per):
        per = tuple(w if d < 0 else d for d, w in zip(per, plan.spec.infer_dims))
    if any(d < 0 for d in per):
        raise EngineError(f"{plan.spec.onnx_file}: input {tensor.name!r} has dynamic axes {dims}; set "
                          "infer-dims (C;H;W) so TensorRT knows the shapes to build for")
    low, opt, high = plan.spec.profile_batches
    if dims[0] > 0:  # a fixed batch axis
        low = opt = high = dims[0]
    return (low, *per), (opt, *per), (high, *per)


def _set_precision_flags(trt, config, plan: "Plan", progress: Progress) -> None:
    """TensorRT 10: FP16/INT8 builder flags and an entropy calibrator."""
    if plan.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.precision == "int8":
        if not plan.calib.images and not plan.calib.header.startswith("TRT-"):
            raise EngineError(f"{plan.calib.table}: TensorRT {version()} cannot use this table (it holds "
                              "ONNX Runtime ranges) — set dsrun-calib-images so TensorRT calibrates")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, plan, progress)


def _calibrator(trt, plan: "Plan", progress: Progress):
    from runner.engine import calibration

    cudart = _cudart()
    images = plan.calib.images if plan.calib.ranges is None else []
    dims = plan.input_dims
    table = plan.calib.table

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.i = 0
            self.nbytes = int(np.prod(dims)) * 4
            self.buffer = _check(cudart.cudaMalloc(self.nbytes), "cudaMalloc")
            if images:
                progress.phase("calibrate", total=len(images))

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            if self.i >= len(images):
                return None
            x = np.ascontiguousarray(calibration.preprocess(images[self.i], dims, plan.spec)[None])
            _check(cudart.cudaMemcpyAsync(self.buffer, x.ctypes.data, x.nbytes,
                                          cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, 0),
                   "cudaMemcpyAsync")
            _check(cudart.cudaStreamSynchronize(0), "cudaStreamSynchronize")
            self.i += 1
            progress.advance()
            return [int(self.buffer)]

        def read_calibration_cache(self):
            # a TensorRT-written table (DeepStream's int8-calib-file); dsrun's own tables hold
            # ONNX Runtime ranges and are not offered to TensorRT 10
            if plan.calib.ranges is not None and plan.calib.header.startswith("TRT-"):
                return table.read_bytes()
            return None

        def write_calibration_cache(self, cache) -> None:
            if table is not None:
                atomic_write(table, bytes(cache))

    return EntropyCalibrator()


def _monitor(progress: Progress):
    trt = _trt()

    class Monitor(trt.IProgressMonitor):
        """TensorRT's build phases on dsrun's progress; Ctrl-C cancels the build."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.cancelled = False

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            try:
                if parent_phase is None:
                    progress.phase(f"optimise: {phase_name}", num_steps)
            except KeyboardInterrupt:
                self.cancelled = True

        def step_complete(self, phase_name, step) -> bool:
            try:
                progress.advance()
            except KeyboardInterrupt:
                self.cancelled = True
            return not self.cancelled

        def phase_finish(self, phase_name) -> None:
            pass

    return Monitor()


def _timing_cache_path(plan: "Plan") -> Path | None:
    if plan.engine_dir is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9]+", "_", plan.fields["device"]).strip("_")
    return Path(plan.engine_dir) / "timing" / f"{slug}-trt{version()}.cache"


def _parse_error(parser, path: Path) -> EngineError:
    errors = [parser.get_error(i) for i in range(parser.num_errors)]
    ops = sorted({e.node_operator() for e in errors if e.node_operator()})
    detail = "; ".join(str(e.desc()) for e in errors[:3])
    if ops:
        return EngineError(f"{path}: TensorRT {version()} cannot parse operator(s) {', '.join(ops)} "
                           f"({detail}) — re-export with standard operators, add a TensorRT plugin, or "
                           "set dsrun-backend=onnxruntime")
    return EngineError(f"{path}: TensorRT's ONNX parser failed ({detail}) — re-export the model or "
                       "set dsrun-backend=onnxruntime")


# -- load and run --------------------------------------------------------------------------------

def read_manifest(path: Path) -> dict[str, Any] | None:
    """A TensorRT plan cannot carry metadata: dsrun writes ``<engine>.dsrun.json`` beside it."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None


def write_sidecar(path: Path, manifest: dict[str, Any]) -> None:
    atomic_write(path.with_name(path.name + SIDECAR_SUFFIX),
                 json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())


def _check(result, what: str):
    cudart = _cudart()
    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise EngineError(f"CUDA {what} failed: {cudart.cudaGetErrorString(err)[1]} — check the GPU, "
                          "the driver and gpu-id")
    return rest[0] if len(rest) == 1 else (rest or None)


def load(path: Path, plan: "Plan"):
    from runner.engine.tensorrt_run import TrtEngine

    return TrtEngine(path, plan.spec.gpu_id, plan.precision)
