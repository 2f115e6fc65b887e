"""`dsrun check` warns about a missing run-time file only when the run would need it: not about an
engine dsrun builds from a present onnx-file, nor about DeepStream libraries dsrun implements itself
(the NvMultiObjectTracker library, the MQTT adaptor, a custom parser library whose function is
built in). Real missing files still warn."""

import json
import shutil
from pathlib import Path

from runner.cli import main
from runner.config import inspect_app, inspect_nvinfer

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "deepstream"
TAO = CONFORMANCE / "src/apps/tao_apps/deepstream_app_tao_configs"
TAO_APP = "deepstream_app_source1_trafficcamnet_vehiclemakenet_vehicletypenet.yml"


def _missing(diags) -> list[tuple[str, str]]:
    return [(d.group, d.key) for d in diags if d.code == "missing-file" and not d.is_error]


def _check_json(capsys, path: Path) -> dict:
    main(["check", "--json", str(path)])
    return json.loads(capsys.readouterr().out)["configs"][0]


def test_samples_check_with_no_warning_about_the_mqtt_adaptor_or_engines(capsys):
    for sample in ("msgbroker/deepstream_app_config.txt", "multistream/deepstream_app_config.txt"):
        report = _check_json(capsys, REPO / "samples" / sample)
        assert report["valid"], report["diagnostics"]
        assert [d for d in report["diagnostics"] if d["severity"] == "warning"] == [], sample
    app, _ = inspect_app(REPO / "samples/msgbroker/deepstream_app_config.txt")
    assert app.sinks[1].msg_broker_proto_lib.name == "libnvds_mqtt_proto.so"  # named, not on disk
    assert not app.sinks[1].msg_broker_proto_lib.exists()


def _tao_tree(tmp_path: Path, assets, models=("trafficcamnet", "vehiclemakenet", "vehicletypenet")) -> Path:
    """The unchanged TAO sample configs, with real ONNX models where their onnx-file keys point."""
    configs = tmp_path / "apps/tao_apps/deepstream_app_tao_configs"
    shutil.copytree(TAO, configs)
    onnx = {"trafficcamnet": ("resnet18_trafficcamnet_pruned.onnx", assets.models["detectnet_small"]),
            "vehiclemakenet": ("resnet18_pruned.onnx", assets.models["classifier_small"]),
            "vehicletypenet": ("resnet18_pruned.onnx", assets.models["classifier_small"])}
    for name in models:
        target = tmp_path / "apps/models/tao_pretrained_models" / name / onnx[name][0]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(onnx[name][1])
    return configs / TAO_APP


def test_conformance_app_with_onnx_models_present_does_not_ask_for_engines_or_the_tracker_library(
        tmp_path, assets):
    app, diags = inspect_app(_tao_tree(tmp_path, assets))
    assert app.primary_gie.model_engine_file.name.endswith("_b1_gpu0_int8.engine")  # named, absent
    assert not app.primary_gie.model_engine_file.exists()
    assert app.tracker.ll_lib_file.name == "libnvds_nvmultiobjecttracker.so"
    missing = _missing(diags)
    assert not [m for m in missing if m[1] in ("model-engine-file", "ll-lib-file")], missing
    assert ("source0", "uri") in missing  # the real missing video still warns


def test_a_really_missing_onnx_file_still_warns_for_it_and_its_engine(tmp_path, assets):
    app, diags = inspect_app(_tao_tree(tmp_path, assets, models=("trafficcamnet", "vehiclemakenet")))
    warned = {(Path(d.file).name, d.group, d.key) for d in diags if d.code == "missing-file"}
    assert ("config_infer_secondary_vehicletypenet.yml", "property", "onnx-file") in warned
    assert ("config_infer_secondary_vehicletypenet.yml", "property", "model-engine-file") in warned
    assert (TAO_APP, "secondary-gie1", "model-engine-file") in warned  # the app group's override
    assert not {w for w in warned if w[1] in ("primary-gie", "secondary-gie0")}


def test_custom_lib_path_warns_only_when_its_parse_function_is_not_built_in(tmp_path, assets):
    model = assets.models["yolo_small"]
    for func, warns in (("NvDsInferParseYoloV8", False), ("NvDsInferParseCustomYoloV7_cuda", False),
                        ("NvDsInferParseCustomYoloX_cuda", True)):
        cfg = tmp_path / f"{func}.txt"
        cfg.write_text(f"[property]\nonnx-file={model}\nnetwork-type=0\nnum-detected-classes=80\n"
                       f"parse-bbox-func-name={func}\n"
                       "custom-lib-path=nvdsinfer_custom_impl_Yolo/libnvdsinfer_custom_impl_Yolo.so\n"
                       "model-engine-file=model_b1_gpu0_fp32.engine\n")
        config, diags = inspect_nvinfer(cfg)
        assert config is not None and not config.custom_lib_path.exists()
        assert _missing(diags) == ([("property", "custom-lib-path")] if warns else []), func


def test_an_engine_without_an_onnx_file_is_still_needed(tmp_path):
    cfg = tmp_path / "pgie.txt"
    cfg.write_text("[property]\nmodel-engine-file=prebuilt_b1_gpu0_fp16.engine\n")
    _, diags = inspect_nvinfer(cfg)
    text = [str(d) for d in diags if d.code == "missing-file"]
    assert len(text) == 1 and "prebuilt_b1_gpu0_fp16.engine missing, needed at run time" in text[0]


def test_the_shared_list_of_deepstream_libraries_keeps_its_examples():
    import doctest

    import runner.deepstream_libs

    results = doctest.testmod(runner.deepstream_libs)
    assert results.failed == 0 and results.attempted >= 4
