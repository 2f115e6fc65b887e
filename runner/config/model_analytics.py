"""The Gst-nvdsanalytics config file (``[nvds-analytics] config-file``) as frozen dataclasses.

One class per rule kind, mirroring DeepStream's ``ROIInfo`` / ``OverCrowdingInfo`` /
``LineCrossingInfo`` / ``DirectionInfo`` (src/gst-plugins/gst-nvdsanalytics/nvds_analytics.h) and the
defaults ``nvdsanalytics_property_parser.cpp`` sets: overcrowding ``object-threshold`` 1 and
``time-threshold`` 2000 ms, line crossing ``mode`` loose and ``extended`` on (9.1's parser starts
``extended = TRUE``), direction ``mode`` balanced, ``osd-mode`` 2, ``display-font-size`` 12. Points are
in ``config-width`` × ``config-height`` pixels, as written; the pipeline scales them to the frame.

Keys are read as the plugin reads them: every ``roi-<label>`` of a group is one polygon named
``<label>``; ``line-crossing-<label>`` is 8 integers (direction x1;y1;x2;y2 then line x1;y1;x2;y2);
``direction-<label>`` is 4 integers (x1;y1;x2;y2); ``class-id`` a list (-1: every class) shared by
every rule of its group; the group's number is the stream (source) id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

__all__ = ["LineMode", "RoiRule", "OvercrowdingRule", "LineRule", "DirectionRule", "StreamRules",
           "AnalyticsConfig"]

Point = tuple[int, int]


class LineMode:
    """``mode`` of line-crossing and direction groups (eMode in nvds_analytics.h)."""

    BALANCED, STRICT, LOOSE = "balanced", "strict", "loose"
    ALL = (BALANCED, STRICT, LOOSE)


@dataclass(frozen=True, slots=True)
class RoiRule:
    """``[roi-filtering-stream-N] roi-<label>``: objects whose bottom-centre lies in the polygon."""
    label: str
    points: tuple[Point, ...]
    enable: bool = False
    inverse_roi: bool = False
    class_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class OvercrowdingRule:
    """``[overcrowding-stream-N] roi-<label>``: crowded when ``object_threshold`` objects are inside.

    ``time_threshold_ms`` is read, as DeepStream reads it, and not used: nvds_analytics.cpp leaves
    its time check as a FIXME, so the status is per frame."""
    label: str
    points: tuple[Point, ...]
    enable: bool = False
    object_threshold: int = 1
    time_threshold_ms: int = 2000
    class_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LineRule:
    """``[line-crossing-stream-N] line-crossing-<label>``: a direction vector and the line crossed."""
    label: str
    direction: tuple[Point, Point]
    line: tuple[Point, Point]
    enable: bool = False
    extended: bool = True
    mode: str = LineMode.LOOSE
    class_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DirectionRule:
    """``[direction-detection-stream-N] direction-<label>``: objects moving along (x1,y1)→(x2,y2)."""
    label: str
    start: Point
    end: Point
    enable: bool = False
    mode: str = LineMode.BALANCED
    class_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamRules:
    """Every rule for one stream, in the order the file lists them."""
    roi: tuple[RoiRule, ...] = ()
    overcrowding: tuple[OvercrowdingRule, ...] = ()
    lines: tuple[LineRule, ...] = ()
    directions: tuple[DirectionRule, ...] = ()


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """The whole file: ``[property]`` and the rules per stream id."""
    enable: bool
    config_width: int
    config_height: int
    osd_mode: int = 2  # 0: nothing drawn, 1: ROIs/lines and labels, 2: also counts and object status
    font_size: int = 12
    obj_cnt_win_in_ms: int = 0  # 0: the plugin's default window (50 ms, also the history length)
    display_obj_cnt: bool = False
    streams: Mapping[int, StreamRules] = field(default_factory=lambda: MappingProxyType({}))
    path: Path | None = None
