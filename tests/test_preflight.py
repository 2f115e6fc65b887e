"""`dsrun check` says "valid" only when the run would start, and both say the same thing: what the run
refuses is an error at check time and stops the run before anything is built (exit 2); what the run
would leave out is a warning in both, located at file:line [group] key.

Expected verdicts for the registries other parts of dsrun extend (broker adaptors, parser names, the
SUPPORTED table) are taken from those registries, so these tests keep telling the truth as features land.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import main
from runner.config import inspect_app
from runner.config.supported import is_supported
from runner.deepstream_libs import BROKER_ADAPTORS, BROKERS_SUPPORTED
from runner.preflight import preflight

REPO = Path(__file__).resolve().parents[1]


def _dsrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                                     "HOME": str(cwd)})


def _app(tmp_path: Path, extra: str = "", pgie: str = "") -> Path:
    """A runnable app (the DetectNet_v2-shaped detector on a real video) with ``extra`` groups appended
    and ``pgie`` lines added to its nvinfer [property]."""
    from runner.assets import ensure_assets

    assets = ensure_assets()
    (tmp_path / "labels.txt").write_text("car\nbicycle\nperson\nroadsign\n")
    (tmp_path / "pgie.txt").write_text(
        f"[property]\nonnx-file={assets.models['detectnet_small']}\nlabelfile-path={tmp_path / 'labels.txt'}\n"
        "net-scale-factor=0.00392156862745098\ninfer-dims=3;272;480\nbatch-size=1\n"
        f"num-detected-classes=4\ncluster-mode=2\n{pgie}\n[class-attrs-all]\npre-cluster-threshold=0.2\n")
    (tmp_path / "app.txt").write_text(
        f"[source0]\nenable=1\ntype=2\nuri=file://{assets.videos['sample_720p']}\n\n"
        "[streammux]\nwidth=1280\nheight=720\nbatch-size=1\nbatched-push-timeout=40000\n\n"
        f"[primary-gie]\nenable=1\ngie-unique-id=1\nconfig-file={tmp_path / 'pgie.txt'}\n\n"
        f"[osd]\nenable=1\n\n[sink0]\nenable=1\ntype=3\noutput-file={tmp_path / 'out.mp4'}\n\n{extra}")
    return tmp_path / "app.txt"


def _problems(path: Path):
    config, diags = inspect_app(path)
    assert [str(d) for d in diags if d.is_error] == []
    return preflight(config)


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(text))


def test_the_sample_is_runnable_as_is(tmp_path):
    assert _problems(_app(tmp_path)) == []


def test_a_broker_adaptor_dsrun_does_not_publish_with_is_an_error_in_check_and_in_the_run(tmp_path):
    word = next(w for w in BROKER_ADAPTORS if w not in BROKERS_SUPPORTED)
    app = _app(tmp_path, f"[sink1]\nenable=1\ntype=6\nmsg-broker-proto-lib=/opt/lib/libnvds_{word}_proto.so\n"
                         "msg-broker-conn-str=localhost;9092\ntopic=t\n")
    where = f"{app}:{_line_of(app, 'msg-broker-proto-lib')} [sink1] msg-broker-proto-lib: "
    checked = _dsrun("check", str(app), cwd=tmp_path)
    assert checked.returncode == 2 and where in checked.stdout and BROKER_ADAPTORS[word] in checked.stdout
    message = next(line.strip() for line in checked.stdout.splitlines() if where in line)
    run = _dsrun(str(app), "--no-dashboard", cwd=tmp_path)
    assert run.returncode == 2 and message.split(" ", 1)[1] in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out.mp4").exists()  # stopped before anything ran


def test_a_broker_adaptor_dsrun_publishes_with_is_fine(tmp_path):
    word = BROKERS_SUPPORTED[0]
    app = _app(tmp_path, f"[sink1]\nenable=1\ntype=6\nmsg-broker-proto-lib=/opt/lib/libnvds_{word}_proto.so\n"
                         "msg-broker-conn-str=localhost;1883\ntopic=t\n")
    assert _problems(app) == []


def test_a_parser_dsrun_has_not_built_in_is_an_error_at_custom_lib_path(tmp_path):
    app = _app(tmp_path, pgie="parse-bbox-func-name=NvDsInferParseCustomNotBuiltIn\n"
                              "custom-lib-path=/opt/libnvdsinfer_custom_impl_x.so\n")
    [problem] = _problems(app)
    assert (problem.severity, problem.file, problem.key) == ("error", str(tmp_path / "pgie.txt"), "custom-lib-path")
    assert problem.line == _line_of(tmp_path / "pgie.txt", "custom-lib-path")
    assert "NvDsInferParseCustomNotBuiltIn" in problem.message and "port" in problem.hint


def test_a_network_type_dsrun_does_not_run_is_an_error_at_network_type(tmp_path):
    app = _app(tmp_path, pgie="network-type=3\ncluster-mode=4\n")  # valid for nvinfer (instance masks)
    [problem] = _problems(app)
    assert (problem.severity, problem.key, problem.line) == (
        "error", "network-type", _line_of(tmp_path / "pgie.txt", "network-type"))


@pytest.mark.parametrize("group, kind", [("pre-process", "pre-process"), ("img-save", "img-save"),
                                         ("segvisual", "segvisual"), ("nvds-analytics", "nvds-analytics")])
def test_an_enabled_group_the_run_would_ignore_is_a_warning(tmp_path, group, kind):
    (tmp_path / "rules.txt").write_text("[property]\nenable=1\nconfig-width=1280\nconfig-height=720\n")
    app = _app(tmp_path, f"[{group}]\nenable=1\nconfig-file={tmp_path / 'rules.txt'}\n")
    found = [p for p in _problems(app) if p.group == group]
    if is_supported(kind, "enable"):
        assert found == []
    else:
        assert [(p.severity, p.line, p.key) for p in found] == [("warning", _line_of(app, f"[{group}]") + 1,
                                                                 "enable")]
        assert "the run goes on without it" in found[0].message


def test_smart_record_is_a_warning_until_the_run_records(tmp_path):
    app = _app(tmp_path)
    text = app.read_text().replace("[source0]\n", "[source0]\nsmart-record=1\n", 1)
    app.write_text(text)
    found = [p for p in _problems(app) if p.key == "smart-record"]
    assert len(found) == (0 if is_supported("sourceN", "smart-record") else 1)


def test_a_config_with_no_source_is_refused(tmp_path):
    app = _app(tmp_path)
    app.write_text(app.read_text().replace("[source0]\nenable=1", "[source0]\nenable=0"))
    [problem] = _problems(app)
    assert problem.is_error and "no enabled source" in problem.message


def test_a_service_maker_pipeline_is_named_as_such_by_check_and_run(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("deepstream:\n  nodes:\n  - type: nvurisrcbin\n    name: src\n")
    for args in (("check",), ()):
        result = _dsrun(*args, str(tmp_path / "pipeline.yaml"), cwd=tmp_path)
        assert result.returncode == 2
        assert "Service Maker" in result.stdout + result.stderr


@pytest.mark.parametrize("name, kind", [
    ("src/apps/sample_apps/deepstream-test5/configs/config_nvdsanalytics.txt", "nvdsanalytics"),
    ("src/apps/reference_apps/deepstream_parallel_inference_app/tritonclient/sample/configs/metamux/"
     "config_metamux0.txt", "metamux"),
    ("src/apps/sample_apps/deepstream-test5/configs/dstest5_msgconv_sample_config.txt", "msgconv")])
def test_other_plugins_property_files_are_not_taken_for_nvinfer_configs(conformance, name, kind, capsys):
    import json

    main(["check", "--json", str(conformance / "deepstream" / name)])
    report = json.loads(capsys.readouterr().out)["configs"][0]
    assert report["kind"] == kind


@pytest.mark.parametrize("text, kind", [
    ("[property]\nenable=1\ntarget-unique-ids=1\nnetwork-input-shape=4;3;224;224\nprocessing-width=224\n"
     "[group-0]\nsrc-ids=0\n", "nvdspreprocess"),
    ("[property]\nalgorithm-type=1\nbatch-size=4\noverall-max-fps-n=90\noverall-max-fps-d=1\n", "streammux")])
def test_preprocess_and_new_streammux_files_are_named_not_validated_as_nvinfer(tmp_path, text, kind, capsys):
    import json

    (tmp_path / "config.txt").write_text(text)
    assert main(["check", "--json", str(tmp_path / "config.txt")]) == 0
    report = json.loads(capsys.readouterr().out)["configs"][0]
    assert report["kind"] == kind and "pipeline" not in report
    assert [d["severity"] for d in report["diagnostics"]] == ["warning"]


def test_a_display_sink_is_a_warning_that_its_frames_are_discarded(tmp_path):
    app = _app(tmp_path, "[sink1]\nenable=1\ntype=2\nsync=0\n")
    [problem] = _problems(app)
    assert (problem.severity, problem.group, problem.key, problem.line) == (
        "warning", "sink1", "type", _line_of(app, "[sink1]") + 2)
    assert "discards them" in problem.message
