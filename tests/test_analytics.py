"""[nvds-analytics]: DeepStream's config files read as the plugin reads them, the vectorised analytics equal
to a line-by-line port of nvds_analytics.cpp (tests/analytics_reference.py), the geometry against OpenCV,
and located errors for configs the plugin would refuse."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from runner.config.keyfile import parse_keyfile
from runner.config.load_analytics import analytics_from_document, read_analytics
from runner.config.model_analytics import DirectionRule, LineRule, RoiRule, StreamRules
from runner.pipeline.analytics.context import StreamContext
from runner.pipeline.analytics.geometry import in_polygon
from runner.pipeline.analytics.smoothing import CountSmoother
from tests.analytics_reference import ReferenceContext

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "deepstream" / "src" / "apps" / \
    "sample_apps"
NVDSANALYTICS_TEST = SAMPLES / "deepstream-nvdsanalytics-test" / "config_nvdsanalytics.txt"
TEST5 = SAMPLES / "deepstream-test5" / "configs" / "config_nvdsanalytics.txt"


@pytest.mark.parametrize("path", [NVDSANALYTICS_TEST, TEST5], ids=["nvdsanalytics-test", "test5"])
def test_deepstream_sample_config_is_read_as_the_plugin_reads_it(path):
    diags: list = []
    cfg = read_analytics(path, diags)
    assert diags == []
    assert (cfg.enable, cfg.config_width, cfg.config_height, cfg.osd_mode, cfg.font_size) == (True, 1920, 1080, 2, 12)
    s0, s1, s2 = cfg.streams[0], cfg.streams[1], cfg.streams[2]
    assert s0.roi == (RoiRule("RF", ((295, 643), (579, 634), (642, 913), (56, 828)), True, False, (-1,)),)
    assert s2.roi[0].inverse_roi is True and s2.roi[0].class_ids == (0,)
    oc = s1.overcrowding[0]
    assert (oc.label, oc.object_threshold, oc.time_threshold_ms, oc.class_ids) == ("OC", 3, 2000, (-1,))
    assert s0.lines == (LineRule("Exit", ((789, 672), (1084, 900)), ((851, 773), (1203, 732)), True, False,
                                 "loose", (0,)),)
    # "direction-South=284;840;360;662;" — 4 integers and a trailing separator GLib drops
    assert [(d.label, d.start, d.end, d.class_ids) for d in s0.directions] == [
        ("South", (284, 840), (360, 662), (0,)), ("North", (1106, 622), (1312, 701), (0,))]


@pytest.mark.parametrize("text, where, words", [
    (b"[property]\nenable=1\nconfig-width=1920\n", "[property]", "config-height is not set"),
    (b"[property]\nenable=1\nconfig-width=1920\nconfig-height=1080\n[line-crossing-stream-0]\nenable=1\n"
     b"line-crossing-Exit=789;672;1084;900;851;773\n", "a.txt:7 [line-crossing-stream-0] line-crossing-Exit",
     "6 integers where nvdsanalytics reads 8"),
    (b"[property]\nenable=1\nconfig-width=1920\nconfig-height=1080\n[roi-filtering-stream-0]\nenable=1\n"
     b"inverse-roi=0\n", "[roi-filtering-stream-0]", "no roi-<label> key"),
    (b"[property]\nenable=1\nconfig-width=1920\nconfig-height=1080\nosd-mode=3\n", "a.txt:5 [property] osd-mode",
     "out of range"),
    (b"[property]\nenable=1\nconfig-width=1920\nconfig-height=1080\n[roi-filtering-stream-0]\nenable=1\n"
     b"roi-A=10;-5;100;10;100;100\n", "a.txt:7 [roi-filtering-stream-0] roi-A", "must be >= 0"),
])
def test_configs_the_plugin_refuses_are_located_errors(text, where, words):
    diags: list = []
    analytics_from_document(parse_keyfile(text, "a.txt"), diags)
    errors = [str(d) for d in diags if d.is_error]
    assert len(errors) == 1 and where in errors[0] and words in errors[0], diags


def test_point_in_polygon_agrees_with_opencv_away_from_edges():
    rng = np.random.default_rng(7)
    poly = [(295, 643), (579, 634), (642, 913), (56, 828)]  # the samples' ROI
    x, y = rng.integers(0, 1000, 4000), rng.integers(500, 1000, 4000)
    contour = np.array(poly, np.int32).reshape(-1, 1, 2)
    dist = np.array([cv2.pointPolygonTest(contour, (float(a), float(b)), True) for a, b in zip(x, y)])
    clear = np.abs(dist) > 1.5  # the C test truncates intercepts: points on an edge may go either way
    assert clear.sum() > 3000
    np.testing.assert_array_equal(in_polygon(poly, x, y)[clear], (dist > 0)[clear])


def test_class_counts_follow_the_most_frequent_count_in_the_window():
    # 10 fps: 100 ms apart, so a 250 ms window holds 3 frames (this one and the two before)
    s = CountSmoother(250)
    counts = [1, 1, 2, 1, 1, 3, 3, 3, 0]
    got = [s.update(([0], [n]) if n else ([], []), k * 100_000_000)[0] for k, n in enumerate(counts)]
    # by hand: window {1}, {1,1}, {1,1,2}, {1,2,1}, {2,1,1}, {1,1,3}, {1,3,3}, {3,3,3}, {3,3,0}
    assert got == [1, 1, 1, 1, 1, 1, 3, 3, 3]


def _walkers(rng, n_people: int, n_frames: int, untracked: bool):
    """People walking straight lines with jitter, some standing, boxes ~ 60x150 px in a 1920x1080 frame."""
    people = []
    for k in range(n_people):
        start = rng.uniform([100, 300], [1700, 900])
        velocity = rng.uniform(-25, 25, 2) * (rng.random() > 0.2)
        first = int(rng.integers(0, n_frames // 2))
        last = int(rng.integers(first + 5, n_frames))
        size = rng.uniform([40, 110], [80, 190])
        people.append((k if not (untracked and k % 4 == 3) else -1, start, velocity, first, last, size,
                       int(k % 3 == 2)))
    frames = []
    for f in range(n_frames):
        objs = []
        for oid, start, vel, first, last, size, cls in people:
            if first <= f <= last and rng.random() > 0.05:  # missed detections now and then
                cx, cy = start + vel * (f - first) + rng.normal(0, 2 if vel.any() else 0.4, 2)
                w, h = size + rng.normal(0, 2, 2)
                objs.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, oid, cls))
        frames.append(objs)
    return frames


RULES = StreamRules(
    roi=(RoiRule("RF", ((295, 643), (579, 634), (642, 913), (56, 828)), True, False, (-1,)),
         RoiRule("OUT", ((900, 300), (1500, 300), (1500, 800), (900, 800)), True, True, (0, 2))),
    lines=(LineRule("Exit", ((789, 672), (1084, 900)), ((851, 773), (1203, 732)), True, False, "loose", (0,)),
           LineRule("Bal", ((1000, 200), (1000, 900)), ((200, 500), (1800, 500)), True, True, "balanced", ()),
           LineRule("Str", ((1400, 900), (1400, 100)), ((700, 600), (1900, 600)), True, False, "strict", (-1,)),
           LineRule("Side", ((200, 600), (1700, 600)), ((900, 100), (900, 1000)), True, True, "loose", ())),
    directions=(DirectionRule("East", (100, 500), (1800, 500), True, "balanced", ()),
                DirectionRule("North", (900, 1000), (900, 100), True, "balanced", (0, 1))))


@pytest.mark.parametrize("seed, untracked", [(1, False), (2, False), (3, True)])
def test_vectorised_analytics_equal_the_reference_port(seed, untracked):
    rng = np.random.default_rng(seed)
    frames = _walkers(rng, 30, 150, untracked)
    mine = StreamContext(RULES, (1920, 1080), (1280, 720))
    ref = ReferenceContext(RULES, (1920, 1080), (1280, 720))
    scale = np.array([1280 / 1920, 720 / 1080] * 2, np.float32)
    crossings, statuses = 0, ""
    for f, objs in enumerate(frames):
        pts = f * 33_366_667
        xyxy = np.array([o[:4] for o in objs], np.float32).reshape(-1, 4) * scale
        ids = np.array([o[4] for o in objs], np.int64)
        cls = np.array([o[5] for o in objs], np.int32)
        got = mine.process(pts, xyxy, cls, ids)
        # ObjInf: left/top/width/height are the float rect's values truncated to uint32
        boxes = [(int(x1), int(y1), int(x2 - x1), int(y2 - y1)) for x1, y1, x2, y2 in xyxy.tolist()]
        want = ref.process(pts, [(max(b[0], 0), max(b[1], 0), max(b[2], 0), max(b[3], 0), int(i), int(c))
                                 for b, i, c in zip(boxes, ids, cls)])
        assert got.status.tolist() == want[0], f"frame {f}"
        assert {k: v for k, v in got.roi_count.items() if v} == want[1], f"frame {f}"
        assert got.lines.tolist() == want[2], f"frame {f}"
        assert got.line_total == {r.label: want[3].get(r.label, 0) for r in RULES.lines}, f"frame {f}"
        crossings += sum(map(len, got.lines))
        statuses += "".join(got.status)
    # the tracks exercise every rule (a comparison of empty results would prove nothing); an untracked
    # object switches line crossing and direction off, as DeepStream does
    assert "ROI:RF" in statuses and "ROI:OUT" in statuses
    if untracked:
        assert crossings == 0 and "DIR:" not in statuses
    else:
        assert crossings >= 5 and "DIR:East" in statuses and "DIR:North" in statuses and "STOPPED" in statuses


def _app(tmp_path, analytics_group: str, tracker: bool = False) -> Path:
    app = tmp_path / "app.txt"
    app.write_text("[source0]\nenable=1\ntype=3\nuri=file:///usr/share/doc/opencv-doc/examples/data/vtest.avi\n\n"
                   "[streammux]\nwidth=768\nheight=576\n\n" + analytics_group
                   + ("\n[tracker]\nenable=1\nll-lib-file=/opt/nvidia/deepstream/deepstream/lib/"
                      "libnvds_nvmultiobjecttracker.so\n" if tracker else ""))
    return app


def test_check_reads_deepstreams_analytics_config_unchanged_and_says_what_this_app_cannot_use(tmp_path):
    from runner.config import inspect_app

    app = _app(tmp_path, f"[nvds-analytics]\nenable=1\nconfig-file={NVDSANALYTICS_TEST}\n")
    config, diags = inspect_app(app)
    assert not [d for d in diags if d.is_error]
    assert config.nvds_analytics.analytics.streams[0].lines[0].label == "Exit"
    said = [str(d) for d in diags if d.code == "inconsistent"]
    assert said == [
        f"{app}:10 [nvds-analytics]: {NVDSANALYTICS_TEST}: stream 0 counts line crossings / directions "
        "(Exit, South, North) but no [tracker] is enabled — nvdsanalytics switches them off at the first "
        "untracked object — enable [tracker]",
        f"{app}:10 [nvds-analytics]: {NVDSANALYTICS_TEST}: rules for stream 1, but the app has 1 source(s) "
        "(ids 0..0) — number the groups by source id",
        f"{app}:10 [nvds-analytics]: {NVDSANALYTICS_TEST}: rules for stream 2, but the app has 1 source(s) "
        "(ids 0..0) — number the groups by source id"]


def test_check_refuses_analytics_that_cannot_run_at_the_line(tmp_path):
    from runner.config import inspect_app

    _, diags = inspect_app(_app(tmp_path, "[nvds-analytics]\nenable=1\n", tracker=True))
    assert [str(d) for d in diags if d.is_error] == [
        f"{tmp_path / 'app.txt'}:10 [nvds-analytics]: enabled without a config-file — add config-file=<its "
        "nvdsanalytics config (config_nvdsanalytics.txt)>, or set enable=0"]
    bad = tmp_path / "bad.txt"
    bad.write_text("[property]\nenable=1\nconfig-width=1920\n")
    _, diags = inspect_app(_app(tmp_path, f"[nvds-analytics]\nenable=1\nconfig-file={bad}\n", tracker=True))
    assert [str(d) for d in diags if d.is_error] == [
        f"{bad}:1 [property]: config-height is not set (nvdsanalytics requires it) — add config-height=<value> to "
        "[property] (the frame size the coordinates are written for)"]


def test_workers_merge_each_shards_analytics_and_broker_counters_into_the_parent():
    from runner.pipeline.stats import RunStats
    from runner.placement.merge import ShardMerger, ShardState

    parent = RunStats()
    merger = ShardMerger(parent)
    shards = [merger.add(ShardState(index=i, sources=(i,))) for i in (0, 1)]
    for shard in shards:
        child = RunStats()
        child.add_source(shard.index, f"file:///{shard.index}.mp4")
        child.analytics_frame(shard.index, {"Exit": 3 + shard.index}, {"RF": 1}, {}, {})
        child.brokers["sink1"] = {"protocol": "Redis", "sent": 10 * (shard.index + 1)}
        merger.apply(shard, json.loads(json.dumps(child.snapshot())))  # as it travels from a worker
    assert parent.analytics == {0: {"lines": {"Exit": 3}, "roi": {"RF": 1}, "overcrowding": {}},
                                1: {"lines": {"Exit": 4}, "roi": {"RF": 1}, "overcrowding": {}}}
    assert {k: v["sent"] for k, v in parent.brokers.items()} == {"sink1 (worker 0)": 10, "sink1 (worker 1)": 20}
