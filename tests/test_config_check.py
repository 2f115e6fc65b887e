"""`dsrun check` on real DeepStream configs: exit codes, the resolved pipeline, --json shape."""

import json
import subprocess
import sys
from pathlib import Path

from runner.cli import main
from runner.deepstream_libs import BBOX_PARSE_FUNCS

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
YOLO = CONFORMANCE / "deepstream/tools/yolo_deepstream/deepstream_yolo/deepstream_app_config_yolo.txt"
BROKEN = CONFORMANCE / "broken"
SAMPLE = Path(__file__).resolve().parents[1] / "samples/test1/deepstream_app_config.txt"


#: the YOLO config's parser; the run refuses the config until dsrun has that parser built in, and
#: check says so: its verdict follows the parser registry the run uses
YOLO_RUNS = "NvDsInferParseCustomYoloV7_cuda" in BBOX_PARSE_FUNCS


def test_check_shows_the_pipeline_and_exits_0_only_when_the_run_would_start(capsys):
    assert main(["check", str(YOLO)]) == (0 if YOLO_RUNS else 2)
    out = capsys.readouterr().out
    assert "sources (16):" in out
    assert "primary-gie: enabled, nvinfer" in out
    assert "batch-size 16" in out
    assert "accepted, not yet supported" in out
    assert ("valid" in out) == YOLO_RUNS
    assert ("NvDsInferParseCustomYoloV7_cuda" in out) != YOLO_RUNS


def test_check_valid_sample_exits_0(capsys):
    assert main(["check", str(SAMPLE)]) == 0
    assert "  valid, " in capsys.readouterr().out


def test_check_json_is_one_document_with_located_diagnostics(capsys):
    broken = BROKEN / "a02-wrong-type-batch-size/test5_config_file_src_infer.txt"
    assert main(["check", "--json", str(YOLO), str(broken)]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False
    assert [c["valid"] for c in doc["configs"]] == [YOLO_RUNS, False]
    assert doc["configs"][0]["pipeline"]["streammux"]["batch_size"] == 16
    bad = next(d for d in doc["diagnostics"] if d["code"] == "bad-type")
    assert set(bad) == {"severity", "code", "file", "line", "group", "key", "message", "hint"}
    assert (bad["severity"], bad["line"], bad["group"], bad["key"]) == ("error", 138, "streammux",
                                                                        "batch-size")


def test_check_nvinfer_config_on_its_own(capsys):
    nvinfer = YOLO.parent / "config_infer_primary_yoloV7.txt"
    assert main(["check", "--json", str(nvinfer)]) == 0
    report = json.loads(capsys.readouterr().out)["configs"][0]
    assert report["kind"] == "nvinfer"
    assert report["pipeline"]["nvinfer"]["network_type"] == "detector"


def test_check_missing_file_is_exit_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "runner", "check", "/nonexistent/app.txt"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "/nonexistent/app.txt does not exist" in result.stdout
