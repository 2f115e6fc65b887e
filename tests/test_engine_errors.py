"""Every bad model, engine or disk gets one paragraph naming the file and the fix; nothing half-written."""

import subprocess
from pathlib import Path

import pytest
from onnx import helper

from engine_support import conv_net
from runner.engine import EngineError, EngineSpec, load_engine
from runner.engine.cache import EngineCache
from runner.engine.progress import Progress


def _no_entries(engines: Path):
    """Nothing was kept: no entry, no staging folder (lock files are fine)."""
    if not engines.exists():
        return True
    leftovers = [p for p in engines.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    return leftovers == [] and EngineCache(engines).entries() == []


def _fails(spec, engines, *needles):
    with pytest.raises(EngineError) as err:
        load_engine(spec, engines, Progress())
    text = str(err.value)
    for needle in needles:
        assert needle in text, text
    assert "\n" not in text  # one paragraph
    assert _no_entries(engines)
    return text


def test_missing_onnx_names_the_file_and_the_config(tmp_path):
    spec = EngineSpec(onnx_file=tmp_path / "nope.onnx", source=tmp_path / "pgie.txt")
    _fails(spec, tmp_path / "e", f"{tmp_path / 'pgie.txt'}: [property] onnx-file:",
           f"{tmp_path / 'nope.onnx'} does not exist", "fix the path")


def test_truncated_onnx_is_reported_as_corrupt_and_nothing_is_cached(tmp_path):
    good = conv_net(tmp_path / "good.onnx").read_bytes()
    bad = tmp_path / "det.onnx"
    bad.write_bytes(good[: len(good) // 2])
    _fails(EngineSpec(onnx_file=bad), tmp_path / "e", str(bad), "re-export the model")


def test_onnx_input_disagreeing_with_infer_dims_says_which_dims_to_set(tmp_path):
    model = conv_net(tmp_path / "det.onnx", size=64)
    text = _fails(EngineSpec(onnx_file=model, infer_dims=(3, 544, 960)), tmp_path / "e",
                  "3;544;960 disagrees with input 'input'", "which is 3;64;64")
    assert "set infer-dims=3;64;64" in text


def test_unsupported_operator_is_named(tmp_path):
    odd = helper.make_node("FancyNMS", ["cov"], ["boxes"], domain="com.example")
    model = conv_net(tmp_path / "det.onnx", extra_node=odd)
    _fails(EngineSpec(onnx_file=model), tmp_path / "e", str(model), "operator com.example:FancyNMS",
           "re-export the model with standard operators")


def test_int8_without_calibration_data_says_what_to_provide(tmp_path):
    model = conv_net(tmp_path / "det.onnx")
    _fails(EngineSpec(onnx_file=model, precision="int8"), tmp_path / "e", "INT8",
           "int8-calib-file", "dsrun-calib-images")


def test_garbage_calibration_table_is_named(tmp_path):
    model = conv_net(tmp_path / "det.onnx")
    table = tmp_path / "cal.table"
    table.write_text("hello\nworld\n")
    _fails(EngineSpec(onnx_file=model, precision="int8", int8_calib_file=table), tmp_path / "e",
           f"{table}: not a calibration table")


def test_unwritable_engine_dir_says_how_to_choose_another(tmp_path):
    model = conv_net(tmp_path / "det.onnx")
    with pytest.raises(EngineError) as err:
        load_engine(EngineSpec(onnx_file=model), "/sys/dsrun-engines", Progress())
    assert "/sys/dsrun-engines" in str(err.value) and "--engine-dir" in str(err.value)
    assert "DSRUN_ENGINE_DIR" in str(err.value)


def test_full_disk_leaves_nothing_half_written(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        model = conv_net(tmp_path / "det.onnx", channels=(32, 64, 64))  # ~120 KB: does not fit
        text = _fails(EngineSpec(onnx_file=model), disk, "no space left", "--engine-dir")
        assert str(disk) in text
        assert list(disk.rglob("*.onnx")) == [] and list(disk.rglob(".tmp-*")) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_caffe_uff_and_tao_models_say_convert_to_onnx_first(tmp_path):
    from runner.config import load_nvinfer

    cfg = tmp_path / "config_infer_primary.txt"
    cfg.write_text("[property]\ntlt-model-key=nvidia_tlt\ntlt-encoded-model=../models/resnet18.etlt\n"
                   "batch-size=2\nnetwork-mode=2\n")
    with pytest.raises(EngineError) as err:
        EngineSpec.from_nvinfer(load_nvinfer(cfg))
    text = str(err.value)
    assert text.startswith(f"{cfg}: [property] tlt-encoded-model:")
    assert "convert the model to ONNX first" in text and "onnx-file" in text


def test_nvinfer_config_maps_onto_the_engine_spec(tmp_path):
    from runner.config import load_nvinfer

    model = conv_net(tmp_path / "det.onnx")
    cfg = tmp_path / "pgie.txt"
    cfg.write_text("[property]\nonnx-file=det.onnx\nmodel-engine-file=det.onnx_b4_gpu0_int8.engine\n"
                   "network-mode=1\nbatch-size=4\ninfer-dims=3;64;64\nint8-calib-file=cal.table\n"
                   "workspace-size=2048\ngpu-id=0\nnet-scale-factor=0.0039215697906911373\n"
                   "model-color-format=1\ndsrun-calib-images=frames\ndsrun-calib-method=percentile\n")
    spec = EngineSpec.from_nvinfer(load_nvinfer(cfg))
    assert (spec.onnx_file, spec.model_engine_file) == (model, tmp_path / "det.onnx_b4_gpu0_int8.engine")
    assert (spec.precision, spec.batch_size, spec.infer_dims) == ("int8", 4, (3, 64, 64))
    assert (spec.int8_calib_file, spec.calib_images) == (tmp_path / "cal.table", tmp_path / "frames")
    assert (spec.calib_method, spec.workspace_size, spec.model_color_format) == ("percentile", 2048, 1)
    assert spec.source == cfg and spec.backend == "auto"


def test_nhwc_model_infer_dims_are_read_and_suggested_as_chw(tmp_path, assets):
    from runner.config import load_nvinfer

    cfg = tmp_path / "sgie.txt"
    cfg.write_text(f"[property]\nonnx-file={assets.models['mtcnn_rnet']}\nnetwork-input-order=1\n"
                   "infer-dims=3;48;48\n")
    spec = EngineSpec.from_nvinfer(load_nvinfer(cfg))
    assert spec.infer_dims == (48, 48, 3)  # the model's own axis order
    _fails(spec, tmp_path / "e", "3;48;48 disagrees with input 'input_2'", "which is 3;24;24",
           "set infer-dims=3;24;24")
    good = spec.replace(infer_dims=(24, 24, 3))
    assert load_engine(good, tmp_path / "e", Progress()).inputs[0].shape == (24, 24, 3)


def test_unwritable_model_engine_file_warns_and_runs_the_cached_engine(tmp_path):
    model = conv_net(tmp_path / "det.onnx")
    messages = []

    class Collect(Progress):
        def message(self, text):
            messages.append(text)

    target = "/sys/dsrun-models/det_b1.engine"
    engine = load_engine(EngineSpec(onnx_file=model, model_engine_file=Path(target)), tmp_path / "e",
                         Collect())
    assert engine.origin == "built" and engine.path.parent.parent == tmp_path / "e" / "det"
    assert len(messages) == 1 and messages[0].startswith("model-engine-file not written: /sys/dsrun-models")
    assert "running the cached engine" in messages[0]
