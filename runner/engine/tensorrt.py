"""TensorRT backend (imported lazily). Placeholder until the full backend lands."""

from __future__ import annotations

NAME = "tensorrt"


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None
