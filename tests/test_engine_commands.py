"""`dsrun build-engines` / `dsrun engines list|clean` on a real deepstream-app config."""

import json

import pytest

from engine_support import conv_net
from runner.cli import main

APP = """\
[application]
enable-perf-measurement=1

[source0]
enable=1
type=3
uri=file://{video}
num-sources=1

[streammux]
batch-size=2
width=640
height=360

[primary-gie]
enable=1
batch-size=2
config-file=pgie.txt

[secondary-gie0]
enable=1
gie-unique-id=2
operate-on-gie-id=1
config-file=sgie.txt

[sink0]
enable=1
type=1
"""
PGIE = """\
[property]
onnx-file=det.onnx
model-engine-file=det.onnx_b2_gpu0_fp16.engine
network-mode=2
batch-size=1
infer-dims=3;64;64
gie-unique-id=1
"""
SGIE_TAO = """\
[property]
tlt-encoded-model=vehicletypes.etlt
tlt-model-key=nvidia_tlt
gie-unique-id=2
"""
SGIE_ONNX = """\
[property]
onnx-file=cls.onnx
network-mode=0
batch-size=4
gie-unique-id=2
process-mode=2
"""


@pytest.fixture
def app(tmp_path, assets):
    conv_net(tmp_path / "det.onnx")
    conv_net(tmp_path / "cls.onnx", seed=2, size=32)
    (tmp_path / "app.txt").write_text(APP.format(video=assets.videos["short"]))
    (tmp_path / "pgie.txt").write_text(PGIE)
    (tmp_path / "sgie.txt").write_text(SGIE_ONNX)
    return tmp_path


def _json(capsys, *argv):
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_build_engines_builds_every_gie_once_then_reuses_them(app, capsys):
    engines = str(app / "engines")
    code, first = _json(capsys, "build-engines", "--json", str(app / "app.txt"), "--engine-dir", engines)
    assert code == 0 and first["failed"] == [] and first["reused"] == []
    assert sorted(b["gie"] for b in first["built"]) == ["primary-gie", "secondary-gie0"]
    pgie = next(b for b in first["built"] if b["gie"] == "primary-gie")
    assert pgie["precision"] == "fp16" and pgie["max_batch"] == 2  # [primary-gie] batch-size wins
    assert (app / "det.onnx_b2_gpu0_fp16.engine").is_file()  # written where the config says

    code, second = _json(capsys, "build-engines", "--json", str(app / "app.txt"), "--engine-dir", engines)
    assert code == 0 and second["built"] == [] and len(second["reused"]) == 2

    assert main(["engines", "list", "--engine-dir", engines]) == 0
    listing = capsys.readouterr().out
    assert "det" in listing and "cls" in listing and "fp16" in listing
    assert main(["engines", "clean", "--engine-dir", engines]) == 0
    assert "removed 2 engine(s)" in capsys.readouterr().out


def test_build_engines_reports_a_tao_model_as_failed_with_the_fix(app, capsys):
    (app / "sgie.txt").write_text(SGIE_TAO)
    code, report = _json(capsys, "build-engines", "--json", str(app / "app.txt"), "--engine-dir",
                         str(app / "engines"))
    assert code == 3
    assert [b["gie"] for b in report["built"]] == ["primary-gie"]
    assert report["failed"][0]["gie"] == "secondary-gie0"
    assert "convert the model to ONNX first" in report["failed"][0]["error"]


def test_engine_dir_defaults_to_the_environment_variable(app, capsys, monkeypatch):
    monkeypatch.setenv("DSRUN_ENGINE_DIR", str(app / "from-env"))
    code, report = _json(capsys, "build-engines", "--json", str(app / "pgie.txt"))
    assert code == 0 and report["built"][0]["gie"] == "pgie"  # an nvinfer config alone works too
    assert (app / "from-env" / "det").is_dir()


def test_clean_rejects_a_malformed_age(app, capsys):
    assert main(["engines", "clean", "--older-than", "soon", "--engine-dir", str(app)]) == 3
    assert "--older-than 'soon'" in capsys.readouterr().err
