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


_DETECT = r'''
import sys, numpy as np, cv2
cfg, weights, blobs, out, conf, nms, topk = sys.argv[1:8]
conf, nms, topk = float(conf), float(nms), int(topk)
net = cv2.dnn.readNetFromDarknet(cfg, weights)
net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
names = list(net.getUnconnectedOutLayersNames())
images = np.load(blobs)                        # (n, H, W, 3) RGB uint8, already at the network size
h, w = images.shape[1:3]
rows = []
for i, rgb in enumerate(images):
    net.setInput(cv2.dnn.blobFromImage(rgb, 1 / 255.0, (w, h), swapRB=False, crop=False))
    det = np.concatenate(net.forward(names))   # cx, cy, w, h (fractions), objectness, class scores
    scores = det[:, 5:]
    cls = scores.argmax(1)
    score = scores[np.arange(len(det)), cls]
    keep = score >= conf
    det, cls, score = det[keep], cls[keep], score[keep]
    x1, y1 = (det[:, 0] - det[:, 2] / 2) * w, (det[:, 1] - det[:, 3] / 2) * h
    x2, y2 = (det[:, 0] + det[:, 2] / 2) * w, (det[:, 1] + det[:, 3] / 2) * h
    for c in np.unique(cls):                   # per-class NMS, best first, at most topk
        k = np.flatnonzero(cls == c)
        boxes = np.stack([x1[k], y1[k], x2[k] - x1[k], y2[k] - y1[k]], 1).tolist()
        kept = np.asarray(cv2.dnn.NMSBoxes(boxes, score[k].tolist(), conf, nms, top_k=topk)).reshape(-1)
        for j in k[kept]:
            rows.append((i, c, score[j], x1[j], y1[j], x2[j], y2[j]))
np.save(out, np.array(rows, np.float64).reshape(-1, 7))
print(cv2.__version__)
'''


def opencv_yolo_detections(cfg: Path, weights: Path, images: np.ndarray, tmp: Path, conf: float, nms: float,
                           topk: int) -> np.ndarray:
    """OpenCV's Darknet network on ``images`` ((n, H, W, 3) RGB uint8 at the network's size), decoded and
    NMS'd per class by OpenCV: rows ``(image, class, score, x1, y1, x2, y2)`` in network pixels."""
    np.save(tmp / "images.npy", images)
    args = (cfg, weights, tmp / "images.npy", tmp / "det.npy", conf, nms, topk)
    if _has_darknet():
        proc = subprocess.run([sys.executable, "-c", _DETECT, *map(str, args)], capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    else:
        run_reference("opencv4", _DETECT, *args, timeout=600)
    return np.load(tmp / "det.npy")
