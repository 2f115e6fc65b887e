"""A DetectNet_v2-shaped model with known outputs, through the whole primary GIE: nvinfer's default
parser, every cluster-mode, the frame filter and interval skipping, against hand-computed boxes."""

import numpy as np
import pytest

from infer_models import detectnet_model, load
from runner.config import load_nvinfer
from runner.pipeline.batch import Batch
from runner.pipeline.infer import GieStage

TRIO = np.array([[10.5, 10.5, 40.8, 40.8], [11.5, 10.5, 41.8, 40.8], [10.5, 11.5, 40.8, 41.8]])
CELLS = [  # class, row, col, coverage, box in network pixels (64x64 network)
    (0, 1, 1, 0.9, TRIO[0]), (0, 1, 2, 0.8, TRIO[1]), (0, 2, 1, 0.7, TRIO[2]),
    (0, 3, 3, 0.6, (50, 50, 60, 60)),
    (1, 0, 0, 0.5, (0, 0, 20, 20)), (1, 0, 3, 0.1, (44, 0, 63, 20)),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("detectnet")
    detectnet_model(d / "detectnet.onnx", CELLS)
    return d


def _stage(model_dir, extra_property="", class_attrs="", interval=0):
    cfg = model_dir / f"pgie_{abs(hash(extra_property + class_attrs))}_{interval}.txt"
    cfg.write_text(f"""[property]
onnx-file=detectnet.onnx
net-scale-factor=0.00392156862745098
num-detected-classes=2
gie-unique-id=1
batch-size=4
interval={interval}
{extra_property}

[class-attrs-all]
pre-cluster-threshold=0.2
{class_attrs}
""")
    nvinfer = load_nvinfer(cfg)
    return GieStage(nvinfer, load(nvinfer, model_dir / "engines"), name="primary-gie")


def _batch(values, size=128, sources=None):
    frames = np.stack([np.full((size, size, 3), v, np.uint8) for v in values])
    n = len(values)
    return Batch(frames=frames, source_id=np.asarray(sources if sources is not None else range(n), np.int32),
                 frame_num=np.zeros(n, np.int64), pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                 source_size=np.full((n, 2), size, np.int32))


def _run(stage, values=(255,), **kw):
    return stage.process(_batch(values, **kw)).objects


def test_cluster_mode_none_keeps_every_cell_above_pre_cluster_threshold_scaled_to_the_frame(model_dir):
    objs = _run(_stage(model_dir, "cluster-mode=4"))
    assert objs.class_id.tolist() == [0, 0, 0, 0, 1] and (objs.gie_id == 1).all()
    np.testing.assert_allclose(objs.confidence, [0.9, 0.8, 0.7, 0.6, 0.5], atol=1e-6)
    np.testing.assert_allclose(objs.xyxy, 2 * np.vstack([TRIO, [[50, 50, 60, 60], [0, 0, 20, 20]]]), atol=1e-3)


def test_cluster_mode_nms_suppresses_overlapping_cells(model_dir):
    objs = _run(_stage(model_dir, "cluster-mode=2", "nms-iou-threshold=0.5"))
    np.testing.assert_allclose(objs.confidence, [0.9, 0.6, 0.5], atol=1e-6)
    np.testing.assert_allclose(objs.xyxy, [2 * TRIO[0], [100, 100, 120, 120], [0, 0, 40, 40]], atol=1e-3)


def test_cluster_mode_0_is_nms_with_topk_20_and_iou_half_in_stock_deepstream(model_dir):
    # NvDsInferContextImpl::initialize without WITH_OPENCV: the trio overlaps by IoU > 0.5 → one box
    objs = _run(_stage(model_dir, "cluster-mode=0", "eps=0.2\ngroup-threshold=1\nnms-iou-threshold=0.99"))
    np.testing.assert_allclose(objs.confidence, [0.9, 0.6, 0.5], atol=1e-6)


def test_opencv_build_cluster_mode_0_averages_the_trio_and_drops_singletons(model_dir):
    objs = _run(_stage(model_dir, "cluster-mode=0\ndsrun-opencv-clustering=1", "eps=0.2\ngroup-threshold=1"))
    # integer x,y,w,h (10,10,30,30) (11,10,30,30) (10,11,30,30) → mean (10.3,10.3,30,30) → (10,10,30,30)
    np.testing.assert_allclose(objs.xyxy, [[20, 20, 80, 80]])
    np.testing.assert_allclose(objs.confidence, [-0.1])


def test_cluster_mode_dbscan_merges_the_trio_weighted_by_coverage(model_dir):
    objs = _run(_stage(model_dir, "cluster-mode=1", "eps=0.3\nminBoxes=3"))
    expect = 2 * np.average(TRIO, axis=0, weights=[0.9, 0.8, 0.7])  # coverage-weighted mean, in frame pixels
    np.testing.assert_allclose(objs.xyxy, [expect], atol=1e-3)
    np.testing.assert_allclose(objs.confidence, [0.9], atol=1e-6)


def test_cluster_mode_hybrid_drops_dbscan_noise_then_applies_nms(model_dir):
    objs = _run(_stage(model_dir, "cluster-mode=3", "eps=0.3\nminBoxes=3\nnms-iou-threshold=0.5"))
    np.testing.assert_allclose(objs.xyxy, [2 * TRIO[0]], atol=1e-3)


def test_detected_min_size_and_roi_offsets_filter_in_frame_pixels(model_dir):
    objs = _run(_stage(model_dir, "cluster-mode=4", "detected-min-w=30\nroi-top-offset=10"))
    # the lone 20-pixel-wide box fails min-w 30; the class 1 box (40 wide) starts at y=0 < roi-top-offset
    np.testing.assert_allclose(objs.confidence, [0.9, 0.8, 0.7], atol=1e-6)


def test_black_frames_give_no_objects_and_objects_land_on_their_own_frame(model_dir):
    objs = _run(_stage(model_dir, "cluster-mode=2", "nms-iou-threshold=0.5"), values=(0, 255, 0))
    assert objs.frame.tolist() == [1, 1, 1]


def test_interval_2_infers_each_sources_first_frame_then_skips_two(model_dir):
    stage = _stage(model_dir, "cluster-mode=2", "nms-iou-threshold=0.5", interval=2)
    inferred, counts = [], []
    for _ in range(6):
        batch = stage.process(_batch((255, 255), sources=[0, 1]))
        inferred.append(batch.inferred[1].tolist())
        counts.append(np.bincount(batch.objects.frame, minlength=2).tolist())
    assert inferred == [[True, True], [False, False], [False, False]] * 2
    assert counts == [[3, 3], [0, 0], [0, 0]] * 2
