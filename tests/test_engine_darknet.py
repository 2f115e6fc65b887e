"""A DeepStream-Yolo nvinfer config naming the Darknet files themselves (custom-network-config +
model-file, NvDsInferParseYolo, libnvdsinfer_custom_impl_Yolo.so, NvDsInferYoloCudaEngineGet) builds its
engine from them: no .so, no hand-made ONNX, and the engine cache keys on the cfg and the weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from runner.config import inspect_nvinfer, load_nvinfer
from runner.convert.darknet import darknet_to_onnx
from runner.engine import EngineError, EngineSpec, load_engine
from runner.engine.cache import EngineCache
from runner.engine.commands import clean_engines

# DeepStream-Yolo's config_infer_primary_yoloV4_tiny.txt (its Darknet era), paths made local
DEEPSTREAM_YOLO = """[property]
gpu-id=0
net-scale-factor=0.0039215697906911373
model-color-format=0
custom-network-config=yolov4-tiny.cfg
model-file=yolov4-tiny.weights
model-engine-file=model_b1_gpu0_fp32.engine
#int8-calib-file=calib.table
labelfile-path=labels.txt
batch-size=1
network-mode=0
num-detected-classes=80
interval=0
gie-unique-id=1
process-mode=1
network-type=0
cluster-mode=2
maintain-aspect-ratio=0
symmetric-padding=1
#force-implicit-batch-dim=1
#workspace-size=1000
parse-bbox-func-name=NvDsInferParseYolo
#parse-bbox-func-name=NvDsInferParseYoloCuda
custom-lib-path=nvdsinfer_custom_impl_Yolo/libnvdsinfer_custom_impl_Yolo.so
engine-create-func-name=NvDsInferYoloCudaEngineGet

[class-attrs-all]
nms-iou-threshold=0.45
pre-cluster-threshold=0.25
topk=300
"""


@pytest.fixture
def yolo_dir(tmp_path, assets) -> Path:
    folder = tmp_path / "yolo"
    folder.mkdir()
    shutil.copy(assets.models["yolov4_tiny_cfg"], folder / "yolov4-tiny.cfg")
    shutil.copy(assets.models["yolov4_tiny_weights"], folder / "yolov4-tiny.weights")
    shutil.copy(assets.labels["coco"], folder / "labels.txt")
    (folder / "config_infer_primary_yoloV4_tiny.txt").write_text(DEEPSTREAM_YOLO)
    return folder


def test_check_asks_for_neither_the_engine_nor_the_yolo_library(yolo_dir):
    config, diags = inspect_nvinfer(yolo_dir / "config_infer_primary_yoloV4_tiny.txt")
    assert config is not None and not config.custom_lib_path.exists() and not config.model_engine_file.exists()
    assert [str(d) for d in diags] == []


def test_check_still_warns_when_the_weights_are_missing(yolo_dir):
    (yolo_dir / "yolov4-tiny.weights").unlink()
    _, diags = inspect_nvinfer(yolo_dir / "config_infer_primary_yoloV4_tiny.txt")
    keys = sorted(d.key for d in diags if d.code == "missing-file")
    assert keys == ["model-engine-file", "model-file"], [str(d) for d in diags]


def test_engine_is_built_from_cfg_and_weights_and_cached_on_both(yolo_dir, tmp_path):
    nvinfer = load_nvinfer(yolo_dir / "config_infer_primary_yoloV4_tiny.txt")
    engines = tmp_path / "engines"
    first = load_engine(EngineSpec.from_nvinfer(nvinfer), engines)
    assert first.origin == "built" and first.max_batch == 1
    assert [str(s) for s in first.inputs] == ["input float32[3x416x416]"]
    x = np.random.default_rng(0).random((1, 3, 416, 416), dtype=np.float32)
    want = darknet_to_onnx(yolo_dir / "yolov4-tiny.cfg", yolo_dir / "yolov4-tiny.weights")
    import onnxruntime as ort

    direct = ort.InferenceSession(want.SerializeToString(), providers=["CPUExecutionProvider"])
    out = first.infer(x)
    assert list(out) == ["output"] and out["output"].shape == (1, 2535, 6)
    np.testing.assert_allclose(out["output"], direct.run(None, {"input": x})[0], rtol=1e-4, atol=1e-4)
    assert (yolo_dir / "model_b1_gpu0_fp32.engine").is_file()  # model-engine-file written, as nvinfer does

    again = load_engine(EngineSpec.from_nvinfer(nvinfer), engines)
    assert again.origin in ("engine-file", "cache")

    # other weights (one value changed): another conversion, another engine
    weights = yolo_dir / "yolov4-tiny.weights"
    data = bytearray(weights.read_bytes())
    data[-4:] = np.float32(0.5).tobytes()
    weights.write_bytes(bytes(data))
    changed = load_engine(EngineSpec.from_nvinfer(nvinfer), engines)
    assert changed.origin == "built" and changed.path != first.path
    converted = sorted(p.parent.name for p in (engines / ".converted").glob("*/yolov4-tiny.onnx"))
    assert len(converted) == 2

    # another cfg (anchors edited): again another engine
    cfg = yolo_dir / "yolov4-tiny.cfg"
    cfg.write_text(cfg.read_text().replace("344,319", "344,320"))
    assert load_engine(EngineSpec.from_nvinfer(nvinfer), engines).origin == "built"

    # `dsrun engines clean` removes the conversions with the engines
    assert clean_engines(str(engines)) == 0
    assert not list((engines / ".converted").iterdir()) and not EngineCache(engines).entries()


def test_a_missing_weights_file_is_named_with_the_config_and_key(yolo_dir):
    (yolo_dir / "yolov4-tiny.weights").unlink()
    nvinfer = load_nvinfer(yolo_dir / "config_infer_primary_yoloV4_tiny.txt")
    with pytest.raises(EngineError, match=r"config_infer_primary_yoloV4_tiny.txt: \[property\] model-file: "
                                          r".*yolov4-tiny.weights does not exist"):
        EngineSpec.from_nvinfer(nvinfer)
