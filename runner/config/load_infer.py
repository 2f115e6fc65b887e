"""Gst-nvinfer and NvMultiObjectTracker files → NvInferConfig / NvMultiObjectTrackerConfig."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

from runner.config.build import build
from runner.config.diagnostics import Diagnostic
from runner.config.enums import ClusterMode, NetworkType
from runner.config.files import Ref, read_document
from runner.config.groups import (NVINFER_GROUPS, TRACKER_GROUPS, known_group_names, nvinfer_group,
                                  tracker_group)
from runner.config.model_nvinfer import ClassAttrs, NvInferConfig
from runner.config.model_tracker import TRACKER_SECTIONS, NvMultiObjectTrackerConfig
from runner.config.validate import Spec, validate

NVINFER_SPEC = Spec("nvinfer", nvinfer_group, known_group_names(NVINFER_GROUPS))
TRACKER_SPEC = Spec("tracker", tracker_group, known_group_names(TRACKER_GROUPS))


def read_nvinfer(path: Path, diags: list[Diagnostic], ref: Ref | None = None,
                 keys: list | None = None) -> NvInferConfig | None:
    """Read one nvinfer file; problems go to ``diags``; None when it cannot be used at all.
    ``keys`` (when given) receives ``(file, Section)`` for every group read, for the unsupported list."""
    doc = read_document(path, diags, ref, "Gst-nvinfer config")
    if doc is None:
        return None
    file = str(path)
    if not doc.groups and any(d.is_error and d.file == file for d in diags):
        return None  # unreadable (a YAML syntax error, bad bytes): already said where
    if "property" not in doc.groups:
        empty = not doc.groups
        diags.append(Diagnostic("error", "syntax", file, None, None, None,
                                ("the file is empty; " if empty else "")
                                + "no [property] group (Gst-nvinfer requires one)",
                                "start the file with [property] followed by its keys "
                                "(onnx-file, batch-size, network-type, …)"))
        return None
    before = len(diags)
    sections = validate(doc, NVINFER_SPEC)
    diags.extend(doc.diagnostics)
    if keys is not None:
        keys.extend((path, section) for section in sections.values())
    base = path.parent
    prop = sections["property"]
    values = prop.values
    # legacy spellings, read as gst-nvinfer reads them (gstnvinfer_property_parser.cpp)
    if values.get("is_classifier") is not None and "network_type" not in values:
        values["network_type"] = NetworkType.CLASSIFIER if values["is_classifier"] else NetworkType.DETECTOR
    if values.get("enable_dbscan") and "cluster_mode" not in values:
        values["cluster_mode"] = ClusterMode.DBSCAN
    all_section = sections.get("class-attrs-all")
    attrs_all = _class_attrs(build(ClassAttrs, all_section, base, file, diags), all_section)
    by_id = {}
    config = build(NvInferConfig, prop, base, file, diags)
    diags.extend(_cluster_problems(config, prop, file))
    for name, section in sections.items():
        if section.kind is None or section.kind.name != "class-attrs-N":
            continue
        class_id = int(name[len("class-attrs-"):])
        if config.network_type in (NetworkType.DETECTOR, NetworkType.INSTANCE_SEGMENTATION) \
                and class_id >= config.num_detected_classes:
            diags.append(Diagnostic("error", "inconsistent", file, section.line, name, None,
                                    f"class {class_id} but num-detected-classes="
                                    f"{config.num_detected_classes}",
                                    "raise num-detected-classes in [property] or remove this group"))
        merged = dataclasses.replace(attrs_all, **{k: v for k, v in section.values.items()})
        by_id[class_id] = _class_attrs(merged, section)
    if any(d.is_error for d in diags[before:]):
        return None
    return dataclasses.replace(config, class_attrs_all=attrs_all,
                               class_attrs_by_id=MappingProxyType(by_id), path=path)


def _cluster_problems(config: NvInferConfig, prop, file: str) -> list[Diagnostic]:
    """Instance segmentation runs with cluster-mode=4 only (nvdsinfer_context_impl.cpp
    InstanceSegmentPostprocessor::initResource; gstnvinfer.cpp refuses output-instance-mask too)."""
    if config.cluster_mode == ClusterMode.NONE:
        return []
    why = ("network-type=3 (instance segmentation)" if config.network_type == NetworkType.INSTANCE_SEGMENTATION
           else "output-instance-mask=1" if config.output_instance_mask else None)
    if why is None:
        return []
    key = "cluster_mode" if "cluster_mode" in prop.values else "network_type" \
        if config.network_type == NetworkType.INSTANCE_SEGMENTATION else "output_instance_mask"
    return [Diagnostic("error", "inconsistent", file, prop.line_of(key), "property",
                       prop.written.get(key, key.replace("_", "-")),
                       f"{why} needs cluster-mode=4 (none), but cluster-mode is {int(config.cluster_mode)}: "
                       "nvinfer refuses to start (\"cluster mode not supported with instance segmentation\")",
                       "set cluster-mode=4 in [property]")]


def _class_attrs(attrs: ClassAttrs, section) -> ClassAttrs:
    """``threshold`` is the legacy spelling of pre-cluster-threshold: both write the same field as
    gst_nvinfer_parse_class_attrs (gstnvinfer_property_parser.cpp) reads the group's keys in file
    order, so the one written later in the group wins; one the group does not set keeps the value
    inherited from ``[class-attrs-all]`` (already resolved the same way)."""
    values = section.values if section is not None else {}
    if "threshold" not in values:
        return attrs
    if "pre_cluster_threshold" in values:
        order = list(values)  # keys in file order
        lines = section.lines
        later = ((lines.get("threshold") or 0, order.index("threshold"))
                 > (lines.get("pre_cluster_threshold") or 0, order.index("pre_cluster_threshold")))
        if not later:
            return attrs
    return dataclasses.replace(attrs, pre_cluster_threshold=values["threshold"])


def read_tracker(path: Path, diags: list[Diagnostic], ref: Ref | None = None,
                 keys: list | None = None) -> NvMultiObjectTrackerConfig | None:
    doc = read_document(path, diags, ref, "NvMultiObjectTracker config")
    if doc is None:
        return None
    before = len(diags)
    sections = validate(doc, TRACKER_SPEC)
    diags.extend(doc.diagnostics)
    if keys is not None:
        keys.extend((path, section) for section in sections.values())
    parts = {name: build(TRACKER_SECTIONS[name], sections[name], path.parent, str(path), diags)
             for name in sections if name in TRACKER_SECTIONS}
    if any(d.is_error for d in diags[before:]):
        return None
    return NvMultiObjectTrackerConfig(**parts, path=path)
