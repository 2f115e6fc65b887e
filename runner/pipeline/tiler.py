"""The tiled display (``[tiled-display]``): every source's frame composited into one ``width × height`` image.

Placement is nvmultistreamtiler's: source id N goes to tile N in row-major order (row N // columns,
column N % columns); each tile is ``width // columns × height // rows``. A frame is scaled into its tile
keeping its aspect ratio and centred (black bars fill the rest). Like nvmultistreamtiler, a tile keeps
its source's last frame until that source sends a new one, so a slower source does not flicker. When
the grid has fewer tiles than sources, deepstream-app grows it (``columns = round(sqrt(n))`` when
``columns`` is 0, then ``rows = ceil(n / columns)``, create_pipeline in deepstream_app.c): so does
:func:`tile_grid`.

``enable``: 0 off (the stage is not built), 1 tile, 2 tile and keep per-source outputs (sinks with
``link-to-demux=1`` get their source's frame), 3 deepstream-app's identity passthrough.

The stage sets ``batch.tiled`` (H, W, 3) and ``batch.tile_transform`` (B, 4: x, y offset and x, y
scale, tiled px = frame px · scale + offset); it does not touch frames or object coordinates, so
metadata outputs downstream see streammux coordinates whether or not tiling is on.

>>> tile_grid(rows=1, columns=1, num_sources=4)   # columns kept, rows grown
(4, 1)
>>> tile_grid(rows=0, columns=0, num_sources=5)
(3, 2)
>>> tile_grid(rows=2, columns=3, num_sources=4)
(2, 3)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from runner.pipeline.batch import Batch

__all__ = ["TilerStage", "build_tiler_stage", "tile_grid", "tile_rects", "sink_frames", "DEFAULT_WIDTH", "DEFAULT_HEIGHT"]

# nvmultistreamtiler's defaults for unset width/height (gst-inspect-1.0 nvmultistreamtiler)
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1920, 1080


def tile_grid(rows: int, columns: int, num_sources: int) -> tuple[int, int]:
    """(rows, columns) after deepstream-app's re-adjustment when tiles < sources."""
    rows, columns = max(int(rows or 0), 0), max(int(columns or 0), 0)
    if rows * columns < num_sources:
        if columns == 0:
            columns = int(math.sqrt(num_sources) + 0.5)
        rows = int(math.ceil(num_sources / max(columns, 1)))
    return max(rows, 1), max(columns, 1)


def tile_rects(width: int, height: int, rows: int, columns: int) -> np.ndarray:
    """(rows·columns, 4) int tile rectangles x, y, w, h in row-major order (tile i = source i)."""
    tw, th = width // columns, height // rows
    i = np.arange(rows * columns)
    return np.stack([(i % columns) * tw, (i // columns) * th, np.full_like(i, tw), np.full_like(i, th)], 1)


def _fit(frame_w: int, frame_h: int, tile: np.ndarray) -> tuple[int, int, int, int, float, float]:
    """Aspect-preserving placement of a frame in a tile: x, y, w, h and the x, y scale."""
    tx, ty, tw, th = (int(v) for v in tile)
    s = min(tw / frame_w, th / frame_h)
    w, h = max(1, int(round(frame_w * s))), max(1, int(round(frame_h * s)))
    x, y = tx + (tw - w) // 2, ty + (th - h) // 2
    return x, y, w, h, w / frame_w, h / frame_h


class TilerStage:
    """Composites each batch into ``batch.tiled`` (see the module docstring).

    >>> from types import SimpleNamespace
    >>> from runner.pipeline.batch import Batch
    >>> cfg = SimpleNamespace(enable=1, rows=1, columns=2, width=8, height=2)
    >>> frames = np.stack([np.full((2, 4, 3), 10 * (k + 1), np.uint8) for k in range(2)])
    >>> b = Batch(frames=frames, source_id=np.array([1, 0]), frame_num=np.zeros(2, int),
    ...           pts=np.zeros(2, int), ntp_ts=np.zeros(2, int), source_size=np.array([[4, 2]] * 2))
    >>> TilerStage(cfg, num_sources=2).process(b).tiled[0, :, 0].tolist()  # source 0 left
    [20, 20, 20, 20, 10, 10, 10, 10]
    """

    name = "tiler"

    def __init__(self, tiled_display, *, num_sources: int) -> None:
        self.mode = int(getattr(tiled_display, "enable", 1))
        self.config = tiled_display
        self.width = int(getattr(tiled_display, "width", 0) or DEFAULT_WIDTH)
        self.height = int(getattr(tiled_display, "height", 0) or DEFAULT_HEIGHT)
        self.relayout(num_sources)

    def relayout(self, num_sources: int) -> None:
        """Lay the grid out again for ``num_sources`` tiles (sources added or removed at run time,
        runner.pipeline.live_sources); the output size stays, the tiles start black."""
        self.rows, self.columns = tile_grid(getattr(self.config, "rows", 1),
                                            getattr(self.config, "columns", 1), max(1, num_sources))
        self.tiles = tile_rects(self.width, self.height, self.rows, self.columns)
        self.canvas = np.zeros((self.height, self.width, 3), np.uint8)

    def process(self, batch: Batch) -> Batch:
        if self.mode not in (1, 2):  # 3: deepstream-app's identity element
            return batch
        frames = batch.host_frames()
        transform = np.full((len(batch), 4), np.nan, np.float32)
        for i, sid in enumerate(batch.source_id.tolist()):
            if not 0 <= sid < len(self.tiles):
                continue  # more sources than tiles: not shown (nvmultistreamtiler does the same)
            frame = frames[i]
            fh, fw = frame.shape[:2]
            x, y, w, h, sx, sy = _fit(fw, fh, self.tiles[sid])
            tx, ty, tw, th = (int(v) for v in self.tiles[sid])
            if (w, h) != (tw, th):
                self.canvas[ty:ty + th, tx:tx + tw] = 0
            self.canvas[y:y + h, x:x + w] = frame if (w, h) == (fw, fh) else \
                cv2.resize(np.ascontiguousarray(frame), (w, h), interpolation=cv2.INTER_LINEAR)
            transform[i] = (x, y, sx, sy)
        batch.tiled = self.canvas.copy()  # downstream (OSD, encoders) own this copy
        batch.tile_transform = transform
        return batch

    def close(self) -> None:
        pass


def build_tiler_stage(app) -> TilerStage | None:
    """The tiler stage of an AppConfig (None when ``[tiled-display] enable=0``). Goes before the OSD."""
    td = app.tiled_display
    if int(getattr(td, "enable", 0)) not in (1, 2):
        return None
    return TilerStage(td, num_sources=max(1, len(app.sources)))


def sink_frames(batch: Batch, *, source_id: int = 0, link_to_demux: bool = False) -> list[tuple[int, np.ndarray]]:
    """The images a video sink (file, RTSP, display) shows for this batch, as ``(source_id, image)``.

    deepstream-app's wiring: with a tiler, sinks get the tiled image (``source_id`` -1) — except
    ``link-to-demux=1`` sinks, which get their ``source-id``'s frames (tiler ``enable=2``); without a
    tiler each sink gets the frames of its ``source-id``.

    >>> from runner.pipeline.batch import Batch
    >>> b = Batch(frames=np.zeros((2, 2, 2, 3), np.uint8), source_id=np.array([0, 1]),
    ...           frame_num=np.zeros(2, int), pts=np.zeros(2, int), ntp_ts=np.zeros(2, int),
    ...           source_size=np.zeros((2, 2), int))
    >>> [sid for sid, _ in sink_frames(b, source_id=1)]
    [1]
    """
    if batch.tiled is not None and not link_to_demux:
        return [(-1, batch.tiled)]
    frames = batch.host_frames()
    return [(source_id, frames[i]) for i in np.flatnonzero(batch.source_id == source_id).tolist()]
