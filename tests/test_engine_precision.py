"""FP16 and INT8 engines against FP32 on real frames: a trained face detector (MTCNN P-Net) on the
carphone clip, and the DetectNet_v2-shaped detector on bikes. Errors are printed (pytest -s)."""

import numpy as np
import pytest

from engine_support import nchw, video_frames, write_images
from runner.engine import EngineSpec, load_engine
from runner.engine.progress import Progress


@pytest.fixture(scope="module")
def face_setup(assets, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pnet")
    frames = video_frames(assets.videos["carphone"], 40)
    calib = write_images(tmp / "calib", frames[:32:2])  # calibration frames resemble deployment
    x = (np.stack(frames[33:40]).astype(np.float32) - 127.5) / 128  # MTCNN's normalisation, NHWC
    h, w = frames[0].shape[:2]
    spec = EngineSpec(onnx_file=assets.models["mtcnn_pnet"], batch_size=8, net_scale_factor=1 / 128,
                      offsets=(127.5, 127.5, 127.5), network_input_order=1, infer_dims=(h, w, 3),
                      calib_images=calib)
    fp32 = load_engine(spec, tmp / "e", Progress()).infer(x)
    return tmp, spec, x, fp32


def _report(label, fp32, other):
    for name in fp32:
        err = np.abs(fp32[name] - other[name])
        print(f"{label:24} {name:10} max err {err.max():.5f}  mean err {err.mean():.6f}")


def _face_cells(out, threshold=0.7):
    return out["softmax"][..., 1] > threshold  # P-Net's face probability per 12x12 window


@pytest.mark.parametrize("precision, method, min_iou, max_mean_err", [
    ("fp16", "entropy", 0.97, 1e-3),
    ("int8", "percentile", 0.7, 0.02),
    ("int8", "entropy", 0.7, 0.02),
])
def test_reduced_precision_finds_the_same_face_windows_as_fp32(face_setup, precision, method,
                                                               min_iou, max_mean_err):
    tmp, spec, x, fp32 = face_setup
    engine = load_engine(spec.replace(precision=precision, calib_method=method), tmp / "e", Progress())
    assert engine.precision == precision
    out = engine.infer(x)
    _report(f"P-Net {precision} {method if precision == 'int8' else ''}", fp32, out)
    want, got = _face_cells(fp32), _face_cells(out)
    assert want.sum() > 20  # the clip has a face: FP32 finds it
    iou = (want & got).sum() / (want | got).sum()
    print(f"face windows: fp32 {want.sum()}, {precision} {got.sum()}, IoU {iou:.3f}")
    assert iou >= min_iou
    assert np.abs(fp32["softmax"] - out["softmax"]).mean() <= max_mean_err
    assert not np.array_equal(fp32["softmax"], out["softmax"])  # really another precision


def test_calibration_table_written_once_serves_a_config_without_images(face_setup):
    tmp, spec, x, fp32 = face_setup
    table = tmp / "pnet_int8.table"
    calibrated = load_engine(spec.replace(precision="int8", calib_method="percentile",
                                          int8_calib_file=table), tmp / "e", Progress())
    assert table.read_text().startswith("dsrun-") and ": " in table.read_text()
    from_table = load_engine(spec.replace(precision="int8", calib_images=None, int8_calib_file=table),
                             tmp / "e", Progress())
    assert from_table.origin == "built"  # another key: the table, not the images
    np.testing.assert_allclose(from_table.infer(x)["softmax"], calibrated.infer(x)["softmax"],
                               atol=1e-6)
    again = load_engine(spec.replace(precision="int8", calib_method="percentile",
                                     int8_calib_file=table), tmp / "e", Progress())
    assert again.origin == "cache"  # the table it wrote does not invalidate the image-keyed engine


def test_detectnet_shaped_detector_fp16_and_int8_stay_close_to_fp32(assets, tmp_path):
    frames = video_frames(assets.videos["bikes"], 24, (480, 272))
    calib = write_images(tmp_path / "calib", frames[:16])
    x = nchw(frames[16:24])
    spec = EngineSpec(onnx_file=assets.models["detectnet_small"], batch_size=8, net_scale_factor=1 / 255,
                      calib_images=calib, calib_method="percentile")
    fp32 = load_engine(spec, tmp_path / "e", Progress()).infer(x)
    fp16 = load_engine(spec.replace(precision="fp16"), tmp_path / "e", Progress()).infer(x)
    int8_engine = load_engine(spec.replace(precision="int8"), tmp_path / "e", Progress())
    int8 = int8_engine.infer(x)
    import onnx

    graph = onnx.load(str(int8_engine.path)).graph  # a real Q/DQ graph, uint8 activations on the CPU
    zero_points = {i.name: i.data_type for i in graph.initializer}
    quants = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert len(quants) >= 10
    assert {zero_points[n.input[2]] for n in quants} == {onnx.TensorProto.UINT8}
    _report("DetectNet fp16", fp32, fp16)
    _report("DetectNet int8 percentile", fp32, int8)
    cov = "output_cov/Sigmoid:0"
    spread = fp32[cov].std()
    assert np.abs(fp32[cov] - fp16[cov]).mean() < 0.01 * spread
    assert np.abs(fp32[cov] - int8[cov]).mean() < 0.25 * spread
    # the strongest coverage cells (where boxes would be kept) mostly stay the strongest (chance:
    # 0.2 of 50; the model's weights are random, so its coverage map is flat and ranks are fragile)
    top = np.argsort(fp32[cov].ravel())[-50:]
    overlap = len(set(top) & set(np.argsort(int8[cov].ravel())[-50:]))
    print(f"DetectNet int8: {overlap}/50 strongest coverage cells shared with fp32")
    assert overlap >= 25
    assert len(set(top) & set(np.argsort(fp16[cov].ravel())[-50:])) >= 48
