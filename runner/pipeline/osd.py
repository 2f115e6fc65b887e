"""The on-screen display (``[osd]``): boxes, labels, segmentation masks and the clock, drawn into frames.

What is drawn follows deepstream-app (``process_meta`` in deepstream_app.c and nvdsosd's properties):

- a box per object, ``border-width`` px, coloured by the object's GIE group: ``bbox-border-color<N>``
  for its class, else ``bbox-border-color``, else red; ``bbox-bg-color<N>`` fills it (only class keys);
- a label at (left, top - 30): ``obj_label``, then the track id when the object is tracked, then every
  classifier label (ordered by gie-unique-id) — in ``text-color`` on ``text-bg-color``, ``text-size`` pt.
  As in deepstream-app, labels are hidden on a tiled display of several sources unless
  ``show_tiled_text=True`` (deepstream-app's ``--tiledtext``);
- ``display-mask=1``: each GIE's class map from ``Batch.masks`` blended over its frame;
- ``show-clock=1``: the wall clock at (clock-x-offset, clock-y-offset) in ``clock-color`` (opaque: like
  deepstream-app, its alpha is ignored), ``clock-text-size`` pt.

It draws on ``batch.tiled`` when the tiler made one (boxes mapped through ``batch.tile_transform``) and on
``batch.frames`` when there is no tiler or the tiler keeps per-source outputs (``enable=2``).
Frames are drawn in place unless they are read-only (``frames.flags.writeable`` False): a stage that keeps
a reference to frames marks them read-only and the OSD draws on a copy (copy-on-write).

>>> import numpy as np
>>> from types import SimpleNamespace
>>> from runner.pipeline.batch import Batch, Objects
>>> osd = SimpleNamespace(border_width=2, display_text=False)
>>> b = Batch(frames=np.zeros((1, 40, 60, 3), np.uint8), source_id=np.array([0]),
...           frame_num=np.array([0]), pts=np.array([0]), ntp_ts=np.array([0]),
...           source_size=np.array([[60, 40]]))
>>> b.objects = Objects.from_columns(frame=[0], gie_id=1, xyxy=[[10, 10, 30, 30]])
>>> out = OsdStage(osd, border_colors={1: {-1: (0, 1, 0, 1)}}).process(b)
>>> out.frames[0, 10, 20].tolist(), out.frames[0, 20, 20].tolist()
([0, 255, 0], [0, 0, 0])
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from runner.pipeline.batch import Batch
from runner.pipeline.labels import app_gies, app_labels, gie_id, object_labels
from runner.pipeline.osd_draw import border_rects, clip_boxes, fill_rects, overlay_class_map, parse_rgba

__all__ = ["OsdStage", "TextStyle", "colors_from_gies", "build_osd_stage"]

RED = (1.0, 0.0, 0.0, 1.0)
LABEL_Y_OFFSET = 30  # deepstream_app.c process_meta: text y = rect top - 30


class TextStyle:
    """A DeepStream font description (name, size in points) mapped onto OpenCV's Hershey fonts."""

    def __init__(self, font: str | None, size_pt: float) -> None:
        name = (font or "Serif").lower()
        self.face = cv2.FONT_HERSHEY_COMPLEX if "serif" in name and "sans" not in name \
            else cv2.FONT_HERSHEY_SIMPLEX
        # points -> px at 96 dpi, cap height ~0.72 em; Hershey cap height is ~22 px at scale 1
        self.scale = max(float(size_pt), 1.0) * (96 / 72) * 0.72 / 22.0
        self.thickness = max(1, int(round(self.scale * 1.6)))
        self._sizes: dict[str, tuple[int, int, int]] = {}

    def size(self, text: str) -> tuple[int, int, int]:
        hit = self._sizes.get(text)
        if hit is None:
            (w, h), base = cv2.getTextSize(text, self.face, self.scale, self.thickness)
            hit = self._sizes[text] = (w, h, base)
            if len(self._sizes) > 4096:  # labels repeat; track ids make new ones forever
                self._sizes.clear()
        return hit


def _get(cfg, name, default):
    value = getattr(cfg, name, default) if cfg is not None else default
    return default if value is None else value


def colors_from_gies(gies: Sequence) -> tuple[dict, dict]:
    """``(border_colors, bg_colors)`` — gie-unique-id → class id (-1: every class) → RGBA — read from the
    app's ``[primary-gie]``/``[secondary-gieN]`` configs (``bbox-border-color[N]``, ``bbox-bg-color<N>``).

    Accepts a colour field holding one colour (``bbox_border_color``) or a mapping class → colour.
    """
    border: dict[int, dict[int, tuple]] = {}
    bg: dict[int, dict[int, tuple]] = {}
    for gie in gies:
        gid = gie_id(gie)
        for attr, table in (("bbox_border_color", border), ("bbox_bg_color", bg)):
            entry = table.setdefault(gid, {})
            for name in (attr, attr + "s"):
                value = getattr(gie, name, None)
                if value is None:
                    continue
                if isinstance(value, Mapping):
                    entry.update({int(k): parse_rgba(v) for k, v in value.items()})
                else:
                    entry[-1] = parse_rgba(value)
    return border, bg


class OsdStage:
    """Draws ``[osd]`` overlays; see the module docstring for exactly what and where.

    ``labels``: gie-unique-id → class labels; ``border_colors``/``bg_colors``: from
    :func:`colors_from_gies`; ``tiled_display``: the ``[tiled-display]`` config (or None);
    ``num_sources``: how many sources the run has (labels show on a tiled display of one source).
    """

    name = "osd"

    def __init__(self, osd, *, labels: Mapping[int, Sequence[str]] | None = None,
                 border_colors: Mapping[int, Mapping[int, tuple]] | None = None,
                 bg_colors: Mapping[int, Mapping[int, tuple]] | None = None,
                 tiled_display=None, num_sources: int = 1, show_tiled_text: bool = False,
                 show_track_id: bool = True, mask_alpha: float = 0.5,
                 clock: Callable[[], str] | None = None) -> None:
        self.labels = labels or {}
        self.border_colors = border_colors or {}
        self.bg_colors = bg_colors or {}
        self.border_width = int(_get(osd, "border_width", 0))
        self.display_bbox = bool(_get(osd, "display_bbox", True))
        self.display_text = bool(_get(osd, "display_text", True))
        self.display_mask = bool(_get(osd, "display_mask", False))
        self.text = TextStyle(_get(osd, "font", "Serif"), _get(osd, "text_size", 12))
        self.text_rgba = parse_rgba(_get(osd, "text_color", (1.0, 1.0, 1.0, 1.0)))
        bg = parse_rgba(_get(osd, "text_bg_color", (0.0, 0.0, 0.0, 0.0)))
        self.text_bg_rgba = bg if any(c > 0 for c in bg) else None  # parse_osd: text_has_bg
        self.show_clock = bool(_get(osd, "show_clock", False))
        self.clock_xy = (int(_get(osd, "clock_x_offset", 0)), int(_get(osd, "clock_y_offset", 0)))
        self.clock_style = TextStyle(_get(osd, "font", "Serif"), _get(osd, "clock_text_size", 12))
        self.clock_rgb = tuple(int(c * 255) for c in parse_rgba(_get(osd, "clock_color", RED))[:3])
        self.clock = clock or (lambda: time.strftime("%H:%M:%S"))
        tiler_mode = int(_get(tiled_display, "enable", 0))
        self.draw_frames_when_tiled = tiler_mode == 2
        # deepstream_app.c process_meta: bbox text on a tiled display only for a single source
        self.show_text = self.display_text and (tiler_mode == 0 or num_sources == 1 or show_tiled_text)
        self.show_track_id = show_track_id
        self.mask_alpha = float(mask_alpha)

    # ---- per-object attributes (vectorised over the batch's objects) ---------------------------
    def _colors(self, batch: Batch, table) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) RGB 0..255 and (n,) alpha per object; NaN alpha where no colour applies."""
        objs = batch.objects
        rgba = np.full((len(objs), 4), np.nan, np.float32)
        for gid, per_class in table.items():
            rows = objs.gie_id == gid
            if -1 in per_class:
                rgba[rows] = per_class[-1]
            for cid, color in per_class.items():
                if cid >= 0:
                    rgba[rows & (objs.class_id == cid)] = color
        return rgba[:, :3] * 255.0, rgba[:, 3]

    def label_texts(self, batch: Batch) -> list[str]:
        """Each object's label text: obj_label, track id when tracked, classifier labels by GIE id."""
        objs = batch.objects
        texts = object_labels(objs, self.labels).tolist()
        if self.show_track_id:
            for i in np.flatnonzero(objs.track_id >= 0).tolist():
                texts[i] = f"{texts[i]} {int(objs.track_id[i])}"
        cls = batch.classifications
        if len(cls):
            rows = np.flatnonzero(cls.obj >= 0)
            order = rows[np.lexsort((cls.head[rows], cls.gie_id[rows]))]
            for r in order.tolist():
                if cls.label[r]:
                    o = int(cls.obj[r])
                    texts[o] = f"{texts[o]} {cls.label[r]}"
        ov = batch.overlay
        if ov is not None:
            for r, extra in zip(ov.obj.tolist(), ov.obj_text.tolist()):
                if r < len(texts):  # nvdsanalytics osd-mode 2: the object's status after its label
                    texts[r] = f"{texts[r]} {extra}"
        return [t.strip() for t in texts]

    # ---- drawing ---------------------------------------------------------------------------------
    def _draw(self, img: np.ndarray, boxes: np.ndarray, rgb, alpha, bg_rgb, bg_alpha, texts) -> None:
        h, w = img.shape[:2]
        self._draw_rects(img, clip_boxes(boxes, w, h), rgb, alpha, bg_rgb, bg_alpha)
        self._draw_labels(img, boxes, texts)

    def _draw_rects(self, img: np.ndarray, ib: np.ndarray, rgb, alpha, bg_rgb, bg_alpha) -> None:
        """Backgrounds, then borders, of pixel boxes ``ib`` (already clipped to their frame)."""
        if len(ib) and not np.isnan(bg_alpha).all():
            has = ~np.isnan(bg_alpha)
            fill_rects(img, ib[has], bg_rgb[has], bg_alpha[has])
        if self.display_bbox and self.border_width > 0 and len(ib):
            a = np.nan_to_num(alpha, nan=1.0)
            c = np.where(np.isnan(rgb), np.array([255.0, 0.0, 0.0], np.float32), rgb)
            fill_rects(img, border_rects(ib, self.border_width), np.repeat(c, 4, 0), np.repeat(a, 4))

    def _draw_labels(self, img: np.ndarray, boxes: np.ndarray, texts) -> None:
        if texts:
            self._draw_texts(img, [(int(b[0]), int(b[1]) - LABEL_Y_OFFSET, t)
                                   for b, t in zip(np.rint(boxes).astype(int), texts) if t])

    def _draw_texts(self, img, items, style=None, rgb=None, bg=None) -> None:
        style = style or self.text
        rgb = rgb or tuple(int(c * 255) for c in self.text_rgba[:3])
        bg = self.text_bg_rgba if bg is None else bg
        h, w = img.shape[:2]
        placed = []
        for x, y, text in items:
            tw, th, base = style.size(text)
            x = min(max(x, 0), max(w - tw, 0))
            y = min(max(y, 0), max(h - th - base, 0))
            placed.append((x, y, tw, th, base, text))
        fill = bg is not None and bg[3] > 0
        bg_rgb = np.array(bg[:3], np.float32) * 255 if fill else None
        draw_text = not (self.text_rgba[3] <= 0 and style is self.text)
        for x, y, tw, th, base, text in placed:  # text is drawn label by label anyway
            if fill:
                region = img[y:y + th + base + 4, x:x + tw + 4]
                if bg[3] >= 1:
                    region[:] = bg_rgb.astype(np.uint8)
                else:
                    region[:] = (region * (1 - bg[3]) + bg_rgb * bg[3] + 0.5).astype(np.uint8)
            if draw_text:
                cv2.putText(img, text, (x + 2, y + 2 + th), style.face, style.scale, rgb,
                            style.thickness, cv2.LINE_AA)

    def _draw_clock(self, img) -> None:
        x, y = self.clock_xy
        self._draw_texts(img, [(x, y, self.clock())], style=self.clock_style, rgb=self.clock_rgb,
                         bg=(0, 0, 0, 0))

    # ---- the stage -------------------------------------------------------------------------------
    def process(self, batch: Batch) -> Batch:
        objs = batch.objects
        rgb, alpha = self._colors(batch, self.border_colors)
        bg_rgb, bg_alpha = self._colors(batch, self.bg_colors)
        texts = self.label_texts(batch) if self.show_text and len(objs) else None
        if batch.overlay is not None and len(batch.overlay.obj):
            rgb = np.where(np.isnan(rgb), np.float32(255) * np.array(RED[:3], np.float32), rgb)
            inv = batch.overlay.obj[batch.overlay.obj_invert]
            rgb[inv[inv < len(rgb)]] = 255.0 - rgb[inv[inv < len(rgb)]]
        if batch.tiled is not None:
            batch.tiled = self._writable(batch.tiled)
            self._draw_tiled(batch, rgb, alpha, bg_rgb, bg_alpha, texts)
        if batch.tiled is None or self.draw_frames_when_tiled:
            self._draw_frames(batch, rgb, alpha, bg_rgb, bg_alpha, texts)
        return batch

    @staticmethod
    def _writable(arr: np.ndarray) -> np.ndarray:
        return arr if arr.flags.writeable else arr.copy()

    def _draw_frames(self, batch, rgb, alpha, bg_rgb, bg_alpha, texts) -> None:
        frames = batch.host_frames()
        if isinstance(frames, np.ndarray):
            frames = self._writable(frames)
        else:
            frames = [self._writable(np.asarray(f)) for f in frames]
        batch.frames = frames
        objs = batch.objects
        # frames of one (B, H, W, 3) array are drawn as one image B*H rows tall: every box and label
        # background of the batch in one pass (boxes are clipped to their own frame first, so no
        # frame's pixels change another's and the result is the frame-by-frame drawing)
        stacked = isinstance(frames, np.ndarray) and frames.ndim == 4 and frames.flags.c_contiguous
        if stacked:
            n, h, w = frames.shape[:3]
            if self.display_mask:
                for i in range(n):
                    for masks in batch.masks.values():
                        overlay_class_map(frames[i], masks[i], (0, 0, w, h), self.mask_alpha)
            ib = clip_boxes(objs.xyxy, w, h)
            ib[:, [1, 3]] += (objs.frame.astype(np.int32) * h)[:, None]
            self._draw_rects(frames.reshape(n * h, w, 3), ib, rgb, alpha, bg_rgb, bg_alpha)
        by_frame = np.argsort(objs.frame, kind="stable")
        bounds = np.searchsorted(objs.frame[by_frame], np.arange(len(batch) + 1))
        for i in range(len(batch)):  # per frame: labels (one text each), overlays, the clock
            img = frames[i]
            rows = by_frame[bounds[i]:bounds[i + 1]]
            if stacked:
                self._draw_labels(img, objs.xyxy[rows], [texts[r] for r in rows] if texts else None)
            else:
                if self.display_mask:
                    for masks in batch.masks.values():
                        overlay_class_map(img, masks[i], (0, 0, img.shape[1], img.shape[0]), self.mask_alpha)
                self._draw(img, objs.xyxy[rows], rgb[rows], alpha[rows], bg_rgb[rows], bg_alpha[rows],
                           [texts[r] for r in rows] if texts else None)
            if batch.overlay is not None:
                self._draw_overlay(img, batch.overlay, i, (0.0, 0.0, 1.0, 1.0))
            if self.show_clock:
                self._draw_clock(img)

    def _overlay_style(self, size: int) -> TextStyle:
        styles = self.__dict__.setdefault("_overlay_styles", {})
        return styles.setdefault(size, TextStyle("Serif", size))

    def _draw_overlay(self, img: np.ndarray, ov, i: int, tf) -> None:
        """Frame ``i``'s lines and texts of a stage's :class:`~runner.pipeline.batch.Overlay`
        (``tf``: x offset, y offset, x scale, y scale of the frame in ``img``)."""
        ox, oy, sx, sy = (float(v) for v in tf)
        for (x1, y1, x2, y2), rgba, width in zip(ov.lines[ov.line_frame == i].tolist(),
                                                 ov.line_rgba[ov.line_frame == i].tolist(),
                                                 ov.line_width[ov.line_frame == i].tolist()):
            cv2.line(img, (int(x1 * sx + ox), int(y1 * sy + oy)), (int(x2 * sx + ox), int(y2 * sy + oy)),
                     tuple(int(c * 255) for c in rgba[:3]), max(1, int(width)), cv2.LINE_AA)
        for r in np.flatnonzero(ov.text_frame == i).tolist():
            x, y = ov.text_xy[r]
            self._draw_texts(img, [(int(x * sx + ox), int(y * sy + oy), str(ov.text[r]))],
                             style=self._overlay_style(int(ov.text_size[r])),
                             rgb=tuple(int(c * 255) for c in ov.text_rgba[r][:3]), bg=tuple(ov.text_bg[r]))

    def _draw_tiled(self, batch, rgb, alpha, bg_rgb, bg_alpha, texts) -> None:
        img = batch.tiled
        tf = np.asarray(batch.tile_transform, np.float32).reshape(-1, 4)
        if self.display_mask and batch.masks:
            sizes = _frame_sizes(batch)
            for i in range(len(batch)):
                if np.isnan(tf[i]).any():
                    continue
                ox, oy, sx, sy = tf[i]
                fw, fh = sizes[i]
                rect = (int(round(ox)), int(round(oy)), int(round(ox + fw * sx)), int(round(oy + fh * sy)))
                for masks in batch.masks.values():
                    overlay_class_map(img, masks[i], rect, self.mask_alpha)
        objs = batch.objects
        t = tf[objs.frame] if len(objs) else np.zeros((0, 4), np.float32)
        shown = ~np.isnan(t).any(axis=1)
        rows = np.flatnonzero(shown)
        t = t[rows]
        boxes = objs.xyxy[rows] * np.concatenate([t[:, 2:], t[:, 2:]], 1) + \
            np.concatenate([t[:, :2], t[:, :2]], 1)
        self._draw(img, boxes, rgb[rows], alpha[rows], bg_rgb[rows], bg_alpha[rows],
                   [texts[r] for r in rows] if texts else None)
        if batch.overlay is not None:
            for i in range(len(batch)):
                if not np.isnan(tf[i]).any():
                    self._draw_overlay(img, batch.overlay, i, tf[i])
        if self.show_clock:
            self._draw_clock(img)

    def close(self) -> None:
        pass


def _frame_sizes(batch: Batch) -> list[tuple[int, int]]:
    return list(zip(*(v.tolist() for v in batch.frame_sizes())))


def build_osd_stage(app, *, show_tiled_text: bool = False) -> OsdStage | None:
    """The OSD stage of an AppConfig (None when ``[osd] enable=0``). Goes after the tiler."""
    if not getattr(app.osd, "enable", False):
        return None
    border, bg = colors_from_gies(app_gies(app))
    tracker = getattr(app, "tracker", None)
    show_ids = bool(getattr(tracker, "display_tracking_id", True)) if tracker is not None else True
    return OsdStage(app.osd, labels=app_labels(app), border_colors=border, bg_colors=bg,
                    tiled_display=app.tiled_display, num_sources=max(1, len(app.sources)),
                    show_tiled_text=show_tiled_text, show_track_id=show_ids)
