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

ARTEFACT_SUFFIX = ".pt2"


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str:
    import torch

    return torch.__version__


def device_name(gpu_id: int = 0) -> str:
    """The device this backend would build for: ``cuda:N`` when torch sees a GPU, else ``cpu``."""
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


def build(onnx_model, inputs: tuple[TensorSpec, ...], *, max_batch: int, precision: str, gpu_id: int,
          out_path: Path, phase: Callable[[str], None] = lambda _: None) -> None:
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
