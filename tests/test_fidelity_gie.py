"""GIE scheduling and classifier metadata against the port of gstnvinfer.cpp / gstnvinfer_meta_utils.cpp
(tests/reference): which batches a primary GIE infers (``interval``), when a secondary classifier
infers or re-attaches its cached label (filters, reinfer interval, growth, history sweeps, end of
stream), and which classifier results are attached at all.

The models are real ONNX models with hand-computable outputs (tests/infer_models.py): a white-ish
uniform frame of value v gives the classifier softmax(logits * v / 255), so a cached result (inferred
on an earlier frame) is told apart from a fresh one by its confidence.
"""

import numpy as np
import pytest

from infer_models import classifier_model, detectnet_model, load
from reference import gstnvinfer as ref
from reference import nvdsinfer as ref_nvds
from runner.config import load_nvinfer
from runner.pipeline.batch import Batch, Objects
from runner.pipeline.infer import GieStage
from runner.pipeline.parsers.classifier import ClassifierContext, parse_softmax

LOGITS = [1.0, 3.0, 0.5, 2.0]
LABELS = "cat;dog;bird;fish\n"


def _batch(sources, frame_nums, values, objects=(), eos=(), size=128):
    """objects: (frame index, track id, gie id, class id, x1, y1, x2, y2)."""
    n = len(sources)
    frames = np.stack([np.full((size, size, 3), v, np.uint8) for v in values])
    o = np.array(objects, np.float64).reshape(-1, 8)
    objs = Objects.from_columns(frame=o[:, 0], track_id=o[:, 1], gie_id=o[:, 2], class_id=o[:, 3],
                                confidence=0.9, xyxy=o[:, 4:])
    return Batch(frames=frames, source_id=np.asarray(sources, np.int32), frame_num=np.asarray(frame_nums, np.int64),
                 pts=np.zeros(n, np.int64), ntp_ts=np.zeros(n, np.int64), source_size=np.full((n, 2), size, np.int32),
                 objects=objs, eos=tuple(eos))


# -- interval: batches, not frames of a source ------------------------------------------------------

@pytest.fixture(scope="module")
def pgie(tmp_path_factory):
    d = tmp_path_factory.mktemp("pgie")
    detectnet_model(d / "det.onnx", [(0, 1, 1, 0.9, (10, 10, 40, 40))])

    def make(interval, batch_size):
        cfg = d / f"pgie_{interval}_{batch_size}.txt"
        cfg.write_text(f"[property]\nonnx-file=det.onnx\nnet-scale-factor=0.00392156862745098\nnum-detected-classes=2\n"
                       f"gie-unique-id=1\nbatch-size={batch_size}\ninterval={interval}\n")
        nvinfer = load_nvinfer(cfg)
        return GieStage(nvinfer, load(nvinfer, d / "engines"))
    return make


@pytest.mark.parametrize("interval, mux_batch, sources", [(1, 4, 2), (1, 1, 2), (2, 3, 2), (3, 2, 3)])
def test_interval_skips_whole_batches_as_process_full_frame(pgie, interval, mux_batch, sources):
    stage = pgie(interval, mux_batch)
    counter = ref.FullFrameInterval(interval)
    frame_of = [0] * sources
    per_source_inferred = np.zeros(sources, int)
    for b in range(12):
        src = [(b * mux_batch + k) % sources for k in range(mux_batch)]  # round-robin streammux
        nums = []
        for s in src:
            nums.append(frame_of[s])
            frame_of[s] += 1
        batch = stage.process(_batch(src, nums, [255] * mux_batch))
        expected = np.zeros(mux_batch, bool)
        expected[counter.process_full_frame(mux_batch)] = True
        assert batch.inferred[1].tolist() == expected.tolist(), f"batch {b}"
        assert sorted(set(batch.objects.frame.tolist())) == np.flatnonzero(expected).tolist()
        np.add.at(per_source_inferred, np.asarray(src)[expected], 1)
    if (interval, mux_batch, sources) == (1, 1, 2):
        assert per_source_inferred.tolist() == [12 // 2, 0]  # DeepStream never infers source 1


# -- secondary classifier: inference, cached labels, history -----------------------------------------

@pytest.fixture
def sgie(tmp_path):
    classifier_model(tmp_path / "cls.onnx", LOGITS)
    (tmp_path / "labels.txt").write_text(LABELS)

    def make(extra=""):
        cfg = tmp_path / "sgie.txt"
        cfg.write_text("[property]\nonnx-file=cls.onnx\nnet-scale-factor=0.00392156862745098\nnetwork-type=1\n"
                       "process-mode=2\ngie-unique-id=2\noperate-on-gie-id=1\nbatch-size=8\n"
                       f"classifier-threshold=0.0\nlabelfile-path=labels.txt\n{extra}\n")
        nvinfer = load_nvinfer(cfg)
        return GieStage(nvinfer, load(nvinfer, tmp_path / "engines"))
    return make


def _softmax(v):
    e = np.exp(np.asarray(LOGITS, np.float64) * v / 255.0)
    return (e / e.sum()).astype(np.float32)


def _reference_run(element, schedule):
    labels = ref_nvds.parse_labels_file(LABELS)
    out = []
    for sources, nums, values, objects, eos in schedule:
        frames, rows = [], []
        for i, (s, n) in enumerate(zip(sources, nums)):
            mine = [(r, o) for r, o in enumerate(objects) if o[0] == i]
            rows += [r for r, _ in mine]
            frames.append((s, n, [(ref.Obj(int(o[1]), int(o[2]), int(o[3]), o[4], o[5], o[6] - o[4], o[7] - o[5]),
                                   values[i]) for _, o in mine]))
        attached = ref.process_objects(
            element, [(s, n, [ob for ob, _ in objs]) for s, n, objs in frames],
            classify=lambda ob, _frames=frames: ref_nvds.parse_attributes_from_softmax_layers(
                [_softmax(next(v for s, n, objs in _frames for o, v in objs if o is ob))], 0.0, labels))
        flat = [a for per in attached for a in per]
        out.append({(r, a[0][0]["attributeValue"]): round(float(a[0][0]["attributeConfidence"]), 4)
                    for r, a in zip(rows, flat) if a is not None})
        for s in eos:
            ref.stream_eos(element, s)
    return out


def _dsrun_run(stage, schedule):
    out = []
    for sources, nums, values, objects, eos in schedule:
        c = stage.process(_batch(sources, nums, values, objects, eos)).classifications
        if eos:
            stage.on_eos(eos)  # as the graph calls it after process (runner/pipeline/graph.py)
        out.append({(int(o), int(k)): round(float(p), 4) for o, k, p in zip(c.obj, c.class_id, c.confidence)})
    return out


def _schedule(n_frames, objects_at, value_at=lambda f: 150 + f % 97, eos_at=()):
    """One source, one frame per batch; ``objects_at(f)`` → objects of frame f (frame index 0)."""
    return [([0], [f], [value_at(f)], objects_at(f), (0,) if f in eos_at else ()) for f in range(n_frames)]


def test_cached_label_is_attached_to_tracked_objects_the_size_filter_rejects(sgie):
    stage = sgie("input-object-min-width=32")
    # track 7 is 40 px wide on frames 0-2, then 20 px (below input-object-min-width) on frames 3-7
    sched = _schedule(8, lambda f: [(0, 7, 1, 0, 10, 10, 50 if f < 3 else 30, 50),
                                    (0, 9, 1, 0, 60, 60, 80, 100)])  # track 9 never passes the filter
    got = _dsrun_run(stage, sched)
    want = _reference_run(ref.Element(operate_on_gie_id=1, min_w=32), sched)
    assert got == want
    assert all(len(g) == 1 for g in got)  # track 7 labelled on every frame, track 9 never


def test_cached_label_on_objects_of_a_filtered_class_and_reinfer_interval(sgie):
    stage = sgie("operate-on-class-ids=0\nsecondary-reinfer-interval=2")
    sched = _schedule(10, lambda f: [(0, 4, 1, 0 if f % 4 else 1, 10, 10, 60, 60),  # class 1 on frames 0, 4, 8
                                     (0, 5, 1, 0, 64, 10, 100, 40 + 4 * f)])  # growing → re-inferred
    got = _dsrun_run(stage, sched)
    want = _reference_run(ref.Element(operate_on_gie_id=1, operate_on_class_ids=[True, False],
                                      secondary_reinfer_interval=2), sched)
    assert got == want


def test_cached_labels_then_fresh_ones_follow_earlier_results_in_the_batch(sgie):
    """The batch's classifier table, row by row (worked out by hand): what an earlier GIE attached
    stays first; then this GIE's cached results (track 7, labelled on frame 0 at pixel value 150),
    then the objects it infers now (track 9, new on frame 1 at value 200). Labels and confidences
    are the softmax of LOGITS at each value, computed here."""
    from runner.pipeline.batch import Classifications

    stage = sgie()
    stage.process(_batch([0], [0], [150], [(0, 7, 1, 0, 10, 10, 60, 60)]))
    b = _batch([0], [1], [200], [(0, 9, 1, 0, 64, 10, 110, 60), (0, 7, 1, 0, 10, 10, 60, 60)])
    b.classifications = Classifications.from_columns(obj=[1], frame=[0], gie_id=5, class_id=0, label="earlier")
    c = stage.process(b).classifications
    assert c.obj.tolist() == [1, 1, 0] and c.gie_id.tolist() == [5, 2, 2] and c.frame.tolist() == [0, 0, 0]
    assert c.label.tolist() == ["earlier", "dog", "dog"] and c.class_id.tolist() == [0, 1, 1]
    assert c.confidence[1:].tolist() == pytest.approx([_softmax(150)[1], _softmax(200)[1]], abs=1e-5)


def test_history_is_swept_every_1800_batches_and_cleared_at_end_of_stream(sgie):
    stage = sgie()
    seen = {0, 300, 2000, 2001, 2002, 2003}  # track 3 away 300 frames: still cached; swept at batch 1801

    def objects(f):
        return [(0, 3, 1, 0, 10, 10, 60, 60)] if f in seen else []
    sched = _schedule(2004, objects, eos_at={2001})  # end of stream after frame 2001: history cleared
    got = _dsrun_run(stage, sched)
    want = _reference_run(ref.Element(operate_on_gie_id=1), sched)
    assert got == want
    conf = {f: next(iter(got[f].values())) for f in sorted(seen)}
    assert conf[300] == conf[0]  # cached (frame 0's brightness), not re-inferred
    assert conf[2000] != conf[300] and conf[2002] != conf[2001]  # re-inferred after the sweep / the EOS


def test_sgie_crop_width_rounds_rect_width_down_to_even(sgie):
    from runner.pipeline.preprocess import _crop_geometry
    rng = np.random.default_rng(5)
    left = rng.uniform(0, 500, 400).astype(np.float32)
    top = rng.uniform(0, 300, 400).astype(np.float32)
    width = rng.integers(2, 200, 400).astype(np.float32)  # whole-number widths, as trackers often give
    height = rng.integers(2, 200, 400).astype(np.float32)
    objs = Objects.from_columns(frame=np.zeros(400), xyxy=np.stack([left, top, left + width, top + height], 1))
    got = np.stack(_crop_geometry(objs.xyxy, np.full(400, 1280), np.full(400, 720)), 1)
    expected = np.array([ref.get_converted_buffer_crop(*r) for r in zip(left, top, width, height)])
    np.testing.assert_array_equal(got, expected)


# -- which classifier results are attached -----------------------------------------------------------

@pytest.mark.parametrize("shape", ["nc", "n1c"])
def test_classifier_attaches_nothing_without_a_label_and_reads_dims_d0_classes(shape):
    rng = np.random.default_rng(11)
    n = 300
    heads = [rng.dirichlet(np.ones(5), n).astype(np.float32), rng.dirichlet(np.ones(3), n).astype(np.float32)]
    labels = [["a", "b", "c"], ["x", "y", "z"]]  # head 0 has no label for classes 3 and 4
    outputs = {f"h{i}": (h[:, None, :] if shape == "n1c" else h) for i, h in enumerate(heads)}
    got = parse_softmax(outputs, ClassifierContext(threshold=0.3, labels=labels))
    expected = []
    for i in range(n):
        layers = [outputs["h0"][i], outputs["h1"][i]]
        attrs, label = ref_nvds.parse_attributes_from_softmax_layers(layers, 0.3, labels)
        if ref.attach_metadata_classifier(attrs, label) is not None:
            expected += [(i, a["attributeIndex"], a["attributeValue"], a["attributeLabel"] or "") for a in attrs]
    assert len(expected) > 50
    assert list(zip(got.obj.tolist(), got.head.tolist(), got.class_id.tolist(), got.label.tolist())) == expected


def test_single_head_classifier_attaches_only_labelled_classes_as_the_reference():
    """One output layer (the common SGIE): the rows kept are the items whose best class above the
    threshold has a label, as parseAttributesFromSoftmaxLayers + attach_metadata_classifier keep them."""
    rng = np.random.default_rng(12)
    probs = rng.dirichlet(np.ones(5), 300).astype(np.float32)
    labels = [["a", "b", "c"]]  # no label for classes 3 and 4
    got = parse_softmax({"h0": probs}, ClassifierContext(threshold=0.3, labels=labels))
    expected = []
    for i in range(len(probs)):
        attrs, label = ref_nvds.parse_attributes_from_softmax_layers([probs[i]], 0.3, labels)
        if ref.attach_metadata_classifier(attrs, label) is not None:
            expected += [(i, a["attributeIndex"], a["attributeValue"], a["attributeLabel"],
                          round(float(a["attributeConfidence"]), 6)) for a in attrs]
    assert 50 < len(expected) < 300
    assert list(zip(got.obj.tolist(), got.head.tolist(), got.class_id.tolist(), got.label.tolist(),
                    np.round(got.confidence.astype(np.float64), 6).tolist())) == expected
