"""A CUDA stream per stage thread (runner.pipeline.gpu_streams) changes when work runs, never what it
computes: the same config on NVDEC frames gives the same objects, tracks and labels with streams on
and off. Needs a GPU with NVDEC (PyNvVideoCodec) and a CUDA torch: the device machine runs it; here
it is skipped."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (device machine)")


FILES = ["models/detectnet_resnet18_small.onnx", "models/resnet18_classifier_small.onnx", "videos/short_360p.mp4"]


def _config(folder, assets, sources: int):
    det, cls = assets.models["detectnet_small"], assets.models["classifier_small"]
    clip = assets.root / "videos" / "short_360p.mp4"
    (folder / "labels_pgie.txt").write_text("a\nb\nc\nd\n")
    (folder / "labels_sgie.txt").write_text("c0;c1;c2;c3;c4;c5\n")
    (folder / "tracker.yml").write_text(
        "%YAML:1.0\nBaseConfig:\n  minDetectorConfidence: 0.0\nTargetManagement:\n  maxTargetsPerStream: 150\n"
        "  probationAge: 1\nDataAssociator:\n  associationMatcherType: 0\n  minMatchingScore4Iou: 0.1\n")
    (folder / "pgie.txt").write_text(
        f"[property]\nnet-scale-factor=0.00392156862745098\nonnx-file={det}\nlabelfile-path=labels_pgie.txt\n"
        f"batch-size={sources}\nnetwork-mode=2\nnum-detected-classes=4\ngie-unique-id=1\ncluster-mode=2\n"
        "output-blob-names=output_cov/Sigmoid;output_bbox/BiasAdd\n"
        "[class-attrs-all]\npre-cluster-threshold=0.4\nnms-iou-threshold=0.5\ntopk=20\n")
    (folder / "sgie.txt").write_text(
        f"[property]\nnet-scale-factor=0.00392156862745098\nonnx-file={cls}\nlabelfile-path=labels_sgie.txt\n"
        "batch-size=16\nnetwork-mode=2\nnetwork-type=1\ngie-unique-id=2\noperate-on-gie-id=1\nprocess-mode=2\n"
        "classifier-threshold=0.0\n")
    srcs = "".join(f"[source{i}]\nenable=1\ntype=3\nuri=file://{clip}\n" for i in range(sources))
    (folder / "app.txt").write_text(
        srcs + f"[streammux]\nwidth=640\nheight=360\nbatch-size={sources}\nbatched-push-timeout=4000000\n"
        "[primary-gie]\nenable=1\ngie-unique-id=1\nconfig-file=pgie.txt\n"
        "[tracker]\nenable=1\ntracker-width=640\ntracker-height=384\n"
        "ll-lib-file=/opt/nvidia/deepstream/deepstream/lib/libnvds_nvmultiobjecttracker.so\n"
        "ll-config-file=tracker.yml\n"
        "[secondary-gie0]\nenable=1\ngie-unique-id=2\noperate-on-gie-id=1\nconfig-file=sgie.txt\n[sink0]\nenable=1\ntype=1\n")
    return folder / "app.txt"


def _collect(config, monkeypatch, streams: str, split: str = "") -> dict:
    import dsrun

    monkeypatch.setenv("DSRUN_CUDA_STREAMS", streams)
    monkeypatch.setenv("DSRUN_GIE_SPLIT", split)  # "": the default (2 for an engine on the GPU)
    seen = {}

    def on_batch(b):
        for row, (sid, num) in enumerate(zip(b.source_id.tolist(), b.frame_num.tolist())):
            mine = b.objects[b.objects.frame == row]
            labels = b.classifications[b.classifications.frame == row]
            seen[sid, num] = (mine.xyxy.copy(), mine.class_id.copy(), mine.track_id.copy(),
                              sorted(labels.label.tolist()))

    assert dsrun.run(config, on_batch=on_batch).exit_code == 0
    return seen


def _nvdec_config(tmp_path):
    from runner.assets import ensure_assets
    from runner.pipeline.nvdec import nvdec_usable
    from runner.pipeline.source import URI, SourceSpec

    assets = ensure_assets(only=FILES)  # just these: the device machine has them carried, no network
    clip = assets.root / "videos" / "short_360p.mp4"
    if not nvdec_usable(SourceSpec(0, URI, f"file://{clip}")):
        pytest.skip("PyNvVideoCodec (NVDEC) is not installed")
    return _config(tmp_path, assets, sources=4)


def _assert_same(off: dict, on: dict) -> None:
    assert set(on) == set(off) and len(on) == 4 * 30
    boxes = 0
    for key, (xyxy, cls, track, labels) in off.items():
        got = on[key]
        np.testing.assert_allclose(got[0], xyxy, atol=0.05, err_msg=str(key))
        assert got[1].tolist() == cls.tolist() and got[2].tolist() == track.tolist() and got[3] == labels, key
        boxes += len(xyxy)
    assert boxes > 0


def test_stage_streams_give_the_same_results_as_the_default_stream(tmp_path, monkeypatch):
    config = _nvdec_config(tmp_path)
    _assert_same(_collect(config, monkeypatch, "0"), _collect(config, monkeypatch, "1"))


def test_the_gie_split_gives_the_same_results_on_the_gpu(tmp_path, monkeypatch):
    """The PGIE's pre-processing (and engine) on threads of their own (each on its own CUDA stream, or
    with the streams off the default stream they all share) against everything on the stage thread."""
    config = _nvdec_config(tmp_path)
    whole = _collect(config, monkeypatch, "1", split="0")
    _assert_same(whole, _collect(config, monkeypatch, "1", split="1"))
    _assert_same(whole, _collect(config, monkeypatch, "1", split="2"))
    _assert_same(whole, _collect(config, monkeypatch, "0", split="2"))
