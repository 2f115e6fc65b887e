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
from typing import Iterator

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


def _batches(images: list[Path], input_name: str, dims: tuple[int, ...], batch: int, spec: EngineSpec,
             progress) -> Iterator[dict[str, np.ndarray]]:
    """The calibration feeds, one batch at a time (a fixed-batch model: the last image repeated)."""
    for i in range(0, len(images), batch):
        chunk = images[i: i + batch]
        arrays = [preprocess(p, dims, spec) for p in chunk]
        while len(arrays) < batch:
            arrays.append(arrays[-1])
        yield {input_name: np.stack(arrays)}
        progress.advance(len(chunk))


#: tensors fetched per inference while calibrating: ONNX Runtime holds every fetched activation until
#: the run returns (the PP-OCRv4 detector at 544x960 has 673, ~0.8 GB), so they are fetched in groups
GROUP_TENSORS = 240


def _tensor_groups(tensors: list[str]) -> list[list[str]]:
    """``tensors`` in groups of about :data:`GROUP_TENSORS` (equal sizes)."""
    count = max(1, -(-len(tensors) // GROUP_TENSORS))
    return [tensors[i::count] for i in range(count)]


def collect_ranges(model_path: Path, input_name: str, dims: tuple[int, ...], batch: int,
                   spec: EngineSpec, images: list[Path], workdir: Path,
                   progress, providers: list | None = None) -> dict[str, float]:
    """Run the model over the images and return each tensor's ``amax`` (symmetric range) by the
    entropy (KL divergence, TensorRT's EntropyCalibrator2 idea) or percentile (99.99%) method.

    In bounded memory: ONNX Runtime's calibrator keeps every activation of every image until it
    builds its histograms (~0.8 GB per 544x960 image). Here the tensors are fetched in groups
    (:data:`GROUP_TENSORS` per inference), and for each group the images stream through
    twice, one batch at a time — first each tensor's range, then its histogram over that whole range;
    ONNX Runtime's ``HistogramCollector`` then picks the thresholds. A histogram over the full range
    summed batch by batch is the one ONNX Runtime builds from all images at once, so the ranges are the
    same (tests/test_engine_calibration.py); scripts/bench_calibration.py measures the memory.
    """
    import onnx
    import onnxruntime as ort

    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import HistogramCollector, create_calibrator

    entropy = spec.calib_method == "entropy"
    if entropy:
        method, extra = CalibrationMethod.Entropy, {"symmetric": True, "num_bins": 512,
                                                    "num_quantized_bins": 128}
    else:
        method, extra = CalibrationMethod.Percentile, {"symmetric": True, "percentile": 99.99,
                                                       "num_bins": 2048}
    with contextlib.redirect_stdout(io.StringIO()):  # ORT prints its own progress
        calibrator = create_calibrator(model_path, None, augmented_model_path=str(workdir / "aug.onnx"),
                                       calibrate_method=method, providers=providers, extra_options=extra)
    augmented = calibrator.model  # every tensor to calibrate is a graph output
    original = [o for o in augmented.graph.output if o.name in calibrator.model_original_outputs]
    added = {o.name: o for o in augmented.graph.output}
    tensors = [o.name for o in augmented.graph.output if o.name in calibrator.tensors_to_calibrate]
    calibrator.infer_session = None  # its session would hold every activation at once
    groups = _tensor_groups(tensors)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the tensors as named
    options.enable_cpu_mem_arena = False  # return each run's memory
    options.enable_mem_pattern = False  # no block planned for every intermediate at once
    options.log_severity_level = 3

    def passes(what: str) -> Iterator[tuple[list[str], list[np.ndarray]]]:
        for g, group in enumerate(groups, 1):
            model = onnx.ModelProto()
            model.CopyFrom(augmented)
            del model.graph.output[:]
            model.graph.output.extend(original + [added[n] for n in group if n not in calibrator.model_original_outputs])
            session = ort.InferenceSession(model.SerializeToString(), options,
                                           providers=providers or ["CPUExecutionProvider"])
            del model
            part = f" ({g}/{len(groups)})" if len(groups) > 1 else ""
            progress.phase(f"calibrate: {what}{part}", total=len(images))
            for feed in _batches(images, input_name, dims, batch, spec, progress):
                outputs = session.run(group, feed)
                yield group, outputs
                del outputs
            del session

    # pass 1: each tensor's min, max and smallest magnitude over every image
    lo, hi, small = {}, {}, {}
    for names, outputs in passes("tensor ranges"):
        for name, a in zip(names, outputs):
            a = a.ravel()
            if not a.size:
                continue
            lo[name] = min(lo.get(name, np.inf), np.nanmin(a))
            hi[name] = max(hi.get(name, -np.inf), np.nanmax(a))
            small[name] = min(small.get(name, np.inf), np.nanmin(np.abs(a)))
    # pass 2: histograms over those ranges, as ONNX Runtime's collector builds them from all data at once
    # (entropy: signed values over [-amax, amax]; percentile, symmetric: magnitudes over [min|x|, max|x|])
    counts: dict[str, np.ndarray] = {}
    edges: dict[str, np.ndarray] = {}
    for names, outputs in passes(f"{spec.calib_method} histograms"):
        for name, a in zip(names, outputs):
            if name not in lo:
                continue
            dtype = a.dtype
            if entropy:
                amax = np.array(max(abs(lo[name]), abs(hi[name])), dtype=dtype)
                h, e = np.histogram(a.ravel(), extra["num_bins"], range=(-amax, amax))
            else:
                h, e = np.histogram(np.abs(a.ravel()), extra["num_bins"],
                                    range=(np.array(small[name], dtype), np.array(max(abs(lo[name]), abs(hi[name])), dtype)))
            counts[name] = counts[name] + h if name in counts else h
            edges[name] = e
    collector = HistogramCollector(method=spec.calib_method, symmetric=True, num_bins=extra["num_bins"],
                                   num_quantized_bins=extra.get("num_quantized_bins", 128),
                                   percentile=extra.get("percentile", 99.99), scenario="same")
    for name, h in counts.items():
        dtype = edges[name].dtype if entropy else np.float32
        low, high = np.array(lo[name], np.float32), np.array(hi[name], np.float32)
        collector.histogram_dict[name] = ((h, edges[name], low, high, np.array(max(abs(low), abs(high)), np.float32))
                                          if entropy else (h, edges[name].astype(dtype), low, high))
    progress.phase(f"calibrate: {spec.calib_method} ranges")
    with contextlib.redirect_stdout(io.StringIO()):
        thresholds = collector.compute_collection_result()
    del calibrator
    return {name: float(max(abs(float(np.max(t[0]))), abs(float(np.max(t[1]))))) for name, t in thresholds.items()}


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
