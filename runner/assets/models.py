"""Generated models of real architectures with seeded random weights, for speed work and parser tests.

- :func:`detectnet_v2` — TAO DetectNet_v2 with a ResNet-18/34 backbone (stride 16, no max-pool),
  input ``input_1:0`` (N, 3, H, W), outputs ``output_cov/Sigmoid:0`` (N, C, H/16, W/16) and
  ``output_bbox/BiasAdd:0`` (N, 4C, H/16, W/16): the tensor names of NVIDIA's TAO ONNX exports
  (trafficcamnet / peoplenet), which DeepStream configs list in ``output-blob-names``.
- :func:`yolov8` — Ultralytics YOLOv8 (C2f backbone, SPPF, PAN neck, decoupled DFL head), input
  ``images`` (N, 3, H, W), output ``output0`` (N, 4 + classes, anchors): cx, cy, w, h in input pixels
  then per-class sigmoid scores, no NMS.
- :func:`resnet_classifier` — ResNet-18/34 image classifier, input ``input_1:0`` (N, 3, H, W), output
  ``predictions/Softmax:0`` (N, classes), as TAO classification exports (vehicletypenet).

The batch dimension is dynamic (``N``). ``width`` scales every channel count (1.0 = the published
network), so CI can use a thin copy of the same topology. Output heads are calibrated on a seeded input
so scores spread around a few per cent: a plausible number of boxes pass a 0.2–0.3 threshold instead of
all or none.

>>> m = resnet_classifier(DetectorArgs(depth=18, width=0.125, height=64, width_px=64, classes=3))
>>> [o.name for o in m.graph.output]
['predictions/Softmax:0']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # onnx is imported only when a model is built: importing runner.assets stays cheap
    import onnx

    from runner.assets.graph import Graph

__all__ = ["DetectorArgs", "detectnet_v2", "yolov8", "resnet_classifier", "build_model", "ARCHS"]

RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


@dataclass(frozen=True, slots=True)
class DetectorArgs:
    """Everything that shapes a generated model; recorded in the manifest and the ONNX doc string."""

    depth: int = 18         # ResNet depth (18 or 34); for YOLOv8 the scale: 0 = n, 1 = s
    width: float = 1.0      # channel multiplier
    height: int = 544       # input height, pixels
    width_px: int = 960     # input width, pixels
    classes: int = 4
    seed: int = 0


def _graph(args: DetectorArgs) -> Graph:
    from runner.assets.graph import Graph

    return Graph(args.seed)


def _head(g: Graph, feature: np.ndarray, cout: int, mean, std) -> tuple[np.ndarray, np.ndarray]:
    """1x1 conv weights whose outputs on ``feature`` have the given per-channel mean and std."""
    c = feature.shape[1]
    f = feature.transpose(1, 0, 2, 3).reshape(c, -1).astype(np.float64)
    w = g.rng.standard_normal((cout, c))
    z = w @ f
    w *= (np.broadcast_to(std, cout) / (z.std(axis=1) + 1e-9))[:, None]
    b = np.broadcast_to(mean, cout) - (w @ f).mean(axis=1)
    return w[:, :, None, None], b


def _probe_input(args: DetectorArgs, name: str, batch: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(args.seed + 1)
    return {name: rng.random((batch, 3, args.height, args.width_px), dtype=np.float32)}


def _ch(c: int, width: float) -> int:
    return max(8, int(round(c * width / 8)) * 8)


def _resnet(g: Graph, x: str, args: DetectorArgs, strides: tuple[int, ...], maxpool: bool) -> tuple[str, int]:
    """ResNet basic-block backbone; returns the last feature tensor and its channel count."""
    c = _ch(64, args.width)
    y = g.conv(x, 3, c, k=7, s=2, act="relu", name="conv1")
    if maxpool:
        y = g.maxpool(y, 3, 2)
    cin = c
    for stage, (blocks, stride) in enumerate(zip(RESNET_BLOCKS[args.depth], strides)):
        cout = _ch(64 * 2 ** stage, args.width)
        for block in range(blocks):
            s = stride if block == 0 else 1
            name = f"block_{stage + 1}{chr(ord('a') + block)}"
            branch = g.conv(y, cin, cout, k=3, s=s, act="relu", name=f"{name}_conv_1")
            branch = g.conv(branch, cout, cout, k=3, gain=0.3, name=f"{name}_conv_2")
            short = y if (s == 1 and cin == cout) else g.conv(y, cin, cout, k=1, s=s, name=f"{name}_conv_shortcut")
            y = g.relu(g.add(branch, short))
            cin = cout
    return y, cin


def detectnet_v2(args: DetectorArgs) -> onnx.ModelProto:
    """TAO DetectNet_v2: coverage (sigmoid) and bbox (offsets / 35) grids at stride 16."""
    if args.height % 16 or args.width_px % 16:
        raise ValueError("DetectNet_v2 input height and width must be multiples of 16")
    g = _graph(args)
    x = g.input("input_1:0", ["N", 3, args.height, args.width_px])
    feat, c = _resnet(g, x, args, strides=(2, 2, 2, 1), maxpool=False)
    (value,) = g.probe(_probe_input(args, x), [feat])
    n, gh, gw = args.classes, args.height // 16, args.width_px // 16
    w, b = _head(g, value, n, mean=-5.0, std=1.5)
    cov = g.conv_with(feat, w, b, name="output_cov/BiasAdd")
    cov = g.node("Sigmoid", [cov], name="output_cov/Sigmoid", output="output_cov/Sigmoid:0")
    w, b = _head(g, value, 4 * n, mean=np.tile([0.8, 0.8, 0.8, 0.8], n), std=0.2)
    bbox = g.conv_with(feat, w, b, name="output_bbox/BiasAdd", output="output_bbox/BiasAdd:0")
    outputs = [g.output(cov, cov, ["N", n, gh, gw]), g.output(bbox, bbox, ["N", 4 * n, gh, gw])]
    return g.model([x], outputs, doc=_doc("detectnet_v2", args))


def _c2f(g: Graph, x: str, c1: int, c2: int, n: int, shortcut: bool) -> str:
    c = c2 // 2
    a, b = g.split(g.conv(x, c1, 2 * c, 1, act="silu"), [c, c])
    ys = [a, b]
    for _ in range(n):
        y = g.conv(g.conv(ys[-1], c, c, 3, act="silu"), c, c, 3, act="silu", gain=0.5)
        ys.append(g.add(ys[-1], y) if shortcut else y)
    return g.conv(g.concat(ys), (2 + n) * c, c2, 1, act="silu")


def _sppf(g: Graph, x: str, c1: int, c2: int) -> str:
    y = [g.conv(x, c1, c1 // 2, 1, act="silu")]
    for _ in range(3):
        y.append(g.maxpool(y[-1], 5, 1))
    return g.conv(g.concat(y), 2 * c1, c2, 1, act="silu")


YOLO_SCALES = {0: (0.33, 0.25), 1: (0.33, 0.50), 2: (0.67, 0.75)}  # n, s, m: depth, width multiples


def yolov8(args: DetectorArgs) -> onnx.ModelProto:
    """Ultralytics YOLOv8 topology; ``args.depth`` picks the scale (0 n, 1 s, 2 m), ``width`` thins it further."""
    if args.height % 32 or args.width_px % 32:
        raise ValueError("YOLOv8 input height and width must be multiples of 32")
    dm, wm = YOLO_SCALES[args.depth]
    ch = [_ch(c, wm * args.width) for c in (64, 128, 256, 512, 1024)]
    rep = [max(1, round(r * dm)) for r in (3, 6, 6, 3)]
    g = _graph(args)
    x = g.input("images", ["N", 3, args.height, args.width_px])
    y = g.conv(g.conv(x, 3, ch[0], 3, 2, act="silu"), ch[0], ch[1], 3, 2, act="silu")
    y = _c2f(g, y, ch[1], ch[1], rep[0], True)
    p3 = _c2f(g, g.conv(y, ch[1], ch[2], 3, 2, act="silu"), ch[2], ch[2], rep[1], True)
    p4 = _c2f(g, g.conv(p3, ch[2], ch[3], 3, 2, act="silu"), ch[3], ch[3], rep[2], True)
    p5 = _c2f(g, g.conv(p4, ch[3], ch[4], 3, 2, act="silu"), ch[4], ch[4], rep[3], True)
    p5 = _sppf(g, p5, ch[4], ch[4])
    h4 = _c2f(g, g.concat([g.upsample2(p5), p4]), ch[4] + ch[3], ch[3], rep[3], False)
    o3 = _c2f(g, g.concat([g.upsample2(h4), p3]), ch[3] + ch[2], ch[2], rep[3], False)
    o4 = _c2f(g, g.concat([g.conv(o3, ch[2], ch[2], 3, 2, act="silu"), h4]), ch[2] + ch[3], ch[3], rep[3], False)
    o5 = _c2f(g, g.concat([g.conv(o4, ch[3], ch[3], 3, 2, act="silu"), p5]), ch[3] + ch[4], ch[4], rep[3], False)
    levels, reg = [(o3, ch[2], 8), (o4, ch[3], 16), (o5, ch[4], 32)], 16
    c2, c3 = max(16, ch[2] // 4, 4 * reg), max(ch[2], min(args.classes, 100))
    stems = []
    for f, c, _ in levels:
        box = g.conv(g.conv(f, c, c2, 3, act="silu"), c2, c2, 3, act="silu")
        cls = g.conv(g.conv(f, c, c3, 3, act="silu"), c3, c3, 3, act="silu")
        stems += [box, cls]
    values = g.probe(_probe_input(args, x), stems)
    flat, anchors, strides = [], [], []
    for i, (_, _, stride) in enumerate(levels):
        # bins biased towards short distances: boxes of a few strides, as trained models mostly give
        w, b = _head(g, values[2 * i], 4 * reg, mean=np.tile(-0.35 * np.arange(reg), 4), std=1.5)
        box = g.conv_with(stems[2 * i], w, b)
        w, b = _head(g, values[2 * i + 1], args.classes, mean=-7.0, std=1.5)
        cls = g.conv_with(stems[2 * i + 1], w, b)
        flat.append(g.reshape(g.concat([box, cls]), [0, 4 * reg + args.classes, -1]))
        gh, gw = args.height // stride, args.width_px // stride
        yy, xx = np.meshgrid(np.arange(gh) + 0.5, np.arange(gw) + 0.5, indexing="ij")
        anchors.append(np.stack([xx.ravel(), yy.ravel()]))
        strides.append(np.full(gh * gw, stride))
    box, cls = g.split(g.concat(flat, axis=2), [4 * reg, args.classes])
    # DFL: softmax over 16 bins per side, expectation = distance in stride units
    dist = g.node("Softmax", [g.reshape(box, [0, 4, reg, -1])], axis=2)
    bins = g.const(np.arange(reg, dtype=np.float32).reshape(1, 1, reg, 1), "dfl")
    dist = g.node("ReduceSum", [g.node("Mul", [dist, bins]), g.const(np.array([2], np.int64), "axes")], keepdims=0)
    lt, rb = g.split(dist, [2, 2])
    anchor = g.const(np.concatenate(anchors, axis=1)[None].astype(np.float32), "anchors")
    stride = g.const(np.concatenate(strides)[None, None].astype(np.float32), "strides")
    x1y1, x2y2 = g.node("Sub", [anchor, lt]), g.node("Add", [anchor, rb])
    half = g.const(np.array(0.5, np.float32), "half")
    cxcy = g.node("Mul", [g.node("Add", [x1y1, x2y2]), half])
    wh = g.node("Sub", [x2y2, x1y1])
    xywh = g.node("Mul", [g.concat([cxcy, wh]), stride])
    out = g.node("Concat", [xywh, g.node("Sigmoid", [cls])], name="output0_concat", output="output0", axis=1)
    n_anchors = sum(a.shape[1] for a in anchors)
    return g.model([x], [g.output(out, out, ["N", 4 + args.classes, n_anchors])], doc=_doc("yolov8", args))


def resnet_classifier(args: DetectorArgs) -> onnx.ModelProto:
    """ResNet image classifier: conv1, max-pool, four stages, global average pool, FC, softmax."""
    g = _graph(args)
    x = g.input("input_1:0", ["N", 3, args.height, args.width_px])
    feat, c = _resnet(g, x, args, strides=(1, 2, 2, 2), maxpool=True)
    pooled = g.node("GlobalAveragePool", [feat])
    (value,) = g.probe(_probe_input(args, x, batch=16), [pooled])
    w, b = _head(g, value, args.classes, mean=0.0, std=2.0)
    logits = g.conv_with(pooled, w, b, name="predictions/BiasAdd")
    flat = g.node("Flatten", [logits], axis=1)
    out = g.node("Softmax", [flat], name="predictions/Softmax", output="predictions/Softmax:0", axis=1)
    return g.model([x], [g.output(out, out, ["N", args.classes])], doc=_doc("resnet_classifier", args))


ARCHS = {"detectnet_v2": detectnet_v2, "yolov8": yolov8, "resnet_classifier": resnet_classifier}


def _doc(arch: str, args: DetectorArgs) -> str:
    return f"dsrun generated {arch} {asdict(args)}: architecture only, seeded random weights (not trained)"


def build_model(arch: str, args: DetectorArgs) -> onnx.ModelProto:
    """The model ``arch`` (a key of :data:`ARCHS`) shaped by ``args``."""
    return ARCHS[arch](args)
