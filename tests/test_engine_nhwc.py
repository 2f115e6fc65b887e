"""An NHWC model (network-input-order=1) with dynamic height/width: DeepStream's infer-dims is C;H;W
whatever the order, so the engine and the pre-processing both read it as C;H;W and agree."""

import numpy as np

from engine_support import video_frames
from runner.config import load_nvinfer
from runner.engine import EngineSpec, load_engine
from runner.engine.progress import Progress


def test_nhwc_pnet_with_chw_infer_dims_builds_a_48x48x3_engine_equal_to_onnxruntime(assets, tmp_path):
    import onnxruntime as ort

    from runner.pipeline.preprocess import PreprocessSpec

    model = assets.models["mtcnn_pnet"]
    cfg = tmp_path / "pnet.txt"
    cfg.write_text(f"[property]\nonnx-file={model}\nnetwork-input-order=1\ninfer-dims=3;48;48\n"
                   "batch-size=4\nnet-scale-factor=0.0078125\noffsets=127.5;127.5;127.5\n")
    nvinfer = load_nvinfer(cfg)
    engine = load_engine(EngineSpec.from_nvinfer(nvinfer, provider="cpu"), tmp_path / "e", Progress())
    assert engine.inputs[0].shape == (48, 48, 3)  # the model's H, W, C — not 3;48;48 against ?;?;3
    pre = PreprocessSpec.from_nvinfer(nvinfer, (None, *engine.inputs[0].shape))
    assert pre.input_shape == engine.inputs[0].shape and (pre.width, pre.height) == (48, 48)

    frames = video_frames(assets.videos["carphone"], 4, size=(48, 48))  # real frames, a face in view
    x = (np.stack(frames).astype(np.float32) - 127.5) / 128
    got = engine.infer(x)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"input_1": x})))
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == want[name].shape == (4, 19, 19, want[name].shape[-1])  # (48-12)/2+1 windows
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)
