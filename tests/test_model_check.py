"""Bad models are caught before the run (issue 15 item 5): each ONNX model is compared with its nvinfer
config from the graph's inputs and outputs, and every mismatch is located at the config key.

Real models from the prepared assets: the DetectNet_v2-shaped detector (coverage output 4x17x30, bbox
16x17x30) and the 6-class classifier (softmax output of 6). What nvinfer does with each mismatch is
read from nvdsinfer_context_impl.cpp (isOutputLayer warning), nvdsinfer_context_impl_output_parsing.cpp
(parseBoundingBox: 'cov'/'bbox' name match, min(C, num-detected-classes); parseAttributesFromSoftmaxLayers:
labels per output line) and gstnvinfer_meta_utils.cpp (no label past the label list).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from runner.config import load_nvinfer
from runner.engine.onnxio import NotOnnx, read_graph_io
from runner.model_check import model_problems

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def write(tmp_path, assets):
    def make(model: str, body: str, labels: str | None = None) -> Path:
        text = f"[property]\nonnx-file={assets.models[model]}\n{body}"
        if labels is not None:
            (tmp_path / "labels.txt").write_text(labels)
            text += f"labelfile-path={tmp_path / 'labels.txt'}\n"
        (tmp_path / "pgie.txt").write_text(text)
        return tmp_path / "pgie.txt"
    return make


def _found(path: Path):
    return [(d.severity, d.line, d.key) for d in model_problems(load_nvinfer(path))]


DETECTOR = "network-type=0\nnum-detected-classes=4\n"


def test_a_matching_detector_config_has_nothing_to_say(write):
    assert _found(write("detectnet_small", DETECTOR + "output-blob-names=output_cov/Sigmoid:0;output_bbox/BiasAdd:0\n",
                        labels="car\nbicycle\nperson\nroadsign\n")) == []


def test_output_blob_names_naming_a_missing_layer_warns_as_nvinfer_does(write):
    path = write("detectnet_small", DETECTOR + "output-blob-names=output_cov/Sigmoid:0;coverage\n")
    assert _found(path) == [("warning", 5, "output-blob-names")]
    assert "'coverage'" in model_problems(load_nvinfer(path))[0].message


def test_num_detected_classes_above_the_models_warns_that_nvinfer_parses_the_smaller(write):
    path = write("detectnet_small", "network-type=0\nnum-detected-classes=10\n")
    [problem] = model_problems(load_nvinfer(path))
    assert (problem.severity, problem.line, problem.key) == ("warning", 4, "num-detected-classes")
    assert "has 4 classes: nvinfer parses 4" in problem.message and problem.hint == "set num-detected-classes=4"


def test_a_label_file_shorter_than_the_classes_warns(write):
    path = write("detectnet_small", DETECTOR, labels="car\nbicycle\n")
    [problem] = model_problems(load_nvinfer(path))
    assert (problem.severity, problem.line, problem.key) == ("warning", 5, "labelfile-path")
    assert "2 labels for 4 classes" in problem.message and "classes 2–3" in problem.message


def test_a_classifier_config_on_a_detector_warns_at_network_type(write):
    assert _found(write("detectnet_small", "network-type=1\n")) == [("warning", 3, "network-type")] * 2


def test_a_classifier_label_line_shorter_than_its_output_warns(write):
    assert _found(write("classifier_small", "network-type=1\n", labels="a;b;c;d;e;f\n")) == []
    path = write("classifier_small", "network-type=1\n", labels="a;b\n")
    [problem] = model_problems(load_nvinfer(path))
    assert (problem.line, problem.key) == (4, "labelfile-path") and "2 labels" in problem.message


def test_the_default_detector_parser_on_a_model_without_cov_and_bbox_outputs_is_an_error(write):
    assert _found(write("yolo_small", "network-type=0\nnum-detected-classes=80\n")) == [
        ("error", 1, "parse-bbox-func-name")]  # the key is not written: located at [property]


def test_a_file_that_is_not_onnx_is_an_error_at_onnx_file(tmp_path, assets):
    (tmp_path / "model.onnx").write_bytes(assets.videos["sample_720p"].read_bytes()[:4096])
    (tmp_path / "pgie.txt").write_text(f"[property]\nonnx-file={tmp_path / 'model.onnx'}\n{DETECTOR}")
    assert _found(tmp_path / "pgie.txt") == [("error", 2, "onnx-file")]
    with pytest.raises(NotOnnx):
        read_graph_io(tmp_path / "model.onnx")


def test_graph_io_matches_onnx_load_for_every_asset_model(assets):
    import onnx

    from runner.engine.onnxinfo import graph_inputs, graph_outputs

    for name, path in assets.models.items():
        if path.suffix != ".onnx":  # Darknet cfg/weights
            continue
        model = onnx.load(str(path))
        ins, outs = read_graph_io(path)
        assert ins == graph_inputs(model) and outs == graph_outputs(model), name


def test_the_run_says_the_same_warning_before_it_starts(tmp_path, write):
    pgie = write("detectnet_small", "network-type=0\nnum-detected-classes=10\ninfer-dims=3;272;480\n")
    (tmp_path / "app.txt").write_text(
        f"[source0]\nenable=1\ntype=2\nuri=file://{tmp_path / 'none.mp4'}\n[streammux]\nwidth=480\nheight=272\n"
        f"batch-size=1\n[primary-gie]\nenable=1\ngie-unique-id=1\nconfig-file={pgie}\n[sink0]\nenable=1\ntype=1\n")
    result = subprocess.run([sys.executable, "-m", "runner", str(tmp_path / "app.txt"), "--no-dashboard",
                             "--engine-dir", str(tmp_path / "engines")], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                                            "HOME": str(tmp_path)})
    assert f"{pgie}:4 [property] num-detected-classes: num-detected-classes=10" in result.stderr


# -- num-detected-classes against every built-in bbox parser that can read the class count -----------
# Expected counts by hand from each C parser's reading of inferDims (batch axis excluded):
# NvDsInferParseYoloV11 numClasses = d[0] - 4; tools/yolo_deepstream V7 rows of 5 + C, V8 (transposed)
# rows of 4 + C, both read NUM_CLASSES_YOLO = 80 scores per row; NvDsInferParseCustomDDETRTAO
# numClasses = pred_logits d[1], and returns false when it differs from the configured count.

def _constant_model(path: Path, outputs: dict[str, tuple[int, ...]]) -> Path:
    import numpy as np

    from infer_models import _save, _scaled_constant_graph

    return _save(_scaled_constant_graph(path.stem, {k: np.zeros(v, np.float32) for k, v in outputs.items()}),
                 path)


def _parser_config(tmp_path, model: Path, parser: str, classes: int) -> Path:
    (tmp_path / "pgie.txt").write_text(f"[property]\nonnx-file={model}\nnetwork-type=0\n"
                                       f"num-detected-classes={classes}\nparse-bbox-func-name={parser}\n")
    return tmp_path / "pgie.txt"


def test_yolov11_head_of_the_real_yolov8n_reads_80_classes_from_its_84_features(tmp_path, assets):
    model = assets.models["yolo_small"]  # output0: (84, 2100) per image
    for parser in ("NvDsInferParseYoloV11", "NvDsInferParseYoloV8"):
        assert model_problems(load_nvinfer(_parser_config(tmp_path, model, parser, 80))) == []
        [problem] = model_problems(load_nvinfer(_parser_config(tmp_path, model, parser, 3)))
        assert (problem.severity, problem.line, problem.key) == ("warning", 4, "num-detected-classes")
        assert "'output0' has 80 classes: objects of classes 3–79 are dropped" in problem.message
        assert problem.hint == "set num-detected-classes=80"
        assert str(problem).startswith(f"{tmp_path / 'pgie.txt'}:4 [property] num-detected-classes: ")


def test_tools_yolo_v7_and_v8_rows_give_the_class_count_and_the_80_scores_the_c_reads(tmp_path):
    v7 = _constant_model(tmp_path / "v7.onnx", {"output": (25200, 85)})  # cx cy w h obj + 80
    v8 = _constant_model(tmp_path / "v8.onnx", {"output": (8400, 84)})  # cx cy w h + 80
    for model, parser in ((v7, "NvDsInferParseCustomYoloV7"), (v7, "NvDsInferParseCustomYoloV7_cuda"),
                          (v8, "NvDsInferParseCustomYoloV8"), (v8, "NvDsInferParseCustomYoloV8_cuda")):
        assert model_problems(load_nvinfer(_parser_config(tmp_path, model, parser, 80))) == []
        [problem] = model_problems(load_nvinfer(_parser_config(tmp_path, model, parser, 90)))
        assert "has 80 classes: classes 80–89 never occur" in problem.message, parser
    two = _constant_model(tmp_path / "v8_two.onnx", {"output": (8400, 6)})  # a 2-class model
    [problem] = model_problems(load_nvinfer(_parser_config(tmp_path, two, "NvDsInferParseCustomYoloV8", 2)))
    assert (problem.severity, problem.key) == ("warning", "num-detected-classes")
    assert "'output' has 2 classes, but DeepStream's NvDsInferParseCustomYoloV8 reads 80 class scores" \
        in problem.message


def test_ddetr_with_another_class_count_is_an_error_as_its_parser_fails_every_batch(tmp_path, assets):
    model = _constant_model(tmp_path / "ddetr.onnx", {"pred_boxes": (300, 4), "pred_logits": (300, 4)})
    assert model_problems(load_nvinfer(_parser_config(tmp_path, model, "NvDsInferParseCustomDDETRTAO", 4))) == []
    [problem] = model_problems(load_nvinfer(_parser_config(tmp_path, model, "NvDsInferParseCustomDDETRTAO", 3)))
    assert (problem.severity, problem.line, problem.key, problem.hint) == (
        "error", 4, "num-detected-classes", "set num-detected-classes=4")
    # dsrun check says it, located, and refuses the app config that uses it
    (tmp_path / "app.txt").write_text(
        f"[source0]\nenable=1\ntype=3\nuri={assets.videos['street'].as_uri()}\n[streammux]\nwidth=640\n"
        f"height=640\nbatch-size=1\n[primary-gie]\nenable=1\ngie-unique-id=1\nconfig-file={tmp_path / 'pgie.txt'}\n"
        "[sink0]\nenable=1\ntype=1\n")
    result = subprocess.run([sys.executable, "-m", "runner", "check", str(tmp_path / "app.txt")],
                            capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO),
                                                                             "PATH": "/usr/bin:/bin"})
    assert f"{tmp_path / 'pgie.txt'}:4 [property] num-detected-classes: num-detected-classes=3 but the " \
           "model's output 'pred_logits' has 4 classes" in result.stdout + result.stderr
    assert result.returncode == 2


def test_parsers_whose_outputs_do_not_carry_the_class_count_are_not_compared(tmp_path):
    model = _constant_model(tmp_path / "dsyolo.onnx", {"output": (2100, 6)})  # DeepStream-Yolo x1 y1 x2 y2 s c
    assert model_problems(load_nvinfer(_parser_config(tmp_path, model, "NvDsInferParseYolo", 7))) == []
