"""ONNX Runtime backend: CPU EP everywhere, CUDA EP where onnxruntime-gpu and a GPU are present.

The "engine" is an ONNX file dsrun derives from the user's model: graph-optimised (ORT's basic,
provider-independent rewrites), converted to FP16 (inputs/outputs kept as the model declares them), or
quantised to INT8 QDQ by static calibration (per-channel int8 weights; symmetric int8 activations —
the form TensorRT's strongly-typed networks take as input — or uint8 ones for the CPU's int8 kernels). The build manifest is embedded in the file's
``metadata_props`` under ``dsrun.manifest``, so a copied ``model-engine-file`` still says what it is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from runner.engine.base import Engine, EngineError, TensorSpec
from runner.engine.progress import Progress

if TYPE_CHECKING:  # pragma: no cover
    from runner.engine.build import Plan

NAME = "onnxruntime"
ARTEFACT = "engine.onnx"
MANIFEST_KEY = "dsrun.manifest"


def _ort():
    import onnxruntime

    return onnxruntime


def require() -> None:
    """ONNX Runtime is a dependency of dsrun: always usable."""


def version() -> str:
    return _ort().__version__


def provider(requested: str) -> str:
    """``auto`` → ``cuda`` when the CUDA EP is importable and a GPU answers, else ``cpu``."""
    has_cuda = "CUDAExecutionProvider" in _ort().get_available_providers()
    if requested == "cuda" and not has_cuda:
        raise EngineError("provider cuda: this onnxruntime has no CUDA execution provider — "
                          "`pip install onnxruntime-gpu` (and uninstall onnxruntime), or use --provider cpu")
    if requested == "auto":
        return "cuda" if has_cuda and gpu_name(0) else "cpu"
    return requested


def gpu_name(gpu_id: int) -> str | None:
    """``"NVIDIA H100 80GB HBM3 (sm_90)"`` from nvidia-smi, or None without a GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,compute_cap", "--format=csv,noheader",
                              f"--id={gpu_id}"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    name, _, cap = out.stdout.strip().splitlines()[0].rpartition(",")
    return f"{name.strip()} (sm_{cap.strip().replace('.', '')})"


def device(prov: str, gpu_id: int) -> str:
    if prov == "cpu":
        return "cpu"
    name = gpu_name(gpu_id)
    if not name:
        raise EngineError(f"gpu-id={gpu_id}: no such GPU (nvidia-smi does not list it) — fix gpu-id "
                          "or use the CPU provider")
    return name


def providers_for(prov: str, gpu_id: int) -> list:
    if prov == "cuda":
        return [("CUDAExecutionProvider", {"device_id": str(gpu_id), "prefer_nhwc": "1"}),
                "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


# -- build ---------------------------------------------------------------------------------------

def build(plan: "Plan", out_dir: Path, progress: Progress) -> str:
    """Write ``out_dir/engine.onnx`` for ``plan``; returns the artefact's file name."""
    model_path = prepare(plan, out_dir, progress)
    progress.phase("serialise")
    model = onnx.load(str(model_path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = MANIFEST_KEY, json.dumps(plan.manifest(), sort_keys=True)
    onnx.save(model, str(out_dir / ARTEFACT))
    for scratch in out_dir.iterdir():
        if scratch.name != ARTEFACT and scratch.suffix in (".onnx", ".data"):
            scratch.unlink()
    return ARTEFACT


def prepare(plan: "Plan", out_dir: Path, progress: Progress) -> Path:
    """The model in the plan's precision: optimised, FP16-converted or INT8 QDQ (also the input of
    TensorRT's strongly-typed networks, whose precision comes from the graph)."""
    ort = _ort()
    src = plan.spec.onnx_file
    progress.phase("optimise")
    optimised = out_dir / "optimised.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(optimised)
    session(src, options, ["CPUExecutionProvider"])  # also: does ORT run every operator?
    model_path = optimised
    if plan.precision == "fp16":
        progress.phase("convert")
        model_path = _to_fp16(optimised, out_dir / "fp16.onnx")
    elif plan.precision == "int8":
        model_path = _to_int8(plan, optimised, out_dir, progress)
    return model_path


def _to_fp16(src: Path, dst: Path) -> Path:
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    io_fp16 = any(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
                  for v in list(model.graph.input) + list(model.graph.output))
    with warnings.catch_warnings():  # "float32 number 1e-08 will be truncated": expected
        warnings.simplefilter("ignore")
        converted = float16.convert_float_to_float16(model, keep_io_types=not io_fp16,
                                                     disable_shape_infer=False)
    onnx.save(converted, str(dst))
    return dst


def _to_int8(plan: "Plan", src: Path, out_dir: Path, progress: Progress) -> Path:
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    from runner.engine import calibration

    ranges = plan.calib.ranges
    if ranges is None:  # calibrate on the images
        first = plan.graph_input
        batch = first.batch if first.batch > 0 else 1
        ranges = calibration.collect_ranges(
            src, first.name, plan.input_dims, batch, plan.spec, plan.calib.images, out_dir,
            progress, providers_for(_calibration_provider(plan.provider), plan.spec.gpu_id))
        ranges = plan.calib.write_table(ranges, out_dir)
    progress.phase("quantise")
    src = _at_least_opset(src, 13, out_dir / "opset13.onnx")  # per-channel Q/DQ needs opset 13
    model = load_model_with_shape_infer(src)
    data = TensorsData(CalibrationMethod.MinMax, {
        name: (np.array(-amax, np.float32), np.array(amax, np.float32))
        for name, amax in ranges.items()})
    ops = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    # the nodes that produce the outputs stay float: parsers threshold those values directly
    outputs = {o.name for o in model.graph.output}
    keep_float = [n.name for n in model.graph.node if outputs & set(n.output)]
    # TensorRT and the GPU take symmetric int8 activations; ONNX Runtime's CPU int8 kernels want
    # uint8 ones (U8S8: 1.6x FP32 on AVX-512 VNNI, where S8S8 is slower than FP32). Same scale either way.
    cpu = plan.backend == NAME and plan.provider == "cpu"
    activations = QuantType.QUInt8 if cpu else QuantType.QInt8
    quantizer = QDQQuantizer(model, True, False, QuantType.QInt8, activations, data, [], keep_float, ops,
                             {"ActivationSymmetric": not cpu, "WeightSymmetric": True,
                              # ranges are symmetric (from amax): a Relu must stay a Relu
                              "QDQKeepRemovableActivations": True})
    quantizer.quantize_model()
    dst = out_dir / "int8.onnx"
    quantizer.model.save_model_to_file(str(dst), False)
    return dst


def _calibration_provider(prov: str) -> str:
    """Calibrate on the GPU when this onnxruntime can (a TensorRT plan asks for cuda)."""
    return "cuda" if prov == "cuda" and "CUDAExecutionProvider" in _ort().get_available_providers() \
        else "cpu"


def _at_least_opset(src: Path, opset: int, dst: Path) -> Path:
    model = onnx.load(str(src))
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    if current >= opset:
        return src
    from onnx import version_converter

    try:
        onnx.save(version_converter.convert_version(model, opset), str(dst))
    except Exception as exc:
        raise EngineError(f"{src}: INT8 needs ONNX opset {opset} or later and this model (opset "
                          f"{current}) does not convert ({exc}) — re-export it with opset {opset}+") from None
    return dst


# -- load and run --------------------------------------------------------------------------------

def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest embedded in a dsrun ONNX Runtime engine, or None for any other file."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return None
    for prop in model.metadata_props:
        if prop.key == MANIFEST_KEY:
            try:
                return json.loads(prop.value)
            except ValueError:
                return None
    return None


def _threads_from_env() -> int:
    """``OMP_NUM_THREADS`` when set (PyTorch and numpy honour it; ``dsrun --workers`` sets each
    child's share of the cores), else 0: ONNX Runtime's own choice, one thread per core."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def session(path: Path, options, providers: list):
    """An InferenceSession, with ORT's errors turned into a paragraph a person can act on."""
    ort = _ort()
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises Fail/InvalidGraph/NotImplemented/RuntimeException
        raise _explain(exc, path) from None


def _explain(exc: Exception, path: Path) -> EngineError:
    text = " ".join(str(exc).split())
    op = re.search(r"implementation for (\S+?)\((\d+)\)", text) or \
        re.search(r"(\S+?)\((-?\d+)\) is not a registered function/op", text)
    if op:
        return EngineError(f"{path}: operator {op.group(1)} (opset {op.group(2)}) is not supported by "
                           f"ONNX Runtime {version()} — re-export the model with standard operators "
                           "(a lower opset, or without custom layers), or build it with TensorRT and a "
                           "plugin (dsrun-backend=tensorrt)")
    if "out of memory" in text.lower() or "bad_alloc" in text:
        return EngineError(f"{path}: out of memory loading the model ({text[:160]}) — lower "
                           "batch-size or free memory")
    return EngineError(f"{path}: ONNX Runtime {version()} cannot load it ({text[:240]}) — if it came "
                       "from another dsrun or ONNX Runtime version, delete it so it is rebuilt; "
                       "otherwise re-export the model")


_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
           "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8",
           "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


class _TorchDtypes(dict):
    def __missing__(self, name):
        import torch

        self.update({"float32": torch.float32, "float16": torch.float16, "int64": torch.int64,
                     "int32": torch.int32, "uint8": torch.uint8, "int8": torch.int8, "bool": torch.bool,
                     "float64": torch.float64})
        return self[name]


_TORCH_DTYPES = _TorchDtypes()


class OrtEngine(Engine):
    """An engine running in an ONNX Runtime session.

    A model exported with a fixed batch axis smaller than the batch asked for runs in chunks of
    its batch (the last chunk padded), so ``max_batch`` is always the configured batch size.
    """

    backend = NAME

    def __init__(self, path: Path, prov: str = "cpu", gpu_id: int = 0, max_batch: int = 1,
                 infer_dims: tuple[int, ...] | None = None, precision: str = "fp32") -> None:
        ort = _ort()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = _threads_from_env()
        if prov == "cpu":
            # ONNX Runtime's idle threads spin by default, taking the cores the pipeline's decoder and
            # stage threads need: on the 2-core CI machine the pipeline ran 1.5-1.9x faster without
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        try:
            self.session = session(self.path, options, providers_for(prov, gpu_id))
        except EngineError:
            if prov != "cuda":
                raise
            # an onnxruntime-gpu without NHWC kernels rejects prefer_nhwc: run NCHW instead
            self.session = session(self.path, options, [("CUDAExecutionProvider",
                                                         {"device_id": str(gpu_id)}),
                                                        "CPUExecutionProvider"])
        self.device = "cpu" if prov == "cpu" else f"cuda:{gpu_id}"
        self.gpu_id = gpu_id
        self.precision = precision
        self.max_batch = max_batch
        ins = self.session.get_inputs()
        first_batch = ins[0].shape[0] if ins and ins[0].shape else None
        self.fixed_batch = first_batch if isinstance(first_batch, int) and first_batch > 0 else None
        self.inputs = tuple(_spec(a, infer_dims if i == 0 else None) for i, a in enumerate(ins))
        self.outputs = tuple(_spec(a, None) for a in self.session.get_outputs())
        self._names = [o.name for o in self.outputs]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = next(iter(feeds.values())).shape[0]
        step = self.fixed_batch
        if step is None or n == step:
            return self._once(feeds)
        parts = []
        for start in range(0, n, step):
            chunk = {k: v[start:start + step] for k, v in feeds.items()}
            short = step - next(iter(chunk.values())).shape[0]
            if short:
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], short, 0)]) for k, v in chunk.items()}
            parts.append(self._once(chunk))
        return {k: np.concatenate([p[k] for p in parts])[:n] for k in self._names}

    def _once(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.device == "cpu":
            return dict(zip(self._names, self.session.run(self._names, feeds)))
        binding = self.session.io_binding()
        for name, arr in feeds.items():
            binding.bind_cpu_input(name, arr)
        for name in self._names:
            binding.bind_output(name)
        self.session.run_with_iobinding(binding)
        return dict(zip(self._names, binding.copy_outputs_to_cpu()))

    def infer_device(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run with inputs already on the GPU and leave the outputs there; no host copies. CUDA
        provider only. Inputs are ``onnxruntime.OrtValue``s (outputs: OrtValues) or torch CUDA tensors
        (outputs: torch tensors, bound in place by pointer)."""
        first = next(iter(feeds.values()))
        if hasattr(first, "data_ptr"):
            return self._infer_torch(feeds)
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, value)
        for name in self._names:
            binding.bind_output(name, "cuda", self.gpu_id)
        self.session.run_with_iobinding(binding)
        return dict(zip(self._names, binding.get_outputs()))

    def _infer_torch(self, feeds: dict[str, Any]) -> dict[str, Any]:
        import torch

        if self.device == "cpu":  # torch CPU tensors share memory with numpy
            out = self.infer({k: v.detach().numpy() for k, v in feeds.items()})
            return {k: torch.from_numpy(v) for k, v in out.items()}
        torch.cuda.current_stream(self.gpu_id).synchronize()  # ORT reads the inputs on its own stream
        binding = self.session.io_binding()
        n = None
        for spec in self.inputs:
            x = feeds[spec.name].to(dtype=_TORCH_DTYPES[np.dtype(spec.dtype).name]).contiguous()
            feeds[spec.name] = x  # keep it alive until the run returns
            n = x.shape[0]
            binding.bind_input(spec.name, "cuda", self.gpu_id, np.dtype(spec.dtype), tuple(x.shape), x.data_ptr())
        outputs = {}
        for spec in self.outputs:
            if any(d < 0 for d in spec.shape):  # size known only after the run: let ORT allocate it
                binding.bind_output(spec.name, "cuda", self.gpu_id)
                continue
            out = torch.empty((n, *spec.shape), dtype=_TORCH_DTYPES[np.dtype(spec.dtype).name],
                              device=f"cuda:{self.gpu_id}")
            binding.bind_output(spec.name, "cuda", self.gpu_id, np.dtype(spec.dtype), tuple(out.shape),
                                out.data_ptr())
            outputs[spec.name] = out
        self.session.run_with_iobinding(binding)
        if len(outputs) < len(self.outputs):  # dynamic outputs come back through the host
            for spec, value in zip(self.outputs, binding.get_outputs()):
                if spec.name not in outputs:
                    outputs[spec.name] = torch.from_numpy(value.numpy()).to(f"cuda:{self.gpu_id}")
        return {spec.name: outputs[spec.name] for spec in self.outputs}

    def close(self) -> None:
        self.session = None


def _spec(arg, infer_dims: tuple[int, ...] | None) -> TensorSpec:
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in (arg.shape or [])[1:]]
    if infer_dims and len(infer_dims) == len(dims):
        dims = [w if d < 0 else d for d, w in zip(dims, infer_dims)]
    return TensorSpec(arg.name, tuple(dims), np.dtype(_DTYPES.get(arg.type, "float32")))


def load(path: Path, plan: "Plan") -> OrtEngine:
    return OrtEngine(path, plan.provider, plan.spec.gpu_id, plan.spec.batch_size,
                     plan.spec.infer_dims, plan.precision)
