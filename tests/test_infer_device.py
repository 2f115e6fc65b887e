"""Frames decoded on the GPU stay there through the GIEs, and give the objects the host path gives.

The device path (torch tensors from NVDEC → device pre-processing → ``engine.infer_device``) is the
same code on a CPU tensor, so it is checked here against the host path on real frames and real
models: a DetectNet_v2-shaped PGIE and a ResNet-18-class SGIE classifier on its objects. Where a GPU
answers (the GPU machine), the frames are CUDA tensors."""

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the device path needs PyTorch (.ci/run installs it)")

from runner.config import load_app  # noqa: E402
from runner.engine.prepare import prepare_engines  # noqa: E402
from runner.pipeline.batch import Batch  # noqa: E402
from runner.pipeline.infer import build_gie_stages  # noqa: E402
from infer_models import detector_classifier_app  # noqa: E402


def _batch(frames):
    n = len(frames)
    return Batch(frames=frames, source_id=np.zeros(n, np.int32), frame_num=np.arange(n, dtype=np.int64),
                 pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                 source_size=np.tile([640, 272], (n, 1)).astype(np.int32))


def _run(stages, frames):
    batch = _batch(frames)
    for stage in stages:
        batch = stage.process(batch)
    return batch


def test_device_frames_give_the_host_paths_objects_and_labels(assets, tmp_path):
    # a label for each of the 6 classes: nvinfer attaches no classifier result without one
    (tmp_path / "colours.txt").write_text("black;blue;brown;gold;green;grey\n")
    app = load_app(detector_classifier_app(tmp_path, assets, assets.videos["bikes"],
                                           "process-mode=2\nlabelfile-path=colours.txt\n"))
    with av.open(str(assets.videos["bikes"])) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(4), container.decode(video=0))])
    stages = build_gie_stages(app, prepare_engines(app, engine_dir=tmp_path / "engines"))
    host = _run(stages, frames)
    on_gpu = torch.from_numpy(frames).cuda() if torch.cuda.is_available() else None  # the GPU machine
    device = _run(stages, on_gpu if on_gpu is not None else torch.from_numpy(frames))
    assert len(host.objects) > 0, "the test needs detections to compare"
    assert len(device.objects) == len(host.objects)
    np.testing.assert_array_equal(device.objects.class_id, host.objects.class_id)
    np.testing.assert_allclose(device.objects.xyxy, host.objects.xyxy, atol=1e-3)
    np.testing.assert_allclose(device.objects.confidence, host.objects.confidence, atol=1e-5)
    assert len(host.classifications) == len(host.objects)  # one label per object (threshold 0)
    np.testing.assert_array_equal(device.classifications.obj, host.classifications.obj)
    np.testing.assert_array_equal(device.classifications.class_id, host.classifications.class_id)
