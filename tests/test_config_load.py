"""What load_app/load_nvinfer give a DeepStream user: sources, overrides, paths, nothing dropped."""

import json
from pathlib import Path

import pytest

from runner.config import (ConfigError, SourceType, inspect_app, inspect_nvinfer, inspect_tracker,
                           load_app, load_nvinfer)
from runner.config.coerce import indexed_prefix, key_kinds
from runner.config.files import read_document
from runner.config.groups import app_group, nvinfer_group, tracker_group
from runner.config.load import APP_SPEC
from runner.config.validate import is_disabled

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
TREE = CONFORMANCE / "deepstream"
TEST5 = TREE / "src/apps/sample_apps/deepstream-test5/configs"
MANIFEST = json.loads((CONFORMANCE / "manifest.json").read_text())


def test_source_list_expands_with_source_attr_all_and_sensor_ids():
    config, _ = inspect_app(TEST5 / "test5_config_file_nvmultiurisrcbin_src_list_attr_all.txt")
    assert [s.index for s in config.sources] == [0, 1]
    assert [s.sensor_id for s in config.sources] == ["UniqueSensorId1", "UniqueSensorId2"]
    assert [s.uri.rsplit("/", 1)[-1] for s in config.sources] == ["sample_1080p_h264.mp4",
                                                                   "sample_1080p_h265.mp4"]
    first = config.sources[0]
    assert first.type == SourceType.URI  # a file:// list entry, as deepstream-app decides
    assert (first.rtsp_reconnect_interval_sec, first.rtsp_reconnect_attempts) == (10, 4)


def test_yaml_app_config_takes_its_sources_from_the_csv_rows():
    config, diags = inspect_app(TEST5 / "test5_config_file_src_infer.yml")
    assert len(config.sources) == 4  # two rows of type=3 with num-sources=2
    assert [s.index for s in config.sources] == [0, 1, 2, 3]
    assert config.streammux.batch_size == 4
    csv_warnings = [(d.line, d.key) for d in diags if d.file.endswith("sources_4.csv")]
    assert csv_warnings == [(2, "uri"), (3, "uri")]  # the SDK sample video is not in the corpus


def test_relative_paths_resolve_against_the_file_that_names_them():
    app = TREE / "src/apps/tao_apps/deepstream_app_tao_configs/deepstream_app_source1_trafficcamnet.txt"
    config, _ = inspect_app(app)
    nvinfer = config.primary_gie.nvinfer
    assert nvinfer.path.parent == app.parent / "nvinfer"
    assert nvinfer.labelfile_path.is_absolute()
    assert nvinfer.labelfile_path.exists()  # ../labels_trafficnet.txt from nvinfer/
    assert config.primary_gie.config_file == app.parent / "nvinfer/config_infer_primary_trafficcamnet.txt"


def test_a_disabled_group_is_not_read_as_deepstream_app_does(tmp_path):
    """parse_sink / parse_gie / parse_source return before reading any key when enable is 0 or
    missing (deepstream_config_file_parser.c), so nothing in them can be wrong."""
    (tmp_path / "app.txt").write_text(
        "[source0]\nenable=0\ntype=99\n[streammux]\nwidth=64\n"
        "[sink0]\nenable=0\ntype=42\noutput-file=out.mp4\n[sink1]\ntype=7\nbogus=1\n"
        "[secondary-gie0]\nenable=0\nconfig-file=missing.txt\n")
    config, diags = inspect_app(tmp_path / "app.txt")
    assert [str(d) for d in diags] == []
    assert [(s.group, s.enable, s.output_file) for s in config.sinks] == [("sink0", False, None),
                                                                          ("sink1", False, None)]
    assert config.sources == () and config.secondary_gies[0].enable is False


def test_enable_true_in_a_key_file_is_disabled_with_a_warning(tmp_path):
    (tmp_path / "app.txt").write_text("[streammux]\nwidth=64\n[sink0]\nenable=true\ntype=1\n")
    config, diags = inspect_app(tmp_path / "app.txt")
    assert config.sinks[0].enable is False  # g_key_file_get_integer("true") fails: group skipped
    assert [(d.severity, d.line, d.key) for d in diags] == [("warning", 4, "enable")]


def test_dsrun_extension_keys_are_read_and_the_app_group_overrides_them(tmp_path):
    (tmp_path / "pgie.txt").write_text(
        "[property]\nonnx-file=m.onnx\nnetwork-mode=1\ndsrun-backend=onnxruntime\n"
        "dsrun-calib-images=calib\ndsrun-calib-method=percentile\n")
    (tmp_path / "app.txt").write_text(
        "[source0]\nenable=1\ntype=2\nuri=file://v.mp4\n[streammux]\nwidth=64\nheight=64\n"
        "[primary-gie]\nenable=1\nconfig-file=pgie.txt\ndsrun-backend=torch\nbatch-size=2\n")
    alone = load_nvinfer(tmp_path / "pgie.txt")
    assert (alone.dsrun_backend.value, alone.dsrun_calib_method.value) == ("onnxruntime", "percentile")
    assert alone.dsrun_calib_images == tmp_path / "calib"
    app = load_app(tmp_path / "app.txt")
    assert app.primary_gie.nvinfer.dsrun_backend.value == "torch"
    assert app.primary_gie.nvinfer.batch_size == 2
    assert app.sources[0].uri == f"file://{tmp_path}/v.mp4"
    assert any("m.onnx missing, needed at run time" in str(w) for w in app.warnings)


def test_bad_extension_value_is_a_bad_enum_with_the_choices(tmp_path):
    (tmp_path / "pgie.txt").write_text("[property]\ndsrun-backend=openvino\n")
    with pytest.raises(ConfigError) as raised:
        load_nvinfer(tmp_path / "pgie.txt")
    diag = raised.value.diagnostics[0]
    assert (diag.code, diag.line, diag.key) == ("bad-enum", 2, "dsrun-backend")
    assert "auto" in diag.hint and "tensorrt" in diag.hint


def test_class_attrs_n_is_merged_over_class_attrs_all(tmp_path):
    (tmp_path / "d.txt").write_text("[property]\nnum-detected-classes=3\n[class-attrs-all]\n"
                                    "pre-cluster-threshold=0.4\ntopk=20\n[class-attrs-1]\ntopk=5\n")
    config = load_nvinfer(tmp_path / "d.txt")
    assert (config.class_attrs(0).pre_cluster_threshold, config.class_attrs(0).topk) == (0.4, 20)
    assert (config.class_attrs(1).pre_cluster_threshold, config.class_attrs(1).topk) == (0.4, 5)
    assert config.class_attrs(2).nms_iou_threshold == 0.3  # gst-nvinfer's default


def test_directory_empty_and_unreadable_files_are_errors_not_tracebacks(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    for path, code in ((tmp_path, "unreadable"), (tmp_path / "empty.txt", "syntax")):
        _, diags = inspect_app(path)
        assert [d.code for d in diags if d.is_error] == [code]


def _all_configs():
    for app in MANIFEST["app_configs"]:
        yield TREE / app["app_config"], inspect_app, app_group
    for comp in MANIFEST["component_configs"]:
        if comp["kind"] == "nvinfer":
            yield TREE / comp["path"], inspect_nvinfer, nvinfer_group
        elif comp["kind"] == "tracker":
            yield TREE / comp["path"], inspect_tracker, tracker_group


def test_no_key_in_the_corpus_is_silently_dropped():
    silent = []
    for path, inspect, match in _all_configs():
        config, diags = inspect(path)
        reported = {(d.line, d.group, d.key) for d in diags if d.file == str(path)}
        group_reported = {d.group for d in diags if d.file == str(path) and d.key is None}
        doc = read_document(path, [])
        for name, group in doc.groups.items():
            kind = match(name)
            if kind is not None and kind.name in APP_SPEC.skip_disabled and is_disabled(group, doc.format):
                continue  # deepstream-app reads no key of a disabled source/GIE/sink group either
            known = key_kinds(kind.cls) if kind else {}
            prefixes = [indexed_prefix(k) for k in known if indexed_prefix(k)]
            for key, entry in group.entries.items():
                mapped = key in known or any(key.startswith(p) for p in prefixes)
                if not mapped and (entry.line, name, key) not in reported and name not in group_reported:
                    silent.append(f"{path}:{entry.line} [{name}] {key}")
    assert silent == []


def test_keys_outside_the_supported_table_are_listed_as_unsupported():
    from runner.config.supported import is_supported

    config, _ = inspect_app(TEST5 / "test5_config_file_src_infer_tracker_sgie.txt")
    assert ("[osd] font" in config.unsupported) == (not is_supported("osd", "font"))
    assert ("[streammux] width" in config.unsupported) == (not is_supported("streammux", "width"))
    assert not any(e.endswith("[primary-gie] config-file") for e in config.unsupported)  # acted on
    assert not any(e.startswith("[message-consumer0]") for e in config.unsupported)  # enable=0


def test_enabled_gie_without_config_file_is_an_error_at_its_group(tmp_path):
    (tmp_path / "app.txt").write_text("[streammux]\nwidth=64\n\n[primary-gie]\nenable=1\nbatch-size=1\n")
    _, diags = inspect_app(tmp_path / "app.txt")
    assert [(d.code, d.line, d.group) for d in diags if d.is_error] == [
        ("inconsistent", 4, "primary-gie")]


def test_legacy_threshold_stands_for_pre_cluster_threshold_as_in_the_corpus(conformance):
    """`threshold=` (the legacy spelling, still in NVIDIA's LPR sample) sets pre-cluster-threshold."""
    config = load_nvinfer(conformance / "deepstream/src/apps/tao_apps/misc/dev_blog/LPDR/lpdr_sample/"
                                        "lpr_config_sgie_us.txt")
    assert config.class_attrs_all.threshold == 0.5
    assert config.class_attrs(0).pre_cluster_threshold == 0.5
