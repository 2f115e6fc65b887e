"""Vectorised raster primitives for the OSD: many rectangles, class-map overlays, text boxes.

Everything works on (H, W, 3) uint8 images in place. Rectangles are drawn by computing every covered
pixel index at once (no Python loop per rectangle): cost is proportional to the pixels drawn, not to
the frame size and not to a per-object interpreter overhead.

>>> import numpy as np
>>> img = np.zeros((6, 8, 3), np.uint8)
>>> fill_rects(img, np.array([[1, 1, 4, 3]]), np.array([[255, 0, 0]]), np.array([1.0]))
>>> int(img[..., 0].sum() // 255)  # 3 x 2 pixels
6
>>> img2 = np.zeros((6, 8, 3), np.uint8)
>>> fill_rects(img2, border_rects(np.array([[0, 0, 5, 5]]), 1), np.array([[0, 255, 0]] * 4), np.ones(4))
>>> int(img2[..., 1].sum() // 255)  # the 16-pixel outline of a 5x5 box
16
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["parse_rgba", "fill_rects", "border_rects", "clip_boxes", "overlay_class_map", "PALETTE"]


def parse_rgba(value) -> tuple[float, float, float, float]:
    """A DeepStream colour (``"1;0;0;1"`` or a 4-sequence of 0..1 floats) as an RGBA tuple.

    >>> parse_rgba("0.3;0.3;0.3;1")
    (0.3, 0.3, 0.3, 1.0)
    >>> parse_rgba("1;1;1;1;")  # deepstream-app accepts the trailing separator
    (1.0, 1.0, 1.0, 1.0)
    """
    if isinstance(value, str):
        parts = [p for p in value.replace(",", ";").split(";") if p.strip()]
        value = [float(p) for p in parts]
    vals = tuple(float(v) for v in value)
    if len(vals) != 4:
        raise ValueError(f"colour {value!r}: need 4 numbers r;g;b;a between 0 and 1")
    return vals  # type: ignore[return-value]


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Float boxes → int32 pixel boxes clipped to the image (x2/y2 exclusive)."""
    b = np.rint(np.asarray(xyxy, np.float32)).astype(np.int32).reshape(-1, 4)
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b


def border_rects(boxes: np.ndarray, width: int) -> np.ndarray:
    """(n, 4) int boxes → (4n, 4) rectangles forming their outlines ``width`` px thick, drawn inside.

    Order: top, bottom, left, right strips of box 0, then box 1, ...
    """
    b = np.asarray(boxes, np.int32).reshape(-1, 4)
    x1, y1, x2, y2 = b.T
    w = np.minimum(width, np.maximum((y2 - y1 + 1) // 2, 0))
    v = np.minimum(width, np.maximum((x2 - x1 + 1) // 2, 0))
    top = np.stack([x1, y1, x2, y1 + w], 1)
    bottom = np.stack([x1, y2 - w, x2, y2], 1)
    left = np.stack([x1, y1 + w, x1 + v, y2 - w], 1)
    right = np.stack([x2 - v, y1 + w, x2, y2 - w], 1)
    return np.stack([top, bottom, left, right], 1).reshape(-1, 4)


def fill_rects(img: np.ndarray, rects: np.ndarray, colors: np.ndarray, alpha: np.ndarray) -> None:
    """Fill int rectangles ``[x1, y1, x2, y2)`` with RGB ``colors`` (0..255) blended by ``alpha``.

    One fancy-indexed write per distinct colour (not per rectangle); where rectangles overlap, the
    later one of the same colour wins.
    """
    rects = np.asarray(rects, np.int64).reshape(-1, 4)
    h_img, w_img = img.shape[:2]
    x1 = np.clip(rects[:, 0], 0, w_img)
    y1 = np.clip(rects[:, 1], 0, h_img)
    w = np.maximum(np.clip(rects[:, 2], 0, w_img) - x1, 0)
    h = np.maximum(np.clip(rects[:, 3], 0, h_img) - y1, 0)
    keep = w * h > 0
    if not keep.any():
        return
    colors = np.rint(np.asarray(colors, np.float32).reshape(-1, 3)[keep]).astype(np.int32)
    alpha = np.broadcast_to(np.asarray(alpha, np.float32).reshape(-1), keep.shape)[keep]
    # group rectangles of one colour and opacity together: one scatter per group
    key = (colors[:, 0] << 16 | colors[:, 1] << 8 | colors[:, 2]).astype(np.int64) * 1024 + \
        np.rint(np.clip(alpha, 0, 1) * 1000).astype(np.int64)
    order = np.argsort(key, kind="stable")
    x1, y1, w, h, key = x1[keep][order], y1[keep][order], w[keep][order], h[keep][order], key[order]
    colors, alpha = colors[order], alpha[order]
    area = w * h
    rect_of = np.repeat(np.arange(len(area), dtype=np.int32), area)
    local = np.arange(rect_of.size, dtype=np.int64) - np.repeat(np.cumsum(area) - area, area)
    wr = w[rect_of]
    index = (y1[rect_of] + local // wr) * w_img + x1[rect_of] + local % wr
    flat = img.reshape(-1, 3)
    bounds = np.concatenate([[0], np.cumsum(area)])
    groups = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    ends = np.concatenate([groups[1:], [len(key)]])
    for g, e in zip(groups.tolist(), ends.tolist()):  # one iteration per distinct colour
        idx = index[bounds[g]:bounds[e]]
        color, a = colors[g], float(alpha[g])
        if a >= 1.0:
            flat[idx] = color.astype(np.uint8)
        elif a > 0.0:
            mixed = flat[idx].astype(np.float32) * (1.0 - a) + color.astype(np.float32) * a
            flat[idx] = (mixed + 0.5).astype(np.uint8)


# 21 distinct colours for class maps (PASCAL-VOC-style bit interleaving), class k -> PALETTE[k % 21].
# Class 0 is a real class (pixels of no class are -1), so it gets VOC's colour 1, not VOC's black
# background: class k is VOC colour k + 1 (NVIDIA's segmentation samples colour class 0 too).
def _palette(n: int = 21) -> np.ndarray:
    out = np.zeros((n, 3), np.uint8)
    for k in range(n):
        c, r, g, b = k + 1, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        out[k] = (r, g, b)
    return out


PALETTE = _palette()


def overlay_class_map(img: np.ndarray, class_map: np.ndarray, rect: tuple[int, int, int, int],
                      alpha: float = 0.5, palette: np.ndarray = PALETTE) -> None:
    """Blend a (h, w) class map (-1 = nothing) over ``img[y1:y2, x1:x2]``, nearest-neighbour scaled.

    Class k is painted ``palette[k % len(palette)]``; pixels of class -1 are left untouched.
    Integer blending of the covered pixels only.
    """
    x1, y1, x2, y2 = (int(v) for v in rect)
    rw, rh = x2 - x1, y2 - y1
    cx1, cy1 = max(x1, 0), max(y1, 0)
    cx2, cy2 = min(x2, img.shape[1]), min(y2, img.shape[0])
    if cx2 <= cx1 or cy2 <= cy1:
        return
    cm = np.asarray(class_map)
    if cm.shape != (rh, rw):
        cm = cv2.resize(cm.astype(np.int16), (rw, rh), interpolation=cv2.INTER_NEAREST)
    cm = cm[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
    valid = cm >= 0
    if not valid.any():
        return
    region = img[cy1:cy2, cx1:cx2]
    lut = np.zeros((256, 1, 3), np.uint8)  # slot 0: no class; k + 1: class k's colour
    lut[1:len(palette) + 1, 0] = palette[:255]
    slot = np.where(valid, cm % min(len(palette), 255) + 1, 0).astype(np.uint8)
    color = cv2.LUT(cv2.merge([slot, slot, slot]), lut)
    a = float(np.clip(alpha, 0.0, 1.0))
    blended = cv2.addWeighted(np.ascontiguousarray(region), 1.0 - a, color, a, 0.0)
    np.copyto(region, blended, where=valid[..., None])
