"""Generated models: real topologies, DeepStream/TAO/Ultralytics tensor names, dynamic batch, seeded."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from runner.assets import SPECS
from runner.assets.models import DetectorArgs, build_model


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, batch: int, height: int, width: int) -> dict[str, np.ndarray]:
    (inp,) = session.get_inputs()
    x = np.random.default_rng(7).random((batch, 3, height, width), dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {inp.name: x})))


def test_detectnet_small_has_tao_tensor_names_and_stride_16_grids(assets):
    session = _session(assets.models["detectnet_small"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape) == ("input_1:0", ["N", 3, 272, 480])
    for batch in (1, 3):
        out = _run(session, batch, 272, 480)
        assert out["output_cov/Sigmoid:0"].shape == (batch, 4, 17, 30)
        assert out["output_bbox/BiasAdd:0"].shape == (batch, 16, 17, 30)
    cov = out["output_cov/Sigmoid:0"]
    assert 0.0 <= cov.min() and cov.max() <= 1.0
    passing = (cov > 0.2).mean()  # a plausible handful of cells, not none and not all
    assert 0.001 < passing < 0.05


def test_yolo_small_outputs_xywh_and_class_scores_per_anchor(assets):
    session = _session(assets.models["yolo_small"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape) == ("images", ["N", 3, 320, 320])
    out = _run(session, 2, 320, 320)["output0"]
    assert out.shape == (2, 84, 40 * 40 + 20 * 20 + 10 * 10)
    cx, cy, w, h = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    assert (w > 0).all() and (h > 0).all()
    assert 0 < np.median(cx) < 320 and 0 < np.median(cy) < 320
    scores = out[:, 4:]
    assert 0.0 <= scores.min() and scores.max() <= 1.0
    assert 0 < (scores.max(axis=1) > 0.25).sum() < 0.05 * out.shape[2] * 2


def test_classifier_small_gives_softmax_over_classes(assets):
    session = _session(assets.models["classifier_small"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape) == ("input_1:0", ["N", 3, 224, 224])
    probs = _run(session, 4, 224, 224)["predictions/Softmax:0"]
    assert probs.shape == (4, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_same_seed_gives_same_bytes_and_another_seed_other_weights():
    args = DetectorArgs(depth=18, width=0.125, height=64, width_px=96, classes=2, seed=3)
    first = build_model("detectnet_v2", args).SerializeToString()
    assert build_model("detectnet_v2", args).SerializeToString() == first
    other = DetectorArgs(depth=18, width=0.125, height=64, width_px=96, classes=2, seed=4)
    assert build_model("detectnet_v2", other).SerializeToString() != first


def test_resnet34_has_more_blocks_than_resnet18():
    def convs(depth):
        args = DetectorArgs(depth=depth, width=0.125, height=64, width_px=64, classes=2)
        return sum(n.op_type == "Conv" for n in build_model("detectnet_v2", args).graph.node)

    # 8 vs 16 basic blocks of 2 convs, + conv1 + 4 projection shortcuts (every stage changes
    # stride or width: DetectNet_v2 has no max-pool) + 2 heads
    assert (convs(18), convs(34)) == (1 + 16 + 4 + 2, 1 + 32 + 4 + 2)


def _declared(model: onnx.ModelProto) -> dict[str, list]:
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*model.graph.input, *model.graph.output)}


FULL = {  # full-size benchmark models (ensure_assets(full=True)): declared I/O, checked without running
    "detectnet": {"input_1:0": ["N", 3, 544, 960], "output_cov/Sigmoid:0": ["N", 4, 34, 60],
                  "output_bbox/BiasAdd:0": ["N", 16, 34, 60]},
    "yolo": {"images": ["N", 3, 640, 640], "output0": ["N", 84, 8400]},
    "classifier": {"input_1:0": ["N", 3, 224, 224], "predictions/Softmax:0": ["N", 6]},
}


@pytest.mark.parametrize("name", sorted(FULL))
def test_full_size_recipe_declares_published_shapes(name):
    spec = next(s for s in SPECS if s.name == name)
    assert spec.full_only
    model = build_model(spec.source["arch"], DetectorArgs(**spec.source["args"]))
    assert _declared(model) == FULL[name]
