"""The torch backend runs the same ONNX graphs as ONNX Runtime, with the same numbers."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

torch = pytest.importorskip("torch", reason="the torch backend needs PyTorch (.ci/run installs it)")

from runner.engine.base import EngineError, TensorSpec  # noqa: E402
from runner.engine.onnx_torch import OnnxModule, UnsupportedOperator  # noqa: E402
from runner.engine import torch_backend  # noqa: E402

# (asset name, input shape for dynamic models)
REAL_MODELS = [
    ("mtcnn_pnet", (2, 48, 48, 3)),
    ("mtcnn_rnet", (2, 24, 24, 3)),
    ("mtcnn_onet", (2, 48, 48, 3)),
    ("ch_ppocr_mobile_v2.0_cls_infer", (2, 3, 48, 192)),
    ("ch_PP-OCRv4_det_infer", (1, 3, 320, 320)),
    ("ch_PP-OCRv4_rec_infer", (2, 3, 48, 320)),
]


def _model_path(assets, name):
    path = assets.root / "models" / f"{name}.onnx"
    assert path.is_file(), path
    return path


@pytest.mark.parametrize("name, shape", REAL_MODELS)
def test_onnx_graph_as_torch_module_matches_onnxruntime(assets, name, shape):
    path = _model_path(assets, name)
    x = np.random.default_rng(7).random(shape, dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        got = OnnxModule(onnx.load(path)).eval()(torch.from_numpy(x))
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert g.shape == e.shape
        np.testing.assert_allclose(g.numpy(), e, atol=1e-4, rtol=1e-3)


def test_unsupported_operator_is_named_before_anything_runs():
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"])
    graph = helper.make_graph(
        [node], "nms",
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 10, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 10])],
        [helper.make_tensor_value_info("sel", TensorProto.INT64, [None, 3])])
    with pytest.raises(UnsupportedOperator, match="NonMaxSuppression"):
        OnnxModule(helper.make_model(graph))
    with pytest.raises(EngineError, match="dsrun-backend=onnxruntime"):
        torch_backend.export_program(helper.make_model(graph), (TensorSpec("boxes", (10, 4), np.dtype("float32")),),
                            max_batch=1, precision="fp32", gpu_id=0, out_path=None)


@pytest.mark.slow
def test_torch_engine_is_built_once_cached_and_serves_every_batch_size(assets, tmp_path):
    from runner.engine import EngineSpec, load_engine

    path = _model_path(assets, "mtcnn_onet")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    spec = EngineSpec(onnx_file=path, batch_size=16, backend="torch")
    first = load_engine(spec, engine_dir=tmp_path)
    second = load_engine(spec, engine_dir=tmp_path)
    assert (first.origin, second.origin) == ("built", "cache")
    assert second.backend == "torch" and second.path.suffix == ".pt2"
    assert any(torch_backend.inductor_cache_dir().iterdir())  # compiled kernels kept for the next start
    assert [o.name for o in second.outputs] == [o.name for o in session.get_outputs()]
    name = second.inputs[0].name
    for n in (1, 5, 16):  # one package serves every batch size up to the maximum
        x = np.random.default_rng(n).random((n, 48, 48, 3), dtype=np.float32)
        expected = session.run(None, {name: x})
        got = second.infer({name: x})
        for spec_out, e in zip(second.outputs, expected):
            np.testing.assert_allclose(got[spec_out.name], e, atol=1e-4, rtol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU: the GPU machine runs this")
def test_cuda_graphs_give_the_uncaptured_engines_outputs_for_every_batch_size(tmp_path, monkeypatch):
    from runner.assets.catalog import SPECS
    from runner.engine import EngineSpec, load_engine

    recipe = next(s for s in SPECS if s.name == "classifier_small")
    path = tmp_path / "classifier.onnx"
    recipe.build(tmp_path, path)  # the generated ResNet-18-class classifier, seeded
    spec = EngineSpec(onnx_file=path, batch_size=16, backend="torch")
    # full-precision convolutions, so every batch size computes the same numbers (TF32 does not)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    graphed = load_engine(spec, engine_dir=tmp_path / "e")
    monkeypatch.setenv("DSRUN_CUDA_GRAPHS", "0")
    plain = load_engine(spec, engine_dir=tmp_path / "e")
    assert graphed._graphs.buckets == [1, 2, 4, 8, 16] and plain._graphs is None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name, shape = graphed.inputs[0].name, graphed.inputs[0].shape
    rng = np.random.default_rng(0)
    results = []
    for n in (1, 3, 16, 20):  # a partly filled bucket, a full one, more rows than the engine's batch
        x = rng.random((n, *shape), dtype=np.float32)
        on_gpu = torch.from_numpy(x).cuda()
        parts = [plain.infer_device({name: on_gpu[i:i + 16]}) for i in range(0, n, 16)]  # its batch at most
        uncaptured = {k: torch.cat([part[k] for part in parts]) for k in parts[0]}
        results.append((graphed.infer_device({name: on_gpu}), uncaptured, session.run(None, {name: x})))
    for got, uncaptured, cpu in results:  # earlier outputs are copies: later replays did not overwrite them
        for out, reference in zip(graphed.outputs, cpu):
            g, u = got[out.name].cpu().numpy(), uncaptured[out.name].cpu().numpy()
            print(out.name, g.shape, "graph vs uncaptured", np.abs(g - u).max(), "vs onnxruntime",
                  np.abs(g - reference).max())
            np.testing.assert_allclose(g, u, atol=1e-4)
            np.testing.assert_allclose(g, reference, atol=1e-3)
