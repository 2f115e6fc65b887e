"""The ``[nvds-analytics]`` stage: Gst-nvdsanalytics after the tracker, as deepstream-app places it.

For each frame it runs the stream's :class:`~runner.pipeline.analytics.context.StreamContext` (one per
source id, created on the source's first frame with that frame's size, as the plugin does) and attaches:

- ``Batch.analytics_frames`` — per frame and rule the counts (``NvDsAnalyticsFrameMeta``);
- ``Batch.analytics_objects`` — per object with a status (``NvDsAnalyticsObjInfo``);
- ``Batch.overlay`` — what gstnvdsanalytics.cpp's ``attach_framemeta_analytics_metadata`` asks nvdsosd
  to draw with ``osd-mode`` 1 or 2: ROIs (yellow), overcrowding ROIs (orange), direction arrows (red),
  line-crossing arrows and lines (green), their labels (with counts in mode 2) and, with
  ``display-obj-cnt=1``, "Count for ClassId0=… ClassId1=…".

Cumulative crossings per line and objects per ROI go to ``RunStats.analytics`` (dashboard, metrics).
"""

from __future__ import annotations

import numpy as np

from runner.config.model_analytics import AnalyticsConfig, StreamRules
from runner.pipeline.analytics.context import HIST_DEFAULT, StreamContext
from runner.pipeline.analytics.geometry import arrow_head
from runner.pipeline.batch import AnalyticsFrames, AnalyticsObjects, Batch, Overlay

__all__ = ["AnalyticsStage", "build_analytics_stage"]

YELLOW, ORANGE, RED, GREEN = (1.0, 1.0, 0.0, 1.0), (1.0, 0.5, 0.0, 1.0), (1.0, 0.0, 0.0, 1.0), (0.0, 1.0, 0.0, 1.0)
BLACK = (0.0, 0.0, 0.0, 1.0)
LINE_WIDTH = 2


class AnalyticsStage:
    name = "nvds-analytics"

    def __init__(self, config: AnalyticsConfig, stats=None) -> None:
        self.config = config
        self.stats = stats
        self.contexts: dict[int, StreamContext] = {}

    def _context(self, source_id: int, frame_size: tuple[int, int]) -> StreamContext:
        ctx = self.contexts.get(source_id)
        if ctx is None:
            window = self.config.obj_cnt_win_in_ms or HIST_DEFAULT
            rules = self.config.streams.get(source_id, StreamRules())
            ctx = self.contexts[source_id] = StreamContext(
                rules, (self.config.config_width, self.config.config_height), frame_size,
                hist=window, window_ms=window)
        return ctx

    def process(self, batch: Batch) -> Batch:
        if not self.config.enable:  # passthrough, as the plugin with enable=0
            return batch
        objs = batch.objects
        frames = batch.frames
        rows: list[tuple] = []
        results: list[tuple] = []  # (object rows, FrameResult) per frame
        overlay = _OverlayBuilder(self.config)
        for i in range(len(batch)):
            sid = int(batch.source_id[i])
            h, w = (frames[i].shape[:2] if frames is not None else batch.source_size[i][::-1])
            ctx = self._context(sid, (int(w), int(h)))
            mine = np.flatnonzero(objs.frame == i)
            res = ctx.process(int(batch.pts[i]), objs.xyxy[mine], objs.class_id[mine], objs.track_id[mine])
            results.append((mine, res))
            rows += [(i, "class", str(c), n, 0, False) for c, n in sorted(res.class_count.items())]
            rows += [(i, "roi", label, n, 0, False) for label, n in res.roi_count.items()]
            rows += [(i, "overcrowding", label, n, 0, res.oc_status[label]) for label, n in res.oc_count.items()]
            rows += [(i, "line", label, n, res.line_total[label], False) for label, n in res.line_now.items()]
            overlay.add(i, ctx, res)
            if self.stats is not None:
                self.stats.analytics_frame(sid, res.line_total, res.roi_count, res.oc_count, res.oc_status)
        batch.analytics_frames = AnalyticsFrames.from_rows(rows)
        batch.analytics_objects = _objects(results)
        if self.config.osd_mode or self.config.display_obj_cnt:
            batch.overlay = overlay.build(batch.analytics_objects if self.config.osd_mode == 2 else None)
        return batch

    def close(self) -> None:
        pass


def _objects(results: list[tuple]) -> AnalyticsObjects:
    """The flagged objects of every frame (as the plugin attaches NvDsAnalyticsObjInfo only to those)."""
    def pick(name: str) -> np.ndarray:
        return np.concatenate([getattr(r, name)[r.flagged] for _, r in results]) if results else np.zeros(0, object)

    obj = np.concatenate([rows[r.flagged] for rows, r in results]) if results else np.zeros(0)
    return AnalyticsObjects(obj=obj.astype(np.int32), status=pick("status"), roi=pick("roi"),
                            overcrowding=pick("overcrowding"), lines=pick("lines"), direction=pick("direction"))


class _OverlayBuilder:
    """Collects the display meta of ``attach_framemeta_analytics_metadata`` for a batch."""

    def __init__(self, config: AnalyticsConfig) -> None:
        self.mode, self.size, self.show_counts = config.osd_mode, config.font_size, config.display_obj_cnt
        self.lines: list[tuple] = []
        self.texts: list[tuple] = []

    def _line(self, i, p, q, rgba) -> None:
        self.lines.append((i, (p[0], p[1], q[0], q[1]), rgba))

    def _arrow(self, i, p, q, rgba) -> None:
        self._line(i, p, q, rgba)
        x3, y3, x4, y4 = arrow_head(p[0], p[1], q[0], q[1])
        self._line(i, (x3, y3), q, rgba)
        self._line(i, (x4, y4), q, rgba)

    def _polygon(self, i, pts, rgba) -> None:
        for k in range(len(pts)):
            self._line(i, pts[k], pts[(k + 1) % len(pts)], rgba)

    def add(self, i: int, ctx: StreamContext, res) -> None:
        if self.show_counts:
            text = "Count for" + "".join(f" ClassId{c}={n}" for c, n in sorted(res.class_count.items()))
            self.texts.append((i, (5, 5), text, (1.0, 1.0, 0.0, 1.0)))
        if not self.mode:
            return
        full = self.mode == 2
        for label, on, pts in ctx.drawn_roi:
            if on:
                self.texts.append((i, (pts[0][0], pts[1][1]), f"{label}={res.roi_count[label]}" if full else label,
                                   YELLOW))
                self._polygon(i, pts, YELLOW)
        for label, on, pts in ctx.drawn_oc:
            if on:
                text = (f"{label} OverCrowding={'True' if res.oc_status[label] else 'False'}, "
                        f"Count={res.oc_count[label]}") if full else label
                self.texts.append((i, (pts[0][0], pts[1][1]), text, ORANGE))
                self._polygon(i, pts, ORANGE)
        for label, on, start, end in ctx.drawn_dirs:
            if on:
                self.texts.append((i, start, label, RED))
                self._arrow(i, start, end, RED)
        for label, on, d1, d2, l1, l2 in ctx.drawn_lines:
            if on:
                self.texts.append((i, l2, f"{label}={res.line_total[label]}" if full else f"{label} ", GREEN))
                self._arrow(i, d1, d2, GREEN)
                self._line(i, l1, l2, GREEN)

    def build(self, objects: AnalyticsObjects | None) -> Overlay:
        """The overlay; with ``objects`` (osd-mode 2) each object's status is appended to its label and
        objects in an ROI or on a line get the inverse border colour (``attach_metadata_object``)."""
        lf = np.asarray([f for f, _, _ in self.lines], np.int32)
        k = np.zeros(0, np.int32) if objects is None else objects.obj
        status = np.zeros(0, object) if objects is None else objects.status
        tf = np.asarray([f for f, *_ in self.texts], np.int32)
        return Overlay(
            line_frame=lf, lines=np.asarray([xy for _, xy, _ in self.lines], np.int32).reshape(-1, 4),
            line_rgba=np.asarray([c for *_, c in self.lines], np.float32).reshape(-1, 4),
            line_width=np.full(len(lf), LINE_WIDTH, np.int32),
            text_frame=tf, text_xy=np.asarray([xy for _, xy, _, _ in self.texts], np.int32).reshape(-1, 2),
            text=np.asarray([t for _, _, t, _ in self.texts], object),
            text_rgba=np.asarray([c for *_, c in self.texts], np.float32).reshape(-1, 4),
            text_bg=np.tile(np.asarray(BLACK, np.float32), (len(tf), 1)),
            text_size=np.full(len(tf), self.size, np.int32),
            obj=k, obj_text=status,
            obj_invert=np.array([" ROI:" in t or " LC:" in t for t in status], bool).reshape(-1))


def build_analytics_stage(app, stats=None) -> AnalyticsStage | None:
    """The stage for an enabled ``[nvds-analytics]`` whose config file was read; None otherwise."""
    group = getattr(app, "nvds_analytics", None)
    if group is None or not group.enable or getattr(group, "analytics", None) is None:
        return None
    return AnalyticsStage(group.analytics, stats)
