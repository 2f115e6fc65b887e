"""Model converters written in the project, numpy + onnx only (no training framework at run time).

* :mod:`runner.convert.darknet` — a Darknet ``.cfg`` + ``.weights`` pair → ONNX whose one output is
  what DeepStream-Yolo's ``NvDsInferParseYolo`` reads (used by the engine layer when an nvinfer config
  names ``custom-network-config`` + ``model-file``).
* :mod:`runner.convert.tflite` — a TFLite flatbuffer (MediaPipe's selfie segmentation, with its
  ``Convolution2DTransposeBias`` custom op) → ONNX (used by the asset code).
* :mod:`runner.convert.torchvision` — a torchvision MobileNetV2 ``.pth`` state dict → ONNX (asset code).

Each raises :class:`ConvertError` naming the file, the layer and what to do.
"""

from __future__ import annotations

from runner.errors import DsrunError

__all__ = ["ConvertError"]


class ConvertError(DsrunError):
    """A model file that cannot be converted; the message names the file, the layer and the fix."""

    exit_code = 3
