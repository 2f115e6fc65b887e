"""Darknet models as DeepStream-Yolo configs name them: ``custom-network-config`` + ``model-file``.

DeepStream-Yolo's ``NvDsInferYoloCudaEngineGet`` builds its TensorRT network straight from the cfg and
weights. dsrun converts the pair to ONNX once (:mod:`runner.convert.darknet`) into the engine cache,
``<engine dir>/.converted/<key>/<cfg stem>.onnx``, where ``<key>`` digests the cfg's bytes, the
weights' sha256 and the converter version — so editing either file gives a new ONNX and therefore a new
engine — and then builds engines from that ONNX like from any other.

>>> converted_path(Path("/m/yolov4-tiny.cfg"), Path("/m/yolov4-tiny.weights")).name  # doctest: +SKIP
'yolov4-tiny.onnx'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from runner.engine.base import EngineError
from runner.engine.cache import default_engine_dir, disk_error, file_sha256

__all__ = ["check_files", "converted_path", "converted_folders", "source_digests", "ensure_converted"]

CONVERTED = ".converted"


def source_digests(cfg: Path, weights: Path) -> dict[str, object]:
    """What the converted ONNX is a function of: both files' sha256 and the converter version."""
    from runner.convert.darknet import CONVERTER_VERSION

    return {"darknet_cfg_sha256": file_sha256(Path(cfg)), "darknet_weights_sha256": file_sha256(Path(weights)),
            "converter": CONVERTER_VERSION}


def check_files(cfg: Path, weights: Path, source: Path | None = None) -> None:
    """Raise the message a missing cfg or weights file deserves (the nvinfer config and key named)."""
    where = f"{source}: " if source else ""
    for path, key in ((cfg, "custom-network-config"), (weights, "model-file")):
        if not Path(path).is_file():
            raise EngineError(f"{where}[property] {key}: {path} does not exist — fix the path (relative "
                              "paths are taken from the nvinfer config's folder)")


def converted_path(cfg: Path, weights: Path, engine_dir: Path | str | None = None) -> Path:
    """Where the ONNX of ``cfg`` + ``weights`` lives under the engine cache ``engine_dir``."""
    digests = source_digests(cfg, weights)
    key = hashlib.sha256(repr(sorted(digests.items())).encode()).hexdigest()[:16]
    return default_engine_dir(engine_dir) / CONVERTED / key / f"{Path(cfg).stem}.onnx"


def ensure_converted(cfg: Path, weights: Path, target: Path, say=None) -> Path:
    """Write the ONNX of ``cfg`` + ``weights`` to ``target`` unless it is there (atomic; a process that
    loses the race finds the other's file)."""
    if target.is_file():
        os.utime(target.parent)  # used now: `dsrun engines clean --older-than` keeps it
        return target
    import onnx

    from runner.convert import ConvertError
    from runner.convert.darknet import darknet_to_onnx

    if say:
        say(f"converting {Path(cfg).name} + {Path(weights).name} (Darknet) to ONNX: {target}")
    try:
        model = darknet_to_onnx(cfg, weights)
    except ConvertError as error:
        raise EngineError(str(error)) from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        onnx.save(model, str(tmp))
        os.replace(tmp, target)
    except OSError as exc:
        raise disk_error(exc, target.parent) from None
    return target


def converted_folders(engine_dir: Path) -> list[Path]:
    """The conversion folders (one per cfg + weights pair) under the engine cache ``engine_dir``."""
    root = Path(engine_dir) / CONVERTED
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

