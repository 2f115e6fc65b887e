"""Frames or object crops → a network input tensor, as Gst-nvinfer prepares them.

Gst-nvinfer scales the whole frame (``process-mode=1``) or each object's box (``process-mode=2``) to the
network resolution, optionally keeping the aspect ratio (``maintain-aspect-ratio``) with black padding
on the right/bottom or on both sides (``symmetric-padding``), converts the colour order
(``model-color-format`` 0 RGB, 1 BGR, 2 GRAY), then computes ``net-scale-factor * (pixel - offsets[c])``
in ``network-input-order`` NCHW (0) or NHWC (1). :func:`preprocess` does the same on host arrays and
returns the :class:`InputMapping` that takes network-input pixels back to streammux-frame pixels.

Crop geometry follows nvinfer's ``get_converted_buffer``: the crop's left/top are rounded *up* to even
pixels and its width/height *down* to even, the scale ratio is ``dest / crop`` per axis and, with
``maintain-aspect-ratio``, the scaled size is truncated to whole pixels. Boxes come back as
``(x - offset_left) / ratio_x + parent_left`` where ``parent_left`` is the object's own (unrounded) left,
as ``attach_metadata_detector`` does.

>>> import numpy as np
>>> spec = PreprocessSpec(width=4, height=2, scale=1 / 255, maintain_aspect_ratio=True)
>>> frames = np.full((1, 4, 4, 3), 255, np.uint8)
>>> tensor, mapping = preprocess(frames, spec)
>>> tensor.shape, tensor[0, 0].tolist()  # 4x4 frame → 2x2 image, right half padded black
((1, 3, 2, 4), [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
>>> float(mapping.ratio_x[0]), int(mapping.offset_left[0])
(0.5, 0)
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from runner.errors import DsrunError
from runner.pipeline.batch import box_extent

__all__ = ["PreprocessSpec", "InputMapping", "preprocess", "SCALING_FILTERS", "PreprocessError"]


class PreprocessError(DsrunError):
    """A model input nvinfer's pre-processing cannot feed, with what to change."""


def _get(cfg, name, default):
    value = getattr(cfg, name, default)
    return default if value is None else value

# scaling-filter (NvBufSurfTransform_Inter) → OpenCV interpolation. 6 (Default) is "GPU-Nearest"
# (nvbufsurftransform.h); 2/3/4 are GPU cubic / super-sampling / Lanczos; 5 is ignored on GPU.
SCALING_FILTERS = {0: cv2.INTER_NEAREST, 1: cv2.INTER_LINEAR, 2: cv2.INTER_CUBIC, 3: cv2.INTER_AREA,
                   4: cv2.INTER_LANCZOS4, 5: cv2.INTER_NEAREST, 6: cv2.INTER_NEAREST}


@dataclass(frozen=True, slots=True)
class PreprocessSpec:
    """How one GIE turns pixels into its input tensor (nvinfer ``[property]`` keys, DeepStream units)."""

    width: int  # network input width (infer-dims or the model's)
    height: int
    channels: int = 3
    color_format: int = 0  # model-color-format: 0 RGB, 1 BGR, 2 GRAY
    input_order: int = 0  # network-input-order: 0 NCHW, 1 NHWC
    scale: float = 1.0  # net-scale-factor
    offsets: tuple[float, ...] = ()  # per-channel mean subtracted before scaling
    maintain_aspect_ratio: bool = False
    symmetric_padding: bool = False
    scaling_filter: int = 0
    dtype: str = "float32"  # the engine input's dtype

    @classmethod
    def from_nvinfer(cls, cfg, input_shape, dtype="float32", *, where: str = "") -> "PreprocessSpec":
        """From an nvinfer config (fields named after the keys) and the engine's input shape.

        ``input_shape`` is the model's input with its batch dimension (``None``, ``-1`` or a name
        for dynamic axes). ``infer-dims`` (C;H;W, whatever the input order) overrides the model's
        height/width, and is required when those are dynamic.

        >>> from types import SimpleNamespace as NS
        >>> PreprocessSpec.from_nvinfer(NS(infer_dims=(3, 64, 96)), (None, 3, "h", "w")).width
        96
        """
        order = int(_get(cfg, "network_input_order", 0) or 0)
        dims = list(input_shape)[1:] if len(input_shape) == 4 else list(input_shape)
        if len(dims) != 3:
            raise PreprocessError(f"{where}model input has shape {tuple(input_shape)}; nvinfer needs an "
                                  "image input of 3 dimensions plus the batch — check the model's first input")
        c, h, w = (dims[2], dims[0], dims[1]) if order == 1 else dims
        infer_dims = _get(cfg, "infer_dims", None)
        if infer_dims:
            c, h, w = (int(v) for v in infer_dims)
        if not all(isinstance(v, (int, np.integer)) and v > 0 for v in (c, h, w)):
            raise PreprocessError(
                f"{where}model input {tuple(input_shape)} has a dynamic channel, height or width — "
                "set infer-dims=C;H;W in [property] (e.g. infer-dims=3;736;1280)")
        offsets = tuple(float(v) for v in (_get(cfg, "offsets", None) or ()))
        scale = _get(cfg, "net_scale_factor", None)
        return cls(
            width=int(w), height=int(h), channels=int(c),
            color_format=int(_get(cfg, "model_color_format", 0) or 0), input_order=order,
            scale=1.0 if scale is None else float(scale), offsets=offsets,
            maintain_aspect_ratio=bool(_get(cfg, "maintain_aspect_ratio", False)),
            symmetric_padding=bool(_get(cfg, "symmetric_padding", False)),
            scaling_filter=int(_get(cfg, "scaling_filter", 0) or 0), dtype=str(np.dtype(dtype)))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one item of the tensor (without the batch dimension)."""
        if self.input_order == 1:
            return (self.height, self.width, self.channels)
        return (self.channels, self.height, self.width)


@dataclass(slots=True)
class InputMapping:
    """Per tensor item: how network-input pixels map back to streammux-frame pixels."""

    ratio_x: np.ndarray  # (n,) float64 — scaled width / crop width
    ratio_y: np.ndarray
    offset_left: np.ndarray  # (n,) int32 — padding before the image (symmetric padding)
    offset_top: np.ndarray
    origin_x: np.ndarray  # (n,) float32 — crop origin in the frame (object left; 0 for full frames)
    origin_y: np.ndarray
    frame: np.ndarray  # (n,) int32 — batch frame index of each item
    frame_height: np.ndarray = field(default=None)  # (n,) int32 — height of the frame it came from
    frame_width: np.ndarray = field(default=None)

    def to_frame(self, xyxy: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Boxes in network pixels of tensor items ``item`` → frame pixels (before the parent offset)."""
        out = np.asarray(xyxy, np.float64).copy()
        rx, ry = self.ratio_x[item], self.ratio_y[item]
        out[:, 0] = (out[:, 0] - self.offset_left[item]) / rx
        out[:, 2] = (out[:, 2] - self.offset_left[item]) / rx
        out[:, 1] = (out[:, 1] - self.offset_top[item]) / ry
        out[:, 3] = (out[:, 3] - self.offset_top[item]) / ry
        return out


def _crop_geometry(rects: np.ndarray, frame_w: np.ndarray, frame_h: np.ndarray):
    """nvinfer's crop rounding: left/top up to even, width/height down to even; clipped to the frame.
    Both axes at once: columns (left, top) and (width, height)."""
    frame = np.stack([frame_w, frame_h], 1)
    corner = np.maximum(rects[:, :2], 0).astype(np.int64)
    size = np.maximum(box_extent(rects[:, :2], rects[:, 2:]), 0).astype(np.int64)  # rect_params.width/height
    corner = np.minimum((corner + 1) // 2 * 2, np.maximum(frame - 1, 0))
    size = np.clip(size // 2 * 2, 1, np.maximum(frame - corner, 1))
    return corner[:, 0], corner[:, 1], size[:, 0], size[:, 1]


def _scaled_size(spec: PreprocessSpec, src_w: np.ndarray, src_h: np.ndarray):
    """Destination size and padding offsets per item (nvinfer's maintain-aspect-ratio arithmetic)."""
    n = len(src_w)
    if not spec.maintain_aspect_ratio:
        dest_w = np.full(n, spec.width, np.int64)
        dest_h = np.full(n, spec.height, np.int64)
    else:
        hdest = spec.width * src_h / src_w.astype(np.float64)
        wdest = spec.height * src_w / src_h.astype(np.float64)
        fits = hdest <= spec.height
        dest_w = np.where(fits, spec.width, wdest.astype(np.int64))
        dest_h = np.where(fits, hdest.astype(np.int64), spec.height)
        dest_w = np.maximum(dest_w, 1)
        dest_h = np.maximum(dest_h, 1)
    if spec.maintain_aspect_ratio and spec.symmetric_padding:
        off_l = (spec.width - dest_w) // 2
        off_t = (spec.height - dest_h) // 2
    else:
        off_l = np.zeros(n, np.int64)
        off_t = np.zeros(n, np.int64)
    return dest_w, dest_h, off_l, off_t


def _frame_sizes(frames, n_frames: int):
    if isinstance(frames, np.ndarray):
        h, w = frames.shape[1:3]
        return np.full(n_frames, w, np.int64), np.full(n_frames, h, np.int64)
    w = np.array([f.shape[1] for f in frames], np.int64)
    h = np.array([f.shape[0] for f in frames], np.int64)
    return w, h


def preprocess(frames, spec: PreprocessSpec, rects=None, frame_index=None):
    """Build the input tensor for ``spec`` from RGB uint8 ``frames`` ((B, H, W, 3) array or list).

    Without ``rects`` every frame is one item (``process-mode=1``). With ``rects`` ((n, 4) xyxy in
    frame pixels) and ``frame_index`` ((n,) frame of each rect) every rect is one item
    (``process-mode=2``). Returns ``(tensor, InputMapping)``; the tensor has ``spec.dtype``.

    The per-item resize is one OpenCV call per frame or crop (pixel work, not metadata); colour
    conversion and normalisation run once over the whole batch — over consecutive parts of it on
    the machine's cores at once when the batch is large (:data:`PARALLEL_MIN_VALUES`): every item is
    computed alone, so the split changes no value.
    """
    n_frames = len(frames)
    fw, fh = _frame_sizes(frames, n_frames)
    if rects is None:
        index = np.arange(n_frames, dtype=np.int32)
        left = np.zeros(n_frames, np.int64)
        top = np.zeros(n_frames, np.int64)
        width, height = fw // 2 * 2, fh // 2 * 2
        width = np.maximum(width, np.minimum(fw, 1))
        height = np.maximum(height, np.minimum(fh, 1))
        origin_x = np.zeros(n_frames, np.float32)
        origin_y = np.zeros(n_frames, np.float32)
    else:
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        index = np.asarray(frame_index, np.int32).reshape(-1)
        left, top, width, height = _crop_geometry(rects, fw[index], fh[index])
        origin_x, origin_y = rects[:, 0].copy(), rects[:, 1].copy()
    n = len(index)
    dest_w, dest_h, off_l, off_t = _scaled_size(spec, width, height)
    geometry = (index, left, top, width, height, dest_w, dest_h, off_l, off_t)

    def items(lo: int, hi: int, out=None) -> np.ndarray:
        canvas = _resize_into_canvas(frames, spec, *(column[lo:hi] for column in geometry))
        return _normalise(canvas, spec, out)

    parts = _parts(n, spec)
    if len(parts) == 1:
        tensor = items(0, n)
    else:  # the output written in place, one part per core (float32 RGB/BGR inputs only)
        tensor = np.empty((n, *spec.input_shape), np.float32)
        pending = [(_pool().submit(items, lo, hi, tensor[lo:hi]), lo, hi) for lo, hi in parts[1:]]
        items(*parts[0], tensor[parts[0][0]:parts[0][1]])
        for part, lo, hi in pending:  # a part no core has started yet (all busy) is done here
            if part.cancel():
                items(lo, hi, tensor[lo:hi])
            else:
                part.result()
    mapping = InputMapping(
        ratio_x=dest_w / width.astype(np.float64), ratio_y=dest_h / height.astype(np.float64),
        offset_left=off_l.astype(np.int32), offset_top=off_t.astype(np.int32),
        origin_x=origin_x.astype(np.float32), origin_y=origin_y.astype(np.float32), frame=index,
        frame_height=fh[index].astype(np.int32), frame_width=fw[index].astype(np.int32))
    return tensor, mapping


# split a batch over the cores when it has at least this many output values (two 480x272 RGB frames:
# 0.8 M); smaller batches cost less than handing work to another thread
PARALLEL_MIN_VALUES = 500_000
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            workers = max(1, (os.cpu_count() or 1) - 1)  # the calling thread does one part itself
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dsrun-preprocess")
        return _POOL


def _forget_pool() -> None:
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()  # a forked child has none of the parent's threads


os.register_at_fork(after_in_child=_forget_pool)


def _parts(n: int, spec: PreprocessSpec) -> list[tuple[int, int]]:
    """Consecutive item ranges, one per core, or the whole batch as one (small batches, the formats
    :func:`_normalise` computes in one pass only)."""
    cores = os.cpu_count() or 1
    size = n * spec.channels * spec.width * spec.height
    if cores < 2 or n < 2 or size < PARALLEL_MIN_VALUES or not _fast_path(spec):
        return [(0, n)]
    k = min(n, cores)
    bounds = [n * i // k for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _resize_into_canvas(frames, spec: PreprocessSpec, index, left, top, width, height,
                        dest_w, dest_h, off_l, off_t) -> np.ndarray:
    """(n, H, W, 3) uint8: each item's crop scaled to its destination size and placed at its offset,
    black elsewhere. One OpenCV call per item (pixel work, in C); an item that fills the whole network
    input is scaled straight into the canvas, and the canvas is cleared only when some item leaves
    padding."""
    n = len(index)
    H, W = spec.height, spec.width
    fills = (dest_w == W) & (dest_h == H) & (off_l == 0) & (off_t == 0)
    canvas = np.empty((n, H, W, 3), np.uint8) if fills.all() else np.zeros((n, H, W, 3), np.uint8)
    interp = SCALING_FILTERS.get(int(spec.scaling_filter), cv2.INTER_NEAREST)
    geometry = zip(index.tolist(), left.tolist(), top.tolist(), width.tolist(), height.tolist(),
                   dest_w.tolist(), dest_h.tolist(), off_l.tolist(), off_t.tolist(), fills.tolist())
    for i, (f, x, y, w, h, dw, dh, ox, oy, whole) in enumerate(geometry):  # pixel work, O(items)
        crop = frames[f][y:y + h, x:x + w]
        if (crop.shape[1], crop.shape[0]) == (dw, dh):
            canvas[i, oy:oy + dh, ox:ox + dw] = crop
        elif whole:
            cv2.resize(crop, (dw, dh), dst=canvas[i], interpolation=interp)
        else:
            canvas[i, oy:oy + dh, ox:ox + dw] = cv2.resize(crop, (dw, dh), interpolation=interp)
    return canvas


def _fast_path(spec: PreprocessSpec) -> bool:
    return np.dtype(spec.dtype) == np.float32 and spec.color_format != 2 and spec.channels == 3


def _normalise(canvas: np.ndarray, spec: PreprocessSpec, out: np.ndarray | None = None) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB → colour format, ``scale * (x - offsets)``, input order and dtype.

    For float32 RGB/BGR inputs the colour order and layout are rearranged on the uint8 pixels (a
    quarter of the bytes) and the arithmetic writes the output once, in place (into ``out`` when
    given): the same float32 operations in the same order as :func:`_normalise_reference`, without
    its whole-batch temporaries."""
    if not _fast_path(spec):
        return _normalise_reference(canvas, spec)
    pix = canvas[..., ::-1] if spec.color_format == 1 else canvas
    if spec.input_order == 0:
        pix = pix.transpose(0, 3, 1, 2)
    pix = np.ascontiguousarray(pix)
    out = np.empty(pix.shape, np.float32) if out is None else out
    if spec.offsets:
        offsets = np.asarray(spec.offsets[:3], np.float32)
        np.subtract(pix, offsets[:, None, None] if spec.input_order == 0 else offsets, out=out)
        if spec.scale != 1.0:
            np.multiply(out, np.float32(spec.scale), out=out)
    elif spec.scale != 1.0:
        np.multiply(pix, np.float32(spec.scale), out=out)
    else:
        out[...] = pix
    return out


def _normalise_reference(canvas: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """:func:`_normalise` step by step on float copies of the whole batch (every format and dtype)."""
    if spec.color_format == 2 or spec.channels == 1:
        gray = np.tensordot(canvas.astype(np.float32), np.array([0.299, 0.587, 0.114], np.float32), axes=([3], [0]))
        pix = np.rint(gray)[..., None]  # GRAY8, as the converter produces it
    elif spec.color_format == 1:
        pix = canvas[..., ::-1].astype(np.float32)
    else:
        pix = canvas.astype(np.float32)
    if spec.offsets:
        pix = pix - np.asarray(spec.offsets[: pix.shape[-1]], np.float32)
    if spec.scale != 1.0:
        pix = pix * np.float32(spec.scale)
    if spec.input_order == 0:
        pix = pix.transpose(0, 3, 1, 2)
    out_dtype = np.dtype(spec.dtype)
    if out_dtype == np.uint8 or out_dtype == np.int8:
        return np.ascontiguousarray(np.clip(np.rint(pix), np.iinfo(out_dtype).min, np.iinfo(out_dtype).max).astype(out_dtype))
    return np.ascontiguousarray(pix, dtype=out_dtype)
