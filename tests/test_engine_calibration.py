"""INT8 calibration streams the images (bounded memory) and finds the ranges ONNX Runtime's own
calibrator finds when it is given every image at once (the reference: ``create_calibrator`` →
``collect_data`` → ``compute_data``, which keeps every activation in memory)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from runner.engine import calibration
from runner.engine.progress import Progress
from runner.engine.spec import EngineSpec

DIMS = (3, 272, 480)  # the seeded DetectNet_v2-shaped detector of the samples (49 nodes: ORT's entropy
# threshold search is pure Python, per tensor)


def _reference(model: Path, spec: EngineSpec, images: list[Path], workdir: Path) -> dict[str, float]:
    """ONNX Runtime's calibrator on all the images at once."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    feeds = [{"input_1:0": calibration.preprocess(p, DIMS, spec)[None]} for p in images]

    class Reader(CalibrationDataReader):
        def get_next(self):
            return feeds.pop(0) if feeds else None

    if spec.calib_method == "entropy":
        method, extra = CalibrationMethod.Entropy, {"symmetric": True, "num_bins": 512, "num_quantized_bins": 128}
    else:
        method, extra = CalibrationMethod.Percentile, {"symmetric": True, "percentile": 99.99, "num_bins": 2048}
    calibrator = create_calibrator(model, None, augmented_model_path=str(workdir / "ref.onnx"),
                                   calibrate_method=method, extra_options=extra)
    with contextlib.redirect_stdout(io.StringIO()):
        calibrator.collect_data(Reader())
        data = calibrator.compute_data()
    return {name: float(max(abs(float(np.max(t.range_value[0]))), abs(float(np.max(t.range_value[1])))))
            for name, t in data.items()}


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_streamed_calibration_finds_onnx_runtimes_all_at_once_ranges(assets, tmp_path, method):
    model = assets.models["detectnet_small"]
    images = sorted(assets.calib_dir.glob("*.png"))[:6]
    spec = EngineSpec(onnx_file=model, precision="int8", calib_method=method, net_scale_factor=1 / 255)
    got = calibration.collect_ranges(model, "input_1:0", DIMS, 1, spec, images, tmp_path, Progress())
    want = _reference(model, spec, images, tmp_path)
    assert got.keys() == want.keys() and len(got) > 40
    assert got == pytest.approx(want, rel=1e-6)
