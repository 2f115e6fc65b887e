"""Pre-processing matches Gst-nvinfer: scaling, padding, colour order, normalisation, layout, crops."""

from concurrent.futures import Future
from types import SimpleNamespace as NS

import cv2
import numpy as np
import pytest

import runner.pipeline.preprocess as preprocess_module
from runner.pipeline.preprocess import PreprocessError, PreprocessSpec, preprocess


def _frames(b=2, h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, 3), dtype=np.uint8)


def test_full_frame_stretch_scales_with_the_chosen_filter_and_normalises():
    frames = _frames()
    spec = PreprocessSpec(width=80, height=40, scale=0.5, offsets=(10, 20, 30), scaling_filter=1)
    tensor, mapping = preprocess(frames, spec)
    assert tensor.shape == (2, 3, 40, 80) and tensor.dtype == np.float32
    expect = cv2.resize(frames[1], (80, 40), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    expect = (expect - np.array([10, 20, 30], np.float32)) * 0.5
    np.testing.assert_allclose(tensor[1], expect.transpose(2, 0, 1))
    assert mapping.ratio_x.tolist() == [0.5, 0.5] and mapping.ratio_y.tolist() == [1 / 3, 1 / 3]


def test_bgr_gray_and_nhwc_are_the_same_pixels_rearranged():
    frames = _frames(1)
    rgb, _ = preprocess(frames, PreprocessSpec(width=160, height=120))
    bgr, _ = preprocess(frames, PreprocessSpec(width=160, height=120, color_format=1))
    nhwc, _ = preprocess(frames, PreprocessSpec(width=160, height=120, color_format=1, input_order=1))
    gray, _ = preprocess(frames, PreprocessSpec(width=160, height=120, channels=1, color_format=2))
    np.testing.assert_array_equal(bgr[0], rgb[0][::-1])
    np.testing.assert_array_equal(nhwc[0], bgr[0].transpose(1, 2, 0))
    assert gray.shape == (1, 1, 120, 160)
    cv_gray = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY).astype(np.float32)
    assert np.abs(gray[0, 0] - cv_gray).max() <= 1.0


def test_maintain_aspect_ratio_pads_right_bottom_and_symmetric_pads_both_sides():
    frames = np.full((1, 100, 200, 3), 200, np.uint8)  # 2:1 frame into a square network
    right, m1 = preprocess(frames, PreprocessSpec(width=64, height=64, maintain_aspect_ratio=True))
    sym, m2 = preprocess(frames, PreprocessSpec(width=64, height=64, maintain_aspect_ratio=True,
                                                symmetric_padding=True))
    # scaled image is 64x32: rows 32.. are black padding (right/bottom), rows 0..15 and 48.. (symmetric)
    assert right[0, 0, :32].min() == 200 and right[0, 0, 32:].max() == 0
    assert sym[0, 0, 16:48].min() == 200 and sym[0, 0, :16].max() == 0 and sym[0, 0, 48:].max() == 0
    assert (int(m1.offset_top[0]), int(m2.offset_top[0])) == (0, 16)
    # a box drawn in network pixels maps back onto the frame the way nvinfer rescales it
    back = m2.to_frame(np.array([[0, 16, 64, 48]]), np.array([0]))
    np.testing.assert_allclose(back, [[0, 0, 200, 100]])


def test_object_crops_use_nvinfers_even_rounding_and_map_back_from_the_object_origin():
    frame = np.zeros((1, 60, 80, 3), np.uint8)
    frame[0, 10:30, 20:50] = 255
    rects = np.array([[19.4, 9.2, 50.0, 30.0], [0, 0, 7, 7]], np.float32)
    tensor, mapping = preprocess(frame, PreprocessSpec(width=30, height=20), rects, [0, 0])
    # left 19 → 20, top 9 → 10, width 30.6 → 30, height 20.8 → 20: the crop is exactly the white block
    assert tensor.shape == (2, 3, 20, 30) and tensor[0].min() == 255
    assert mapping.ratio_x[0] == 1.0 and mapping.origin_x[0] == pytest.approx(19.4)
    assert mapping.frame.tolist() == [0, 0]
    # the 7x7 crop rounds down to 6x6 and is scaled 5x / 3.33x
    assert mapping.ratio_x[1] == 5.0 and mapping.ratio_y[1] == pytest.approx(20 / 6)


def test_uint8_models_get_uint8_input():
    tensor, _ = preprocess(_frames(1), PreprocessSpec(width=16, height=16, dtype="uint8", input_order=1))
    assert tensor.dtype == np.uint8 and tensor.shape == (1, 16, 16, 3)


def test_infer_dims_size_dynamic_models_and_missing_infer_dims_is_explained():
    spec = PreprocessSpec.from_nvinfer(NS(infer_dims=(3, 736, 1280), net_scale_factor=0.0078,
                                          offsets=(127.5, 127.5, 127.5), model_color_format=1),
                                       (None, 3, "h", "w"))
    assert (spec.width, spec.height, spec.color_format, spec.offsets[0]) == (1280, 736, 1, 127.5)
    nhwc = PreprocessSpec.from_nvinfer(NS(network_input_order=1), ("N", 24, 24, 3))
    assert (nhwc.width, nhwc.height, nhwc.channels, nhwc.input_shape) == (24, 24, 3, (24, 24, 3))
    with pytest.raises(PreprocessError, match="infer-dims=C;H;W"):
        PreprocessSpec.from_nvinfer(NS(), (None, 3, "h", "w"))


def _nvinfer_formula(frames, spec, rects=None, frame_index=None):
    """Gst-nvinfer's pre-processing written out item by item, straight from its definition: crop
    (nvinfer's even rounding), one OpenCV resize to the destination size, paste at the padding offset
    on black, colour order, ``net-scale-factor * (x - offsets)`` in float32, layout. Independent of
    preprocess()'s batched implementation, which must give the same bits."""
    interp = {0: cv2.INTER_NEAREST, 1: cv2.INTER_LINEAR}[spec.scaling_filter]
    if rects is None:
        items = [(f, 0, 0, frames[f].shape[1] // 2 * 2, frames[f].shape[0] // 2 * 2) for f in range(len(frames))]
    else:
        items = []
        for (x1, y1, x2, y2), f in zip(rects, frame_index):
            x, y = (int(max(x1, 0)) + 1) // 2 * 2, (int(max(y1, 0)) + 1) // 2 * 2
            w, h = int(x2 - x1) // 2 * 2, int(y2 - y1) // 2 * 2
            items.append((f, x, y, w, h))
    out = []
    for f, x, y, w, h in items:
        crop = frames[f][y:y + h, x:x + w]
        if spec.maintain_aspect_ratio and spec.width * h / w > spec.height:
            dw, dh = int(spec.height * w / h), spec.height
        elif spec.maintain_aspect_ratio:
            dw, dh = spec.width, int(spec.width * h / w)
        else:
            dw, dh = spec.width, spec.height
        ox, oy = ((spec.width - dw) // 2, (spec.height - dh) // 2) if spec.symmetric_padding else (0, 0)
        canvas = np.zeros((spec.height, spec.width, 3), np.uint8)
        canvas[oy:oy + dh, ox:ox + dw] = cv2.resize(crop, (dw, dh), interpolation=interp)
        if spec.color_format == 1:
            canvas = canvas[..., ::-1]
        pix = canvas.astype(np.float32)
        if spec.offsets:
            pix = pix - np.float32(spec.offsets)
        pix = pix * np.float32(spec.scale)
        out.append(pix.transpose(2, 0, 1) if spec.input_order == 0 else pix)
    return np.stack(out)


class _BusyCores:
    """A pool whose cores never get to a part: the caller takes every part back itself."""

    def submit(self, *args):
        return Future()  # pending until cancelled


@pytest.mark.parametrize("options", [
    dict(),
    dict(scaling_filter=1, offsets=(104.0, 117.0, 123.0)),
    dict(color_format=1, input_order=1, scale=1.0),
    dict(maintain_aspect_ratio=True, offsets=(127.5, 127.5, 127.5), scale=0.0078125),
    dict(maintain_aspect_ratio=True, symmetric_padding=True, color_format=1),
])
@pytest.mark.parametrize("split", [False, True, "busy"])
def test_batched_preprocess_equals_nvinfers_formula_bit_for_bit(options, split, monkeypatch):
    """Also with the batch split over the cores (every batch here is large enough to split), and when
    the other cores are busy and the calling thread computes the parts they did not start."""
    monkeypatch.setattr(preprocess_module, "PARALLEL_MIN_VALUES", 1 if split else 10**12)
    if split == "busy":
        monkeypatch.setattr(preprocess_module, "_pool", _BusyCores)
    monkeypatch.setattr(preprocess_module.os, "cpu_count", lambda: 3)  # parts of 1 and 2 items
    frames = _frames(b=3, h=90, w=174, seed=3)
    spec = PreprocessSpec(width=64, height=48, **{"scale": 1 / 255, **options})
    assert len(preprocess_module._parts(3, spec)) == (3 if split else 1)
    tensor, _ = preprocess(frames, spec)
    np.testing.assert_array_equal(tensor, _nvinfer_formula(frames, spec))
    rects = np.array([[3, 5, 101, 70], [40.5, 0, 60, 31], [0, 20, 174, 90], [10, 10, 74, 58]], np.float32)
    index = np.array([2, 0, 1, 2])
    tensor, _ = preprocess(frames, spec, rects, index)
    np.testing.assert_array_equal(tensor, _nvinfer_formula(frames, spec, rects, index))
