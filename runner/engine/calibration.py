"""INT8 calibration: images → activation ranges, and the calibration table file (``int8-calib-file``).

The table is TensorRT's calibration-cache text format — a header line, then ``tensor: <hex>`` lines
whose value is the float32 bit pattern (big-endian hex) of ``scale = amax / 127`` — so tables written
by TensorRT/DeepStream are read here, and ours can be read back. Our header records what the ranges
came from (``dsrun-<images digest>-<method>``) so a table from other images is recalibrated.

>>> table = format_table({"input": 2.54, "conv1": 12.7}, "dsrun-abc-entropy")
>>> print(table.splitlines()[1])
conv1: 3dcccccd
>>> round(parse_table(table, Path("calib.table"))[1]["input"], 6)
2.54
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
from pathlib import Path
import numpy as np

from runner.engine.base import EngineError
from runner.engine.cache import files_sha256
from runner.engine.spec import EngineSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def calibration_images(spec: EngineSpec) -> list[Path]:
    """The calibration images (sorted, at most ``calib_max_images``) or a clear error."""
    folder = spec.calib_images
    where = f"{spec.source}: [property] dsrun-calib-images: " if spec.source else ""
    if folder is None or not folder.is_dir():
        raise EngineError(f"{where}{folder} is not a folder — point dsrun-calib-images at a folder of "
                          "images that resemble the deployment scenes (a few hundred frames)")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise EngineError(f"{where}{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}) — add "
                          "frames that resemble the deployment scenes")
    return images[: spec.calib_max_images]


def images_digest(spec: EngineSpec, images: list[Path]) -> str:
    """What calibration depends on: the images' bytes, the method and the pre-processing."""
    pre = f"{spec.calib_method}|{spec.net_scale_factor}|{spec.offsets}|{spec.model_color_format}|" \
          f"{spec.network_input_order}"
    digest = hashlib.sha256(files_sha256(images).encode() + pre.encode())
    return digest.hexdigest()


def preprocess(path: Path, dims: tuple[int, ...], spec: EngineSpec) -> np.ndarray:
    """One image as the network sees it: nvinfer's ``net-scale-factor * (pixel - offsets)`` in
    ``model-color-format``, resized to the input (``network-input-order`` 0 = CHW, 1 = HWC)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise EngineError(f"{path}: not a readable image — remove it from the calibration folder")
    chw = spec.network_input_order == 0
    c, h, w = dims if chw else (dims[2], dims[0], dims[1])
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if spec.model_color_format == 0:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif spec.model_color_format == 2 or c == 1:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[:, :, None]
    x = image.astype(np.float32)
    if spec.offsets:
        x -= np.asarray(spec.offsets, np.float32)[: x.shape[2]]
    x *= np.float32(spec.net_scale_factor)
    return np.ascontiguousarray(x.transpose(2, 0, 1) if chw else x)


def collect_ranges(model_path: Path, input_name: str, dims: tuple[int, ...], batch: int,
                   spec: EngineSpec, images: list[Path], workdir: Path,
                   progress, providers: list | None = None) -> dict[str, float]:
    """Run the model over the images and return each tensor's ``amax`` (symmetric range) by the
    entropy (KL divergence, TensorRT's EntropyCalibrator2 idea) or percentile (99.99%) method."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self):
            if self.i >= len(images):
                return None
            chunk = images[self.i: self.i + batch]
            arrays = [preprocess(p, dims, spec) for p in chunk]
            while len(arrays) < batch:  # a fixed-batch model: repeat the last image
                arrays.append(arrays[-1])
            self.i += len(chunk)
            progress.advance(len(chunk))
            return {input_name: np.stack(arrays)}

    if spec.calib_method == "entropy":
        method, extra = CalibrationMethod.Entropy, {"symmetric": True, "num_bins": 512,
                                                    "num_quantized_bins": 128}
    else:
        method, extra = CalibrationMethod.Percentile, {"symmetric": True, "percentile": 99.99,
                                                       "num_bins": 2048}
    calibrator = create_calibrator(model_path, None, augmented_model_path=str(workdir / "aug.onnx"),
                                   calibrate_method=method, providers=providers, extra_options=extra)
    with contextlib.redirect_stdout(io.StringIO()):  # ORT prints its own progress
        calibrator.collect_data(Reader())
        progress.phase(f"calibrate: {spec.calib_method} ranges")
        data = calibrator.compute_data()
    ranges = {}
    for name, tensor in data.items():
        lo, hi = tensor.range_value
        ranges[name] = float(max(abs(float(np.max(lo))), abs(float(np.max(hi)))))
    del calibrator
    return ranges


def format_table(ranges: dict[str, float], header: str) -> str:
    lines = [header]
    for name in sorted(ranges):
        scale = max(ranges[name], 1e-12) / 127.0
        lines.append(f"{name}: {struct.pack('>f', scale).hex()}")
    return "\n".join(lines) + "\n"


def parse_table(text: str, path: Path) -> tuple[str, dict[str, float]]:
    """(header, tensor → amax) from a TensorRT-format calibration table."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or not (lines[0].startswith("TRT-") or lines[0].startswith("dsrun-")):
        raise EngineError(f"{path}: not a calibration table (expected a 'TRT-…' or 'dsrun-…' "
                          "header) — delete it so dsrun calibrates again, or fix int8-calib-file")
    ranges = {}
    for ln in lines[1:]:
        name, _, value = ln.rpartition(":")
        try:
            scale = struct.unpack(">f", bytes.fromhex(value.strip()))[0]
        except (ValueError, struct.error):
            raise EngineError(f"{path}: bad line {ln!r} in the calibration table — delete the file "
                              "so dsrun calibrates again") from None
        ranges[name.strip()] = scale * 127.0
    return lines[0], ranges


def read_table(path: Path) -> tuple[str, dict[str, float]]:
    try:
        return parse_table(path.read_text(errors="replace"), path)
    except OSError as exc:
        raise EngineError(f"{path}: cannot read the calibration table ({exc.strerror})") from None


def table_header(digest: str, method: str) -> str:
    return f"dsrun-{digest[:16]}-{method}"
