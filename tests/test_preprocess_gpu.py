"""The device pre-processing (GPU decode path) gives the host path's tensor, on real frames."""

import itertools

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="device pre-processing needs PyTorch (.ci/run installs it)")

from runner.pipeline.preprocess import PreprocessSpec, preprocess  # noqa: E402
from runner.pipeline.preprocess_gpu import preprocess_device  # noqa: E402

ONE_LEVEL = 1.01 / 255  # OpenCV's fixed-point bilinear may round one grey level differently


@pytest.fixture(scope="module")
def bike_frames(assets):
    with av.open(str(assets.videos["bikes"])) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(3), container.decode(video=0))]
    return np.stack(frames)


@pytest.mark.parametrize("scaling_filter, aspect, symmetric, order, colour",
                         list(itertools.product([0, 1], [False, True], [False, True], [0, 1], [0, 1, 2])))
def test_device_tensor_equals_host_tensor_for_frames_and_crops(bike_frames, scaling_filter, aspect,
                                                               symmetric, order, colour):
    spec = PreprocessSpec(width=96, height=64, channels=1 if colour == 2 else 3, color_format=colour,
                          input_order=order, scale=1 / 255, offsets=(10.0, 20.0, 30.0),
                          maintain_aspect_ratio=aspect, symmetric_padding=symmetric,
                          scaling_filter=scaling_filter)
    h, w = bike_frames.shape[1:3]
    rects = np.array([[12.5, 7.2, 200.9, 150.1], [w - 40, h - 30, w, h], [0, 0, w, h], [101, 33, 104, 38]],
                     np.float32)
    frame_index = np.array([0, 1, 2, 1])
    for r, fi in ((None, None), (rects, frame_index)):
        host, host_map = preprocess(bike_frames, spec, r, fi)
        dev, dev_map = preprocess_device(torch.from_numpy(bike_frames), spec, r, fi)
        assert dev.shape == host.shape
        assert np.abs(dev.numpy() - host).max() <= ONE_LEVEL * 255 * spec.scale + 1e-6
        for column in ("ratio_x", "ratio_y", "offset_left", "offset_top", "origin_x", "frame"):
            np.testing.assert_array_equal(getattr(dev_map, column), getattr(host_map, column))


def test_no_objects_gives_an_empty_batch(bike_frames):
    spec = PreprocessSpec(width=32, height=32)
    tensor, mapping = preprocess_device(torch.from_numpy(bike_frames), spec, np.zeros((0, 4)), np.zeros(0))
    assert tensor.shape == (0, 3, 32, 32) and len(mapping.frame) == 0
