"""MTCNN output parsers for dsrun's Python ``custom-lib-path`` (docs/inference.md).

``parse_pnet``: P-Net's (4, H', W') box regression and (2, H', W') softmax → face proposals in
network-input pixels, as MTCNN's first stage makes them (window 12, stride 2, regression, square).
``parse_onet``: O-Net's face probability → the label "face" when it passes the threshold.
"""

import numpy as np

STRIDE, CELL = 2, 12


def parse_pnet(outputs, network_info, detection_params):
    prob = outputs["softmax"][1]
    reg = outputs["conv2d_4"]
    threshold = float(detection_params.pre_cluster_threshold[0])
    ys, xs = np.nonzero(prob >= threshold)
    x1 = (STRIDE * xs + 1).astype(np.float32)
    y1 = (STRIDE * ys + 1).astype(np.float32)
    x2 = (STRIDE * xs + CELL).astype(np.float32)
    y2 = (STRIDE * ys + CELL).astype(np.float32)
    w, h = x2 - x1 + 1, y2 - y1 + 1
    dx1, dy1, dx2, dy2 = (reg[c, ys, xs] for c in range(4))
    x1, y1, x2, y2 = x1 + dx1 * w, y1 + dy1 * h, x2 + dx2 * w, y2 + dy2 * h
    side = np.maximum(x2 - x1, y2 - y1)  # MTCNN squares every proposal around its centre
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    xyxy = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
    return {"xyxy": xyxy.reshape(-1, 4), "class_id": np.zeros(len(xs), np.int64),
            "confidence": prob[ys, xs].astype(np.float32)}


def parse_onet(outputs, network_info, classifier_threshold):
    face = float(outputs["softmax_2"][1])
    return [(0, face, "face")] if face >= classifier_threshold else []
