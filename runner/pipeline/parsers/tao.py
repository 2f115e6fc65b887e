"""Parsers of NVIDIA's TAO post-processor library (DeepStream 9.1
``src/apps/tao_apps/post_processor/nvdsinfer_custombboxparser_tao.cpp``, ``libnvds_infercustomparser_tao.so``).

* ``NvDsInferParseCustomDDETRTAO`` (PeopleNet Transformer, retail DINO, RT-DETR configs): outputs
  ``pred_logits`` (n, queries, classes) and ``pred_boxes`` (n, queries, 4: cx, cy, w, h in 0..1). Per
  query the best logit's class (the first of equals), confidence = sigmoid of it, kept when >= the
  class's pre-cluster-threshold; boxes scaled to the network and clipped to [0, size - 1]. The C keeps
  them in a ``std::map`` keyed by confidence — a later query with exactly the same confidence replaces
  an earlier one — takes the 200 most confident and then drops class 0 (background). The number of
  classes must equal num-detected-classes.
* ``NvDsInferParseCustomSegformerTAO`` (citysemsegformer): the int64 output ``output`` is the class map.

>>> import numpy as np
>>> from runner.pipeline.cluster import ClassParams
>>> from runner.pipeline.parsers import NetworkInfo
>>> logits = np.array([[[0.0, 4.0], [3.0, -1.0]]], np.float32)  # query 0: class 1, query 1: background
>>> boxes = np.array([[[0.5, 0.5, 0.5, 0.5], [0.2, 0.2, 0.1, 0.1]]], np.float32)
>>> o = parse_ddetr_tao({"pred_boxes": boxes, "pred_logits": logits}, NetworkInfo(100, 60), ClassParams.uniform(2))
>>> o.class_id.tolist(), o.xyxy.tolist()
([1], [[25.0, 15.0, 75.0, 45.0]])
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.parsers import NetworkInfo, ParserError

DDETR_KEEP_TOP_K = 200  # keep_top_k in NvDsInferParseCustomDDETRTAO


def _layer(outputs: dict, name: str, parser: str) -> np.ndarray:
    if name not in outputs:
        raise ParserError(f"{parser}: the model has no output {name!r} (outputs: {list(outputs)}) — "
                          "it reads pred_boxes and pred_logits by name")
    return np.asarray(outputs[name], np.float32)


def parse_ddetr_tao(outputs: dict, net: NetworkInfo, params) -> Objects:
    """``NvDsInferParseCustomDDETRTAO``."""
    boxes = _layer(outputs, "pred_boxes", "NvDsInferParseCustomDDETRTAO")
    logits = _layer(outputs, "pred_logits", "NvDsInferParseCustomDDETRTAO")
    n, q, n_cls = logits.shape
    if n_cls != params.num_classes:
        raise ParserError(f"NvDsInferParseCustomDDETRTAO: the model outputs {n_cls} classes but "
                          f"num-detected-classes={params.num_classes} — set num-detected-classes={n_cls}")
    boxes = boxes.reshape(n, q, 4)
    cls = logits.argmax(-1)
    best = np.take_along_axis(logits, cls[..., None], -1)[..., 0]
    conf = (1.0 / (1.0 + np.exp(-best.astype(np.float64)))).astype(np.float32)
    keep = conf >= params.pre_cluster_threshold[cls].astype(np.float32)
    w, h = np.float32(net.width), np.float32(net.height)
    x1 = (boxes[..., 0] - boxes[..., 2] / np.float32(2)) * w
    y1 = (boxes[..., 1] - boxes[..., 3] / np.float32(2)) * h
    x2 = x1 + boxes[..., 2] * w
    y2 = y1 + boxes[..., 3] * h
    x1, x2 = np.clip(x1, 0, w - 1), np.clip(x2, 0, w - 1)
    y1, y2 = np.clip(y1, 0, h - 1), np.clip(y2, 0, h - 1)
    item = np.broadcast_to(np.arange(n)[:, None], (n, q))[keep]
    query = np.broadcast_to(np.arange(q)[None, :], (n, q))[keep]
    cls, conf = cls[keep], conf[keep]
    xyxy = np.stack([x1[keep], y1[keep], x2[keep], y2[keep]], 1)
    # std::map<float, …> per frame: one entry per confidence (the later query's), descending, 200 first
    order = np.lexsort((-query, -conf, item))
    item, query, cls, conf, xyxy = item[order], query[order], cls[order], conf[order], xyxy[order]
    first = np.r_[True, (item[1:] != item[:-1]) | (conf[1:] != conf[:-1])]
    item, cls, conf, xyxy = item[first], cls[first], conf[first], xyxy[first]
    starts = np.searchsorted(item, item, side="left")
    rank = np.arange(len(item)) - starts
    keep = (rank < DDETR_KEEP_TOP_K) & (cls != 0)
    return Objects.from_columns(frame=item[keep], class_id=cls[keep], confidence=conf[keep], xyxy=xyxy[keep])


def parse_segformer_tao(outputs: dict, net: NetworkInfo) -> np.ndarray:
    """``NvDsInferParseCustomSegformerTAO``: (n, net_h, net_w) int32 class map from the int64 ``output``."""
    for name, arr in outputs.items():
        arr = np.asarray(arr)
        if name != "output" or arr.dtype != np.int64:
            raise ParserError(f"NvDsInferParseCustomSegformerTAO: output {name!r} is {arr.dtype}, the parser "
                              "reads one int64 output named 'output' (the class map)")
    arr = np.asarray(outputs["output"])
    return arr.reshape(arr.shape[0], -1)[:, :net.height * net.width].reshape(-1, net.height, net.width).astype(np.int32)
