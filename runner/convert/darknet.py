"""Darknet ``.cfg`` + ``.weights`` → ONNX, laid out the way DeepStream-Yolo builds its TensorRT network.

DeepStream-Yolo (marcoslucianops/DeepStream-Yolo, ``nvdsinfer_custom_impl_Yolo/yolo.cpp``
``Yolo::buildYoloNetwork`` and ``layers/*.cpp``) reads a Darknet network layer by layer and ends it in
its ``YoloLayer`` plugin (``yoloForward.cu`` ``gpuYoloLayer``, ``yoloForward_nc.cu`` for
``new_coords=1``), whose single output ``output`` is ``(batch, boxes, 6)``: ``x1, y1, x2, y2`` in
network-input pixels, ``score = best class probability x objectness`` and the class index as a float —
exactly what its ``NvDsInferParseYolo`` (``nvdsparsebbox_Yolo.cpp`` ``decodeTensorYolo``) reads.
Boxes are ordered head by head, and within a head anchor, row, column. This module writes the same
network as ONNX with numpy and onnx only:

* ``[convolutional]`` with ``batch_normalize`` (folded into the weights, ``sqrt(var + eps)`` as
  DeepStream-Yolo does), ``groups``, activations ``linear leaky relu logistic tanh mish swish``;
* ``[route]`` (concatenation of earlier layers, with ``groups``/``group_id`` channel slices);
* ``[maxpool]`` with Darknet's padding (``padding = size - 1``, ``size/2`` of it before);
* ``[upsample]`` (nearest), ``[shortcut]`` (sum + activation), ``[dropout]`` (identity);
* ``[yolo]`` heads (``mask``, ``anchors``, ``scale_x_y``, ``new_coords``) decoded in the graph.

That covers YOLOv3, YOLOv4 and their tiny variants. The input is ``input`` ``(batch, C, H, W)``
with a dynamic batch axis; pre-processing (``1/255``, RGB) is the nvinfer config's.

>>> cfg = parse_cfg("[net]\\nwidth=32\\nheight=32\\n[maxpool]\\nsize=2\\nstride=2\\n")
>>> [(s.type, s.get_int("size")) for s in cfg]
[('net', None), ('maxpool', 2)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runner.convert import ConvertError

__all__ = ["Section", "parse_cfg", "read_weights", "darknet_to_onnx", "CONVERTER_VERSION",
           "INPUT_NAME", "OUTPUT_NAME"]

#: Bump when the ONNX written for the same cfg + weights changes (it is part of the engine cache key).
CONVERTER_VERSION = 1
INPUT_NAME, OUTPUT_NAME = "input", "output"  # DeepStream-Yolo's blob names
OPSET = 13
BN_EPS = 1e-5  # convolutional_layer.cpp: eps default when batch_normalize=1
LEAKY_ALPHA = 0.1  # activation_layer.cpp: leaky->setAlpha(0.1)


@dataclass(slots=True)
class Section:
    """One ``[type]`` block of a cfg file: its keys as written and the line it starts on."""

    type: str
    line: int
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def get_int(self, key: str, default: int | None = None) -> int | None:
        value = self.values.get(key)
        return default if value is None else int(float(value))

    def get_float(self, key: str, default: float) -> float:
        value = self.values.get(key)
        return default if value is None else float(value)

    def get_ints(self, key: str) -> list[int]:
        value = self.values.get(key, "")
        return [int(v) for v in value.split(",") if v.strip()]


def parse_cfg(text: str, path: Path | str = "<cfg>") -> list[Section]:
    """The sections of a Darknet cfg (``#`` and ``;`` comments, ``key = value`` lines)."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConvertError(f"{path}:{number}: section header {line!r} lacks its ']' — fix the cfg")
            sections.append(Section(line[1:-1].strip().lower(), number))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].values[key.strip()] = value.strip()
        else:
            raise ConvertError(f"{path}:{number}: {line!r} is neither '[section]' nor 'key=value' — fix the cfg")
    if not sections or sections[0].type not in ("net", "network"):
        raise ConvertError(f"{path}: a Darknet cfg starts with a [net] section — is this a Darknet .cfg?")
    return sections


def read_weights(path: Path) -> np.ndarray:
    """The float32 values of a ``.weights`` file after its header (major, minor, revision as int32,
    then ``seen`` as int64 from version 0.2 on, int32 before — Darknet's ``load_weights_upto``)."""
    data = Path(path).read_bytes()
    if len(data) < 16:
        raise ConvertError(f"{path}: {len(data)} bytes is too short for a Darknet .weights file")
    major, minor, _revision = np.frombuffer(data[:12], "<i4")
    seen = 8 if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000 else 4
    body = data[12 + seen:]
    if len(body) % 4:
        raise ConvertError(f"{path}: {len(body)} bytes of weights is not a whole number of float32 values "
                           "— the file is truncated or not Darknet weights")
    return np.frombuffer(body, "<f4")


class _Weights:
    """Reads consecutive float32 runs off the weights file, as Darknet's loaders do."""

    def __init__(self, values: np.ndarray, path: Path) -> None:
        self.values, self.path, self.at = values, path, 0

    def take(self, n: int, section: Section) -> np.ndarray:
        if self.at + n > len(self.values):
            raise ConvertError(f"{self.path}: ends after {len(self.values)} values, but the cfg's "
                               f"[{section.type}] at line {section.line} needs {n} more from {self.at} — "
                               "the .weights file does not belong to this .cfg")
        out = self.values[self.at:self.at + n]
        self.at += n
        return out


@dataclass(slots=True)
class _Tensor:
    name: str
    c: int
    h: int
    w: int


class _Graph:
    """Collects ONNX nodes and initializers with unique names."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        name = self.name(stem)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, **attrs) -> str:
        out = self.name(stem or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _activation(g: _Graph, x: str, kind: str, section: Section, cfg_path) -> str:
    if kind == "linear":
        return x
    if kind == "leaky":
        return g.op("LeakyRelu", [x], alpha=LEAKY_ALPHA)
    if kind == "relu":
        return g.op("Relu", [x])
    if kind == "logistic":
        return g.op("Sigmoid", [x])
    if kind == "tanh":
        return g.op("Tanh", [x])
    if kind == "mish":  # x * tanh(softplus(x)), softplus = log(1 + exp(x))
        soft = g.op("Log", [g.op("Add", [g.op("Exp", [x]), g.const(np.array(1, np.float32))])])
        return g.op("Mul", [x, g.op("Tanh", [soft])])
    if kind in ("swish", "silu"):
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    raise ConvertError(f"{cfg_path}:{section.line}: [{section.type}] activation={kind} is not supported "
                       "(linear, leaky, relu, logistic, tanh, mish, swish)")


def _conv(g: _Graph, x: _Tensor, s: Section, weights: _Weights, cfg_path) -> _Tensor:
    filters, size = s.get_int("filters", 1), s.get_int("size", 1)
    stride, groups = s.get_int("stride", 1), s.get_int("groups", 1)
    pad = size // 2 if s.get_int("pad", 0) else s.get_int("padding", 0)
    if x.c % groups or filters % groups:
        raise ConvertError(f"{cfg_path}:{s.line}: [convolutional] groups={groups} does not divide "
                           f"{x.c} input channels and {filters} filters — fix the cfg")
    bn = s.get_int("batch_normalize", 0) == 1
    count = filters * (x.c // groups) * size * size
    bias = weights.take(filters, s).astype(np.float64)
    if bn:
        scale = weights.take(filters, s).astype(np.float64)
        mean = weights.take(filters, s).astype(np.float64)
        var = weights.take(filters, s).astype(np.float64)
    kernel = weights.take(count, s).astype(np.float64).reshape(filters, x.c // groups, size, size)
    if bn:  # y = scale * (conv - mean) / sqrt(var + eps) + bias, folded into the convolution
        if (var < 0).any():
            raise ConvertError(f"{cfg_path}:{s.line}: [{s.type}] reads negative batch-norm variances from "
                               f"{weights.path} — the .weights file does not belong to this .cfg")
        factor = scale / np.sqrt(var + s.get_float("eps", BN_EPS))
        kernel = kernel * factor[:, None, None, None]
        bias = bias - mean * factor
    y = g.op("Conv", [x.name, g.const(kernel.astype(np.float32), "w"), g.const(bias.astype(np.float32), "b")],
             kernel_shape=[size, size], strides=[stride, stride], pads=[pad] * 4, group=groups)
    y = _activation(g, y, s.get("activation", "logistic"), s, cfg_path)
    return _Tensor(y, filters, (x.h + 2 * pad - size) // stride + 1, (x.w + 2 * pad - size) // stride + 1)


def _maxpool(g: _Graph, x: _Tensor, s: Section, cfg_path) -> _Tensor:
    size = s.get_int("size", 1)
    stride = s.get_int("stride", 1)
    padding = s.get_int("padding", size - 1)  # maxpool_layer.c: l.pad = padding, offset -pad/2
    if s.get_int("maxpool_depth", 0):
        raise ConvertError(f"{cfg_path}:{s.line}: [maxpool] maxpool_depth is not supported")
    before = padding // 2
    y = g.op("MaxPool", [x.name], kernel_shape=[size, size], strides=[stride, stride],
             pads=[before, before, padding - before, padding - before])
    return _Tensor(y, x.c, (x.h + padding - size) // stride + 1, (x.w + padding - size) // stride + 1)


def _index(value: int, current: int, s: Section, cfg_path) -> int:
    index = current + value if value < 0 else value
    if not 0 <= index < current:
        raise ConvertError(f"{cfg_path}:{s.line}: [{s.type}] refers to layer {value}, which is not an "
                           f"earlier layer (this is layer {current}) — fix the cfg")
    return index


def _route(g: _Graph, layers: list[_Tensor], s: Section, cfg_path) -> _Tensor:
    refs = [layers[_index(v, len(layers), s, cfg_path)] for v in s.get_ints("layers")]
    if not refs:
        raise ConvertError(f"{cfg_path}:{s.line}: [route] has no layers= — fix the cfg")
    if len({(t.h, t.w) for t in refs}) > 1:
        raise ConvertError(f"{cfg_path}:{s.line}: [route] joins layers of different sizes "
                           f"{[(t.h, t.w) for t in refs]} — fix the cfg")
    out = refs[0] if len(refs) == 1 else _Tensor(g.op("Concat", [t.name for t in refs], axis=1),
                                                 sum(t.c for t in refs), refs[0].h, refs[0].w)
    groups = s.get_int("groups", 1)
    if groups > 1:  # route_layer.cpp: slice channel group group_id of the concatenation
        part = out.c // groups
        start = part * s.get_int("group_id", 0)
        name = g.op("Slice", [out.name, g.const(np.array([start], np.int64)),
                              g.const(np.array([start + part], np.int64)), g.const(np.array([1], np.int64))])
        out = _Tensor(name, part, out.h, out.w)
    return out


def _shortcut(g: _Graph, x: _Tensor, layers: list[_Tensor], s: Section, cfg_path) -> _Tensor:
    if s.get("weights_type", "none") != "none":
        raise ConvertError(f"{cfg_path}:{s.line}: [shortcut] weights_type is not supported")
    other = layers[_index(s.get_ints("from")[0], len(layers), s, cfg_path)]
    if (other.c, other.h, other.w) != (x.c, x.h, x.w):
        raise ConvertError(f"{cfg_path}:{s.line}: [shortcut] adds layers of shapes {(x.c, x.h, x.w)} and "
                           f"{(other.c, other.h, other.w)} — fix the cfg")
    y = _activation(g, g.op("Add", [x.name, other.name]), s.get("activation", "linear"), s, cfg_path)
    return _Tensor(y, x.c, x.h, x.w)


def _upsample(g: _Graph, x: _Tensor, s: Section, cfg_path) -> _Tensor:
    stride = s.get_int("stride", 2)
    if stride < 1 or s.get_float("scale", 1.0) != 1.0:
        raise ConvertError(f"{cfg_path}:{s.line}: [upsample] supports a positive stride and scale=1")
    scales = g.const(np.array([1, 1, stride, stride], np.float32))
    y = g.op("Resize", [x.name, "", scales], mode="nearest")
    return _Tensor(y, x.c, x.h * stride, x.w * stride)


@dataclass(slots=True)
class _Head:
    tensor: _Tensor
    anchors: np.ndarray  # (A, 2) pixels
    scale_xy: float
    new_coords: bool
    classes: int


def _yolo_head(s: Section, x: _Tensor, cfg_path) -> _Head:
    anchors = np.array([float(v) for v in s.get("anchors", "").split(",") if v.strip()], np.float32)
    if len(anchors) % 2 or not len(anchors):
        raise ConvertError(f"{cfg_path}:{s.line}: [yolo] anchors= needs pairs of width,height — fix the cfg")
    anchors = anchors.reshape(-1, 2)
    mask = s.get_ints("mask") or list(range(s.get_int("num", len(anchors))))
    if max(mask) >= len(anchors):
        raise ConvertError(f"{cfg_path}:{s.line}: [yolo] mask={mask} names anchors beyond the "
                           f"{len(anchors)} given — fix the cfg")
    classes = s.get_int("classes", 20)
    if x.c != len(mask) * (5 + classes):
        raise ConvertError(f"{cfg_path}:{s.line}: [yolo] expects {len(mask)} x (5 + {classes}) = "
                           f"{len(mask) * (5 + classes)} channels from the layer before, got {x.c} — set "
                           "filters= of the last [convolutional] accordingly")
    return _Head(x, anchors[mask], s.get_float("scale_x_y", 1.0), bool(s.get_int("new_coords", 0)), classes)


def _decode(g: _Graph, head: _Head, net_w: int, net_h: int) -> str:
    """One head's ``(batch, A*H*W, 6)`` rows, as ``gpuYoloLayer`` / ``gpuYoloLayer_nc`` compute them."""
    t, a, k = head.tensor, len(head.anchors), 5 + head.classes
    cells = t.h * t.w
    x = g.op("Reshape", [t.name, g.const(np.array([0, a, k, cells], np.int64))])
    x = g.op("Transpose", [x], perm=[0, 1, 3, 2])                       # (n, A, H*W, k)
    x = g.op("Reshape", [x, g.const(np.array([0, a * cells, k], np.int64))])

    def part(lo: int, hi: int) -> str:
        return g.op("Slice", [x, g.const(np.array([lo], np.int64)), g.const(np.array([hi], np.int64)),
                              g.const(np.array([2], np.int64))])

    xy, wh, obj, cls = part(0, 2), part(2, 4), part(4, 5), part(5, k)
    if not head.new_coords:  # new_coords heads come out of a logistic convolution already
        xy, obj, cls = g.op("Sigmoid", [xy]), g.op("Sigmoid", [obj]), g.op("Sigmoid", [cls])
    gy, gx = np.meshgrid(np.arange(t.h, dtype=np.float32), np.arange(t.w, dtype=np.float32), indexing="ij")
    grid = np.tile(np.stack([gx.ravel(), gy.ravel()], 1), (a, 1))        # (A*H*W, 2): column, row
    stride = np.array([net_w / t.w, net_h / t.h], np.float32)
    alpha, beta = head.scale_xy, -0.5 * (head.scale_xy - 1)
    centre = g.op("Mul", [g.op("Add", [g.op("Add", [g.op("Mul", [xy, g.const(np.array(alpha, np.float32))]),
                                                      g.const(np.array(beta, np.float32))]),
                                        g.const(grid)]), g.const(stride)])
    anchors = np.repeat(head.anchors, cells, axis=0).astype(np.float32)  # (A*H*W, 2)
    if head.new_coords:  # (2 t)^2 x anchor
        two = g.op("Mul", [wh, g.const(np.array(2, np.float32))])
        size = g.op("Mul", [g.op("Mul", [two, two]), g.const(anchors)])
    else:
        size = g.op("Mul", [g.op("Exp", [wh]), g.const(anchors)])
    half = g.op("Mul", [size, g.const(np.array(0.5, np.float32))])
    best = g.op("ReduceMax", [cls], axes=[2], keepdims=1)
    index = g.op("Cast", [g.op("ArgMax", [cls], axis=2, keepdims=1)], to=1)  # float class id
    score = g.op("Mul", [best, obj])
    return g.op("Concat", [g.op("Sub", [centre, half]), g.op("Add", [centre, half]), score, index], axis=2)


def darknet_to_onnx(cfg_path: Path, weights_path: Path):
    """The ONNX model (``onnx.ModelProto``) of a Darknet cfg + weights pair; see the module doc."""
    import onnx
    from onnx import TensorProto, helper

    cfg_path, weights_path = Path(cfg_path), Path(weights_path)
    try:
        sections = parse_cfg(cfg_path.read_text(encoding="utf-8", errors="replace"), cfg_path)
    except OSError as error:
        raise ConvertError(f"{cfg_path}: cannot be read ({error.strerror}) — fix custom-network-config") from None
    try:
        weights = _Weights(read_weights(weights_path), weights_path)
    except OSError as error:
        raise ConvertError(f"{weights_path}: cannot be read ({error.strerror}) — fix model-file") from None
    net = sections[0]
    c, h, w = net.get_int("channels", 3), net.get_int("height", 416), net.get_int("width", 416)
    g = _Graph()
    x = _Tensor(INPUT_NAME, c, h, w)
    layers: list[_Tensor] = []
    heads: list[_Head] = []
    for s in sections[1:]:
        if s.type in ("convolutional", "conv"):
            x = _conv(g, x, s, weights, cfg_path)
        elif s.type in ("maxpool", "max"):
            x = _maxpool(g, x, s, cfg_path)
        elif s.type == "route":
            x = _route(g, layers, s, cfg_path)
        elif s.type == "shortcut":
            x = _shortcut(g, x, layers, s, cfg_path)
        elif s.type == "upsample":
            x = _upsample(g, x, s, cfg_path)
        elif s.type == "yolo":
            heads.append(_yolo_head(s, x, cfg_path))  # its output, for later routes, is its input
        elif s.type != "dropout":
            raise ConvertError(f"{cfg_path}:{s.line}: [{s.type}] layers are not supported by dsrun's Darknet "
                               "converter (it reads YOLOv3/v4 and their tiny variants: convolutional, route, "
                               "maxpool, upsample, shortcut, yolo) — export the model to ONNX and set onnx-file")
        layers.append(x)
    if weights.at != len(weights.values):
        raise ConvertError(f"{weights_path}: {len(weights.values) - weights.at} of its {len(weights.values)} "
                           f"values are left over after the cfg's last layer — the .weights file does not "
                           f"belong to {cfg_path.name}")
    if not heads:
        raise ConvertError(f"{cfg_path}: has no [yolo] layer — dsrun converts YOLO detectors only")
    if len({hd.classes for hd in heads}) > 1:
        raise ConvertError(f"{cfg_path}: [yolo] layers disagree on classes= — fix the cfg")
    rows = [_decode(g, hd, w, h) for hd in heads]
    out = rows[0] if len(rows) == 1 else g.op("Concat", rows, axis=1)
    g.nodes.append(helper.make_node("Identity", [out], [OUTPUT_NAME], name=OUTPUT_NAME))
    boxes = sum(len(hd.anchors) * hd.tensor.h * hd.tensor.w for hd in heads)
    graph = helper.make_graph(
        g.nodes, cfg_path.stem,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", c, h, w])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", boxes, 6])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="dsrun.convert.darknet", producer_version=str(CONVERTER_VERSION))
    model.doc_string = (f"{cfg_path.name} + {weights_path.name} converted by dsrun (Darknet -> ONNX); output "
                        "(batch, boxes, 6): x1, y1, x2, y2, score, class — DeepStream-Yolo's layout")
    onnx.checker.check_model(model)
    return model
