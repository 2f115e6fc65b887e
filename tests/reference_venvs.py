"""Small virtual environments for references that cannot share dsrun's Python.

OpenCV 5 dropped the Darknet importer (the reference for the Darknet converter needs OpenCV 4.x), and
MediaPipe 0.10.21 needs numpy < 2 and opencv-contrib (dsrun's environment has numpy 2 and OpenCV 5).
Each reference gets its own venv, made once under ``$DSRUN_TEST_VENVS`` (default
``~/.cache/dsrun/test-venvs``) with pinned packages from PyPI, and runs in a subprocess; data travels
as ``.npy``/``.npz`` files. Nothing of dsrun is imported there.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import venv
from pathlib import Path

import pytest

#: name → (pip arguments, a probe that exits 0 when the venv is usable)
REFERENCES = {
    "opencv4": (["opencv-python-headless==4.10.0.84"],
                "import cv2, sys; sys.exit(0 if hasattr(cv2.dnn, 'readNetFromDarknet') else 1)"),
    # mediapipe's own dependencies minus jax/sentencepiece/sounddevice, which selfie segmentation never imports
    "mediapipe": (["--no-deps", "mediapipe==0.10.21", "absl-py==2.5.1", "attrs==26.1.0", "flatbuffers==25.12.19",
                   "numpy==1.26.4", "protobuf==4.25.9", "opencv-contrib-python-headless==5.1.0.95",
                   "matplotlib==3.11.2", "contourpy==1.3.3", "cycler==0.12.1", "fonttools==4.68.0",
                   "kiwisolver==1.5.1", "packaging==26.4", "pillow==13.0.0", "pyparsing==3.3.3",
                   "python-dateutil==4.0.0"],
                  "import mediapipe.python.solutions.selfie_segmentation"),
}


def reference_python(name: str) -> str:
    """The interpreter of reference venv ``name`` (made on first use; a failure fails the test)."""
    args, probe = REFERENCES[name]
    root = Path(os.environ.get("DSRUN_TEST_VENVS") or Path.home() / ".cache" / "dsrun" / "test-venvs")
    env = root / name
    python = env / "bin" / "python"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        usable = python.is_file() and subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0
        if not usable:
            venv.create(env, with_pip=True, clear=True)
            proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                pytest.fail(f"could not make the {name} reference venv in {env}: {proc.stderr.strip()[-600:]}")
    return str(python)


def run_reference(name: str, script: str, *args: str, timeout: int = 300) -> str:
    """Run ``script`` (Python source) in reference venv ``name`` with ``args``; its stdout."""
    proc = subprocess.run([reference_python(name), "-c", script, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()
