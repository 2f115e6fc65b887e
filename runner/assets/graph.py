"""A small ONNX graph builder for the generated models: seeded weights, named tensors, one op per call.

Convolutions carry their (folded) batch-norm as a bias. Weights are He-normal from a seeded
``numpy.random.Generator``, so the same seed gives the same graph and the same bytes.

>>> g = Graph(seed=0)
>>> x = g.input("x", ["N", 3, 8, 8])
>>> y = g.conv(x, 3, 4, k=3, act="relu")
>>> m = g.model([x], [g.output(y, "y", ["N", 4, 8, 8])])
>>> [i.name for i in m.graph.input], len(m.graph.initializer)
(['x'], 2)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["Graph", "OPSET", "IR_VERSION"]

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.10 and TensorRT 8.x parsers


class Graph:
    """Accumulates nodes and initializers; every method returns the name of its output tensor."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.weights: dict[str, np.ndarray] = {}
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def node(self, op: str, inputs: list[str], name: str | None = None, output: str | None = None,
             **attrs) -> str:
        name = name or self._name(op.lower())
        out = output or f"{name}:0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def const(self, value: np.ndarray, prefix: str = "const") -> str:
        name = self._name(prefix)
        self.weights[name] = value
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def input(self, name: str, shape: list) -> str:
        self._inputs = getattr(self, "_inputs", {})
        self._inputs[name] = helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
        return name

    def output(self, tensor: str, name: str, shape: list) -> onnx.ValueInfoProto:
        """Rename the producer of ``tensor`` so the graph output is called ``name``."""
        for node in self.nodes:
            for i, out in enumerate(node.output):
                if out == tensor:
                    node.output[i] = name
            for i, inp in enumerate(node.input):
                if inp == tensor:
                    node.input[i] = name
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    # -- layers ------------------------------------------------------------------------------------
    def conv(self, x: str, cin: int, cout: int, k: int, s: int = 1, act: str | None = None,
             gain: float = 1.0, name: str | None = None, groups: int = 1) -> str:
        std = gain * np.sqrt(2.0 / (cin // groups * k * k))
        w = (self.rng.standard_normal((cout, cin // groups, k, k)) * std).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.01).astype(np.float32)
        y = self.node("Conv", [x, self.const(w, "w"), self.const(b, "b")], name=name,
                      kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4, group=groups)
        if act == "relu":
            return self.node("Relu", [y])
        if act == "silu":
            return self.node("Mul", [y, self.node("Sigmoid", [y])])
        return y

    def conv_with(self, x: str, w: np.ndarray, b: np.ndarray, name: str | None = None,
                  output: str | None = None) -> str:
        """A 1x1/kxk convolution with the given weights (e.g. a head calibrated by :meth:`probe`)."""
        k = w.shape[-1]
        return self.node("Conv", [x, self.const(w.astype(np.float32), "w"), self.const(b.astype(np.float32), "b")],
                         name=name, output=output, kernel_shape=[k, k], pads=[k // 2] * 4)

    def probe(self, feed: dict[str, np.ndarray], tensors: list[str]) -> list[np.ndarray]:
        """Values of intermediate ``tensors`` for ``feed``, by running the graph so far in onnxruntime."""
        import onnxruntime as ort

        outs = [helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in tensors]
        graph = helper.make_graph(list(self.nodes), "probe", list(self._inputs.values()), outs, list(self.inits))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return session.run(tensors, feed)

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b])

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])

    def maxpool(self, x: str, k: int, s: int) -> str:
        return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4)

    def concat(self, xs: list[str], axis: int = 1) -> str:
        return self.node("Concat", xs, axis=axis)

    def split(self, x: str, sizes: list[int], axis: int = 1) -> list[str]:
        name = self._name("split")
        outs = [f"{name}:{i}" for i in range(len(sizes))]
        self.nodes.append(helper.make_node("Split", [x, self.const(np.array(sizes, np.int64), "sizes")],
                                           outs, name=name, axis=axis))
        return outs

    def upsample2(self, x: str) -> str:
        scales = self.const(np.array([1, 1, 2, 2], np.float32), "scales")
        return self.node("Resize", [x, "", scales], mode="nearest")

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.node("Reshape", [x, self.const(np.array(shape, np.int64), "shape")])

    def model(self, inputs: list[str], outputs: list[onnx.ValueInfoProto], doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "dsrun_generated", [self._inputs[i] for i in inputs],
                                  outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="dsrun scripts/make_models.py", doc_string=doc)
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model
