"""OpenCV's own Darknet loader (``cv2.dnn.readNetFromDarknet``) as the reference for dsrun's converter.

OpenCV 5 dropped the Darknet importer: where the installed cv2 lacks it, the reference runs in the
``opencv4`` venv of reference_venvs.py (``opencv-python-headless`` 4.10), in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from reference_venvs import run_reference

_SCRIPT = r'''
import sys, numpy as np, cv2
cfg, weights, blob, out = sys.argv[1:5]
net = cv2.dnn.readNetFromDarknet(cfg, weights)
net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
net.setInput(np.load(blob))
names = list(net.getUnconnectedOutLayersNames())
outs = net.forward(names)
np.savez(out, **{n: o for n, o in zip(names, outs)})
print(cv2.__version__)
'''


def opencv_darknet(cfg: Path, weights: Path, blob: np.ndarray, tmp: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(OpenCV version, {yolo layer name: (rows, 5 + classes)}) for an NCHW float32 ``blob``."""
    np.save(tmp / "blob.npy", blob.astype(np.float32))
    python = sys.executable if _has_darknet() else None
    args = (cfg, weights, tmp / "blob.npy", tmp / "ref.npz")
    if python:  # this cv2 still has the Darknet importer (OpenCV 4.x)
        proc = subprocess.run([python, "-c", _SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        version = proc.stdout.strip()
    else:
        version = run_reference("opencv4", _SCRIPT, *args)
    with np.load(tmp / "ref.npz") as data:
        return version, {k: data[k] for k in data.files}


def _has_darknet() -> bool:
    import cv2

    return hasattr(cv2.dnn, "readNetFromDarknet")
