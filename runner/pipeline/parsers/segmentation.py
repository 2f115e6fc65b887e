"""nvinfer's segmentation output: per pixel, the class with the highest probability above
``segmentation-threshold``, else -1 (``segmentation-output-order`` 0 = CHW, 1 = HWC).

>>> import numpy as np
>>> probs = np.array([[[[0.9, 0.2]], [[0.05, 0.3]]]], np.float32)  # (n=1, C=2, H=1, W=2)
>>> class_map(probs, threshold=0.25).tolist()
[[[0, 1]]]
"""

from __future__ import annotations

import numpy as np


def class_map(output: np.ndarray, threshold: float = 0.0, order: int = 0) -> np.ndarray:
    """(n, C, H, W) (order 0) or (n, H, W, C) (order 1) probabilities → (n, H, W) int32 class map."""
    probs = np.asarray(output, np.float32)
    if probs.ndim == 3:
        probs = probs[None]
    if order == 1:
        probs = probs.transpose(0, 3, 1, 2)
    cls = probs.argmax(1)
    best = np.take_along_axis(probs, cls[:, None], 1)[:, 0]
    return np.where(best > threshold, cls, -1).astype(np.int32)
