"""PyTorch backend: the ONNX graph as a torch module, compiled by ``torch.compile`` (Inductor).

The built artefact (the "engine") is an exported program (``torch.export``, ``.pt2``): the ONNX graph
traced through :class:`~runner.engine.onnx_torch.OnnxModule` at the engine's precision and layout (FP16
and channels_last on CUDA) with a dynamic batch axis. Loading it compiles it with Inductor and runs
one batch of each size class; Inductor's kernel cache (:func:`inductor_cache_dir`) makes every start
after the first take seconds instead of the first compile's minute or two. Inputs and outputs stay
float32 at the boundary; the casts are compiled into the graph.

On a GPU the compiled module is replayed from CUDA graphs (:class:`CudaGraphs`), one per batch size
bucket (1, 2, 4, … up to the engine's batch), captured at load: a batch is one graph launch instead
of a hundred kernel launches from Python, which is what a multi-stream pipeline spends its interpreter
time on. ``DSRUN_CUDA_GRAPHS=0`` turns them off (the compiled module is called directly).

(AOTInductor packages would load faster still, but loading one in a fresh process crashed on the
H100 with torch 2.11 — see docs/engines.md.)

``torch`` is imported lazily: a machine without it never loads this backend.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from runner.engine.base import Engine, EngineError, TensorSpec
from runner.extras import MissingExtra

log = logging.getLogger("dsrun")

NAME = "torch"
ARTEFACT = "engine.pt2"
SIDECAR = ".manifest.json"  # beside the artefact: the build manifest (a .pt2 has no room for ours)


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    """:class:`MissingExtra` (one line naming ``dsrun[torch]``) when torch is not installed."""
    if not available():
        raise MissingExtra("torch", "the torch backend (dsrun-backend=torch)")


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


def export_program(onnx_model, inputs: tuple[TensorSpec, ...], *, max_batch: int, precision: str,
                   gpu_id: int, out_path: Path, phase: Callable[[str], None] = lambda _: None) -> None:
    """Trace ``onnx_model`` (at the engine's precision and layout) with a dynamic batch axis and save
    the exported program at ``out_path`` — the engine artefact; :class:`TorchEngine` compiles it.

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
    torch.export.save(program, str(out_path))


def inductor_cache_dir() -> Path:
    """Where Inductor keeps compiled kernels between runs (``$TORCHINDUCTOR_CACHE_DIR`` if set):
    the second start of a torch engine compiles from this cache in seconds."""
    from runner.engine.cache import default_engine_dir

    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or default_engine_dir(None).parent / "torch-inductor")


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
    """The engine layer's build hook: export ``plan`` to ``out_dir/engine.pt2`` + its manifest; the
    engine layer's validation then loads it, which compiles it and fills the Inductor cache."""
    import onnx

    export_program(onnx.load(str(plan.spec.onnx_file)), _graph_inputs(plan), max_batch=plan.spec.batch_size,
                   precision=plan.precision, gpu_id=plan.spec.gpu_id, out_path=out_dir / ARTEFACT,
                   phase=progress.phase)
    progress.phase("optimise (Inductor compile: a minute or two the first time, cached after)")
    write_sidecar(out_dir / ARTEFACT, plan.manifest())
    return ARTEFACT


def write_sidecar(target: Path, manifest: dict) -> None:
    """``<engine>.manifest.json``: what the engine was built for."""
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
    """The engine at ``path``, compiled; its outputs' shapes come from one run on a blank sample."""
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


def use_expandable_segments(torch) -> None:
    """Let torch's CUDA caching allocator grow and shrink segments in place (``expandable_segments``)
    unless the user set ``PYTORCH_CUDA_ALLOC_CONF``: batches of frames, crops and candidates change
    size from batch to batch, and with fixed segments the freed memory stays cached in pieces that
    later sizes do not fit — GPU memory measured 13.8 GiB reserved for 3.0 GiB of live tensors at 48
    sources (docs/bench/)."""
    if os.environ.get("PYTORCH_CUDA_ALLOC_CONF"):
        return
    os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
    try:  # the allocator may be initialised already (then the variable alone comes too late)
        torch.cuda.memory._set_allocator_settings("expandable_segments:True")
    except (AttributeError, RuntimeError):
        pass


class TorchEngine(Engine):
    """An exported program compiled by ``torch.compile``. :meth:`infer` takes host arrays;
    :meth:`infer_device` takes and returns torch tensors on the engine's device (no host round trip)."""

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
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
        if self.device.startswith("cuda"):
            use_expandable_segments(torch)
        try:
            program = torch.export.load(str(self.path))
        except Exception as e:  # a program from another torch version, or not one at all
            raise EngineError(f"{self.path}: cannot load this torch engine ({type(e).__name__}: {e}) — "
                              "it was built by another torch version; delete it and dsrun rebuilds it") from None
        self._runner = torch.compile(program.module())
        self._warm_up()
        self._graphs = None
        if self.device.startswith("cuda") and os.environ.get("DSRUN_CUDA_GRAPHS", "1").strip() != "0":
            try:
                self._graphs = CudaGraphs(torch, self._runner, inputs, max_batch, self.device)
            except Exception as e:  # capture is refused by some graphs: run them uncaptured
                log.warning("%s: CUDA graphs could not be captured (%s: %s); running without them",
                            self.path, type(e).__name__, str(e)[:200])
        self.load_s = time.perf_counter() - started

    def _warm_up(self) -> None:
        """Compile now (from the Inductor cache when warm), for every batch size: the batch axis is
        dynamic, and batch 1 gets its own specialisation as torch does."""
        torch = self._torch
        for n in sorted({1, self.max_batch}):
            xs = [torch.zeros((n, *spec.shape), device=self.device) for spec in self.inputs]
            if n > 1:
                for x in xs:
                    torch._dynamo.maybe_mark_dynamic(x, 0)
            with torch.inference_mode():
                self._runner(*xs)

    def infer_device(self, feeds: Mapping[str, object]) -> dict[str, object]:
        xs = [feeds[spec.name] for spec in self.inputs]
        if self._graphs is not None:
            outs = self._graphs(xs)
        else:
            with self._torch.inference_mode():
                outs = self._runner(*xs)
        return {spec.name: out for spec, out in zip(self.outputs, outs)}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        tensors = {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in feeds.items()}
        return {k: v.cpu().numpy() for k, v in self.infer_device(tensors).items()}


class CudaGraphs:
    """The compiled module captured as CUDA graphs, one per batch bucket (powers of two up to
    ``max_batch``), sharing one memory pool and one input buffer.

    A call copies the batch into the smallest bucket that holds it (rows past the batch keep whatever
    they held: every row is inferred on its own), replays that graph and returns copies of the
    outputs' first rows. Calls are serialised (the graphs share their memory), so one engine can serve
    several stage threads — on the GPU too: each call's stream waits for the previous call's work
    (an event), so callers on different CUDA streams never overlap on the shared buffers."""

    def __init__(self, torch, runner, inputs: tuple[TensorSpec, ...], max_batch: int, device: str) -> None:
        self._torch = torch
        self.buckets = sorted({min(1 << i, max_batch) for i in range(max(1, max_batch).bit_length() + 1)})
        self._graphs: dict[int, tuple] = {}
        self._lock = threading.Lock()
        self._device = device
        self._last_call = None  # event after the previous call's copies out
        pool = None
        side = torch.cuda.Stream(device)
        with torch.inference_mode():
            # one input buffer of the largest bucket; each graph reads its first rows
            buffers = [torch.zeros((self.buckets[-1], *spec.shape), device=device) for spec in inputs]
            for b in self.buckets:
                static_in = [buf[:b] for buf in buffers]
                side.wait_stream(torch.cuda.current_stream(device))
                with torch.cuda.stream(side):  # warm up off the capture, as CUDA graphs need
                    for _ in range(2):
                        runner(*static_in)
                torch.cuda.current_stream(device).wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool):
                    static_out = runner(*static_in)
                pool = graph.pool()
                self._graphs[b] = (graph, static_in, tuple(static_out))
        torch.cuda.synchronize(device)

    def __call__(self, xs: list) -> tuple:
        n = int(xs[0].shape[0])
        biggest = self.buckets[-1]
        if n > biggest:  # more rows than the engine's batch: bucket by bucket
            parts = [self(list(x[i:i + biggest] for x in xs)) for i in range(0, n, biggest)]
            return tuple(self._torch.cat(outs) for outs in zip(*parts))
        bucket = next(b for b in self.buckets if b >= n)
        graph, static_in, static_out = self._graphs[bucket]
        torch = self._torch
        with self._lock, torch.inference_mode():
            stream = torch.cuda.current_stream(self._device)
            if self._last_call is not None:
                stream.wait_event(self._last_call)
            for dst, x in zip(static_in, xs):
                dst[:n].copy_(x)
            graph.replay()
            outs = tuple(out[:n].clone() for out in static_out)
            self._last_call = torch.cuda.Event()
            self._last_call.record(stream)
            return outs
