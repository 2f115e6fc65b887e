"""custom-lib-path: a Python file's functions become parsers; a compiled .so gets porting advice."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from runner.pipeline.cluster import ClassParams
from runner.pipeline.parsers import (NetworkInfo, ParserError, resolve_bbox_parser,
                                     resolve_classifier_parser)
from runner.pipeline.parsers.classifier import ClassifierContext
from runner.pipeline.parsers.yolo import parse_yolo

USER_PARSERS = '''
import numpy as np

def NvDsInferParseCustomCenters(outputs, network_info, detection_params):
    """One box of 10x10 pixels around every point whose score passes the class threshold."""
    pts = outputs["points"]  # (k, 3): x, y, score — no batch axis
    keep = pts[:, 2] >= detection_params.pre_cluster_threshold[0]
    p = pts[keep]
    return {"xyxy": np.stack([p[:, 0] - 5, p[:, 1] - 5, p[:, 0] + 5, p[:, 1] + 5], 1),
            "class_id": np.zeros(len(p), int), "confidence": p[:, 2]}

def NvDsInferParseBatched(outputs, network_info, detection_params):
    pts = outputs["points"]
    frame = np.repeat(np.arange(len(pts)), pts.shape[1])
    p = pts.reshape(-1, 3)
    return {"frame": frame, "xyxy": np.hstack([p[:, :2], p[:, :2] + 1]), "class_id": np.zeros(len(p)),
            "confidence": p[:, 2]}
NvDsInferParseBatched.dsrun_batched = True

def ParseColour(outputs, network_info, classifier_threshold):
    p = outputs["probs"]
    c = int(p.argmax())
    return [(c, float(p[c]), ["red", "green"][c])] if p[c] > classifier_threshold else []
'''


@pytest.fixture()
def user_lib(tmp_path):
    path = tmp_path / "my_parsers.py"
    path.write_text(USER_PARSERS)
    return path


def test_a_python_custom_lib_parses_each_frame_with_the_users_function(user_lib):
    parse = resolve_bbox_parser(NS(custom_lib_path=user_lib, parse_bbox_func_name="NvDsInferParseCustomCenters"))
    points = np.array([[[20, 20, 0.9], [40, 40, 0.1]], [[30, 30, 0.5], [0, 0, 0.0]]], np.float32)
    objs = parse({"points": points}, NetworkInfo(64, 64), ClassParams.uniform(1, pre_cluster_threshold=0.3))
    assert objs.frame.tolist() == [0, 1]
    np.testing.assert_allclose(objs.xyxy, [[15, 15, 25, 25], [25, 25, 35, 35]])
    batched = resolve_bbox_parser(NS(custom_lib_path=user_lib, parse_bbox_func_name="NvDsInferParseBatched"))
    assert batched({"points": points}, NetworkInfo(64, 64), ClassParams.uniform(1)).frame.tolist() == [0, 0, 1, 1]


def test_a_python_custom_classifier_reports_labels_per_object(user_lib):
    parse = resolve_classifier_parser(NS(custom_lib_path=user_lib, parse_classifier_func_name="ParseColour"))
    res = parse({"probs": np.array([[0.2, 0.8], [0.55, 0.45]], np.float32)}, ClassifierContext(threshold=0.6))
    assert res.obj.tolist() == [0] and res.label.tolist() == ["green"]


def test_missing_function_lists_what_the_file_defines(user_lib):
    with pytest.raises(ParserError, match="has no function 'Nope'.*NvDsInferParseCustomCenters"):
        resolve_bbox_parser(NS(custom_lib_path=user_lib, parse_bbox_func_name="Nope"))


def test_a_compiled_library_with_a_known_parser_runs_dsruns_own_and_others_get_porting_advice(tmp_path):
    so = tmp_path / "libnvdsinfer_custom_impl_Yolo.so"
    assert resolve_bbox_parser(NS(custom_lib_path=so, parse_bbox_func_name="NvDsInferParseYolo")) is parse_yolo
    with pytest.raises(ParserError, match=r"port NvDsInferParseCustomMine to Python.*\.py file"):
        resolve_bbox_parser(NS(custom_lib_path=so, parse_bbox_func_name="NvDsInferParseCustomMine"))


def test_a_broken_python_file_names_the_file_and_the_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    with pytest.raises(ParserError, match="importing .*bad.py failed: SyntaxError"):
        resolve_bbox_parser(NS(custom_lib_path=bad, parse_bbox_func_name="f"))


def test_an_exception_inside_a_user_parser_names_the_function_and_file(tmp_path):
    lib = tmp_path / "oops.py"
    lib.write_text("def Parse(outputs, network_info, detection_params):\n    return outputs['missing']\n")
    parse = resolve_bbox_parser(NS(custom_lib_path=lib, parse_bbox_func_name="Parse"))
    with pytest.raises(ParserError, match=r"Parse in .*oops.py raised KeyError"):
        parse({"x": np.zeros((1, 2))}, NetworkInfo(8, 8), ClassParams.uniform(1))
