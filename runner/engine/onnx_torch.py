"""An ONNX graph as a PyTorch module, for the torch backend (``torch.compile`` / AOTInductor).

:class:`OnnxModule` registers the graph's initializers as buffers and runs its nodes in order with
torch operators, so ``torch.compile`` and ``torch.export`` trace it into one graph. It covers the
operators of CNN detectors and classifiers (ResNet/DetectNet_v2, YOLO heads, MTCNN, PP-OCR);
any other operator raises :class:`UnsupportedOperator` naming it, before anything runs.

>>> import onnx, numpy as np, torch
>>> from onnx import helper, TensorProto, numpy_helper
>>> w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
>>> g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])],
...     "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], [w])
>>> m = OnnxModule(helper.make_model(g))
>>> m(torch.ones(1, 3, 4, 4))[0][0, :, 0, 0].tolist()
[3.0, 3.0]
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from runner.extras import MissingExtra

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    raise MissingExtra("torch", "the torch backend") from None

__all__ = ["OnnxModule", "UnsupportedOperator", "SUPPORTED_OPS"]


class UnsupportedOperator(ValueError):
    """The ONNX graph uses an operator the torch backend cannot run."""


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads_2d(pads, auto_pad, kernel, stride, dilation, in_hw):
    """ONNX pads (t, l, b, r) → (left, right, top, bottom) for F.pad; SAME_* computed from the input."""
    if auto_pad in (b"SAME_UPPER", b"SAME_LOWER", "SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            out.append((big, small) if auto_pad in (b"SAME_LOWER", "SAME_LOWER") else (small, big))
        (t, b), (l, r) = out
        return (l, r, t, b)
    if not pads:
        return (0, 0, 0, 0)
    t, l, b, r = pads
    return (l, r, t, b)


def _conv(x, w, b=None, *, a):
    kernel = w.shape[2:]
    stride = a.get("strides", [1] * len(kernel))
    dilation = a.get("dilations", [1] * len(kernel))
    group = a.get("group", 1)
    if len(kernel) != 2:
        return F.conv1d(x, w, b, stride, a.get("pads", [0, 0])[0], dilation, group)
    l, r, t, btm = _pads_2d(a.get("pads"), a.get("auto_pad", "NOTSET"), kernel, stride, dilation, x.shape[2:])
    if l == r and t == btm:
        return F.conv2d(x, w, b, stride, (t, l), dilation, group)
    return F.conv2d(F.pad(x, (l, r, t, btm)), w, b, stride, 0, dilation, group)


def _conv_transpose(x, w, b=None, *, a):
    stride = a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    return F.conv_transpose2d(x, w, b, stride, (pads[0], pads[1]), a.get("output_padding", [0, 0]),
                              a.get("group", 1), a.get("dilations", [1, 1]))


def _pool(kind):
    def run(x, *, a):
        kernel = a["kernel_shape"]
        stride = a.get("strides", [1] * len(kernel))
        l, r, t, b = _pads_2d(a.get("pads"), a.get("auto_pad", "NOTSET"), kernel, stride, [1, 1], x.shape[2:])
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            if (l, r, t, b) != (0, 0, 0, 0):
                x = F.pad(x, (l, r, t, b), value=float("-inf"))
            return F.max_pool2d(x, kernel, stride, 0, a.get("dilations", [1, 1]), ceil)
        if (l, r, t, b) != (0, 0, 0, 0):
            x = F.pad(x, (l, r, t, b))
        return F.avg_pool2d(x, kernel, stride, 0, ceil, bool(a.get("count_include_pad", 0)))
    return run


def _batchnorm(x, scale, bias, mean, var, *, a):
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


def _gemm(x, w, c=None, *, a):
    if a.get("transA", 0):
        x = x.t()
    if a.get("transB", 0):
        w = w.t()
    y = a.get("alpha", 1.0) * (x @ w)
    return y if c is None else y + a.get("beta", 1.0) * c


def _softmax(x, *, a, opset):
    axis = a.get("axis", -1 if opset >= 13 else 1)
    if opset >= 13:
        return torch.softmax(x, axis)
    shape = x.shape  # opset < 13: softmax over the flattened trailing dims
    return torch.softmax(x.flatten(axis), -1).reshape(shape)


def _reshape(x, shape, *, a):
    dims = [int(d) for d in (shape.tolist() if hasattr(shape, "tolist") else shape)]
    if not a.get("allowzero", 0):
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def _slice(x, starts, ends, axes=None, steps=None, *, a):
    starts, ends = starts.tolist(), ends.tolist()
    axes = list(range(len(starts))) if axes is None else axes.tolist()
    steps = [1] * len(starts) if steps is None else steps.tolist()
    index = [slice(None)] * x.dim()
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st < 0:
            raise UnsupportedOperator("Slice with a negative step")
        index[ax] = slice(s, min(e, 2**62), st)
    return x[tuple(index)]


def _split(x, split=None, *, a, n_out):
    axis = a.get("axis", 0)
    sizes = a.get("split") if split is None else split.tolist()
    if sizes is None:
        return torch.chunk(x, n_out, axis)
    return torch.split(x, list(sizes), axis)


def _resize(x, roi=None, scales=None, sizes=None, *, a):
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if sizes is not None and len(sizes):
        size = [int(s) for s in sizes.tolist()[2:]]
        kwargs = {"size": size}
    else:
        kwargs = {"scale_factor": [float(s) for s in scales.tolist()[2:]]}
    if mode == "nearest":
        return F.interpolate(x, mode="nearest", **kwargs)
    ctm = a.get("coordinate_transformation_mode", b"half_pixel")
    align = (ctm.decode() if isinstance(ctm, bytes) else ctm) == "align_corners"
    return F.interpolate(x, mode="bilinear", align_corners=align, **kwargs)


def _axes(a, axes):
    return a.get("axes") if axes is None else axes.tolist()


def _unsqueeze(x, axes=None, *, a):
    for ax in sorted(_axes(a, axes)):
        x = x.unsqueeze(ax)
    return x


def _squeeze(x, axes=None, *, a):
    axes = _axes(a, axes)
    return x.squeeze() if axes is None else x.squeeze(tuple(axes))


def _reduce(fn):
    def run(x, axes=None, *, a):
        axes = _axes(a, axes)
        keep = bool(a.get("keepdims", 1))
        return fn(x, dim=tuple(axes) if axes is not None else tuple(range(x.dim())), keepdim=keep)
    return run


# op name -> (function, needs opset, needs output count)
_OPS: dict[str, Callable] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batchnorm,
    "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda x, *, a: x.mean((2, 3), keepdim=True),
    "GlobalMaxPool": lambda x, *, a: x.amax((2, 3), keepdim=True),
    "Relu": lambda x, *, a: F.relu(x),
    "LeakyRelu": lambda x, *, a: F.leaky_relu(x, a.get("alpha", 0.01)),
    "PRelu": lambda x, s, *, a: torch.where(x >= 0, x, x * s),
    "Sigmoid": lambda x, *, a: torch.sigmoid(x),
    "HardSigmoid": lambda x, *, a: torch.clamp(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1),
    "HardSwish": lambda x, *, a: F.hardswish(x),
    "Tanh": lambda x, *, a: torch.tanh(x),
    "Exp": lambda x, *, a: torch.exp(x), "Log": lambda x, *, a: torch.log(x),
    "Sqrt": lambda x, *, a: torch.sqrt(x), "Neg": lambda x, *, a: -x, "Abs": lambda x, *, a: x.abs(),
    "Clip": lambda x, lo=None, hi=None, *, a: torch.clamp(
        x, a.get("min") if lo is None else lo, a.get("max") if hi is None else hi),
    "Add": lambda x, y, *, a: x + y, "Sub": lambda x, y, *, a: x - y,
    "Mul": lambda x, y, *, a: x * y, "Div": lambda x, y, *, a: x / y,
    "Pow": lambda x, y, *, a: torch.pow(x, y),
    "MatMul": lambda x, y, *, a: x @ y, "Gemm": _gemm,
    "Flatten": lambda x, *, a: x.flatten(a.get("axis", 1)) if a.get("axis", 1) > 0 else x.reshape(1, -1),
    "Reshape": _reshape, "Transpose": lambda x, *, a: x.permute(*a["perm"]) if "perm" in a else x.permute(
        *reversed(range(x.dim()))),
    "Concat": lambda *xs, a: torch.cat(xs, a["axis"]),
    "Slice": _slice, "Split": _split, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Resize": _resize, "Upsample": lambda x, scales, *, a: _resize(x, None, scales, None, a=a),
    "Identity": lambda x, *, a: x, "Dropout": lambda x, *rest, a: x,
    "Softmax": _softmax, "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum),
    "ReduceMax": _reduce(torch.amax),
    "ArgMax": lambda x, *, a: torch.argmax(x, a.get("axis", 0), bool(a.get("keepdims", 1))),
    "Shape": lambda x, *, a: torch.tensor(x.shape[a.get("start", 0):a.get("end", None)], dtype=torch.int64),
    "Gather": lambda x, i, *, a: torch.index_select(x, a.get("axis", 0), i.reshape(-1)).reshape(
        x.shape[:a.get("axis", 0)] + i.shape + x.shape[a.get("axis", 0) + 1:]),
    "Cast": lambda x, *, a: x,  # precision is the backend's choice (fp16/fp32), not the graph's
}
SUPPORTED_OPS = frozenset(_OPS) | {"Constant"}
# inputs that describe shapes, axes or scales: kept as numpy constants so tracing sees fixed values
_SHAPE_ARGS = {"Reshape": {1}, "Slice": {1, 2, 3, 4}, "Split": {1}, "Squeeze": {1}, "Unsqueeze": {1},
               "Resize": {1, 2, 3}, "Upsample": {1}, "ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1}}


class OnnxModule(torch.nn.Module):
    """Runs an ONNX model's graph with torch operators. Inputs are positional, in graph order;
    the result is a tuple in the graph's output order."""

    def __init__(self, model: onnx.ModelProto):
        super().__init__()
        graph = model.graph
        unknown = sorted({n.op_type for n in graph.node} - SUPPORTED_OPS)
        if unknown:
            raise UnsupportedOperator(", ".join(unknown))
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.input_names = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
        self.output_names = [o.name for o in graph.output]
        self._slots: dict[str, str] = {}  # onnx tensor name -> buffer attribute name
        self._static: dict[str, np.ndarray] = {}  # shape-like constants, used as Python values
        self._shape_like = {name for n in graph.node for i, name in enumerate(n.input)
                            if i in _SHAPE_ARGS.get(n.op_type, ())}
        for init in graph.initializer:
            self._register(init.name, numpy_helper.to_array(init))
        self.nodes: list[tuple[str, list[str], list[str], dict]] = []
        for node in graph.node:
            attrs = _attrs(node)
            if node.op_type == "Constant":
                value = attrs.get("value")
                array = numpy_helper.to_array(value) if value is not None else np.asarray(
                    attrs.get("value_float", attrs.get("value_int", attrs.get("value_floats",
                                                                               attrs.get("value_ints")))))
                self._register(node.output[0], array)
                continue
            self.nodes.append((node.op_type, list(node.input), list(node.output), attrs))

    def _register(self, name: str, array: np.ndarray) -> None:
        if name in self._shape_like:
            self._static[name] = np.array(array)
            return
        slot = f"c{len(self._slots)}"
        self._slots[name] = slot
        self.register_buffer(slot, torch.from_numpy(np.array(array)), persistent=True)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict = dict(zip(self.input_names, inputs))
        env.update(self._static)
        for name, slot in self._slots.items():
            env[name] = getattr(self, slot)
        for op, ins, outs, attrs in self.nodes:
            args = [env[i] if i else None for i in ins]
            while args and args[-1] is None:
                args.pop()
            kwargs = {"a": attrs}
            if op == "Softmax":
                kwargs["opset"] = self.opset
            if op == "Split":
                kwargs["n_out"] = len(outs)
            result = _OPS[op](*args, **kwargs)
            if len(outs) == 1:
                env[outs[0]] = result
            else:
                env.update(zip(outs, result))
        return tuple(env[o] for o in self.output_names)
