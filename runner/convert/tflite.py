"""TFLite flatbuffer → ONNX for float CNNs such as MediaPipe's selfie segmentation, without TensorFlow.

The model is read with :mod:`runner.convert.flatbuffer` using the field numbers of TensorFlow's
``tensorflow/lite/schema/schema.fbs`` (Model, SubGraph, Tensor, Operator, OperatorCode, Buffer and the
options tables of the operators below). TFLite is NHWC; the ONNX graph is NCHW throughout — 4-D
activations are NCHW, weights are transposed when written, 4-D constants of element-wise operators are
transposed and per-channel vectors reshaped to ``(1, C, 1, 1)`` — so the model's input is ``(batch,
C, H, W)`` like any nvinfer model and its 4-D outputs are NCHW.

Operators: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D, ADD, MUL, RELU, RELU6, LOGISTIC,
HARD_SWISH, RESIZE_BILINEAR (align_corners / half_pixel_centers), DEQUANTIZE (float16 weights made
float32 at conversion), fused activations, and MediaPipe's custom ``Convolution2DTransposeBias``
(``mediapipe/util/tflite/operations/transpose_conv_bias.cc``: weights OHWI, bias, custom options
``TfLiteTransposeConvParams`` {padding, stride_width, stride_height}; SAME padding is
``max(0, k - (in - 1) % s - 1)``, half of it — rounded down — before).

>>> BUILTIN[3], BUILTIN[117]
('CONV_2D', 'HARD_SWISH')
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from runner.convert import ConvertError
from runner.convert.flatbuffer import Table, root

__all__ = ["tflite_to_onnx", "BUILTIN"]

#: schema.fbs BuiltinOperator codes this converter knows
BUILTIN = {0: "ADD", 1: "AVERAGE_POOL_2D", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
           14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 21: "RELU6", 23: "RESIZE_BILINEAR",
           32: "CUSTOM", 117: "HARD_SWISH"}
_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_SAME, _VALID = 0, 1  # schema.fbs Padding
_PADDING_SAME_C = 1   # TfLitePadding kTfLitePaddingSame (C API, used by custom options)
OPSET = 14            # HardSwish


class _Model:
    """The first subgraph of a TFLite model: tensors (shape, type, name, constant data) and operators."""

    def __init__(self, data: bytes, path: Path) -> None:
        if data[4:8] != b"TFL3":
            raise ConvertError(f"{path}: not a TFLite model (no TFL3 identifier)")
        model = root(data)
        self.path = path
        self.codes = [(max(c.scalar(3, "<i"), c.scalar(0, "<b")), c.string(1)) for c in model.tables(1)]
        self.buffers = [b.vector(0, "u1") for b in model.tables(4)]
        graph = model.tables(2)[0]
        self.tensors = graph.tables(0)
        self.inputs = [int(i) for i in graph.vector(1, "<i4")]
        self.outputs = [int(i) for i in graph.vector(2, "<i4")]
        self.operators = graph.tables(3)

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.tensors[index].vector(0, "<i4"))

    def name(self, index: int) -> str:
        return self.tensors[index].string(3) or f"t{index}"

    def constant(self, index: int) -> np.ndarray | None:
        t = self.tensors[index]
        data = self.buffers[t.scalar(2, "<I")] if t.scalar(2, "<I") < len(self.buffers) else None
        if data is None or not len(data):
            return None
        dtype = _TYPES.get(t.scalar(1, "<b"))
        if dtype is None:
            raise ConvertError(f"{self.path}: tensor {self.name(index)!r} has an unsupported type "
                               f"{t.scalar(1, '<b')}")
        return np.frombuffer(data.tobytes(), dtype).reshape(self.shape(index))

    def opname(self, op: Table) -> str:
        code, custom = self.codes[op.scalar(0, "<I")]
        return custom if code == 32 else BUILTIN.get(code, f"builtin operator {code}")


def _same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) for one spatial axis."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


class _Converter:
    def __init__(self, m: _Model) -> None:
        from onnx import helper, numpy_helper

        self.m, self.helper, self.numpy_helper = m, helper, numpy_helper
        self.nodes, self.inits = [], []
        self.values: dict[int, str] = {}       # tflite tensor → ONNX name
        self.consts: dict[int, np.ndarray] = {}  # tflite tensor → folded constant (NHWC, as in TFLite)
        self.count = 0

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        self.count += 1
        name = f"{stem}_{self.count}"
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        self.count += 1
        out = out or f"{op_type.lower()}_{self.count}"
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=f"{op_type}_{self.count}", **attrs))
        return out

    def weight(self, index: int) -> np.ndarray:
        value = self.consts.get(index)
        if value is None:
            value = self.m.constant(index)
        if value is None:
            raise ConvertError(f"{self.m.path}: tensor {self.m.name(index)!r} should be a constant weight")
        return value.astype(np.float32) if value.dtype == np.float16 else value

    def value(self, index: int) -> str:
        """The ONNX name of a tensor used as an activation (a constant becomes an NCHW initializer)."""
        if index in self.values:
            return self.values[index]
        array = self.consts.get(index)
        if array is None:
            array = self.m.constant(index)
        if array is None:
            raise ConvertError(f"{self.m.path}: tensor {self.m.name(index)!r} is used before it is computed")
        array = array.astype(np.float32)
        if array.ndim == 4:
            array = array.transpose(0, 3, 1, 2)
        elif array.ndim == 1 and array.size > 1:
            array = array.reshape(1, -1, 1, 1)
        self.values[index] = self.const(array)
        return self.values[index]

    def activation(self, x: str, fused: int, where: str) -> str:
        if fused == 0:
            return x
        if fused == 1:
            return self.op("Relu", [x])
        if fused == 3:
            return self.op("Clip", [x, self.const(np.array(0, np.float32)), self.const(np.array(6, np.float32))])
        if fused == 4:
            return self.op("Tanh", [x])
        raise ConvertError(f"{self.m.path}: {where}: fused activation {fused} is not supported")

    def convert(self, op: Table) -> None:
        m, kind = self.m, self.m.opname(op)
        ins = [int(i) for i in op.vector(1, "<i4")]
        out = int(op.vector(2, "<i4")[0])
        opts = op.table(4)
        where = f"operator {kind} → {m.name(out)!r}"
        result: str
        if kind == "DEQUANTIZE" and (m.constant(ins[0]) is not None):
            self.consts[out] = m.constant(ins[0]).astype(np.float32)
            return
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            depthwise = kind == "DEPTHWISE_CONV_2D"
            w = self.weight(ins[1])                    # conv OHWI; depthwise 1HW(C*M)
            b = self.weight(ins[2]) if len(ins) > 2 and ins[2] >= 0 else np.zeros(w.shape[-1 if depthwise else 0], np.float32)
            padding, sw, sh = opts.scalar(0, "<b"), opts.scalar(1, "<i", 1), opts.scalar(2, "<i", 1)
            act_field, dil = (4, (5, 6)) if depthwise else (3, (4, 5))
            dw, dh = opts.scalar(dil[0], "<i", 1), opts.scalar(dil[1], "<i", 1)
            kernel = w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2)  # → O, I/g, H, W
            _, h, wd, c = m.shape(ins[0])
            kh, kw = kernel.shape[2:]
            (pt, pb), (pl, pr) = ((_same_pads(h, kh, sh, dh), _same_pads(wd, kw, sw, dw)) if padding == _SAME
                                  else ((0, 0), (0, 0)))
            result = self.op("Conv", [self.value(ins[0]), self.const(kernel), self.const(b)],
                             kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw],
                             pads=[pt, pl, pb, pr], group=c if depthwise else 1)
            result = self.activation(result, opts.scalar(act_field, "<b"), where)
        elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            padding, sw, sh = opts.scalar(0, "<b"), opts.scalar(1, "<i", 1), opts.scalar(2, "<i", 1)
            fw, fh = opts.scalar(3, "<i", 1), opts.scalar(4, "<i", 1)
            _, h, wd, _ = m.shape(ins[0])
            (pt, pb), (pl, pr) = ((_same_pads(h, fh, sh), _same_pads(wd, fw, sw)) if padding == _SAME
                                  else ((0, 0), (0, 0)))
            onnx_op = "AveragePool" if kind == "AVERAGE_POOL_2D" else "MaxPool"
            extra = {"count_include_pad": 0} if onnx_op == "AveragePool" else {}
            result = self.op(onnx_op, [self.value(ins[0])], kernel_shape=[fh, fw], strides=[sh, sw],
                             pads=[pt, pl, pb, pr], **extra)
            result = self.activation(result, opts.scalar(5, "<b"), where)
        elif kind in ("ADD", "MUL"):
            result = self.op(kind.capitalize(), [self.value(ins[0]), self.value(ins[1])])
            result = self.activation(result, opts.scalar(0, "<b") if opts else 0, where)
        elif kind in ("RELU", "RELU6", "LOGISTIC", "HARD_SWISH"):
            x = self.value(ins[0])
            result = {"RELU": lambda: self.op("Relu", [x]), "LOGISTIC": lambda: self.op("Sigmoid", [x]),
                      "HARD_SWISH": lambda: self.op("HardSwish", [x]),
                      "RELU6": lambda: self.activation(x, 3, where)}[kind]()
        elif kind == "RESIZE_BILINEAR":
            (_, h, wd, _), (_, oh, ow, _) = m.shape(ins[0]), m.shape(out)
            align, half = bool(opts.scalar(2, "<b")), bool(opts.scalar(3, "<b"))
            mode = "align_corners" if align else ("half_pixel" if half else "asymmetric")
            scales = np.array([1, 1, oh / h, ow / wd], np.float32)
            result = self.op("Resize", [self.value(ins[0]), "", self.const(scales)], mode="linear",
                             coordinate_transformation_mode=mode)
        elif kind == "Convolution2DTransposeBias":
            w, b = self.weight(ins[1]), self.weight(ins[2])   # OHWI, (O,)
            raw = op.vector(5, "u1").tobytes()
            if len(raw) < 12:
                raise ConvertError(f"{m.path}: {where}: custom options of {len(raw)} bytes, expected 12")
            padding, sw, sh = struct.unpack_from("<iii", raw)
            _, h, wd, _ = m.shape(ins[0])
            kh, kw = w.shape[1:3]
            ph = max(0, kh - (h - 1) % sh - 1) if padding == _PADDING_SAME_C else 0
            pw = max(0, kw - (wd - 1) % sw - 1) if padding == _PADDING_SAME_C else 0
            result = self.op("ConvTranspose", [self.value(ins[0]), self.const(w.transpose(3, 0, 1, 2)),
                                               self.const(b)], kernel_shape=[kh, kw], strides=[sh, sw],
                             pads=[ph // 2, pw // 2, ph - ph // 2, pw - pw // 2])
        else:
            raise ConvertError(f"{m.path}: {where} is not supported by dsrun's TFLite converter — export the "
                               "model to ONNX another way")
        self.values[out] = result


def tflite_to_onnx(path: Path, graph_name: str | None = None):
    """The ONNX model (``onnx.ModelProto``) of the float TFLite model at ``path`` (first subgraph)."""
    import onnx
    from onnx import TensorProto, helper

    path = Path(path)
    m = _Model(path.read_bytes(), path)
    c = _Converter(m)
    inputs = []
    for index in m.inputs:
        shape = m.shape(index)
        if len(shape) != 4:
            raise ConvertError(f"{path}: input {m.name(index)!r} has shape {shape}; only NHWC images convert")
        c.values[index] = m.name(index)
        inputs.append(helper.make_tensor_value_info(m.name(index), TensorProto.FLOAT,
                                                    ["batch", shape[3], shape[1], shape[2]]))
    for op in m.operators:
        c.convert(op)
    outputs = []
    for index in m.outputs:
        shape = m.shape(index)
        c.op("Identity", [c.values[index]], out=m.name(index))
        dims = ["batch", shape[3], shape[1], shape[2]] if len(shape) == 4 else ["batch", *shape[1:]]
        outputs.append(helper.make_tensor_value_info(m.name(index), TensorProto.FLOAT, dims))
    graph = helper.make_graph(c.nodes, graph_name or path.stem, inputs, outputs, c.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="dsrun.convert.tflite")
    model.doc_string = f"{path.name} converted by dsrun (TFLite NHWC -> ONNX NCHW, same weights and operators)"
    onnx.checker.check_model(model)
    return model
