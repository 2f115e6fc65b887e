"""OpenCV's own Darknet loader (``cv2.dnn.readNetFromDarknet``) as the reference for dsrun's converter.

OpenCV 5 dropped the Darknet importer. Where the installed cv2 lacks it, :func:`reference_python` makes
a small venv with ``opencv-python-headless`` 4.x (:data:`OPENCV4`) once, under
``$DSRUN_TEST_VENVS`` (default ``~/.cache/dsrun/test-venvs``), and the reference runs there in a
subprocess: inputs and outputs travel as ``.npy``/``.npz`` files. Nothing of dsrun is imported there.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

OPENCV4 = "opencv-python-headless==4.10.0.84"

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


def _has_darknet(python: str) -> bool:
    probe = "import cv2, sys; sys.exit(0 if hasattr(cv2.dnn, 'readNetFromDarknet') else 1)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def reference_python() -> str:
    """A Python whose cv2 has ``readNetFromDarknet``: this one, else the test venv (made once)."""
    if _has_darknet(sys.executable):
        return sys.executable
    root = Path(os.environ.get("DSRUN_TEST_VENVS") or Path.home() / ".cache" / "dsrun" / "test-venvs")
    env = root / OPENCV4.replace("==", "-")
    python = env / "bin" / "python"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (python.is_file() and _has_darknet(str(python))):
            venv.create(env, with_pip=True, clear=True)
            proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                   OPENCV4], capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.fail(f"could not install {OPENCV4} into {env} for the Darknet reference: "
                            f"{proc.stderr.strip()[-400:]}")
    return str(python)


def opencv_darknet(cfg: Path, weights: Path, blob: np.ndarray, tmp: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(OpenCV version, {yolo layer name: (rows, 5 + classes)}) for an NCHW float32 ``blob``."""
    np.save(tmp / "blob.npy", blob.astype(np.float32))
    proc = subprocess.run([reference_python(), "-c", _SCRIPT, str(cfg), str(weights), str(tmp / "blob.npy"),
                           str(tmp / "ref.npz")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(tmp / "ref.npz") as data:
        return proc.stdout.strip(), {k: data[k] for k in data.files}
