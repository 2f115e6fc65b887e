"""torchvision's MobileNetV2 ``.pth`` state dict → an ONNX classifier nvinfer can feed, numpy + onnx only.

The network is torchvision's ``mobilenet_v2`` (``torchvision/models/mobilenetv2.py``): a 3x3 stride-2
stem, 17 inverted-residual blocks (expansion, stride and width from its ``inverted_residual_setting``;
the residual where stride is 1 and widths match), a 1x1 conv to 1280, global average pool and the
1000-way linear layer; batch norms (eps 1e-5) folded into their convolutions, ReLU6 as ``Clip(0, 6)``.

Two things make it an nvinfer classifier: the output ``prob`` is the softmax (nvinfer's default
classifier parser reads probabilities), and ImageNet's per-channel ``std`` is folded into the stem's
weights, because nvinfer has one ``net-scale-factor`` for all channels. The config feeding it says::

    net-scale-factor=0.00392156862745098   # 1/255
    offsets=123.675;116.28;103.53           # 255 x ImageNet mean, RGB
    model-color-format=0                    # RGB
    infer-dims=3;224;224

so the network sees ``x / 255 - mean`` and divides by ``std`` in its first convolution — exactly
torchvision's ``(x / 255 - mean) / std`` (zero padding commutes with the per-channel scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runner.convert import ConvertError
from runner.convert.torch_pickle import load_state_dict

__all__ = ["mobilenet_v2_to_onnx", "IMAGENET_MEAN", "IMAGENET_STD", "INPUT_NAME", "OUTPUT_NAME"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_NAME, OUTPUT_NAME = "input", "prob"
BN_EPS = 1e-5
#: torchvision's inverted_residual_setting: expansion t, output channels c, repeats n, first stride s
SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
           (6, 320, 1, 1))


class _Builder:
    def __init__(self, weights: dict, path: Path) -> None:
        from onnx import helper, numpy_helper

        self.w, self.path = weights, path
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self.count = [], [], 0

    def tensor(self, key: str) -> np.ndarray:
        if key not in self.w:
            raise ConvertError(f"{self.path}: has no {key!r} — it is not torchvision's MobileNetV2 state dict")
        return self.w[key].astype(np.float64)

    def const(self, array: np.ndarray) -> str:
        self.count += 1
        name = f"w{self.count}"
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array.astype(np.float32)), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv_bn(self, x: str, conv: str, bn: str, stride: int = 1, relu6: bool = True,
                in_scale: np.ndarray | None = None) -> str:
        kernel = self.tensor(f"{conv}.weight")
        gamma, beta = self.tensor(f"{bn}.weight"), self.tensor(f"{bn}.bias")
        mean, var = self.tensor(f"{bn}.running_mean"), self.tensor(f"{bn}.running_var")
        factor = gamma / np.sqrt(var + BN_EPS)
        kernel = kernel * factor[:, None, None, None]
        if in_scale is not None:
            kernel = kernel * in_scale[None, :, None, None]
        k = kernel.shape[-1]
        groups = kernel.shape[0] if kernel.shape[1] == 1 and k == 3 else 1
        y = self.op("Conv", [x, self.const(kernel), self.const(beta - mean * factor)], kernel_shape=[k, k],
                    strides=[stride, stride], pads=[k // 2] * 4, group=groups)
        if relu6:
            y = self.op("Clip", [y, self.const(np.array(0.0)), self.const(np.array(6.0))])
        return y


def mobilenet_v2_to_onnx(pth: Path):
    """The ONNX model (``onnx.ModelProto``) of torchvision's MobileNetV2 weights in ``pth``."""
    import onnx
    from onnx import TensorProto, helper

    pth = Path(pth)
    b = _Builder(load_state_dict(pth), pth)
    std = 1.0 / np.array(IMAGENET_STD, np.float64)
    x = b.conv_bn(INPUT_NAME, "features.0.0", "features.0.1", stride=2, in_scale=std)
    channels, index = 32, 1
    for t, c, n, s in SETTING:
        for i in range(n):
            stride, block, y = (s if i == 0 else 1), f"features.{index}.conv", x
            if t != 1:
                y = b.conv_bn(y, f"{block}.0.0", f"{block}.0.1")
            dw = 1 if t != 1 else 0
            y = b.conv_bn(y, f"{block}.{dw}.0", f"{block}.{dw}.1", stride=stride)
            y = b.conv_bn(y, f"{block}.{dw + 1}", f"{block}.{dw + 2}", relu6=False)
            x = b.op("Add", [x, y]) if stride == 1 and channels == c else y
            channels, index = c, index + 1
    x = b.conv_bn(x, f"features.{index}.0", f"features.{index}.1")
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    fc_w, fc_b = b.tensor("classifier.1.weight"), b.tensor("classifier.1.bias")
    logits = b.op("Gemm", [x, b.const(fc_w), b.const(fc_b)], transB=1)
    b.nodes.append(helper.make_node("Softmax", [logits], [OUTPUT_NAME], axis=1, name=OUTPUT_NAME))
    graph = helper.make_graph(
        b.nodes, "mobilenet_v2",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", len(fc_b)])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="dsrun.convert.mobilenet_v2")
    model.doc_string = (f"torchvision MobileNetV2 from {pth.name}, converted by dsrun: input RGB x/255 - ImageNet "
                        "mean (nvinfer net-scale-factor=1/255, offsets=123.675;116.28;103.53), std folded into "
                        "the stem; output 'prob' = softmax over the 1000 ImageNet classes")
    onnx.checker.check_model(model)
    return model
