"""Hot swap: a replaced engine or model is validated and swapped in between batches; a bad one is
refused and the old engine keeps serving. No batch goes without outputs."""

import os
import shutil

import numpy as np
import pytest

from engine_support import conv_net
from runner.engine import EngineSpec, load_engine
from runner.engine.hotswap import EngineHandle
from runner.engine.progress import Progress
from runner.pipeline.stats import RunStats


@pytest.fixture
def setup(tmp_path):
    a = conv_net(tmp_path / "det.onnx", seed=0)
    spec = EngineSpec(onnx_file=a, model_engine_file=tmp_path / "det.engine", batch_size=2)
    stats = RunStats()
    messages = []
    handle = EngineHandle(spec, name="primary-gie", engine_dir=tmp_path / "e", on_state=stats.set_engine,
                          on_message=messages.append, progress=Progress(), check_interval_s=0.0)
    x = np.random.default_rng(3).random((2, 3, 64, 64), dtype=np.float32)
    yield tmp_path, spec, handle, stats, messages, x
    handle.close()


def _engine_for(tmp_path, name, **kw):
    """A real engine file for another model with the same inputs/outputs."""
    model = conv_net(tmp_path / f"{name}.onnx", **kw)
    target = tmp_path / f"{name}.engine"
    load_engine(EngineSpec(onnx_file=model, model_engine_file=target, batch_size=2), tmp_path / "e",
                Progress()).close()
    return target


def _replace(src, dst):
    """How an operator uploads a file: write beside it, rename over it."""
    tmp = dst.with_name(dst.name + ".upload")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def test_replaced_engine_file_is_swapped_between_batches_and_no_batch_is_lost(setup):
    tmp_path, spec, handle, stats, messages, x = setup
    old_engine = handle.current
    before = old_engine.infer(x)["cov"]
    new_engine = _engine_for(tmp_path, "det_v2", seed=1)
    want_after = load_engine(EngineSpec(onnx_file=tmp_path / "det_v2.onnx", batch_size=2),
                             tmp_path / "e", Progress()).infer(x)["cov"]
    assert not np.allclose(before, want_after)

    outputs = []
    for i in range(40):
        if i == 3:
            _replace(new_engine, spec.model_engine_file)
        engine = handle.maybe_swap()
        outputs.append(engine.infer(x)["cov"])
        if handle.swaps:
            break
        handle.wait(30)
    assert handle.swaps == 1
    outputs.append(handle.maybe_swap().infer(x)["cov"])
    assert all(o.shape == before.shape for o in outputs)  # every batch was served
    np.testing.assert_allclose(outputs[0], before)
    np.testing.assert_allclose(outputs[-1], want_after, rtol=1e-5, atol=1e-6)
    assert stats.snapshot()["engines"] == {"primary-gie": "swapped"}
    assert any("swapped in" in m for m in messages)
    # a batch that started on the old engine (an async classifier's) still completes
    np.testing.assert_allclose(old_engine.infer(x)["cov"], before)


def test_corrupt_replacement_is_refused_and_the_old_engine_keeps_running(setup):
    tmp_path, spec, handle, stats, messages, x = setup
    before = handle.current.infer(x)["cov"]
    broken = tmp_path / "broken.engine"
    broken.write_bytes(spec.model_engine_file.read_bytes()[:500])  # a half-uploaded file
    _replace(broken, spec.model_engine_file)
    handle.maybe_swap()
    engine = handle.wait(30)
    assert handle.swaps == 0
    np.testing.assert_allclose(engine.infer(x)["cov"], before)
    assert stats.snapshot()["engines"] == {"primary-gie": "loaded"}
    assert len(messages) == 1 and "replacement refused" in messages[0]
    assert str(spec.model_engine_file) in messages[0] and "still running" in messages[0]
    handle.maybe_swap()  # the same bad file is not retried on every batch
    assert handle.wait(5) is engine and len(messages) == 1

    good = _engine_for(tmp_path, "det_v2", seed=1)  # the upload completes: now it is accepted
    _replace(good, spec.model_engine_file)
    handle.maybe_swap()
    handle.wait(30)
    assert handle.swaps == 1


def test_replacement_with_other_inputs_is_refused(setup):
    tmp_path, spec, handle, stats, messages, x = setup
    other = _engine_for(tmp_path, "small", size=32)
    _replace(other, spec.model_engine_file)
    handle.maybe_swap()
    handle.wait(30)
    assert handle.swaps == 0
    assert "its inputs (input float32[3x32x32]) differ from the running engine's " \
           "(input float32[3x64x64])" in messages[0]
    assert handle.current.infer(x)["cov"].shape == (2, 4, 16, 16)


def test_replaced_onnx_is_rebuilt_in_the_background_and_swapped(setup):
    tmp_path, spec, handle, stats, messages, x = setup
    old_engine_bytes = spec.model_engine_file.read_bytes()
    new_model = conv_net(tmp_path / "v2.onnx", seed=5)
    _replace(new_model, spec.onnx_file)
    handle.maybe_swap()
    handle.wait(60)
    assert handle.swaps == 1 and handle.current.origin == "built"
    assert any("built in" in m and "(hot swap)" in m for m in messages)  # no live bar mid-run
    want = load_engine(EngineSpec(onnx_file=new_model, batch_size=2), tmp_path / "e2",
                       Progress()).infer(x)["cov"]
    np.testing.assert_allclose(handle.current.infer(x)["cov"], want, rtol=1e-5, atol=1e-6)
    assert spec.model_engine_file.read_bytes() != old_engine_bytes  # rebuilt where configured
    handle.maybe_swap()
    handle.wait(5)
    assert handle.swaps == 1  # our own rewrite of model-engine-file is not a new replacement
