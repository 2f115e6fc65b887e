"""dsrun's Darknet → ONNX converter against OpenCV's own Darknet loader (``cv2.dnn.readNetFromDarknet``,
OpenCV 4.x: see opencv_darknet.py), on the trained YOLOv4-tiny and YOLOv3-tiny of the asset catalog and
on small YOLOv4-style networks with seeded weights that use every other layer kind (mish, swish, relu,
shortcut, SPP max-pools, route groups, upsample, new_coords).

OpenCV's yolo output rows are (cell, anchor) with ``cx/W, cy/H, w/W, h/H, objectness, class scores``
(class scores = objectness x probability, zeroed under its threshold); dsrun's (DeepStream-Yolo's) rows are
(anchor, cell) with ``x1, y1, x2, y2, best score, class`` in pixels. Both are brought to one form here.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from opencv_darknet import opencv_darknet
from runner.convert import ConvertError
from runner.convert.darknet import darknet_to_onnx, parse_cfg
from samples_support import frames

TOL = 1e-3


def run_onnx(model, blob: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": blob})[0]


def compare_with_opencv(ours: np.ndarray, ref: dict[str, np.ndarray], heads: list[tuple[int, int, int]],
                        net_w: int, net_h: int) -> dict:
    """Max differences between dsrun's (1, B, 6) output and OpenCV's yolo layers; ``heads``: (A, H, W)."""
    rows = ours[0]
    refs = [ref[k] for k in sorted(ref, key=lambda name: int(name.rsplit("_", 1)[1]))]
    assert len(refs) == len(heads)
    start, box_diff, score_diff, scored, class_same = 0, 0.0, 0.0, 0, True
    for r, (a, h, w) in zip(refs, heads):
        n = a * h * w
        o = rows[start:start + n].reshape(a, h * w, 6).transpose(1, 0, 2).reshape(-1, 6)  # → (cell, anchor)
        start += n
        mine = np.stack([(o[:, 0] + o[:, 2]) / 2 / net_w, (o[:, 1] + o[:, 3]) / 2 / net_h,
                         (o[:, 2] - o[:, 0]) / net_w, (o[:, 3] - o[:, 1]) / net_h], 1)
        box_diff = max(box_diff, float(np.abs(mine - r[:, :4]).max()))
        best = r[:, 5:].max(1)
        valid = best > 0
        scored += int(valid.sum())
        if valid.any():
            score_diff = max(score_diff, float(np.abs(o[valid, 4] - best[valid]).max()))
            class_same &= bool((o[valid, 5] == r[valid, 5:].argmax(1)).all())
    assert start == len(rows)
    return {"box": box_diff, "score": score_diff, "scored": scored, "class_same": class_same}


@pytest.fixture(scope="module")
def vtest_blob(assets):
    """vtest frame 201 as OpenCV's blobFromImage makes it: RGB, /255, 416x416."""
    import cv2

    bgr = frames(assets.videos["street"], fmt="bgr24", limit=202)[201]
    return cv2.dnn.blobFromImage(bgr, 1 / 255.0, (416, 416), swapRB=True, crop=False)


@pytest.mark.parametrize("name", ["yolov4_tiny", "yolov3_tiny"])
def test_trained_tiny_yolo_outputs_equal_opencvs_darknet_loader(name, assets, vtest_blob, tmp_path):
    cfg, weights = assets.models[f"{name}_cfg"], assets.models[f"{name}_weights"]
    ours = run_onnx(darknet_to_onnx(cfg, weights), vtest_blob)
    version, ref = opencv_darknet(cfg, weights, vtest_blob, tmp_path)
    assert ours.shape == (1, 3 * 13 * 13 + 3 * 26 * 26, 6)
    diff = compare_with_opencv(ours, ref, [(3, 13, 13), (3, 26, 26)], 416, 416)
    assert diff["box"] < TOL and diff["score"] < TOL and diff["class_same"], (version, diff)
    assert diff["scored"] >= 5  # OpenCV scored boxes on this street frame: the comparison is not empty


def test_yolov4_tiny_on_vtest_frame_201_finds_five_people_and_a_car(assets, vtest_blob):
    """COCO classes 0 person and 2 car, score >= 0.5 after NMS at 0.45 (OpenCV's NMSBoxes)."""
    import cv2

    rows = run_onnx(darknet_to_onnx(assets.models["yolov4_tiny_cfg"], assets.models["yolov4_tiny_weights"]),
                    vtest_blob)[0]
    rows = rows[rows[:, 4] >= 0.5]
    kept = []
    for c in np.unique(rows[:, 5]):
        r = rows[rows[:, 5] == c]
        keep = cv2.dnn.NMSBoxes(np.c_[r[:, :2], r[:, 2:4] - r[:, :2]].tolist(), r[:, 4].tolist(), 0.5, 0.45)
        kept += [int(c)] * len(np.asarray(keep).reshape(-1))
    assert kept.count(0) >= 5 and kept.count(2) >= 1, kept


# -- every layer kind, on a small network with seeded weights ---------------------------------------

ANCHORS = "10,14, 23,27, 37,58, 81,82, 135,169, 344,319"


def v4_style_cfg(new_coords: bool) -> str:
    """A YOLOv4-shaped network in miniature: CSP-like split, mish/swish/relu, shortcut, SPP, two heads."""
    head_act = "logistic" if new_coords else "linear"
    nc = "new_coords=1\nscale_x_y=2.0" if new_coords else "scale_x_y=1.1"
    conv = "[convolutional]\nbatch_normalize=1\nfilters={}\nsize={}\nstride={}\npad=1\nactivation={}\n"
    return "\n".join([
        "[net]\nwidth=96\nheight=64\nchannels=3",
        conv.format(8, 3, 1, "mish"),                                 # 0
        conv.format(16, 3, 2, "leaky"),                               # 1: 32x48
        conv.format(8, 1, 1, "mish"),                                 # 2
        conv.format(16, 3, 1, "mish"),                                # 3
        "[shortcut]\nfrom=-3\nactivation=linear",                     # 4
        "[route]\nlayers=-1\ngroups=2\ngroup_id=1",                   # 5: 8 ch
        conv.format(16, 3, 2, "swish"),                               # 6: 16x24
        "[maxpool]\nsize=5\nstride=1", "[route]\nlayers=-2",          # 7, 8
        "[maxpool]\nsize=9\nstride=1", "[route]\nlayers=-4",          # 9, 10
        "[maxpool]\nsize=13\nstride=1",                               # 11
        "[route]\nlayers=-1,-3,-5,-6",                                # 12: 64 ch
        "[maxpool]\nsize=2\nstride=2",                                # 13: 8x12
        conv.format(16, 1, 1, "relu"),                                # 14
        f"[convolutional]\nsize=1\nstride=1\npad=1\nfilters=27\nactivation={head_act}",  # 15
        f"[yolo]\nmask=3,4,5\nanchors={ANCHORS}\nclasses=4\nnum=6\n{nc}",               # 16
        "[route]\nlayers=-3",                                         # 17
        "[upsample]\nstride=2",                                       # 18: 16x24
        "[route]\nlayers=-1, 6",                                      # 19: 32 ch
        "[maxpool]\nsize=2\nstride=1",                                # 20
        "[dropout]\nprobability=.1",                                  # 21
        f"[convolutional]\nsize=1\nstride=1\npad=1\nfilters=27\nactivation={head_act}",  # 22
        f"[yolo]\nmask=0,1,2\nanchors={ANCHORS}\nclasses=4\nnum=6\n{nc}",               # 23
    ]) + "\n"


def seeded_weights(cfg_text: str, seed: int = 0) -> bytes:
    """A Darknet 0.2.5 weights file for ``cfg_text``: header, then per convolution bias, (scale, mean,
    variance when batch-normalised) and kernel, drawn from a seeded generator."""
    rng = np.random.default_rng(seed)
    sections = parse_cfg(cfg_text)
    channels = [int(sections[0].get("channels"))]
    out, c = [], channels[0]
    for s in sections[1:]:
        if s.type == "convolutional":
            f, k = s.get_int("filters"), s.get_int("size")
            out.append(rng.normal(0, 0.1, f))
            if s.get_int("batch_normalize", 0):
                out += [rng.uniform(0.5, 1.5, f), rng.normal(0, 0.1, f), rng.uniform(0.5, 1.5, f)]
            out.append(rng.normal(0, 1 / np.sqrt(c * k * k), f * c * k * k))
            c = f
        elif s.type == "route":
            idx = [v if v >= 0 else len(channels) - 1 + v for v in s.get_ints("layers")]
            c = sum(channels[i + 1] for i in idx) // s.get_int("groups", 1)
        channels.append(c)
    header = np.array([0, 2, 5], "<i4").tobytes() + np.array([32013312], "<i8").tobytes()
    return header + np.concatenate(out).astype("<f4").tobytes()


@pytest.mark.parametrize("new_coords", [False, True], ids=["yolov4-style", "new_coords"])
def test_every_layer_kind_equals_opencvs_darknet_loader(new_coords, tmp_path):
    text = v4_style_cfg(new_coords)
    cfg, weights = tmp_path / "mini.cfg", tmp_path / "mini.weights"
    cfg.write_text(text)
    weights.write_bytes(seeded_weights(text))
    blob = np.random.default_rng(1).uniform(0, 1, (1, 3, 64, 96)).astype(np.float32)
    ours = run_onnx(darknet_to_onnx(cfg, weights), blob)
    version, ref = opencv_darknet(cfg, weights, blob, tmp_path)
    diff = compare_with_opencv(ours, ref, [(3, 8, 12), (3, 16, 24)], 96, 64)
    assert diff["box"] < TOL and diff["score"] < TOL and diff["class_same"], (version, diff)


# -- errors a person can act on ---------------------------------------------------------------------


def test_weights_of_another_network_are_refused_naming_both_files(assets, tmp_path):
    with pytest.raises(ConvertError, match=r"yolov3-tiny.weights.*does not belong to (yolov4-tiny.cfg|this .cfg)|"
                                           r"yolov3-tiny.weights: ends after"):
        darknet_to_onnx(assets.models["yolov4_tiny_cfg"], assets.models["yolov3_tiny_weights"])


def test_an_unsupported_layer_is_named_with_its_line(tmp_path):
    cfg = tmp_path / "r.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\n\n[reorg]\nstride=2\n")
    (tmp_path / "r.weights").write_bytes(np.zeros(5, "<i4").tobytes())
    with pytest.raises(ConvertError, match=r"r.cfg:5: \[reorg\] layers are not supported .* set onnx-file"):
        darknet_to_onnx(cfg, tmp_path / "r.weights")
