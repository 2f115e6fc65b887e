"""The one vocabulary every stage speaks: a batch of frames plus columnar metadata.

A :class:`Batch` is what streammux emits and what every later stage (inference, tracker, OSD, tiler,
sinks) receives, appends to and passes on. Metadata is held as parallel numpy columns — one row per
frame, one row per object, one row per classifier result — never as a Python object per detection.

Coordinates are pixels of the streammux output frame (``[streammux] width × height``), as DeepStream's
``NvDsObjectMeta.rect_params`` are; boxes are ``x1, y1, x2, y2`` float32.

>>> import numpy as np
>>> objs = Objects.from_columns(frame=[0, 0, 1], gie_id=1, class_id=[2, 0, 2],
...                             confidence=[0.9, 0.4, 0.8],
...                             xyxy=[[0, 0, 10, 10], [5, 5, 8, 9], [1, 1, 4, 4]])
>>> len(objs), objs[objs.class_id == 2].frame.tolist()
(3, [0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = ["Objects", "Classifications", "AnalyticsFrames", "AnalyticsObjects", "Overlay", "Batch"]


def _column(values: Any, n: int, dtype: Any, fill: Any) -> np.ndarray:
    if values is None:
        return np.full(n, fill, dtype=dtype)
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    return arr


def _names(cls) -> tuple[str, ...]:
    """The column names of a columnar dataclass, looked up once per class (``fields()`` builds a new
    tuple at every call, and these run several times per batch)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


_NAMES: dict[type, tuple[str, ...]] = {}


def _select(cls, table, index):
    """Rows ``index`` (bool mask, int array or slice) of a columnar dataclass; ``parent``-style
    row references are remapped by the caller."""
    return cls(*[getattr(table, name)[index] for name in _names(cls)])


def _concat(cls, tables) -> Any:
    """``tables`` (of one columnar dataclass) one after the other: one ``np.concatenate`` per column."""
    return cls(*[np.concatenate([getattr(t, name) for t in tables]) for name in _names(cls)])


@dataclass(slots=True)
class Objects:
    """Every object of a batch, one row each (DeepStream's NvDsObjectMeta, columnar).

    ``parent`` is the row of the object this one was found inside (an SGIE detector operating on a
    PGIE object), -1 for none. ``track_id`` is -1 until a tracker assigns one.
    """

    frame: np.ndarray  # (n,) int32 — index of the frame in the batch
    gie_id: np.ndarray  # (n,) int32 — gie-unique-id of the detector that produced it
    class_id: np.ndarray  # (n,) int32
    confidence: np.ndarray  # (n,) float32 — detector confidence
    xyxy: np.ndarray  # (n, 4) float32 — streammux-frame pixels
    track_id: np.ndarray  # (n,) int64 — -1 when untracked
    tracker_confidence: np.ndarray  # (n,) float32 — -1 when untracked
    parent: np.ndarray  # (n,) int32 — row of the parent object, -1 for none

    @classmethod
    def empty(cls) -> "Objects":
        return cls.from_columns(frame=np.zeros(0, np.int32))

    @classmethod
    def from_columns(cls, *, frame, gie_id=None, class_id=None, confidence=None, xyxy=None,
                     track_id=None, tracker_confidence=None, parent=None) -> "Objects":
        """Build from array-likes; scalars broadcast, omitted columns take their 'unset' value."""
        frame = np.asarray(frame, dtype=np.int32).reshape(-1)
        n = len(frame)
        boxes = np.zeros((n, 4), np.float32) if xyxy is None else np.asarray(xyxy, np.float32).reshape(n, 4)
        return cls(
            frame=frame,
            gie_id=_column(gie_id, n, np.int32, 0),
            class_id=_column(class_id, n, np.int32, 0),
            confidence=_column(confidence, n, np.float32, 0.0),
            xyxy=boxes,
            track_id=_column(track_id, n, np.int64, -1),
            tracker_confidence=_column(tracker_confidence, n, np.float32, -1.0),
            parent=_column(parent, n, np.int32, -1),
        )

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index) -> "Objects":
        """Rows selected by a bool mask or index array; parents that are dropped become -1."""
        rows = np.arange(len(self))[index]
        picked = _select(Objects, self, rows)
        picked.parent = _remap_rows(self.parent[rows], rows, len(self))
        return picked

    def concat(self, other: "Objects") -> "Objects":
        """This table followed by ``other`` (whose ``parent`` rows refer to *this* table's rows)."""
        return _concat(Objects, (self, other))

    @property
    def width(self) -> np.ndarray:
        """``rect_params.width`` (see :func:`box_extent`)."""
        return box_extent(self.xyxy[:, 0], self.xyxy[:, 2])

    @property
    def height(self) -> np.ndarray:
        return box_extent(self.xyxy[:, 1], self.xyxy[:, 3])


def box_extent(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``hi - lo`` of float32 box edges, as DeepStream's (left, width) rectangle had it.

    DeepStream keeps left and width; dsrun keeps x1 and x2 = x1 + width rounded to float32, so a width
    of 20 at x1 = 100.3 comes back as 19.999998 — and nvinfer's crop (``GST_ROUND_DOWN_2`` of the
    width) or size filters would see 18 or "under 20". Where ``lo + k`` rounds to ``hi`` for the whole
    number ``k`` nearest the difference, the width was ``k``.

    >>> box_extent(np.float32([100.3]), np.float32([100.3]) + np.float32(20)).tolist()
    [20.0]
    """
    lo = np.asarray(lo, np.float32)
    hi = np.asarray(hi, np.float32)
    diff = hi - lo
    whole = np.rint(diff)
    return np.where(lo + whole == hi, whole, diff)


def _remap_rows(refs: np.ndarray, kept_rows: np.ndarray, n: int) -> np.ndarray:
    """Map row references into a table of ``n`` rows onto its subset ``kept_rows`` (-1 if dropped)."""
    new_index = np.full(n + 1, -1, np.int32)  # slot n absorbs -1 references
    new_index[kept_rows] = np.arange(len(kept_rows), dtype=np.int32)
    return new_index[np.where(refs < 0, n, refs)]


@dataclass(slots=True)
class Classifications:
    """Classifier results, one row per (object, GIE, head) — DeepStream's NvDsClassifierMeta +
    NvDsLabelInfo, columnar. ``obj`` is the row in the batch's :class:`Objects`; -1 means the
    result belongs to the whole frame ``frame`` (a classifier run with process-mode=1)."""

    obj: np.ndarray  # (n,) int32
    frame: np.ndarray  # (n,) int32
    gie_id: np.ndarray  # (n,) int32
    head: np.ndarray  # (n,) int32 — output layer index, for multi-head classifiers
    class_id: np.ndarray  # (n,) int32
    confidence: np.ndarray  # (n,) float32
    label: np.ndarray  # (n,) object (str)

    @classmethod
    def empty(cls) -> "Classifications":
        return cls.from_columns(obj=np.zeros(0, np.int32), frame=np.zeros(0, np.int32))

    @classmethod
    def from_columns(cls, *, obj, frame, gie_id=None, head=None, class_id=None, confidence=None,
                     label=None) -> "Classifications":
        obj = np.asarray(obj, dtype=np.int32).reshape(-1)
        n = len(obj)
        return cls(
            obj=obj,
            frame=_column(frame, n, np.int32, 0),
            gie_id=_column(gie_id, n, np.int32, 0),
            head=_column(head, n, np.int32, 0),
            class_id=_column(class_id, n, np.int32, -1),
            confidence=_column(confidence, n, np.float32, 0.0),
            label=_column(label, n, object, ""),
        )

    def __len__(self) -> int:
        return len(self.obj)

    def __getitem__(self, index) -> "Classifications":
        return _select(Classifications, self, index)

    def concat(self, *others: "Classifications") -> "Classifications":
        """This table followed by ``others``, in order (one ``np.concatenate`` per column for all)."""
        return _concat(Classifications, (self, *others))


@dataclass(slots=True)
class AnalyticsFrames:
    """nvdsanalytics results per (frame, rule) — DeepStream's NvDsAnalyticsFrameMeta, one row per map
    entry. ``kind`` is ``roi`` (``count``: objects inside), ``overcrowding`` (``count`` inside, ``flag``
    crowded), ``line`` (``count``: crossings in this frame, ``total``: since the start) or ``class``
    (``label`` the class id, ``count`` its smoothed object count)."""

    frame: np.ndarray  # (n,) int32
    kind: np.ndarray  # (n,) object (str)
    label: np.ndarray  # (n,) object (str)
    count: np.ndarray  # (n,) int64
    total: np.ndarray  # (n,) int64
    flag: np.ndarray  # (n,) bool

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> "AnalyticsFrames":
        """From (frame, kind, label, count, total, flag) tuples."""
        cols = list(zip(*rows)) if rows else [()] * 6
        return cls(frame=np.asarray(cols[0], np.int32), kind=np.asarray(cols[1], object),
                   label=np.asarray(cols[2], object), count=np.asarray(cols[3], np.int64),
                   total=np.asarray(cols[4], np.int64), flag=np.asarray(cols[5], bool))

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(slots=True)
class AnalyticsObjects:
    """nvdsanalytics results per object — NvDsAnalyticsObjInfo, for the objects it has something to say
    about (as DeepStream attaches it). ``obj`` is the row in the batch's :class:`Objects`."""

    obj: np.ndarray  # (n,) int32
    status: np.ndarray  # (n,) object (str) — objStatus, e.g. " ROI:RF LC:Exit "
    roi: np.ndarray  # (n,) object (tuple of ROI labels the object is in)
    overcrowding: np.ndarray  # (n,) object (tuple of overcrowding ROI labels)
    lines: np.ndarray  # (n,) object (tuple of line labels crossed in this frame)
    direction: np.ndarray  # (n,) object (str) — dirStatus, e.g. " DIR:North "

    def __len__(self) -> int:
        return len(self.obj)


@dataclass(slots=True)
class Overlay:
    """What a stage asks the OSD to draw — DeepStream's NvDsDisplayMeta, columnar. Coordinates are
    streammux-frame pixels; colours RGBA 0..1."""

    line_frame: np.ndarray  # (n,) int32
    lines: np.ndarray  # (n, 4) int32 — x1, y1, x2, y2
    line_rgba: np.ndarray  # (n, 4) float32
    line_width: np.ndarray  # (n,) int32
    text_frame: np.ndarray  # (m,) int32
    text_xy: np.ndarray  # (m, 2) int32 — top-left of the text box
    text: np.ndarray  # (m,) object (str)
    text_rgba: np.ndarray  # (m, 4) float32
    text_bg: np.ndarray  # (m, 4) float32 — alpha 0: no background
    text_size: np.ndarray  # (m,) int32 — points
    obj: np.ndarray  # (k,) int32 — rows of Batch.objects whose label gets ``obj_text`` appended
    obj_text: np.ndarray  # (k,) object (str)
    obj_invert: np.ndarray  # (k,) bool — draw that object's border in the inverse colour


@dataclass(slots=True)
class Batch:
    """Frames of one streammux batch and everything stages learned about them.

    ``frames`` is (B, H, W, 3) uint8 RGB when all frames share a size (always, after streammux
    scaling), else a list of (H, W, 3) arrays. On the GPU path it may be a device array exposing
    ``__dlpack__`` (CuPy / torch); stages that need host pixels call :meth:`host_frames`.
    """

    frames: Any
    source_id: np.ndarray  # (B,) int32
    frame_num: np.ndarray  # (B,) int64 — per-source frame number, from 0
    pts: np.ndarray  # (B,) int64 — presentation time stamp, nanoseconds
    ntp_ts: np.ndarray  # (B,) int64 — wall clock (ns since epoch) when the frame entered streammux
    source_size: np.ndarray  # (B, 2) int32 — (width, height) of the decoded frame before scaling
    objects: Objects = field(default_factory=Objects.empty)
    classifications: Classifications = field(default_factory=Classifications.empty)
    # gie-unique-id -> (B,) bool: True where that GIE ran inference on the frame (interval skipping)
    inferred: dict[int, np.ndarray] = field(default_factory=dict)
    # gie-unique-id -> (B, h, w) int32 class map (-1 = below segmentation-threshold)
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    # gie-unique-id -> output name -> array; rows are frames (process-mode 1) or objects (2)
    tensors: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    # source ids whose stream ended with this batch (end-of-stream travels with the data)
    eos: tuple[int, ...] = ()
    # [tiled-display] composite of this batch, (H, W, 3) uint8, set by the tiler (None: not tiled)
    tiled: Any = None
    # (B, 4) float32, where frame i sits in ``tiled``: x offset, y offset, x scale, y scale
    # (tiled px = frame px * scale + offset); rows of sources without a tile are NaN
    tile_transform: Any = None
    # [nvds-analytics] results (None: no analytics in this pipeline) and what it asks the OSD to draw
    analytics_frames: AnalyticsFrames | None = None
    analytics_objects: AnalyticsObjects | None = None
    overlay: Overlay | None = None
    # GPU path: a CUDA event recorded when the last stage's device work on this batch was queued
    # (runner.pipeline.gpu_streams); the next stage's stream waits for it
    device_ready: Any = None

    def __len__(self) -> int:
        return len(self.source_id)

    def frame_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """(widths, heights) of the frames, (B,) int64 each — for an array (host or device) or a list."""
        frames = self.frames
        if not isinstance(frames, list) and len(frames.shape) == 4:
            return np.full(len(self), frames.shape[2], np.int64), np.full(len(self), frames.shape[1], np.int64)
        return (np.array([f.shape[1] for f in frames], np.int64).reshape(-1),
                np.array([f.shape[0] for f in frames], np.int64).reshape(-1))

    def host_frames(self):
        """Frames as a host numpy array, or a list of them (copies from the GPU when needed)."""
        frames = self.frames
        if isinstance(frames, np.ndarray):
            return frames
        if hasattr(frames, "get"):  # CuPy
            return frames.get()
        if hasattr(frames, "cpu"):  # torch
            return frames.cpu().numpy()
        if isinstance(frames, list):  # frames of different sizes stay a list
            return frames
        return np.asarray(frames)
