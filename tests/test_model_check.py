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
