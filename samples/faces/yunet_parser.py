"""YuNet's outputs → face boxes, for dsrun's Python ``custom-lib-path`` (docs/inference.md).

YuNet (OpenCV Zoo's ``face_detection_yunet_2023mar.onnx``) is anchor-free: for each stride 8, 16 and
32 it scores every grid cell (``cls_<s>``, ``obj_<s>``) and regresses a box (``bbox_<s>``: centre offset
in cells, log width and height in strides) and five landmarks (``kps_<s>``). The decoding is the one
OpenCV's ``FaceDetectorYN`` applies (``modules/objdetect/src/face_detect.cpp``, ``postProcess``):
score = sqrt(clamp(cls, 0, 1) x clamp(obj, 0, 1)), centre = (cell + offset) x stride, size =
exp(log size) x stride. nvinfer then keeps scores >= pre-cluster-threshold and runs NMS (cluster-mode=2).
DeepStream's object meta has no landmarks, so they are not attached.
"""

import numpy as np

STRIDES = (8, 16, 32)


def parse_yunet(outputs, network_info, detection_params):
    width, height = network_info.width, network_info.height
    boxes, scores = [], []
    for stride in STRIDES:
        cols, rows = width // stride, height // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0, 1)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0, 1)
        reg = outputs[f"bbox_{stride}"].reshape(-1, 4)
        score = np.sqrt(cls * obj)
        cell = np.arange(rows * cols)
        cx = (cell % cols + reg[:, 0]) * stride
        cy = (cell // cols + reg[:, 1]) * stride
        w, h = np.exp(reg[:, 2]) * stride, np.exp(reg[:, 3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        scores.append(score)
    xyxy, score = np.concatenate(boxes), np.concatenate(scores)
    keep = score >= float(detection_params.pre_cluster_threshold[0])
    return {"xyxy": xyxy[keep].astype(np.float32), "class_id": np.zeros(int(keep.sum()), np.int64),
            "confidence": score[keep].astype(np.float32)}
