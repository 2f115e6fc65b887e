"""Optional features: the extra that installs each, and the one-line error when it is missing.

    >>> print(MissingExtra("torch", "the torch backend"))
    the torch backend needs 'torch', which is not installed — pip install "dsrun[torch]"

Everything the main job imports is in ``[project].dependencies``; the modules below are imported
only by an optional path (a GPU, TensorRT, NVDEC). Code that needs one imports it plainly and turns
the ``ImportError`` into :class:`MissingExtra`, so a user sees what to install instead of a traceback.
"""

from __future__ import annotations

from runner.errors import DsrunError

#: import name → (the extra of pyproject.toml that installs it, the distribution that provides it).
#: One place for this fact: the CLI's messages and tests/test_dependencies.py read it.
OPTIONAL = {
    "torch": ("torch", "torch"),                     # the torch backend (torch.compile), CUDA frames
    "pynvml": ("gpu", "nvidia-ml-py"),               # GPU utilisation (absent: the GPU line is hidden)
    "PyNvVideoCodec": ("nvdec", "pynvvideocodec"),   # decoding on NVDEC (absent: FFmpeg on the CPU)
    "tensorrt": ("tensorrt", "tensorrt"),            # the TensorRT backend
    "tensorrt_bindings": ("tensorrt", "tensorrt"),   # TensorRT's bare bindings wheel (tests name-check it)
    "cuda": ("tensorrt", "cuda-python"),             # the TensorRT backend's CUDA runtime calls
    "ray": ("ray", "ray"),                           # --ray: shards on a Ray cluster's actors
    "supervision": ("supervision", "supervision"),   # dsrun.to_detections / from_detections
}

#: modules from the operating system, not PyPI: used only by helpers that Debian's python3 runs
SYSTEM = {"gi": "Debian's python3-gi (sinks/rtsp_gst_server.py runs under /usr/bin/python3)"}


class MissingExtra(DsrunError, ImportError):
    """An optional module is not installed; ``str()`` is one line naming the extra to install.

    Also an ``ImportError``, so ``except ImportError`` probes (``available()``) keep working."""

    def __init__(self, module: str, feature: str) -> None:
        self.module, self.extra = module, OPTIONAL[module][0]
        super().__init__(f"{feature} needs '{module}', which is not installed — "
                         f'pip install "dsrun[{self.extra}]"')
