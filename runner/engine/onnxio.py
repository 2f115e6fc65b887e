"""An ONNX model's graph inputs and outputs, read without its weights.

``dsrun check`` compares every model with its nvinfer config before anything is built; loading a
whole ModelProto would read (and copy) every initializer. This walks the protobuf wire format of the
memory-mapped file instead: ModelProto field 7 (graph), and in it fields 11 (input), 12 (output) and
only the ``name`` (field 8) of each initializer (field 5), skipping tensors by their length prefix.

>>> import onnx, tempfile, os
>>> from onnx import helper, TensorProto, numpy_helper
>>> import numpy as np
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 2, 2])
>>> w = numpy_helper.from_array(np.zeros((4, 3, 1, 1), np.float32), "w")
>>> g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], strides=[4, 4])], "g", [x], [y], [w])
>>> path = os.path.join(tempfile.mkdtemp(), "m.onnx"); onnx.save(helper.make_model(g), path)
>>> ins, outs = read_graph_io(path)
>>> [(t.name, t.dims) for t in ins], [(t.name, t.dims) for t in outs]
([('x', (3, 8, 8))], [('y', (4, 2, 2))])
"""

from __future__ import annotations

import mmap
from pathlib import Path

import onnx

from runner.engine.onnxinfo import GraphTensor, tensor_of

_GRAPH, _INITIALIZER, _INPUT, _OUTPUT, _TENSOR_NAME = 7, 5, 11, 12, 8


class NotOnnx(ValueError):
    """The bytes are not an ONNX model (not protobuf, truncated, or no graph)."""


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise NotOnnx("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf, pos: int, end: int):
    """(field number, start, stop) of every length-delimited field in ``buf[pos:end]``; others skipped."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise NotOnnx("a field runs past the end of the file (truncated?)")
            yield field, pos, pos + size
            pos += size
        else:
            raise NotOnnx(f"wire type {wire} is not protobuf's")
    if pos != end:
        raise NotOnnx("truncated field")


def read_graph_io(path: str | Path) -> tuple[list[GraphTensor], list[GraphTensor]]:
    """(inputs without initializers, outputs) of an ONNX file; :class:`NotOnnx` when unreadable as one."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            raise NotOnnx("the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            graph = next(((a, b) for field, a, b in _fields(buf, 0, size) if field == _GRAPH), None)
            if graph is None:
                raise NotOnnx("no graph in the file")
            inputs, outputs, initializers = [], [], set()
            for field, a, b in _fields(buf, *graph):
                if field in (_INPUT, _OUTPUT):
                    try:
                        value = onnx.ValueInfoProto.FromString(bytes(buf[a:b]))
                    except Exception as exc:
                        raise NotOnnx(f"unreadable graph {'input' if field == _INPUT else 'output'}") from exc
                    (inputs if field == _INPUT else outputs).append(value)
                elif field == _INITIALIZER:
                    name = next((bytes(buf[c:d]) for f, c, d in _fields(buf, a, b) if f == _TENSOR_NAME), b"")
                    initializers.add(name.decode("utf-8", "replace"))
    return ([tensor_of(v) for v in inputs if v.name not in initializers], [tensor_of(v) for v in outputs])
