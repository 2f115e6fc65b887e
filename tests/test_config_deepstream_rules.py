"""Config reading that follows deepstream-app's and Gst-nvinfer's parsers, rule by rule.

Each expected value is worked out by hand from the DeepStream 9.1 C/C++ named in the test
(src/apps/sample_apps/deepstream-app/deepstream_app_config_parser.c, deepstream_app.c,
src/apps/common/src/deepstream_config_file_parser.c, gst-nvinfer/gstnvinfer_property_parser.cpp,
nvdsinfer/nvdsinfer_context_impl.cpp), on real configs from ../shared/conformance where one exists.
"""

from pathlib import Path

from runner.config import inspect_app, inspect_nvinfer, inspect_tracker

TREE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "deepstream"
TEST5 = TREE / "src/apps/sample_apps/deepstream-test5/configs"
MULTIURI = TEST5 / "test5_config_file_nvmultiurisrcbin_src_list_attr_all.txt"
NVDCF = TREE / "src/apps/reference_apps/deepstream-tracker-3d-multi-view/config_templates/config_tracker.yml"
YOLO = TREE / "tools/yolo_deepstream/deepstream_yolo"


def _errors(diags):
    return [(d.line, d.group, d.key) for d in diags if d.is_error]


def test_nvdcf_feature_focus_offset_factor_y_is_read_with_its_underscore():
    config, diags = inspect_tracker(NVDCF)
    line = next(i for i, text in enumerate(NVDCF.read_text().splitlines(), 1)
                if "featureFocusOffsetFactor_y" in text)
    written = float(NVDCF.read_text().splitlines()[line - 1].split(":")[1].split("#")[0])
    assert config.VisualTracker.featureFocusOffsetFactor_y == written
    assert not [d for d in diags if d.line == line]


def test_nvmultiurisrcbin_batches_streammux_and_pgie_at_max_batch_size_and_sgies_at_sgie_batch_size():
    # deepstream_app.c create_pipeline: streammux and primary batch-size = max-batch-size (10),
    # secondaries = sgie-batch-size (40); the groups' batch-size=2 / 16 are replaced
    config, diags = inspect_app(MULTIURI)
    assert config.batch_size == 10
    assert config.primary_gie.batch_size == 10
    assert [g.batch_size for g in config.secondary_gies] == [40, 40]


def test_source_list_forces_streammux_and_pgie_batch_to_the_number_of_sources(tmp_path):
    # parse_config_file, "Updating batch size when source list is enabled": num_source_sub_bins (2)
    text = MULTIURI.read_text().replace("use-nvmultiurisrcbin=1", "use-nvmultiurisrcbin=0")
    text = text.replace("[streammux]\n", "[streammux]\nbatch-size=8\n", 1).replace("batch-size=2\n", "")
    (tmp_path / "app.txt").write_text(text)
    config, _ = inspect_app(tmp_path / "app.txt")
    assert config.streammux.batch_size == 2 and config.batch_size == 2
    assert config.primary_gie.batch_size is None  # no app-level batch-size: the property is not set
    assert [g.batch_size for g in config.secondary_gies] == [40, 40]


def test_source_list_without_source_attr_all_is_an_error(tmp_path):
    text = MULTIURI.read_text().replace("[source-attr-all]", "[unused-attrs]")
    (tmp_path / "app.txt").write_text(text)
    _, diags = inspect_app(tmp_path / "app.txt")
    assert (34, "source-list", None) in _errors(diags)


def test_a_sources_group_is_refused_as_deepstream_app_refuses_it(tmp_path):
    (tmp_path / "app.txt").write_text("[streammux]\nwidth=64\n\n[sources]\nenable=1\n")
    _, diags = inspect_app(tmp_path / "app.txt")
    assert _errors(diags) == [(4, "sources", None)]
    assert "[source0]" in str(next(d for d in diags if d.is_error))


def _app_with_gies(tmp_path, primary_id: str, secondary_ids: list[str]) -> Path:
    (tmp_path / "labels.txt").write_text("car\n")
    (tmp_path / "pgie.txt").write_text("[property]\nnetwork-type=0\nnum-detected-classes=1\n")
    text = f"[streammux]\nwidth=64\n\n[primary-gie]\nenable=1\nconfig-file=pgie.txt\n{primary_id}\n"
    for i, sid in enumerate(secondary_ids):
        text += f"\n[secondary-gie{i}]\nenable=1\nconfig-file=pgie.txt\n{sid}\n"
    (tmp_path / "app.txt").write_text(text)
    return tmp_path / "app.txt"


def test_duplicate_gie_unique_id_is_an_error_at_the_later_gie(tmp_path):
    app = _app_with_gies(tmp_path, "gie-unique-id=1", ["gie-unique-id=2", "gie-unique-id=1"])
    _, diags = inspect_app(app)
    assert _errors(diags) == [(17, "secondary-gie1", "gie-unique-id")]
    assert "Non unique gie ids" in str(next(d for d in diags if d.is_error))


def test_two_sgies_without_app_level_gie_unique_id_share_id_0(tmp_path):
    app = _app_with_gies(tmp_path, "gie-unique-id=1", ["", ""])
    _, diags = inspect_app(app)
    assert _errors(diags) == [(14, "secondary-gie1", None)]  # its group line


def test_distinct_gie_ids_are_fine(tmp_path):
    app = _app_with_gies(tmp_path, "gie-unique-id=1", ["gie-unique-id=2", "gie-unique-id=3"])
    assert _errors(inspect_app(app)[1]) == []


def test_app_level_labelfile_path_is_only_checked_never_given_to_nvinfer(tmp_path):
    (tmp_path / "own.txt").write_text("person\n")
    (tmp_path / "app_labels.txt").write_text("car\n")
    (tmp_path / "pgie.txt").write_text("[property]\nnum-detected-classes=1\nlabelfile-path=own.txt\n")
    (tmp_path / "app.txt").write_text("[primary-gie]\nenable=1\nconfig-file=pgie.txt\n"
                                      "labelfile-path=app_labels.txt\ngie-unique-id=1\n")
    config, diags = inspect_app(tmp_path / "app.txt")
    assert _errors(diags) == []
    assert config.primary_gie.nvinfer.labelfile_path == tmp_path / "own.txt"
    (tmp_path / "app_labels.txt").unlink()  # parse_labels_file cannot open it: deepstream-app stops
    _, diags = inspect_app(tmp_path / "app.txt")
    assert _errors(diags) == [(4, "primary-gie", "labelfile-path")]


def test_smart_record_3_is_accepted_as_any_non_zero_value_is(tmp_path):
    (tmp_path / "app.txt").write_text("[source0]\nenable=1\ntype=4\nuri=rtsp://cam/x\nsmart-record=3\n")
    config, diags = inspect_app(tmp_path / "app.txt")
    assert _errors(diags) == [] and config.sources[0].smart_record == 3


def test_yaml_1_2_directive_without_document_start_is_read_as_yaml_cpp_reads_it(tmp_path):
    (tmp_path / "pgie.yml").write_text("%YAML 1.2\nproperty:\n  batch-size: 4\n")
    config, diags = inspect_nvinfer(tmp_path / "pgie.yml")
    assert diags == [] and config.batch_size == 4


def test_yaml_syntax_error_is_reported_once_at_its_line_not_as_an_empty_file(tmp_path):
    (tmp_path / "pgie.yml").write_text("property:\n  batch-size: 1\n   bad: [\n")
    _, diags = inspect_nvinfer(tmp_path / "pgie.yml")
    assert [(d.line, d.code) for d in diags] == [(3, "syntax")]
    assert "empty" not in str(diags[0])


def test_topk_minus_1_is_refused_as_gst_nvinfer_refuses_it(tmp_path):
    (tmp_path / "pgie.txt").write_text("[property]\nnum-detected-classes=2\n[class-attrs-all]\ntopk=-1\n")
    config, diags = inspect_nvinfer(tmp_path / "pgie.txt")
    assert _errors(diags) == [(4, "class-attrs-all", "topk")]
    (tmp_path / "pgie.txt").write_text("[property]\nnum-detected-classes=2\n")
    config, _ = inspect_nvinfer(tmp_path / "pgie.txt")
    assert config.class_attrs(0).topk == -1  # unset: every object (DEFAULT_TOP_K)


def test_instance_segmentation_needs_cluster_mode_4(tmp_path):
    (tmp_path / "pgie.txt").write_text("[property]\nnetwork-type=3\nnum-detected-classes=2\n")
    _, diags = inspect_nvinfer(tmp_path / "pgie.txt")
    assert _errors(diags) == [(2, "property", "network-type")]
    (tmp_path / "pgie.txt").write_text("[property]\nnetwork-type=3\nnum-detected-classes=2\ncluster-mode=2\n")
    assert _errors(inspect_nvinfer(tmp_path / "pgie.txt")[1]) == [(4, "property", "cluster-mode")]
    (tmp_path / "pgie.txt").write_text("[property]\nnetwork-type=3\nnum-detected-classes=2\ncluster-mode=4\n")
    assert _errors(inspect_nvinfer(tmp_path / "pgie.txt")[1]) == []


def test_file_loop_in_a_source_group_is_ignored_with_a_hint_to_move_it_to_tests(tmp_path):
    (tmp_path / "app.txt").write_text("[source0]\nenable=1\ntype=2\nuri=file:///v.mp4\nfile-loop=1\n")
    config, diags = inspect_app(tmp_path / "app.txt")
    warning = next(d for d in diags if d.key == "file-loop")
    assert (warning.severity, warning.line, warning.hint) == ("warning", 5, "move it to [tests]")
    assert config.tests.file_loop is False


def test_a_file_name_over_255_bytes_is_a_located_error_in_check_and_run(tmp_path):
    import subprocess
    import sys

    long = "x" * 300
    (tmp_path / "app.txt").write_text(
        f"[source0]\nenable=1\ntype=2\nuri=file://{tmp_path / long}.mp4\n[streammux]\nwidth=64\n"
        f"[primary-gie]\nenable=1\nconfig-file={long}.txt\n[sink0]\nenable=1\ntype=3\noutput-file={long}.mp4\n")
    _, diags = inspect_app(tmp_path / "app.txt")
    assert _errors(diags) == [(4, "source0", "uri"), (9, "primary-gie", "config-file"),
                              (13, "sink0", "output-file")]
    assert all("file systems allow 255" in d.message for d in diags if d.is_error)
    repo = Path(__file__).resolve().parents[1]
    for args in (["check"], []):
        result = subprocess.run([sys.executable, "-m", "runner", *args, str(tmp_path / "app.txt")],
                                capture_output=True, text=True, timeout=120, cwd=repo)
        assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
        assert f"{tmp_path / 'app.txt'}:9 [primary-gie] config-file: a file name of 304 bytes" in (
            result.stdout + result.stderr)
