"""Which program reads a config file, told from its groups and keys (``dsrun check`` takes any).

Several DeepStream plugins use a ``[property]`` group: Gst-nvinfer, but also Gst-nvdsanalytics,
Gst-nvdspreprocess, the new Gst-nvstreammux and Gst-nvdsmetamux, each with keys of its own.

>>> from runner.config.keyfile import parse_keyfile
>>> kind_of(parse_keyfile(b"[property]\\nenable=1\\nconfig-width=1920\\n[roi-filtering-stream-0]\\n", "a"))
'nvdsanalytics'
>>> kind_of(parse_keyfile(b"[property]\\nonnx-file=m.onnx\\nbatch-size=1\\n", "a"))
'nvinfer'
"""

from __future__ import annotations

import re
from pathlib import Path

from runner.config.diagnostics import Diagnostic
from runner.config.files import cached_document, is_yaml
from runner.config.keyfile import Document
from runner.config.model_tracker import TRACKER_SECTIONS

#: kind → (its program, group-name pattern, [property] keys only it has)
_PROPERTY_KINDS = {
    "nvdsanalytics": ("Gst-nvdsanalytics", r"(roi-filtering|overcrowding|line-crossing|direction-detection)"
                      r"-stream-\d+", {"config-width", "config-height", "osd-mode", "display-font-size"}),
    "metamux": ("Gst-nvdsmetamux", None, {"active-pad", "pts-tolerance"}),
    "nvdspreprocess": ("Gst-nvdspreprocess", r"group-\d+",
                       {"target-unique-ids", "processing-width", "processing-height", "network-input-shape",
                        "tensor-data-type", "tensor-name"}),
    "streammux": ("the new Gst-nvstreammux", None,
                  {"algorithm-type", "overall-max-fps-n", "overall-min-fps-n", "overall-max-fps-d",
                   "max-same-source-frames", "adaptive-batching", "max-fps-control", "max-num-frames-per-batch"}),
}
#: kinds dsrun check recognises but does not validate → their program
OTHER_KINDS = {k: v[0] for k, v in _PROPERTY_KINDS.items() if k != "nvdsanalytics"} | {
    "msgconv": "Gst-nvmsgconv (msg-conv-config)", "msgbroker": "a message broker adaptor",
    "service-maker": "DeepStream Service Maker"}


def detect_kind(path: Path) -> str:
    """'app', 'nvinfer', 'tracker', 'nvdsanalytics' or one of :data:`OTHER_KINDS`."""
    doc = cached_document(path)
    return "app" if doc is None else kind_of(doc, is_yaml(path))


def kind_of(doc: Document, yaml: bool = False) -> str:
    groups = set(doc.groups)
    keys = set(doc.groups["property"].entries) if "property" in groups else set()
    for kind, (_, pattern, own) in _PROPERTY_KINDS.items():
        if keys & own or (pattern and any(re.fullmatch(pattern, g) for g in groups)):
            return kind
    if "property" in groups:
        return "nvinfer"
    if yaml and groups & set(TRACKER_SECTIONS):
        return "tracker"
    if "deepstream" in groups:
        return "service-maker"
    if any(re.fullmatch(r"(sensor|place|analytics)\d+", g) for g in groups):
        return "msgconv"
    if "message-broker" in groups:
        return "msgbroker"
    return "app"


def not_validated(path: Path, kind: str) -> Diagnostic:
    """What ``dsrun check`` (and a run given such a file) says of a kind it does not validate: a
    Service Maker pipeline cannot run (error); a plugin's own config is checked through its app config."""
    if kind == "service-maker":
        return Diagnostic("error", "unsupported", str(path), None, "deepstream", None,
                          "a DeepStream Service Maker pipeline (deepstream: nodes, edges): dsrun runs "
                          "deepstream-app configs, not Service Maker ones",
                          "write it as a deepstream-app config ([source0], [streammux], [primary-gie], "
                          "[sink0]…) or run it with Service Maker")
    return Diagnostic("warning", "unsupported", str(path), None, None, None,
                      f"a {OTHER_KINDS[kind]} config: dsrun check does not validate it on its own",
                      "check the deepstream-app config that names it")
