"""Real inputs for the outputs tests (OSD, tiler, sinks): decoded video frames and batches built on them.

Frames come from the prepared assets' ``bikes.mp4`` when ``runner.assets`` can provide it; otherwise
from a clip encoded here with PyAV (libx264) and decoded back — real encoded video either way.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from runner.pipeline.batch import Batch, Classifications, Objects


def _encode_clip(path: Path, n: int = 30, width: int = 320, height: int = 240) -> Path:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        yy, xx = np.mgrid[0:height, 0:width]
        for k in range(n):
            img = np.stack([(xx + 4 * k) % 256, (yy + 2 * k) % 256, (xx + yy) % 256], -1).astype(np.uint8)
            img = np.clip(img.astype(np.int16) + rng.integers(-8, 8, img.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@functools.lru_cache(maxsize=1)
def clip_path() -> Path:
    """A real H.264 clip: the assets' bikes.mp4 (640x272), else a PyAV-encoded one in tmp."""
    try:
        from runner.assets import ensure_assets

        path = ensure_assets().videos.get("bikes")
        if path is not None and Path(path).is_file():
            return Path(path)
    except Exception:  # assets not prepared here: fall back to encoding a clip
        pass
    return _encode_clip(Path(tempfile.mkdtemp(prefix="dsrun-outputs-")) / "clip.mp4")


def video_frames(n: int, width: int, height: int, start: int = 0) -> np.ndarray:
    """``n`` decoded RGB frames scaled to ``width × height`` (as streammux would), (n, H, W, 3)."""
    out = []
    with av.open(str(clip_path())) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k < start:
                continue
            img = frame.to_ndarray(format="rgb24")
            out.append(cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR))
            if len(out) == n:
                break
    assert len(out) == n, f"{clip_path()} has fewer than {start + n} frames"
    return np.stack(out)


def make_batch(frames: np.ndarray, source_ids, frame_nums, objects: Objects | None = None,
               classifications: Classifications | None = None) -> Batch:
    b = len(frames)
    h, w = frames.shape[1:3]
    return Batch(frames=frames, source_id=np.asarray(source_ids, np.int32),
                 frame_num=np.asarray(frame_nums, np.int64),
                 pts=np.asarray(frame_nums, np.int64) * 40_000_000,
                 ntp_ts=1_700_000_000_000_000_000 + np.asarray(frame_nums, np.int64) * 40_000_000,
                 source_size=np.tile(np.array([[w, h]], np.int32), (b, 1)),
                 objects=objects if objects is not None else Objects.empty(),
                 classifications=classifications if classifications is not None else Classifications.empty())


class Said(logging.Handler):
    """Records the "dsrun" logger's messages (caplog misses them once the CLI has set the logger not to
    propagate, which earlier tests in the same process do)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def dsrun_log():
    """The dsrun logger's own records, whatever its propagation (use as ``caplog``)."""
    logger = logging.getLogger("dsrun")
    handler, level = Said(), logger.level
    handler.set_level = lambda *a, **k: None
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
