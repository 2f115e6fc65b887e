"""Reading an ONNX file: load it with a message a person can act on, and describe its inputs.

>>> import onnx
>>> from onnx import helper, TensorProto
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])
>>> m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
>>> [(t.name, t.dims, t.batch) for t in graph_inputs(m)]
[('x', (3, 8, 8), -1)]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from runner.engine.base import EngineError

_HOW_TO_FIX = ("re-export the model (torch.onnx.export / tf2onnx / `tao model ... export`) and check it "
               "with `python -m onnx.checker FILE`")


@dataclass(frozen=True, slots=True)
class GraphTensor:
    """An ONNX graph input/output: ``batch`` is the first axis (``-1`` when symbolic) and ``dims``
    the rest (``-1`` for symbolic axes)."""

    name: str
    batch: int
    dims: tuple[int, ...]
    dtype: np.dtype


def load_onnx(path: Path, *, source: Path | None = None) -> onnx.ModelProto:
    """Load and check an ONNX file, or raise an :class:`EngineError` naming it and what to do."""
    where = f"{source}: [property] onnx-file: " if source else ""
    if not path.is_file():
        raise EngineError(f"{where}{path} does not exist — fix the path (relative paths are "
                          "resolved against the config file's folder) or copy the model there")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # protobuf DecodeError, truncated file, missing external data
        raise EngineError(f"{where}{path} is not a readable ONNX model ({_short(exc)}) — the file may "
                          f"be truncated or not ONNX at all; {_HOW_TO_FIX}") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise EngineError(f"{where}{path} fails the ONNX checker ({_short(exc)}) — {_HOW_TO_FIX}") \
            from None
    if not graph_inputs(model):
        raise EngineError(f"{where}{path} has no inputs — {_HOW_TO_FIX}")
    return model


def graph_inputs(model: onnx.ModelProto) -> list[GraphTensor]:
    init = {i.name for i in model.graph.initializer}
    return [tensor_of(v) for v in model.graph.input if v.name not in init]


def graph_outputs(model: onnx.ModelProto) -> list[GraphTensor]:
    return [tensor_of(v) for v in model.graph.output]


def check_infer_dims(model: onnx.ModelProto, path: Path, infer_dims: tuple[int, ...] | None,
                     source: Path | None = None, nhwc: bool = False) -> None:
    """``infer-dims`` must agree with every fixed axis of the first (image) input (``infer_dims`` in
    the model's axis order; messages speak DeepStream's C;H;W also for ``nhwc`` models)."""
    if not infer_dims:
        return
    first = graph_inputs(model)[0]
    if len(first.dims) != len(infer_dims) or any(
            d >= 0 and d != want for d, want in zip(first.dims, infer_dims)):
        where = f"{source}: [property] infer-dims: " if source else "infer-dims: "
        chw = (lambda t: (t[2], t[0], t[1]) if nhwc and len(t) == 3 else t)
        have = ";".join("?" if d < 0 else str(d) for d in chw(first.dims))
        want = ";".join(map(str, chw(infer_dims)))
        fixed = ";".join(str(d) for d in chw(resolved_dims(first, infer_dims))) \
            if len(first.dims) == len(infer_dims) else have
        raise EngineError(f"{where}{want} disagrees with input {first.name!r} of {path}, which is "
                          f"{have} (without the batch axis) — set infer-dims={fixed} or use a model "
                          "exported for that input size")


def resolved_dims(tensor: GraphTensor, infer_dims: tuple[int, ...] | None) -> tuple[int, ...]:
    """Per-sample dims with symbolic axes filled from ``infer-dims`` when it is given."""
    if infer_dims and len(infer_dims) == len(tensor.dims):
        return tuple(w if d < 0 else d for d, w in zip(tensor.dims, infer_dims))
    return tensor.dims


def tensor_of(value: onnx.ValueInfoProto) -> GraphTensor:
    ttype = value.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                 for d in ttype.shape.dim)
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type))
    except Exception:
        dtype = np.dtype("float32")
    if not dims:
        return GraphTensor(value.name, 1, (), dtype)
    return GraphTensor(value.name, dims[0], dims[1:], dtype)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) < 200 else text[:197] + "..."
