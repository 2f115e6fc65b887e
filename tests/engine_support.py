"""Real inputs for the engine tests: small conv-net ONNX models written with onnx.helper (fixed seeds)
and calibration images decoded from a real video with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_net(path: Path, *, seed: int = 0, size: int = 64, channels=(8, 16, 16), outputs: int = 4,
             batch: int | str = "N", extra_node: onnx.NodeProto | None = None) -> Path:
    """A DetectNet-shaped toy detector: strided 3x3 conv+ReLU blocks, a 1x1 head, a sigmoid
    coverage map ``cov`` of shape (batch, outputs, size/4, size/4)."""
    rng = np.random.default_rng(seed)
    nodes, inits, x, cin = [], [], "input", 3
    for i, cout in enumerate(channels):
        stride = 2 if i < 2 else 1
        w = (rng.standard_normal((cout, cin, 3, 3)) * (2.0 / (9 * cin)) ** 0.5).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"),
                  numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"conv{i}"], pads=[1, 1, 1, 1],
                                   strides=[stride, stride]),
                  helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"])]
        x, cin = f"relu{i}", cout
    inits += [numpy_helper.from_array((rng.standard_normal((outputs, cin, 1, 1)) * 0.3).astype(np.float32), "wh"),
              numpy_helper.from_array(np.zeros(outputs, np.float32), "bh")]
    nodes += [helper.make_node("Conv", [x, "wh", "bh"], ["head"]),
              helper.make_node("Sigmoid", ["head"], ["cov"])]
    opsets = [helper.make_opsetid("", 17)]
    if extra_node is not None:
        nodes.append(extra_node)
        opsets.append(helper.make_opsetid(extra_node.domain, 1))
    out_hw = size // 4
    graph = helper.make_graph(
        nodes, "conv_net",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("cov", TensorProto.FLOAT, [batch, outputs, out_hw, out_hw])]
        + ([helper.make_tensor_value_info(extra_node.output[0], TensorProto.FLOAT,
                                          [batch, outputs, out_hw, out_hw])]
           if extra_node is not None else []),
        inits)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def video_frames(video: Path, count: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The first ``count`` decoded frames (RGB uint8 HxWx3), optionally resized to (w, h)."""
    import av
    import cv2

    frames = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            frames.append(cv2.resize(img, size) if size else img)
            if len(frames) == count:
                break
    assert len(frames) == count, f"{video} has fewer than {count} frames"
    return frames


def write_images(folder: Path, frames: list[np.ndarray]) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(frames):
        cv2.imwrite(str(folder / f"frame{i:04d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


def nchw(frames: list[np.ndarray], scale: float = 1 / 255) -> np.ndarray:
    return (np.stack(frames).astype(np.float32) * scale).transpose(0, 3, 1, 2).copy()
