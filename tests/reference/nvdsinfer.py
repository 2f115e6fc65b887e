"""nvdsinfer (src/utils/nvdsinfer/) — detector and classifier post-processing, ported from the C.

Files: ``nvdsinfer_context_impl.cpp`` (NvDsInferContextImpl::initialize, parseLabelsFile) and
``nvdsinfer_context_impl_output_parsing.cpp`` (DetectPostprocessor::*, ClassifyPostprocessor::*).
The stock build is ``WITH_OPENCV=0`` (src/utils/nvdsinfer/Makefile), so there is no groupRectangles.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32

CLUSTER_NMS, CLUSTER_NONE, CLUSTER_GROUP_RECTANGLES = 2, 4, 0


def initialize_cluster_params(cluster_mode: int, network_type: int, per_class: list[dict]) -> int:
    """NvDsInferContextImpl::initialize, the ``#ifndef WITH_OPENCV`` block: cluster-mode 0 on a detector
    (network type 0) becomes NMS and every class gets topK 20, nmsIOUThreshold 0.5. ``per_class``
    (dicts with ``topK``/``nmsIOUThreshold``…) is changed in place; returns the cluster mode."""
    if cluster_mode == CLUSTER_GROUP_RECTANGLES and network_type == 0:
        cluster_mode = CLUSTER_NMS
        for params in per_class:
            params["topK"] = 20
            params["nmsIOUThreshold"] = 0.5
    return cluster_mode


def parse_labels_file(text: str) -> list[list[str]]:
    """InferPostprocessor::parseLabelsFile: non-empty lines, each split on ';'."""
    labels = []
    for line in text.split("\n"):
        if not line:
            continue
        labels.append(line.split(";"))
    return labels


def parse_bounding_box(cov: np.ndarray, bbox: np.ndarray, net_w: int, net_h: int,
                       pre_cluster_threshold: list[float]) -> list[dict]:
    """DetectPostprocessor::parseBoundingBox for one frame: ``cov`` (C, H, W), ``bbox`` (4C, H, W)."""
    cov_c, cov_h, cov_w = cov.shape
    bbox_h, bbox_w = bbox.shape[1], bbox.shape[2]
    norm = F32(35.0)
    stride_x = (net_w + bbox_w - 1) // bbox_w  # DIVIDE_AND_ROUND_UP
    stride_y = (net_h + bbox_h - 1) // bbox_h
    centres_x = [F32(F32(i * stride_x + 0.5) / norm) for i in range(cov_w)]
    centres_y = [F32(F32(i * stride_y + 0.5) / norm) for i in range(cov_h)]
    objects = []
    num_classes = min(cov_c, len(pre_cluster_threshold))
    for c in range(num_classes):
        for h in range(cov_h):
            for w in range(cov_w):
                confidence = F32(cov[c, h, w])
                if confidence < pre_cluster_threshold[c]:
                    continue
                x1 = F32(F32(bbox[4 * c + 0, h, w]) - centres_x[w]) * -norm
                y1 = F32(F32(bbox[4 * c + 1, h, w]) - centres_y[h]) * -norm
                x2 = F32(F32(bbox[4 * c + 2, h, w]) + centres_x[w]) * norm
                y2 = F32(F32(bbox[4 * c + 3, h, w]) + centres_y[h]) * norm
                if x1 >= net_w:
                    x1 = F32(net_w - 1)
                if x2 >= net_w:
                    x2 = F32(net_w - 1)
                if y1 >= net_h:
                    y1 = F32(net_h - 1)
                if y2 >= net_h:
                    y2 = F32(net_h - 1)
                x1, x2, y1, y2 = (F32(0) if v < 0 else v for v in (x1, x2, y1, y2))
                if (x2 - x1) < 0 or (y2 - y1) < 0:
                    continue
                objects.append({"classId": c, "left": x1, "top": y1, "width": F32(x2 - x1),
                                "height": F32(y2 - y1), "detectionConfidence": confidence})
    return objects


def pre_clustering_threshold(objects: list[dict], pre_cluster_threshold: list[float]) -> list[dict]:
    """DetectPostprocessor::preClusteringThreshold."""
    n = len(pre_cluster_threshold)
    return [o for o in objects
            if not (o["classId"] >= n or o["detectionConfidence"] < pre_cluster_threshold[o["classId"]])]


def filter_top_k_outputs(top_k: int, objects: list[dict]) -> list[dict]:
    """DetectPostprocessor::filterTopKOutputs: stable sort by descending confidence, keep topK."""
    if top_k < 0:
        return objects
    ranked = sorted(objects, key=lambda o: -o["detectionConfidence"])  # Python's sort is stable
    return ranked[:top_k]


def _overlap_1d(x1min, x1max, x2min, x2max):
    if x1min > x2min:
        x1min, x2min = x2min, x1min
        x1max, x2max = x2max, x1max
    return 0 if x1max < x2min else min(x1max, x2max) - x2min


def _compute_iou(b1: dict, b2: dict) -> float:
    ox = _overlap_1d(b1["left"], F32(b1["left"] + b1["width"]), b2["left"], F32(b2["left"] + b2["width"]))
    oy = _overlap_1d(b1["top"], F32(b1["top"] + b1["height"]), b2["top"], F32(b2["top"] + b2["height"]))
    area1 = F32(b1["width"] * b1["height"])
    area2 = F32(b2["width"] * b2["height"])
    overlap = F32(ox * oy)
    u = F32(area1 + area2 - overlap)
    return 0 if u == 0 else F32(overlap / u)


def non_maximum_suppression(score_index: list[tuple[float, int]], boxes: list[dict], threshold: float):
    """DetectPostprocessor::nonMaximumSuppression: indices kept, in score order."""
    indices = []
    for _, idx in score_index:
        keep = True
        for kept in indices:
            if not keep:
                break
            keep = _compute_iou(boxes[idx], boxes[kept]) <= threshold
        if keep:
            indices.append(idx)
    return indices


def cluster_and_fill_detection_output_nms(per_class: list[list[dict]], params: list[dict]) -> list[dict]:
    """DetectPostprocessor::clusterAndFillDetectionOutputNMS."""
    out = []
    for c, objects in enumerate(per_class):
        if not objects:
            continue
        score_index = sorted(((o["detectionConfidence"], r) for r, o in enumerate(objects)),
                             key=lambda p: -p[0])
        indices = non_maximum_suppression(score_index, objects, params[c]["nmsIOUThreshold"])
        post = [objects[i] for i in indices
                if objects[i]["detectionConfidence"] > params[c]["postClusterThreshold"]]
        out += filter_top_k_outputs(params[c]["topK"], post)
    return out


def fill_unclustered_output(objects: list[dict], params: list[dict]) -> list[dict]:
    """DetectPostprocessor::fillUnclusteredOutput."""
    per_class = [[] for _ in params]
    for o in objects:
        per_class[o["classId"]].append(o)
    out = []
    for c, lst in enumerate(per_class):
        out += filter_top_k_outputs(params[c]["topK"], lst)
    return out


def fill_detection_output(objects: list[dict], cluster_mode: int, params: list[dict]) -> list[dict]:
    """DetectPostprocessor::fillDetectionOutput after the parser (stock build: NMS or none here)."""
    objects = pre_clustering_threshold(objects, [p["preClusterThreshold"] for p in params])
    if cluster_mode == CLUSTER_NMS:
        per_class = [[] for _ in params]
        for o in objects:
            per_class[o["classId"]].append(o)
        return cluster_and_fill_detection_output_nms(per_class, params)
    if cluster_mode == CLUSTER_NONE:
        return fill_unclustered_output(objects, params)
    raise NotImplementedError(f"cluster-mode {cluster_mode} is not ported")


def parse_attributes_from_softmax_layers(layers: list[np.ndarray], threshold: float,
                                         labels: list[list[str]]) -> tuple[list[dict], str]:
    """ClassifyPostprocessor::parseAttributesFromSoftmaxLayers for one object: ``layers`` are the
    output layers without the batch axis; numClasses is ``dims.d[0]`` (getDimsCHWFromDims).
    Returns (attributes, the label string ``attrString``)."""
    attrs, attr_string = [], ""
    for index, layer in enumerate(layers):
        num_classes = layer.shape[0]
        flat = np.asarray(layer, np.float32).reshape(-1)
        max_probability, found = F32(0), None
        for c in range(num_classes):
            probability = flat[c]
            if probability > threshold and probability > max_probability:
                max_probability = probability
                found = {"attributeIndex": index, "attributeValue": c, "attributeConfidence": probability}
        if found is not None:
            value = found["attributeValue"]
            found["attributeLabel"] = labels[index][value] if len(labels) > index and value < len(labels[index]) \
                else None
            attrs.append(found)
            if found["attributeLabel"] is not None:
                attr_string += found["attributeLabel"] + " "
    return attrs, attr_string


def sigmoid_f32(x: float) -> np.float32:
    """``1.0 / (1.0 + exp(-x))`` with x a float: computed in double, stored as float."""
    return F32(1.0 / (1.0 + math.exp(-float(x))))
