"""Parsers named by an nvinfer config, and dsrun's Python extension for ``custom-lib-path``.

* No ``parse-bbox-func-name``/``parse-classifier-func-name``: nvinfer's own parser.
* The name of a parser dsrun has built in (``NvDsInferParseYolo``, ``NvDsInferParseCTC``…: the
  names in :mod:`runner.deepstream_libs`): that one, whatever ``.so`` custom-lib-path names.
* ``custom-lib-path`` naming a ``.py`` file: the function of that name in it (see docs/inference.md):

  - detector: ``def NAME(outputs, network_info, detection_params)``, called once per frame (or object)
    with ``outputs`` = {output name: numpy array without the batch axis}; returns a dict with
    ``xyxy`` ((k, 4) network-input pixels), ``class_id`` ((k,)), ``confidence`` ((k,)).
    ``detection_params.num_classes`` and ``.pre_cluster_threshold[class]`` are available.
  - classifier: ``def NAME(outputs, network_info, classifier_threshold)``; returns a list of
    ``(class_id, confidence, label)`` (one per head) or a dict with ``class_id``, ``confidence``,
    ``label`` and optionally ``head`` columns.
  - a function with attribute ``dsrun_batched = True`` gets the batched outputs once and returns the
    same columns plus ``frame`` (the item index).
* Any other ``.so``: an error explaining how to port the function to Python.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import numpy as np

from runner.pipeline.batch import Classifications, Objects
from runner.pipeline.parsers import ParserError

_KEY = {"parse_bbox_func_name": "parse-bbox-func-name",
        "parse_classifier_func_name": "parse-classifier-func-name"}


def _load_module(path: Path, where: str):
    if not path.is_file():
        raise ParserError(f"{where}custom-lib-path: {path} does not exist — point it at a .py file "
                          "that defines the parse function")
    spec = importlib.util.spec_from_file_location(f"dsrun_custom_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report it with the file
        raise ParserError(f"{where}custom-lib-path: importing {path} failed: "
                          f"{type(exc).__name__}: {exc} — fix the Python file") from exc
    return module


def resolve(cfg, attr: str, builtins: dict, where: str = ""):
    """The parse function for ``cfg``; user functions come back wrapped as batched parsers."""
    name = getattr(cfg, attr, None) if cfg is not None else None
    lib = getattr(cfg, "custom_lib_path", None) if cfg is not None else None
    key = _KEY[attr]
    if lib is not None and Path(lib).suffix == ".py":
        module = _load_module(Path(lib), where)
        if not name:
            raise ParserError(f"{where}{key}: not set — name the function in {lib} that parses the outputs")
        fn = getattr(module, name, None)
        if not callable(fn):
            funcs = [n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")]
            raise ParserError(f"{where}{key}: {lib} has no function {name!r} (it defines: "
                              f"{', '.join(funcs) or 'none'}) — fix the name or the file")
        wrapped = _wrap_detector(fn) if attr == "parse_bbox_func_name" else _wrap_classifier(fn)
        return _reporting(wrapped, f"{where}{key}: {name} in {lib}")
    if not name or name in builtins:
        return builtins[name or None]
    if lib is not None:
        raise ParserError(
            f"{where}custom-lib-path: {lib} is a compiled DeepStream parser library, which dsrun cannot "
            f"load, and dsrun has no built-in {name!r} (built in: "
            f"{', '.join(k for k in builtins.keys() if k)}) — port {name} to Python: write a .py file "
            f"with def {name}(outputs, network_info, params) returning xyxy/class_id/confidence columns "
            "(docs/inference.md) and set custom-lib-path to it")
    raise ParserError(f"{where}{key}: {name!r} is not a dsrun built-in parser (built in: "
                      f"{', '.join(k for k in builtins.keys() if k)}) — set custom-lib-path to a .py "
                      "file that defines it")


def _reporting(parse, what: str):
    """Errors raised inside a user's parser name the file and function (not a bare traceback)."""
    def call(*args):
        try:
            return parse(*args)
        except ParserError:
            raise
        except Exception as exc:
            raise ParserError(f"{what} raised {type(exc).__name__}: {exc} — fix the parser "
                              "(docs/inference.md describes what it receives and returns)") from exc
    call.__name__ = parse.__name__
    return call


class DetectionParams:
    """What a user detector parser sees (NvDsInferParseDetectionParams)."""

    def __init__(self, params):
        self.num_classes = params.num_classes
        self.pre_cluster_threshold = np.asarray(params.pre_cluster_threshold, np.float32)
        self.per_class_threshold = self.pre_cluster_threshold


def _columns(result, n_hint=None):
    if isinstance(result, Objects):
        return {"xyxy": result.xyxy, "class_id": result.class_id, "confidence": result.confidence,
                "frame": result.frame}
    if isinstance(result, dict):
        return result
    raise ParserError(f"a custom parser returned {type(result).__name__}; return a dict with xyxy, "
                      "class_id and confidence columns")


def _wrap_detector(fn):
    def parse(outputs: dict, net, params) -> Objects:
        dp = DetectionParams(params)
        if getattr(fn, "dsrun_batched", False):
            cols = _columns(fn(outputs, net, dp))
            return Objects.from_columns(frame=cols["frame"], class_id=cols["class_id"],
                                        confidence=cols["confidence"], xyxy=cols["xyxy"])
        n = len(next(iter(outputs.values())))
        parts = []
        for i in range(n):  # DeepStream calls custom parsers once per frame/object too
            cols = _columns(fn({k: v[i] for k, v in outputs.items()}, net, dp))
            k = len(np.asarray(cols["confidence"]).reshape(-1))
            parts.append(Objects.from_columns(frame=np.full(k, i), class_id=cols["class_id"],
                                              confidence=cols["confidence"], xyxy=cols["xyxy"]))
        out = Objects.empty()
        for p in parts:
            out = out.concat(p)
        return out
    parse.__name__ = getattr(fn, "__name__", "custom")
    return parse


def _wrap_classifier(fn):
    def parse(outputs: dict, ctx) -> Classifications:
        if getattr(fn, "dsrun_batched", False):
            cols = fn(outputs, ctx.network, ctx.threshold)
            return Classifications.from_columns(obj=cols["frame"], frame=cols["frame"], head=cols.get("head", 0),
                                                class_id=cols["class_id"], confidence=cols["confidence"],
                                                label=cols.get("label"))
        n = len(next(iter(outputs.values())))
        obj, head, cls, conf, label = [], [], [], [], []
        for i in range(n):
            res = fn({k: v[i] for k, v in outputs.items()}, ctx.network, ctx.threshold)
            if isinstance(res, dict):
                k = len(res["class_id"])
                rows = zip(res.get("head", range(k)), res["class_id"], res["confidence"],
                           res.get("label", [""] * k))
            else:
                rows = ((h, *r) for h, r in enumerate(res or ()))
            for h, c, p, lab in rows:
                obj.append(i), head.append(h), cls.append(c), conf.append(p), label.append(lab)
        return Classifications.from_columns(obj=obj, frame=obj, head=head, class_id=cls, confidence=conf,
                                            label=np.asarray(label, dtype=object) if label else None)
    parse.__name__ = getattr(fn, "__name__", "custom")
    return parse
