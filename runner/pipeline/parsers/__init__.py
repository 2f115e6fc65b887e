"""Output tensors → object columns, classifier labels or class maps (nvinfer's parsers and dsrun's).

Built-in parsers take *batched* outputs (a dict of output name → ``(n, ...)`` array, in the engine's
output order) and return :class:`~runner.pipeline.batch.Objects` whose ``frame`` is the item index in
that batch and whose boxes are network-input pixels. :func:`resolve_bbox_parser` /
:func:`resolve_classifier_parser` pick the function an nvinfer config names (``parse-bbox-func-name``,
``parse-classifier-func-name``, ``custom-lib-path``); see :mod:`.custom` for user parsers in Python.

>>> resolve_bbox_parser(None).__name__
'parse_detectnet_v2'
"""

from __future__ import annotations

from dataclasses import dataclass

from runner import deepstream_libs
from runner.errors import DsrunError

__all__ = ["NetworkInfo", "ParserError", "BBOX_PARSERS", "CLASSIFIER_PARSERS", "SEGMENTATION_PARSERS",
           "resolve_bbox_parser", "resolve_classifier_parser", "resolve_segmentation_parser"]


class ParserError(DsrunError):
    """An output a parser cannot read, or a parser that cannot be loaded; says what to change."""


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """NvDsInferNetworkInfo: the network input size the boxes are expressed in."""

    width: int
    height: int
    channels: int = 3


def _registry(names: dict):
    """{function name: parser} from :mod:`runner.deepstream_libs` (``module.function`` here)."""
    import importlib

    def load(target: str):
        module, func = target.split(".")
        return getattr(importlib.import_module(f"runner.pipeline.parsers.{module}"), func)

    return {name: load(target) for name, target in names.items()}


def _bbox_registry():
    return _registry(deepstream_libs.BBOX_PARSE_FUNCS)


def _classifier_registry():
    return _registry(deepstream_libs.CLASSIFIER_PARSE_FUNCS)


def _segmentation_registry():
    return _registry(deepstream_libs.SEGMENTATION_PARSE_FUNCS)


class _Lazy(dict):
    def __init__(self, factory):
        super().__init__()
        self._factory = factory

    def _fill(self):
        if not super().__len__():
            self.update(self._factory())

    def __getitem__(self, k):
        self._fill()
        return super().__getitem__(k)

    def __contains__(self, k):
        self._fill()
        return super().__contains__(k)

    def keys(self):
        self._fill()
        return super().keys()


BBOX_PARSERS = _Lazy(_bbox_registry)  # parse-bbox-func-name → built-in (None: nvinfer's default)
CLASSIFIER_PARSERS = _Lazy(_classifier_registry)
SEGMENTATION_PARSERS = _Lazy(_segmentation_registry)


def resolve_bbox_parser(cfg, where: str = ""):
    """The detector parser ``cfg`` (an NvInferConfig, or None) names; see :func:`.custom.resolve`."""
    from runner.pipeline.parsers.custom import resolve

    return resolve(cfg, "parse_bbox_func_name", BBOX_PARSERS, where)


def resolve_segmentation_parser(cfg, where: str = ""):
    """``parse-segmentation-func-name``'s built-in parser ``(outputs, network_info) -> (n, h, w) class
    map``, or None for nvinfer's own (argmax above segmentation-threshold)."""
    name = getattr(cfg, "parse_segmentation_func_name", None) if cfg is not None else None
    if not name:
        return None
    if name in SEGMENTATION_PARSERS:
        return SEGMENTATION_PARSERS[name]
    raise ParserError(f"{where}[property] parse-segmentation-func-name: {name!r} is not a dsrun built-in "
                      f"(built in: {', '.join(SEGMENTATION_PARSERS.keys())}) — remove the key to use "
                      "nvinfer's own parser (the class above segmentation-threshold)")


def resolve_classifier_parser(cfg, where: str = ""):
    from runner.pipeline.parsers.custom import resolve

    return resolve(cfg, "parse_classifier_func_name", CLASSIFIER_PARSERS, where)
