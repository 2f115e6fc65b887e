"""PyTorch backend: the ONNX graph as a torch module, compiled ahead of time by AOTInductor.

The built artefact (the "engine") is an AOTInductor package (``.pt2``): ``torch.export`` traces
:class:`~runner.engine.onnx_torch.OnnxModule` with a dynamic batch axis, Inductor compiles it (FP16 and
channels_last on CUDA), and loading it later takes milliseconds — the ~100 s compile happens once and
is cached like any other engine. Inputs and outputs stay float32 at the boundary; the cast to the
engine's precision and memory format is compiled into the graph.

``torch`` is imported lazily: a machine without it never loads this backend.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from runner.engine.base import Engine, EngineError, TensorSpec

NAME = "torch"
ARTEFACT = "engine.pt2"
SIDECAR = ".manifest.json"  # beside the package: the build manifest and the IO signature


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_available() -> bool:
    """torch is installed with CUDA and sees a GPU."""
    if not available():
        return False
    import torch

    return torch.cuda.is_available()


def runs(onnx_file: Path) -> bool:
    """Every operator of the model is one :class:`OnnxModule` runs (False for a missing file)."""
    import onnx

    from runner.engine.onnx_torch import SUPPORTED_OPS

    try:
        model = onnx.load(str(onnx_file), load_external_data=False)
    except Exception:
        return False
    return {n.op_type for n in model.graph.node} <= SUPPORTED_OPS


def version() -> str:
    import torch

    return torch.__version__


def provider(requested: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu`` (Inductor compiles for either)."""
    import torch

    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise EngineError("provider cuda: this PyTorch has no CUDA device — install a CUDA build of "
                          "torch, or use dsrun-backend=onnxruntime")
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested


def device(prov: str, gpu_id: int) -> str:
    if prov == "cpu":
        return "cpu"
    import torch

    props = torch.cuda.get_device_properties(gpu_id)
    return f"{props.name} (sm_{props.major}{props.minor})"


def device_name(gpu_id: int = 0) -> str:
    """The torch device this backend runs on: ``cuda:N`` when torch sees a GPU, else ``cpu``."""
    import torch

    return f"cuda:{gpu_id}" if torch.cuda.is_available() else "cpu"


def _wrapped(onnx_model, precision: str, device: str):
    import torch

    from runner.engine.onnx_torch import OnnxModule, UnsupportedOperator

    try:
        inner = OnnxModule(onnx_model).eval()
    except UnsupportedOperator as e:
        raise EngineError(f"the torch backend cannot run operator(s) {e} — set "
                          "dsrun-backend=onnxruntime in the nvinfer [property] group") from None
    half = precision in ("fp16", "best") and device.startswith("cuda")
    dtype = torch.float16 if half else torch.float32

    class Boundary(torch.nn.Module):
        """float32 in and out; the engine's precision and layout inside."""

        def __init__(self):
            super().__init__()
            self.inner = inner.to(device=device, dtype=dtype)
            if device.startswith("cuda"):
                self.inner = self.inner.to(memory_format=torch.channels_last)

        def forward(self, *xs):
            cast = [x.to(dtype).contiguous(memory_format=torch.channels_last) if x.dim() == 4
                    and device.startswith("cuda") else x.to(dtype) for x in xs]
            return tuple(o.float() for o in self.inner(*cast))

    return Boundary().eval(), dtype


def compile_package(onnx_model, inputs: tuple[TensorSpec, ...], *, max_batch: int, precision: str,
                    gpu_id: int, out_path: Path, phase: Callable[[str], None] = lambda _: None) -> None:
    """Export and compile ``onnx_model`` into an AOTInductor package at ``out_path``.

    ``inputs`` give per-sample shapes (no -1: resolve dynamic axes with infer-dims first)."""
    import torch

    if any(d < 0 for spec in inputs for d in spec.shape):
        raise EngineError("the torch backend needs fixed input shapes: set infer-dims in the nvinfer "
                          "config for models with dynamic height/width")
    device = device_name(gpu_id)
    phase("parse")
    module, _ = _wrapped(onnx_model, precision, device)
    example_n = max(2, min(max_batch, 8))
    examples = tuple(torch.rand(example_n, *spec.shape, device=device) for spec in inputs)
    batch = torch.export.Dim("batch", min=1, max=max(max_batch, 2))
    phase("export")
    with torch.no_grad():
        program = torch.export.export(module, examples, dynamic_shapes=(tuple({0: batch} for _ in inputs),))
    phase("optimise (Inductor compile, about a minute or two)")
    torch._inductor.aoti_compile_and_package(program, package_path=str(out_path))


def _graph_inputs(plan) -> tuple[TensorSpec, ...]:
    import onnx

    if not plan.spec.onnx_file.is_file():
        raise EngineError(f"{plan.spec.onnx_file}: a torch engine is loaded beside its ONNX model, which "
                          "is missing — restore onnx-file")
    model = onnx.load(str(plan.spec.onnx_file), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in inits]
    if len(graph_inputs) != 1:
        raise EngineError(f"{plan.spec.onnx_file}: the torch backend takes single-input models — set "
                          "dsrun-backend=onnxruntime")
    dims = tuple(plan.spec.infer_dims or ()) or tuple(
        d.dim_value or -1 for d in graph_inputs[0].type.tensor_type.shape.dim[1:])
    return (TensorSpec(graph_inputs[0].name, dims, np.dtype("float32")),)


def build(plan, out_dir: Path, progress) -> str:
    """The engine layer's build hook: compile ``plan`` into ``out_dir/engine.pt2`` + its manifest."""
    import onnx

    compile_package(onnx.load(str(plan.spec.onnx_file)), _graph_inputs(plan), max_batch=plan.spec.batch_size,
                    precision=plan.precision, gpu_id=plan.spec.gpu_id, out_path=out_dir / ARTEFACT,
                    phase=progress.phase)
    write_sidecar(out_dir / ARTEFACT, plan.manifest())
    return ARTEFACT


def write_sidecar(target: Path, manifest: dict) -> None:
    """``<engine>.manifest.json``: what the package was built for (a .pt2 holds no metadata of ours)."""
    from runner.engine.cache import write_json

    target = Path(target)
    write_json(target.with_name(target.name + SIDECAR), manifest)


def read_manifest(path: Path) -> dict | None:
    """The manifest of a dsrun torch engine (from its sidecar), or None for any other file."""
    import json

    try:
        return json.loads(Path(path).with_name(Path(path).name + SIDECAR).read_text())
    except (OSError, ValueError):
        return None


def load(path: Path, plan) -> "TorchEngine":
    """The package at ``path``; its outputs' shapes come from one run on a single blank sample."""
    inputs = _graph_inputs(plan)
    engine = TorchEngine(path, inputs, (), max_batch=plan.spec.batch_size, precision=plan.precision,
                         gpu_id=plan.spec.gpu_id)
    import onnx

    names = [o.name for o in onnx.load(str(plan.spec.onnx_file), load_external_data=False).graph.output]
    blank = engine._torch.zeros((1, *inputs[0].shape), device=engine.device)
    with engine._torch.inference_mode():
        shapes = [tuple(o.shape[1:]) for o in engine._runner(blank)]
    engine.outputs = tuple(TensorSpec(n, s, np.dtype("float32")) for n, s in zip(names, shapes))
    return engine


class TorchEngine(Engine):
    """A compiled AOTInductor package. :meth:`infer` takes host arrays; :meth:`infer_device` takes and
    returns torch tensors on the engine's device (no host round trip)."""

    backend = "torch"

    def __init__(self, path: Path, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], *,
                 max_batch: int, precision: str, gpu_id: int = 0):
        import torch

        self._torch = torch
        self.path = Path(path)
        self.inputs, self.outputs = inputs, outputs
        self.max_batch = max_batch
        self.precision = precision
        self.device = device_name(gpu_id)
        started = time.perf_counter()
        try:
            self._runner = torch._inductor.aoti_load_package(str(self.path))
        except Exception as e:  # a package from another torch version or device
            raise EngineError(f"{self.path}: cannot load this torch engine ({type(e).__name__}: {e}) — "
                              "it was built by another torch version or for another device; delete it "
                              "and dsrun rebuilds it") from None
        self.load_s = time.perf_counter() - started

    def infer_device(self, feeds: Mapping[str, object]) -> dict[str, object]:
        xs = [feeds[spec.name] for spec in self.inputs]
        with self._torch.inference_mode():
            outs = self._runner(*xs)
        return {spec.name: out for spec, out in zip(self.outputs, outs)}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        tensors = {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in feeds.items()}
        return {k: v.cpu().numpy() for k, v in self.infer_device(tensors).items()}
