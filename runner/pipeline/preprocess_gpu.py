"""nvinfer pre-processing on device tensors (torch, CUDA or CPU): the GPU twin of ``preprocess.py``.

Same geometry (nvinfer's crop rounding, ``maintain-aspect-ratio``, ``symmetric-padding``), same
sampling as the OpenCV host path (nearest: ``src = floor(dst * scale)``; bilinear: pixel-centre
aligned), same :class:`~runner.pipeline.preprocess.InputMapping` back to frame pixels — but the pixel
work is one gather over the whole batch of frames or crops, with no per-item loop and no host copy.
Frames arrive as a (B, H, W, 3) uint8 tensor from the GPU decoder; the result stays on that device.

>>> import numpy as np, torch
>>> from runner.pipeline.preprocess import PreprocessSpec, preprocess
>>> frames = np.random.default_rng(0).integers(0, 255, (2, 36, 64, 3), dtype=np.uint8)
>>> spec = PreprocessSpec(width=32, height=16, scale=1 / 255)
>>> host, _ = preprocess(frames, spec)
>>> dev, _ = preprocess_device(torch.from_numpy(frames), spec)
>>> bool(np.allclose(host, dev.numpy(), atol=1e-6))
True
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.preprocess import InputMapping, PreprocessSpec, _crop_geometry, _scaled_size

__all__ = ["preprocess_device", "is_device_tensor"]

# scaling-filter values whose host path is bilinear (cv2.INTER_LINEAR); everything else samples nearest
_BILINEAR = {1}
_GRAY = (0.299, 0.587, 0.114)


def is_device_tensor(frames) -> bool:
    """True for a torch tensor (the GPU decode path); host numpy frames take ``preprocess``."""
    return type(frames).__module__.startswith("torch")


def _axis_samples(torch, dst_size: int, start, length, dest, offset, bilinear: bool):
    """Per item, per output pixel along one axis: source indices (and weights) and validity.

    ``start``/``length``: the crop in frame pixels; ``dest``: its scaled size; ``offset``: padding.
    Returns (i0, i1, w1, valid), each (n, dst_size)."""
    pos = torch.arange(dst_size, device=start.device, dtype=torch.float64)[None, :] - offset[:, None]
    valid = (pos >= 0) & (pos < dest[:, None])
    scale = length.double()[:, None] / dest.double()[:, None]
    if bilinear:
        src = ((pos + 0.5) * scale - 0.5).clamp(min=0)
        i0 = src.floor()
        w1 = (src - i0).float()
        i0 = i0.long()
        last = (length - 1)[:, None]
        i1 = torch.minimum(i0 + 1, last)
        i0 = torch.minimum(i0, last)
    else:
        i0 = torch.minimum((pos.clamp(min=0) * scale).floor().long(), (length - 1)[:, None])
        i1, w1 = i0, None
    return i0 + start[:, None], i1 + start[:, None], w1, valid


def preprocess_device(frames, spec: PreprocessSpec, rects=None, frame_index=None):
    """Like :func:`runner.pipeline.preprocess.preprocess`, for a (B, H, W, 3) uint8 torch tensor.

    Returns ``(tensor, InputMapping)``; the tensor is float32 (or the spec's dtype) on the frames'
    device, laid out as ``network-input-order`` asks."""
    import torch

    n_frames, fh, fw = frames.shape[0], frames.shape[1], frames.shape[2]
    if rects is None:
        index = np.arange(n_frames, dtype=np.int32)
        left = np.zeros(n_frames, np.int64)
        top = np.zeros(n_frames, np.int64)
        width = np.full(n_frames, max(fw // 2 * 2, min(fw, 1)), np.int64)
        height = np.full(n_frames, max(fh // 2 * 2, min(fh, 1)), np.int64)
        origin_x = origin_y = np.zeros(n_frames, np.float32)
    else:
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        index = np.asarray(frame_index, np.int32).reshape(-1)
        full_w, full_h = np.full(len(index), fw, np.int64), np.full(len(index), fh, np.int64)
        left, top, width, height = _crop_geometry(rects, full_w, full_h)
        origin_x, origin_y = rects[:, 0].copy(), rects[:, 1].copy()
    dest_w, dest_h, off_l, off_t = _scaled_size(spec, width, height)
    mapping = InputMapping(
        ratio_x=dest_w / width.astype(np.float64), ratio_y=dest_h / height.astype(np.float64),
        offset_left=off_l.astype(np.int32), offset_top=off_t.astype(np.int32),
        origin_x=origin_x.astype(np.float32), origin_y=origin_y.astype(np.float32), frame=index,
        frame_height=np.full(len(index), fh, np.int32), frame_width=np.full(len(index), fw, np.int32))
    if len(index) == 0:
        shape = (0, *spec.input_shape)
        return torch.zeros(shape, dtype=_torch_dtype(torch, spec.dtype), device=frames.device), mapping

    if rects is None and not (off_l.any() or off_t.any()) and (dest_w == spec.width).all() \
            and (dest_h == spec.height).all():
        return _normalise(torch, _resize_whole(torch, frames, int(width[0]), int(height[0]), spec), spec), mapping
    # the metadata columns reach the device in one copy (each copy waits for the stream: one wait, not
    # nine); rows 0..n-1 are the x axis, n..2n-1 the y axis, sampled together (one set of kernels)
    n = len(index)
    columns = np.array([[left, top], [width, height], [dest_w, dest_h], [off_l, off_t], [index, index]],
                       np.int64).reshape(5, 2 * n)
    start_, length_, dest_, offset_, index_ = torch.from_numpy(columns).to(frames.device)
    bilinear = int(spec.scaling_filter) in _BILINEAR
    s0, s1, w1, valid = _axis_samples(torch, max(spec.width, spec.height), start_, length_, dest_, offset_, bilinear)
    x0, x1, vx = s0[:n, :spec.width], s1[:n, :spec.width], valid[:n, :spec.width]
    y0, y1, vy = s0[n:, :spec.height], s1[n:, :spec.height], valid[n:, :spec.height]
    wx, wy = (w1[:n, :spec.width], w1[n:, :spec.height]) if bilinear else (None, None)
    f = index_[:n, None, None]
    gather = lambda ys, xs: frames[f, ys[:, :, None], xs[:, None, :]].float()  # noqa: E731 — (n,H,W,3)
    if bilinear:
        wx_, wy_ = wx[:, None, :, None], wy[:, :, None, None]
        top_row = gather(y0, x0) * (1 - wx_) + gather(y0, x1) * wx_
        bottom_row = gather(y1, x0) * (1 - wx_) + gather(y1, x1) * wx_
        pix = (top_row * (1 - wy_) + bottom_row * wy_).round()  # the host path resizes to uint8
    else:
        pix = gather(y0, x0)
    pix = pix * (vy[:, :, None] & vx[:, None, :])[..., None]  # black padding outside the image
    return _normalise(torch, pix, spec), mapping


def _resize_whole(torch, frames, width: int, height: int, spec: PreprocessSpec):
    """Whole frames to the network size with one interpolation kernel (the common PGIE case):
    the same sampling as the gather path, at a fraction of its cost on large frames."""
    import torch.nn.functional as F

    x = frames[:, :height, :width].permute(0, 3, 1, 2)  # a strided view: NHWC memory stays
    size = (spec.height, spec.width)
    if int(spec.scaling_filter) in _BILINEAR:  # half holds every 0..255 level exactly
        x = F.interpolate(x.half(), size=size, mode="bilinear", align_corners=False).float().round()
    else:  # nearest picks pixels: done on the uint8 frames, only the small result becomes float
        x = F.interpolate(x, size=size, mode="nearest").float()
    return x.permute(0, 2, 3, 1)  # (n, H, W, 3) for the shared normalisation


def _torch_dtype(torch, name: str):
    return {"float16": torch.float16, "uint8": torch.uint8, "int8": torch.int8}.get(str(name), torch.float32)


_CONSTANTS: dict = {}


def _constant(torch, values: tuple, device, dtype):
    """A small constant tensor on ``device``, made once: a tensor from host values is a copy that
    waits for the stream's queued work, which a per-batch call would pay every time."""
    key = (values, str(device), dtype)
    tensor = _CONSTANTS.get(key)
    if tensor is None:
        tensor = _CONSTANTS[key] = torch.tensor(values, device=device, dtype=dtype)
    return tensor


def _normalise(torch, pix, spec: PreprocessSpec):
    """(n, H, W, 3) float RGB → colour format, ``scale * (x - offsets)``, input order, dtype."""
    if spec.color_format == 2 or spec.channels == 1:
        pix = (pix @ _constant(torch, _GRAY, pix.device, pix.dtype)).round()[..., None]
    elif spec.color_format == 1:
        pix = pix.flip(-1)
    if spec.offsets:
        pix = pix - _constant(torch, tuple(spec.offsets[: pix.shape[-1]]), pix.device, pix.dtype)
    if spec.scale != 1.0:
        pix = pix * spec.scale
    if spec.input_order == 0:
        pix = pix.permute(0, 3, 1, 2)
    dtype = _torch_dtype(torch, spec.dtype)
    if dtype in (torch.uint8, torch.int8):
        info = torch.iinfo(dtype)
        pix = pix.round().clamp(info.min, info.max)
    return pix.to(dtype).contiguous()
