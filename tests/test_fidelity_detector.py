"""A primary detector against the port of DeepStream's C (tests/reference): the real DetectNet_v2-shaped
model on real video frames, its raw outputs (output-tensor-meta) fed to nvinfer's parseBoundingBox,
NvDsInferContextImpl::initialize, fillDetectionOutput and attach_metadata_detector; dsrun's objects
must be the ones DeepStream attaches — same classes, confidences, order and boxes.

Hand-built tensors reach what real frames rarely show: boxes straddling the network's edges.
"""

import dataclasses

import av
import numpy as np
import pytest

from infer_models import load
from reference import gstnvinfer as ref_gst
from reference import nvdsinfer as ref
from runner.config import load_nvinfer
from runner.pipeline.batch import Batch
from runner.pipeline.cluster import ClassParams
from runner.pipeline.infer import GieStage
from runner.pipeline.parsers import NetworkInfo
from runner.pipeline.parsers.detectnet_v2 import parse_detectnet_v2

N_FRAMES = 12


@pytest.fixture(scope="module")
def frames(assets):
    with av.open(str(assets.videos["bikes"])) as c:
        return np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(N_FRAMES), c.decode(video=0))])


def _stage(tmp_path, assets, prop="", attrs=""):
    cfg = tmp_path / "pgie.txt"
    cfg.write_text(f"""[property]
onnx-file={assets.models['detectnet_small']}
net-scale-factor=0.00392156862745098
batch-size=4
num-detected-classes=4
gie-unique-id=1
output-tensor-meta=1
{prop}
[class-attrs-all]
pre-cluster-threshold=0.2
{attrs}
""")
    nvinfer = load_nvinfer(cfg)
    return GieStage(nvinfer, load(nvinfer, tmp_path / "engines"), name="primary-gie")


def _run(stage, frames):
    n = len(frames)
    batch = Batch(frames=frames, source_id=np.zeros(n, np.int32), frame_num=np.arange(n),
                  pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                  source_size=np.tile([frames.shape[2], frames.shape[1]], (n, 1)).astype(np.int32))
    return stage.process(batch)


def _reference(batch, net_w, net_h, cluster_mode, per_class, filt, crop):
    """What nvinfer attaches for each frame, from the raw outputs dsrun saw."""
    tensors = batch.tensors[1]
    cov = next(v for k, v in tensors.items() if "cov" in k)
    bbox = next(v for k, v in tensors.items() if "bbox" in k)
    frame_h, frame_w = batch.frames.shape[1:3]
    params = [dict(p) for p in per_class]
    mode = ref.initialize_cluster_params(cluster_mode, 0, params)
    out = []
    for i in range(len(batch)):
        objs = ref.parse_bounding_box(cov[i], bbox[i], net_w, net_h, [p["preClusterThreshold"] for p in params])
        clustered = ref.fill_detection_output(objs, mode, params)
        inputs = [{"classIndex": o["classId"], "confidence": o["detectionConfidence"], "left": o["left"],
                   "top": o["top"], "width": o["width"], "height": o["height"]} for o in clustered]
        attached = ref_gst.attach_metadata_detector(inputs, frame_w, frame_h, filt, crop,
                                                    scale_x=net_w / frame_w, scale_y=net_h / frame_h)
        out += [(i, a["classIndex"], a["confidence"], a["left"], a["top"], a["left"] + a["width"],
                 a["top"] + a["height"]) for a in attached]
    return np.array(out, np.float64).reshape(-1, 7)


def _table(objs):
    return np.column_stack([objs.frame, objs.class_id, objs.confidence, objs.xyxy]).astype(np.float64)


def _per_class(pre=0.2, topk=-1, iou=0.3, post=0.0):
    return [{"preClusterThreshold": pre, "postClusterThreshold": post, "topK": topk, "nmsIOUThreshold": iou}
            for _ in range(4)]


def _filters(top=0, bottom=0, min_w=0, min_h=0):
    return [{"detectionMinWidth": min_w, "detectionMinHeight": min_h, "detectionMaxWidth": 0,
             "detectionMaxHeight": 0, "roiTopOffset": top, "roiBottomOffset": bottom} for _ in range(4)]


def _assert_same(got, expected):
    assert len(expected) > 0
    assert got.shape == expected.shape, f"dsrun {len(got)} objects, DeepStream {len(expected)}"
    np.testing.assert_array_equal(got[:, :2], expected[:, :2])
    np.testing.assert_allclose(got[:, 2], expected[:, 2], rtol=1e-6)
    np.testing.assert_allclose(got[:, 3:], expected[:, 3:], atol=2e-3)


def test_default_cluster_mode_runs_nms_topk_20_iou_half_as_stock_deepstream(tmp_path, assets, frames):
    stage = _stage(tmp_path, assets)  # no cluster-mode: 0, which stock nvdsinfer (WITH_OPENCV=0) runs as NMS
    batch = _run(stage, frames)
    expected = _reference(batch, stage.net.width, stage.net.height, 0, _per_class(), _filters(), False)
    _assert_same(_table(batch.objects), expected)
    assert (np.bincount(batch.objects.frame.astype(int) * 4 + batch.objects.class_id) <= 20).all()
    assert (batch.objects.confidence > 0).all()  # no groupRectangles -0.1 confidences


def test_one_object_seen_by_five_cells_is_one_box_at_its_best_coverage(tmp_path):
    from infer_models import detectnet_model
    box = (10.0, 10.0, 40.0, 40.0)
    cells = [(0, r, c, conf, box) for (r, c), conf in zip([(0, 0), (0, 1), (1, 0), (1, 1), (2, 1)],
                                                          [0.6, 0.9, 0.7, 0.8, 0.5])]
    detectnet_model(tmp_path / "detectnet.onnx", cells)
    (tmp_path / "pgie.txt").write_text("[property]\nonnx-file=detectnet.onnx\nnet-scale-factor=0.00392156862745098\n"
                                       "num-detected-classes=2\ngie-unique-id=1\n")
    nvinfer = load_nvinfer(tmp_path / "pgie.txt")
    stage = GieStage(nvinfer, load(nvinfer, tmp_path / "engines"))
    frames = np.full((1, 64, 64, 3), 255, np.uint8)
    objs = _run(stage, frames).objects
    np.testing.assert_allclose(objs.confidence, [0.9], rtol=1e-6)
    np.testing.assert_allclose(objs.xyxy, [box], atol=1e-3)


@pytest.mark.parametrize("crop", [0, 1])
def test_roi_offsets_drop_or_crop_boxes_as_attach_metadata_detector(tmp_path, assets, frames, crop):
    stage = _stage(tmp_path, assets, f"cluster-mode=4\ncrop-objects-to-roi-boundary={crop}",
                   "roi-top-offset=60\nroi-bottom-offset=40\ndetected-min-w=8\ntopk=40")
    batch = _run(stage, frames)
    expected = _reference(batch, stage.net.width, stage.net.height, 4, _per_class(topk=40),
                          _filters(top=60, bottom=40, min_w=8), bool(crop))
    _assert_same(_table(batch.objects), expected)
    if crop:  # boxes starting above the ROI were moved down keeping their height, then cut at its bottom
        assert (batch.objects.xyxy[:, 1] >= 60).all() and (batch.objects.xyxy[:, 3] <= 272 - 40).all()


def test_detectnet_boxes_at_the_network_edges_clip_as_parse_bounding_box():
    rng = np.random.default_rng(7)
    net_w, net_h, gw, gh = 64, 48, 4, 3
    cov = rng.uniform(0, 1, (3, 2, gh, gw)).astype(np.float32)
    bbox = np.zeros((3, 8, gh, gw), np.float32)
    cx = (np.arange(gw) * 16 + 0.5) / 35
    cy = (np.arange(gh) * 16 + 0.5) / 35
    # decoded corners spread over [-8, size + 8], with many just inside (size - 1, size) and inverted boxes
    x1 = rng.choice([-5.0, 0.0, 30.0, 63.2, 63.7, 64.0, 70.0], (3, 2, gh, gw))
    x2 = rng.choice([-2.0, 10.0, 63.5, 63.99, 64.0, 66.0], (3, 2, gh, gw))
    y1 = rng.choice([-3.0, 5.0, 47.3, 47.6, 48.0, 50.0], (3, 2, gh, gw))
    y2 = rng.choice([-1.0, 20.0, 47.5, 47.9, 48.0, 55.0], (3, 2, gh, gw))
    bbox[:, 0::4] = cx - x1 / 35
    bbox[:, 1::4] = cy[:, None] - y1 / 35
    bbox[:, 2::4] = x2 / 35 - cx
    bbox[:, 3::4] = y2 / 35 - cy[:, None]
    thresholds = [0.3, 0.5]
    params = dataclasses.replace(ClassParams.uniform(2), pre_cluster_threshold=np.array(thresholds))
    got = parse_detectnet_v2({"output_cov/Sigmoid": cov, "output_bbox/BiasAdd": bbox}, NetworkInfo(net_w, net_h),
                             params)
    expected = [(i, o["classId"], o["detectionConfidence"], o["left"], o["top"], o["left"] + o["width"],
                 o["top"] + o["height"])
                for i in range(3) for o in ref.parse_bounding_box(cov[i], bbox[i], net_w, net_h, thresholds)]
    expected = np.array(expected, np.float64)
    table = _table(got)
    assert ((expected[:, 3] > net_w - 1) & (expected[:, 3] < net_w)).any()  # the case that used to differ
    assert (expected[:, 5] == expected[:, 3]).any()  # zero-width boxes stay
    _assert_same(table, expected)


def test_dsrun_check_says_cluster_mode_0_runs_as_nms(tmp_path, assets):
    import json
    import subprocess
    import sys
    cfg = tmp_path / "pgie.txt"
    cfg.write_text(f"[property]\nonnx-file={assets.models['detectnet_small']}\nnum-detected-classes=4\n")
    out = subprocess.run([sys.executable, "-m", "runner", "check", str(cfg)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "cluster-mode=0 runs as NMS with topk 20 and nms-iou-threshold 0.5" in out.stdout
    cfg.write_text(cfg.read_text() + "dsrun-opencv-clustering=1\n")
    out = subprocess.run([sys.executable, "-m", "runner", "check", "--json", str(cfg)], capture_output=True,
                         text=True, timeout=120)
    assert "OpenCV groupRectangles" in json.loads(out.stdout)["configs"][0]["pipeline"]["nvinfer"]["clustering"]
