"""YOLO and TAO parsers, ported from the C++ (one frame at a time, outputs without the batch axis).

* marcoslucianops/DeepStream-Yolo ``nvdsinfer_custom_impl_Yolo/nvdsparsebbox_Yolo.cpp`` (current:
  NvDsInferParseYolo on one (B, 6) output; commit b451b03^ for the 2023-2024 three-output form) and
  ``nvdsparsebbox_Yolo_cuda.cu`` (NvDsInferParseYoloCuda).
* NVIDIA/DeepStream ``tools/yolo_deepstream/deepstream_yolo/nvdsinfer_custom_impl_Yolo/``
  ``nvdsparsebbox_Yolo.cpp`` (NvDsInferParseCustomYoloV4/V7/V8, NvDsInferParseYoloV11) and
  ``nvdsparsebbox_Yolo_cuda.cu`` (NvDsInferParseCustomYoloV7/V8/V11_cuda).
* NVIDIA/DeepStream ``src/apps/tao_apps/post_processor/nvdsinfer_custombboxparser_tao.cpp``
  (NvDsInferParseCustomDDETRTAO, NvDsInferParseCustomSegformerTAO).
"""

from __future__ import annotations

import numpy as np

from reference.nvdsinfer import sigmoid_f32

F32 = np.float32
NUM_CLASSES_YOLO = 80


def clamp(val, lo, hi):
    """utils.cpp clamp: min(max, max(min, val))."""
    return F32(min(F32(hi), max(F32(lo), F32(val))))


def _obj(cls, conf, left, top, width, height):
    return {"classId": int(cls), "detectionConfidence": F32(conf), "left": F32(left), "top": F32(top),
            "width": F32(width), "height": F32(height)}


def convert_bbox(bx1, by1, bx2, by2, net_w, net_h):
    """DeepStream-Yolo convertBBox: corners clamped to [0, net], width/height clamped to [0, net]."""
    x1, y1 = clamp(bx1, 0, net_w), clamp(by1, 0, net_h)
    x2, y2 = clamp(bx2, 0, net_w), clamp(by2, 0, net_h)
    return x1, y1, clamp(F32(x2 - x1), 0, net_w), clamp(F32(y2 - y1), 0, net_h)


def add_bbox_proposal(bx1, by1, bx2, by2, net_w, net_h, max_index, max_prob, binfo):
    """DeepStream-Yolo addBBoxProposal: boxes under 1 pixel wide or high are dropped."""
    left, top, width, height = convert_bbox(bx1, by1, bx2, by2, net_w, net_h)
    if width < 1 or height < 1:
        return
    binfo.append(_obj(max_index, max_prob, left, top, width, height))


def decode_tensor_yolo(output: np.ndarray, net_w, net_h, thresholds) -> list[dict]:
    """DeepStream-Yolo decodeTensorYolo (current): rows x1, y1, x2, y2, score, class."""
    binfo = []
    for row in np.asarray(output, np.float32).reshape(-1, 6):
        max_prob, max_index = row[4], int(row[5])
        if max_prob < thresholds[max_index]:
            continue
        add_bbox_proposal(row[0], row[1], row[2], row[3], net_w, net_h, max_index, max_prob, binfo)
    return binfo


def decode_tensor_yolo_2023(boxes, scores, classes, net_w, net_h, thresholds, corners: bool) -> list[dict]:
    """DeepStream-Yolo decodeTensorYolo / decodeTensorYoloE of b451b03^ (three outputs; centre boxes
    for NvDsInferParseYolo, corners for NvDsInferParseYoloE)."""
    binfo = []
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    for b in range(len(boxes)):
        max_prob, max_index = F32(np.ravel(scores)[b]), int(np.ravel(classes)[b])
        if max_prob < thresholds[max_index]:
            continue
        if corners:
            bx1, by1, bx2, by2 = boxes[b]
        else:
            bxc, byc, bw, bh = boxes[b]
            bx1, by1 = F32(bxc - bw / F32(2)), F32(byc - bh / F32(2))
            bx2, by2 = F32(bx1 + bw), F32(by1 + bh)
        add_bbox_proposal(bx1, by1, bx2, by2, net_w, net_h, max_index, max_prob, binfo)
    return binfo


def decode_tensor_yolo_cuda(output: np.ndarray, net_w, net_h, thresholds) -> list[dict]:
    """DeepStream-Yolo decodeTensorYoloCuda: every row is an object (confidence 0 below the threshold,
    left for nvinfer's preClusteringThreshold); no minimum size."""
    out = []
    for row in np.asarray(output, np.float32).reshape(-1, 6):
        max_prob, max_index = row[4], int(row[5])
        if max_prob < thresholds[max_index]:
            out.append(_obj(0, 0.0, 0, 0, 0, 0))
            continue
        x1, y1 = clamp(row[0], 0, net_w), clamp(row[1], 0, net_h)
        x2, y2 = clamp(row[2], 0, net_w), clamp(row[3], 0, net_h)
        out.append(_obj(max_index, max_prob, x1, y1, clamp(F32(x2 - x1), 0, net_w), clamp(F32(y2 - y1), 0, net_h)))
    return out


def _argmax_80(scores) -> tuple[int, np.float32]:
    """The class loop of the NVIDIA YOLO parsers: strict '>' from 0 over NUM_CLASSES_YOLO scores."""
    max_score, index = F32(0), 0
    for j in range(min(NUM_CLASSES_YOLO, len(scores))):
        if scores[j] > max_score:
            index, max_score = j, F32(scores[j])
    return index, max_score


def add_bbox_proposal_yolov7(bx, by, bw, bh, net_w, net_h, max_index, max_prob, binfo):
    """tools/yolo_deepstream addBBoxProposalYoloV7 (convertBBoxYoloV7 with stride 1)."""
    x0, y0 = F32(bx - bw / F32(2)), F32(by - bh / F32(2))
    x1, y1 = F32(x0 + bw), F32(y0 + bh)
    x0, y0, x1, y1 = clamp(x0, 0, net_w), clamp(y0, 0, net_h), clamp(x1, 0, net_w), clamp(y1, 0, net_h)
    width, height = clamp(F32(x1 - x0), 0, net_w), clamp(F32(y1 - y0), 0, net_h)
    if width < 1 or height < 1:
        return
    binfo.append(_obj(max_index, max_prob, x0, y0, width, height))


def nvds_infer_parse_yolov7(layer: np.ndarray, net_w, net_h) -> list[dict]:
    """tools/yolo_deepstream NvDsInferParseYoloV7: rows x, y, w, h, objectness, 80 class scores;
    the confidence is the objectness."""
    objects = []
    for row in np.asarray(layer, np.float32).reshape(-1, layer.shape[-1]):
        index, _ = _argmax_80(row[5:])
        add_bbox_proposal_yolov7(row[0], row[1], row[2], row[3], net_w, net_h, index, row[4], objects)
    return objects


def nvds_infer_parse_yolov8(layer: np.ndarray, net_w, net_h) -> list[dict]:
    """tools/yolo_deepstream NvDsInferParseYoloV8: rows x, y, w, h, 80 class scores."""
    objects = []
    for row in np.asarray(layer, np.float32).reshape(-1, layer.shape[-1]):
        index, max_score = _argmax_80(row[4:])
        add_bbox_proposal_yolov7(row[0], row[1], row[2], row[3], net_w, net_h, index, max_score, objects)
    return objects


def decode_yolov11_tensor(data: np.ndarray, net_w, net_h, thresholds) -> list[dict]:
    """tools/yolo_deepstream decodeYoloV11Tensor: ``data`` (4 + C, anchors), not transposed."""
    num_features, num_anchors = data.shape
    objects = []
    for a in range(num_anchors):
        cx, cy, w, h = (F32(data[k, a]) for k in range(4))
        max_prob, max_index = F32(0), 0
        for c in range(num_features - 4):
            if data[4 + c, a] > max_prob:
                max_prob, max_index = F32(data[4 + c, a]), c
        if max_prob < thresholds[max_index]:
            continue
        x1, y1 = F32(cx - w * F32(0.5)), F32(cy - h * F32(0.5))
        x2, y2 = F32(cx + w * F32(0.5)), F32(cy + h * F32(0.5))
        x1, y1, x2, y2 = clamp(x1, 0, net_w), clamp(y1, 0, net_h), clamp(x2, 0, net_w), clamp(y2, 0, net_h)
        width, height = F32(x2 - x1), F32(y2 - y1)
        if width < 1 or height < 1:
            continue
        objects.append(_obj(max_index, max_prob, x1, y1, width, height))
    return objects


def decode_yolo_tensor_cuda(layer: np.ndarray, net_w, net_h, thresholds, is_yolov7: bool,
                            list_size: int) -> list[dict]:
    """tools/yolo_deepstream decodeYoloTensor_cuda + NvDsInferParseYolo_cuda: the threshold is the
    smallest pre-cluster-threshold; the first ``list_size`` rows (OBJECTLISTSIZEV7/V8/V11) are
    returned, those below the threshold with confidence 0."""
    threshold = min(thresholds)
    out = []
    for row in np.asarray(layer, np.float32).reshape(-1, layer.shape[-1])[:list_size]:
        max_prob = row[4] if is_yolov7 else F32(1)
        if is_yolov7 and max_prob < threshold:
            out.append(_obj(0, 0.0, 0, 0, 0, 0))
            continue
        index, max_score = _argmax_80(row[5:] if is_yolov7 else row[4:])
        final = F32(max_prob * max_score) if is_yolov7 else max_score
        if final < threshold:
            out.append(_obj(0, 0.0, 0, 0, 0, 0))
            continue
        x0, y0 = F32(row[0] - row[2] / F32(2)), F32(row[1] - row[3] / F32(2))
        x1, y1 = F32(x0 + row[2]), F32(y0 + row[3])
        out.append(_obj(index, final, min(F32(net_w), max(F32(0), x0)), min(F32(net_h), max(F32(0), y0)),
                        min(F32(net_w), max(F32(0), F32(x1 - x0))), min(F32(net_h), max(F32(0), F32(y1 - y0)))))
    return out


def decode_yolov4_tensor(num: int, boxes, scores, classes, net_w, net_h, thresholds) -> list[dict]:
    """tools/yolo_deepstream decodeYoloV4Tensor: the first ``num`` NMS-ed boxes (x1, y1, x2, y2 in
    0..1); a class outside num-detected-classes or a score not above its threshold is skipped."""
    binfo = []
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    for b in range(num):
        cls = int(np.ravel(classes)[b])
        if 0 <= cls < len(thresholds):
            prob = F32(np.ravel(scores)[b])
            if prob > thresholds[cls]:
                x1, y1 = F32(boxes[b, 0] * net_w), F32(boxes[b, 1] * net_h)
                x2, y2 = F32(boxes[b, 2] * net_w), F32(boxes[b, 3] * net_h)
                left, top, width, height = (clamp(x1, 0, net_w), clamp(y1, 0, net_h), None, None)
                x2c, y2c = clamp(x2, 0, net_w), clamp(y2, 0, net_h)
                width, height = clamp(F32(x2c - left), 0, net_w), clamp(F32(y2c - top), 0, net_h)
                if width < 1 or height < 1:
                    continue
                binfo.append(_obj(cls, prob, left, top, width, height))
    return binfo


def nvds_infer_parse_custom_ddetr_tao(pred_boxes: np.ndarray, pred_logits: np.ndarray, net_w, net_h,
                                      thresholds) -> list[dict]:
    """NvDsInferParseCustomDDETRTAO: argmax class, sigmoid confidence, centre boxes scaled and clipped
    to [0, net - 1]; kept in a std::map keyed by confidence (equal confidences: the later query wins),
    the 200 most confident, then background class 0 removed."""
    num_detections, num_classes = pred_logits.shape
    if len(thresholds) != num_classes:
        raise ValueError("numClassesConfigured != numClasses from output tensor")
    ordered = {}
    for idx in range(num_detections):
        logits = np.asarray(pred_logits[idx], np.float32)
        cls = int(np.argmax(logits))  # std::max_element: the first largest
        conf = sigmoid_f32(logits[cls])
        if conf < thresholds[cls]:
            continue
        cx, cy, w, h = (F32(v) for v in pred_boxes[idx])
        x1 = F32(F32(cx - F32(w / F32(2))) * F32(net_w))
        y1 = F32(F32(cy - F32(h / F32(2))) * F32(net_h))
        x2 = F32(x1 + F32(w * F32(net_w)))
        y2 = F32(y1 + F32(h * F32(net_h)))
        x1, x2 = (F32(max(min(v, F32(net_w - 1)), F32(0))) for v in (x1, x2))
        y1, y2 = (F32(max(min(v, F32(net_h - 1)), F32(0))) for v in (y1, y2))
        ordered[float(conf)] = _obj(cls, conf, x1, y1, F32(x2 - x1), F32(y2 - y1))
    out = []
    for jdx, key in enumerate(sorted(ordered, reverse=True)):
        if jdx >= 200:
            break
        if ordered[key]["classId"] != 0:
            out.append(ordered[key])
    return out


def nvds_infer_parse_custom_segformer_tao(output: np.ndarray, net_w, net_h) -> np.ndarray:
    """NvDsInferParseCustomSegformerTAO: the int64 "output" layer is the class map (net_h x net_w)."""
    flat = np.asarray(output).reshape(-1)
    return np.array([int(flat[i]) for i in range(net_w * net_h)], np.int32).reshape(net_h, net_w)
