"""DB (Differentiable Binarization) text-detector post-processing — the PP-OCR detectors' parser.

Use it as ``parse-bbox-func-name=NvDsInferParseDBText`` (or call :func:`parse_db_text` from your own
``custom-lib-path`` Python file). It does what PaddleOCR's ``DBPostProcess`` does, on the
(n, 1, H, W) probability map in network pixels: binarise at :data:`BINARIZE_THRESHOLD`, dilate 2x2,
take each contour's minimum-area rectangle, score it by the mean probability inside (the class's
``pre-cluster-threshold`` is the box threshold; PaddleOCR uses 0.5), grow it by
``area * UNCLIP_RATIO / perimeter`` on every side, and report the axis-aligned box around it, class 0.
Use ``cluster-mode=4`` (DB boxes need no clustering).
"""

from __future__ import annotations

import cv2
import numpy as np

from runner.pipeline.batch import Objects
from runner.pipeline.parsers import NetworkInfo

BINARIZE_THRESHOLD = 0.3
UNCLIP_RATIO = 1.6
MAX_CANDIDATES = 1000
MIN_SIZE = 3
_KERNEL = np.ones((2, 2), np.uint8)


def _box_score(prob: np.ndarray, pts: np.ndarray) -> float:
    h, w = prob.shape
    xmin = int(np.clip(np.floor(pts[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(pts[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(pts[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(pts[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), np.uint8)
    shifted = (pts - np.array([xmin, ymin], np.float32)).astype(np.int32)
    cv2.fillPoly(mask, shifted.reshape(1, -1, 2), 1)
    return cv2.mean(prob[ymin:ymax + 1, xmin:xmax + 1], mask)[0]


def text_boxes(prob: np.ndarray, box_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One (H, W) probability map → ((k, 4) xyxy boxes, (k,) scores). One step per contour."""
    bitmap = cv2.dilate((prob > BINARIZE_THRESHOLD).astype(np.uint8), _KERNEL)
    contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    h, w = prob.shape
    boxes, scores = [], []
    for contour in contours[:MAX_CANDIDATES]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < MIN_SIZE:
            continue
        score = _box_score(prob, cv2.boxPoints(((cx, cy), (rw, rh), angle)))
        if score < box_threshold:
            continue
        grow = rw * rh * UNCLIP_RATIO / (2 * (rw + rh))
        big = ((cx, cy), (rw + 2 * grow, rh + 2 * grow), angle)
        if min(big[1]) < MIN_SIZE + 2:
            continue
        pts = cv2.boxPoints(big)
        x1, y1 = np.clip(pts.min(0), 0, [w, h])
        x2, y2 = np.clip(pts.max(0), 0, [w, h])
        boxes.append((x1, y1, x2, y2))
        scores.append(score)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32)


def parse_db_text(outputs: dict, net: NetworkInfo, params) -> Objects:
    """Batched DB post-processing (one :func:`text_boxes` per item)."""
    prob = np.asarray(next(iter(outputs.values())), np.float32)
    prob = prob.reshape(prob.shape[0], -1, prob.shape[-2], prob.shape[-1])[:, 0]
    thr = float(params.pre_cluster_threshold[0])
    frames, boxes, scores = [], [], []
    for i in range(len(prob)):  # O(frames)
        b, s = text_boxes(prob[i], thr)
        frames.append(np.full(len(s), i, np.int32))
        boxes.append(b)
        scores.append(s)
    return Objects.from_columns(frame=np.concatenate(frames), class_id=0, confidence=np.concatenate(scores),
                                xyxy=np.concatenate(boxes))
