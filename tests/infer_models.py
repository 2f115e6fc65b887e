"""Small real ONNX models with hand-computable outputs for the inference tests, and engine loading.

``detectnet_model``: a DetectNet_v2-shaped detector (input (N, 3, 64, 64); outputs
``output_cov/Sigmoid`` (N, 2, 4, 4) and ``output_bbox/BiasAdd`` (N, 8, 4, 4)) whose outputs are fixed
grids multiplied by the mean of the (normalised) input: a white frame gives the grids, a black
frame gives zeros. ``classifier_model``: softmax over constant logits scaled by the input mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NET = 64
GRID = 4
STRIDE = NET // GRID


def cell_bbox(row: int, col: int, box) -> list[float]:
    """The 4 bbox-channel values that make cell (row, col) decode to ``box`` (network pixels)."""
    cx = (col * STRIDE + 0.5) / 35.0
    cy = (row * STRIDE + 0.5) / 35.0
    x1, y1, x2, y2 = box
    return [cx - x1 / 35.0, cy - y1 / 35.0, x2 / 35.0 - cx, y2 / 35.0 - cy]


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _scaled_constant_graph(name, outputs: dict[str, np.ndarray], in_shape=(3, NET, NET)):
    """outputs[k] = constant[k] * mean(input) (per item)."""
    x = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["N", *in_shape])
    nodes = [helper.make_node("ReduceMean", ["input_1"], ["m"], axes=list(range(1, len(in_shape) + 1)),
                              keepdims=1)]
    inits, outs = [], []
    for out_name, const in outputs.items():
        cname = out_name.replace("/", "_") + "_const"
        inits.append(numpy_helper.from_array(const.astype(np.float32)[None], cname))
        m = "m" if const.ndim == len(in_shape) else f"m_{cname}"
        if const.ndim != len(in_shape):
            nodes.append(helper.make_node("Reshape", ["m", f"shape_{cname}"], [m]))
            inits.append(numpy_helper.from_array(np.array([-1] + [1] * const.ndim, np.int64), f"shape_{cname}"))
        nodes.append(helper.make_node("Mul", [m, cname], [out_name]))
        outs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *const.shape]))
    return helper.make_graph(nodes, name, [x], outs, inits)


def detectnet_model(path: Path, cells: list[tuple[int, int, int, float, tuple]]) -> Path:
    """``cells``: (class, row, col, coverage, box-in-network-pixels) for every lit grid cell."""
    cov = np.zeros((2, GRID, GRID), np.float32)
    bbox = np.zeros((8, GRID, GRID), np.float32)
    for cls, row, col, conf, box in cells:
        cov[cls, row, col] = conf
        bbox[4 * cls:4 * cls + 4, row, col] = cell_bbox(row, col, box)
    return _save(_scaled_constant_graph("detectnet", {"output_cov/Sigmoid": cov, "output_bbox/BiasAdd": bbox}),
                 path)


def classifier_model(path: Path, logits: list[float], in_shape=(3, 32, 32)) -> Path:
    """Softmax(logits * mean(input)): white crops give softmax(logits), black ones a uniform split."""
    g = _scaled_constant_graph("cls", {"scaled": np.asarray(logits, np.float32)}, in_shape)
    g.node.append(helper.make_node("Softmax", ["scaled"], ["predictions/Softmax"], axis=1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("predictions/Softmax", TensorProto.FLOAT, ["N", len(logits)]))
    return _save(g, path)


def load(nvinfer, engine_dir: Path):
    """The real engine layer's engine for an nvinfer config."""
    from runner.engine import EngineSpec, load_engine

    return load_engine(EngineSpec.from_nvinfer(nvinfer), engine_dir)


def yolov4_tiny_stage(assets, folder: Path, extra: str = ""):
    """A primary GIE on YOLOv4-tiny's Darknet files configured as DeepStream-Yolo's
    config_infer_primary_yoloV4_tiny.txt (batch 4, NMS 0.45, threshold 0.25, top 300), written to
    ``folder`` with the files; ``extra``: more ``[property]`` lines."""
    import shutil

    from runner.config import load_nvinfer
    from runner.pipeline.infer import GieStage

    shutil.copy(assets.models["yolov4_tiny_cfg"], folder / "yolov4-tiny.cfg")
    shutil.copy(assets.models["yolov4_tiny_weights"], folder / "yolov4-tiny.weights")
    (folder / "pgie.txt").write_text(
        "[property]\nnet-scale-factor=0.0039215697906911373\ncustom-network-config=yolov4-tiny.cfg\n"
        "model-file=yolov4-tiny.weights\nbatch-size=4\nnum-detected-classes=80\ngie-unique-id=1\n"
        f"cluster-mode=2\n{extra}parse-bbox-func-name=NvDsInferParseYolo\n"
        "custom-lib-path=nvdsinfer_custom_impl_Yolo/libnvdsinfer_custom_impl_Yolo.so\n"
        "engine-create-func-name=NvDsInferYoloCudaEngineGet\n"
        "[class-attrs-all]\nnms-iou-threshold=0.45\npre-cluster-threshold=0.25\ntopk=300\n")
    nvinfer = load_nvinfer(folder / "pgie.txt")
    return GieStage(nvinfer, load(nvinfer, folder / "engines"))


def segmentation_model(path: Path, probs: np.ndarray) -> Path:
    """Outputs ``probs`` (C, h, w) x mean(input): a white frame gives ``probs`` itself."""
    return _save(_scaled_constant_graph("seg", {"softmax_1": np.asarray(probs, np.float32)}), path)



def write_pgie(folder: Path, assets) -> Path:
    """``folder/pgie.txt``: the generated DetectNet_v2-shaped detector (gie-unique-id 1, 4 classes, NMS)
    with its ``labels.txt``, as an nvinfer config."""
    (folder / "labels.txt").write_text("car\nbicycle\nperson\nroadsign\n")
    (folder / "pgie.txt").write_text(f"""[property]
onnx-file={assets.models['detectnet_small']}
net-scale-factor=0.00392156862745098
batch-size=4
num-detected-classes=4
gie-unique-id=1
labelfile-path=labels.txt
cluster-mode=2
[class-attrs-all]
pre-cluster-threshold=0.3
nms-iou-threshold=0.5
topk=8
""")
    return folder / "pgie.txt"


def detector_classifier_app(folder: Path, assets, uri, sgie_extra: str = "") -> Path:
    """A deepstream-app config in ``folder``: the generated DetectNet_v2-shaped detector (PGIE,
    gie-unique-id 1, 4 classes) and ResNet-18-shaped classifier on its objects (SGIE, id 2, threshold 0)
    on one file source ``uri``, streammux 640x272 batch 4, a fakesink. ``sgie_extra``: more
    ``[property]`` lines for the classifier."""
    write_pgie(folder, assets)
    (folder / "sgie.txt").write_text(f"""[property]
onnx-file={assets.models['classifier_small']}
net-scale-factor=0.00392156862745098
batch-size=16
network-type=1
gie-unique-id=2
operate-on-gie-id=1
classifier-threshold=0.0
{sgie_extra}""")
    (folder / "app.txt").write_text(f"""[source0]
enable=1
type=2
uri=file://{uri}
[streammux]
batch-size=4
width=640
height=272
[primary-gie]
enable=1
config-file=pgie.txt
[secondary-gie0]
enable=1
config-file=sgie.txt
gie-unique-id=2
operate-on-gie-id=1
[sink0]
enable=1
type=1
""")
    return folder / "app.txt"
