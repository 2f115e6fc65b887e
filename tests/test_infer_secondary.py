"""Secondary GIEs on objects (process-mode 2), cascades built from a real app config, classifiers,
re-inference and async caching per track, segmentation and raw tensor output."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from infer_models import NET, classifier_model, detectnet_model, load, segmentation_model
from runner.config import load_app, load_nvinfer, load_tracker
from runner.pipeline.batch import Batch
from runner.pipeline.infer import GieStage, build_gie_stages
from runner.pipeline.tracker import TrackerStage

TRIO = np.array([10.5, 10.5, 40.8, 40.8])
CELLS = [(0, 1, 1, 0.9, TRIO), (1, 0, 0, 0.5, (0, 0, 20, 20))]  # → one class-0 and one class-1 object

PGIE = """[property]
onnx-file=detectnet.onnx
net-scale-factor=0.00392156862745098
num-detected-classes=2
gie-unique-id=1
batch-size=4
cluster-mode=2
"""
SGIE_DET = """[property]
onnx-file=detectnet.onnx
net-scale-factor=0.00392156862745098
num-detected-classes=2
gie-unique-id=2
process-mode=2
operate-on-gie-id=1
operate-on-class-ids=0
batch-size=8
cluster-mode=2
"""
SGIE_CLS = """[property]
onnx-file=colour.onnx
net-scale-factor=0.00392156862745098
labelfile-path=colour_labels.txt
network-type=1
gie-unique-id=3
process-mode=2
operate-on-gie-id={op}
classifier-threshold=0.5
batch-size=8
{extra}
"""


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("sgie")
    detectnet_model(d / "detectnet.onnx", CELLS)
    classifier_model(d / "colour.onnx", [0.0, 3.0, 0.0])
    (d / "colour_labels.txt").write_text("red;green;blue\n")
    (d / "pgie.txt").write_text(PGIE)
    (d / "sgie_det.txt").write_text(SGIE_DET)
    return d


class CountingEngine:
    """The real engine, counting the rows it is asked to infer."""

    def __init__(self, engine):
        self.real, self.rows = engine, 0

    def __getattr__(self, name):
        if name == "current":
            raise AttributeError(name)
        return getattr(self.real, name)

    def infer(self, feeds):
        self.rows += len(next(iter(feeds.values())))
        return self.real.infer(feeds)


def gie(d, name, text=None):
    if text is not None:
        (d / name).write_text(text)
    cfg = load_nvinfer(d / name)
    return GieStage(cfg, CountingEngine(load(cfg, d / "engines")), name=name)


def batch(n=1, value=255, size=128, frame_num=0):
    return Batch(frames=np.full((n, size, size, 3), value, np.uint8), source_id=np.arange(n, dtype=np.int32),
                 frame_num=np.full(n, frame_num, np.int64), pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64),
                 source_size=np.full((n, 2), size, np.int32))


def tracker(d):
    (d / "trk.yml").write_text("TargetManagement:\n  probationAge: 0\n  maxShadowTrackingAge: 5\n"
                               "StateEstimator:\n  stateEstimatorType: 2\n")
    return TrackerStage(NS(ll_config=load_tracker(d / "trk.yml"), ll_lib_file=None, operate_on_class_ids=()),
                        operate_on_gie_id=1)


def test_secondary_detector_finds_objects_inside_parents_in_frame_pixels(d):
    b = gie(d, "sgie_det.txt").process(gie(d, "pgie.txt").process(batch(2)))
    o = b.objects
    sec = np.flatnonzero(o.gie_id == 2)
    # one class-0 parent per frame; inside it the same model finds its class-0 and class-1 boxes
    assert len(sec) == 4 and (o.gie_id[o.parent[sec]] == 1).all() and (o.class_id[o.parent[sec]] == 0).all()
    assert (o.frame[sec] == o.frame[o.parent[sec]]).all()
    parent = 2 * TRIO  # (21, 21, 81.6, 81.6); crop left/top rounded up to 22, size 60 → ratio 64/60
    expect = TRIO * 60 / NET + np.array([parent[0], parent[1]] * 2)
    np.testing.assert_allclose(o.xyxy[sec[0]], expect, atol=1e-3)


def test_classifier_labels_tracked_objects_once_then_reuses_the_cached_result(d):
    pgie, trk = gie(d, "pgie.txt"), tracker(d)
    sgie = gie(d, "sgie_cls_sync.txt", SGIE_CLS.format(op=1, extra="secondary-reinfer-interval=2"))
    labels = []
    for f in range(6):
        b = sgie.process(trk.process(pgie.process(batch(1, frame_num=f))))
        c = b.classifications
        labels.append(sorted(zip(b.objects.class_id[c.obj].tolist(), c.label.tolist())))
    assert labels == [[(0, "green"), (1, "green")]] * 6  # attached every frame
    assert sgie.engine.rows == 2 * 2  # 2 objects inferred at frames 0 and 3 only (reinfer interval 2)
    np.testing.assert_allclose(b.classifications.confidence, np.exp(3) / (np.exp(3) + 2), rtol=1e-5)


def test_untracked_objects_are_classified_every_frame_and_async_mode_attaches_results_later(d):
    pgie = gie(d, "pgie.txt")
    sgie = gie(d, "sgie_cls_plain.txt", SGIE_CLS.format(op=1, extra="operate-on-class-ids=1"))
    for f in range(3):
        b = sgie.process(pgie.process(batch(1, frame_num=f)))
        assert b.classifications.label.tolist() == ["green"]
    assert sgie.engine.rows == 3
    trk = tracker(d)
    async_gie = gie(d, "sgie_cls_async.txt", SGIE_CLS.format(op=1, extra="classifier-async-mode=1"))
    first = async_gie.process(trk.process(pgie.process(batch(1, frame_num=0))))
    assert len(first.classifications) == 0  # result not ready when the frame leaves
    for fut in async_gie._pending:
        fut.result()
    later = async_gie.process(trk.process(pgie.process(batch(1, frame_num=1))))
    assert later.classifications.label.tolist() == ["green", "green"]
    async_gie.close()


def test_full_frame_classifier_reports_per_frame_results(d):
    cls = gie(d, "pgie_cls.txt", SGIE_CLS.format(op=-1, extra="").replace("process-mode=2", "process-mode=1"))
    b = cls.process(batch(2, value=255))
    assert b.classifications.obj.tolist() == [-1, -1] and b.classifications.frame.tolist() == [0, 1]
    dark = cls.process(batch(1, value=0))  # uniform 1/3 < classifier-threshold 0.5: nothing
    assert len(dark.classifications) == 0


def test_segmentation_writes_class_maps_and_other_networks_attach_raw_tensors(d):
    probs = np.zeros((2, 4, 4), np.float32)
    probs[0, :2] = 0.9
    probs[1, 2:] = 0.8
    segmentation_model(d / "seg.onnx", probs)
    seg = gie(d, "seg.txt", "[property]\nonnx-file=seg.onnx\nnet-scale-factor=0.00392156862745098\n"
                            "network-type=2\nsegmentation-threshold=0.85\ngie-unique-id=4\ninterval=1\n")
    b = seg.process(batch(2))
    np.testing.assert_array_equal(b.masks[4][0], [[0] * 4] * 2 + [[-1] * 4] * 2)
    skipped = seg.process(batch(2))
    assert (skipped.masks[4] == -1).all() and not skipped.inferred[4].any()
    raw = gie(d, "raw.txt", "[property]\nonnx-file=seg.onnx\nnet-scale-factor=0.00392156862745098\n"
                            "network-type=100\noutput-tensor-meta=1\ngie-unique-id=5\n")
    b = raw.process(batch(3))
    np.testing.assert_allclose(b.tensors[5]["softmax_1"][2], probs, rtol=1e-6)


def test_build_gie_stages_runs_a_three_level_cascade_from_an_app_config(d, repo_root):
    (d / "sgie_cls.txt").write_text(SGIE_CLS.format(op=2, extra=""))
    video = repo_root / "assets" / "videos" / "bikes.mp4"
    (d / "app.txt").write_text(f"""[application]
enable-perf-measurement=0

[streammux]
width=128
height=128
batch-size=2

[source0]
enable=1
type=3
uri=file://{video}

[primary-gie]
enable=1
config-file=pgie.txt

[secondary-gie0]
enable=1
gie-unique-id=2
operate-on-gie-id=1
config-file=sgie_det.txt

[secondary-gie1]
enable=1
gie-unique-id=3
operate-on-gie-id=2
config-file=sgie_cls.txt

[sink0]
enable=1
type=1
""")
    app = load_app(d / "app.txt")
    stages = build_gie_stages(app, lambda g, name: load(g.nvinfer, d / "engines"))
    assert [s.name for s in stages] == ["primary-gie", "secondary-gie0", "secondary-gie1"]
    assert [s.process_mode for s in stages] == [1, 2, 2]
    b = batch(2)
    for s in stages:
        b = s.process(b)
    o, c = b.objects, b.classifications
    assert np.bincount(o.gie_id).tolist() == [0, 4, 4]
    # every label belongs to a level-2 object whose parent is a level-1 object on the same frame
    assert len(c) == 4 and (o.gie_id[c.obj] == 2).all() and (o.gie_id[o.parent[c.obj]] == 1).all()
    assert (c.frame == o.frame[c.obj]).all() and set(c.label) == {"green"}
    snap = stages[0].counters.snapshot()
    assert snap["objects"] == {"1": {"0": 2, "1": 2}, "2": {"0": 2, "1": 2}} and snap["labels"] == {"3": {"green": 4}}
