"""[nvds-analytics] end to end on real footage: OpenCV's vtest.avi (Debian opencv-doc), people found by the
real YOLOv4-tiny (DeepStream-Yolo's config, Darknet files from PyPI) and tracked by dsrun's
NvMultiObjectTracker stand-in, two counting lines across the footpath on the left of the scene.

Ground truth, checked by hand on the frames (contact sheets of every 5th frame, the line drawn at x=160):
between frames 150 and 259 two people cross x=160 walking west — the woman in the light-blue coat between
frames 185 and 195, the man in the dark striped jumper between frames 205 and 215 — and nobody crosses
walking east (the man who lingers near the line comes back east only after frame 260)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from runner.ui.dashboard import render
from runner.ui.metrics import Exporter
from runner.ui.view import RunView
from tests.test_engine_darknet import DEEPSTREAM_YOLO

FIRST, LAST = 150, 259  # the clip: frames 150..259 of vtest.avi (keyframes every 10 frames in street.mp4)

ANALYTICS = """[property]
enable=1
config-width=768
config-height=576
osd-mode=2
display-font-size=12

[line-crossing-stream-0]
enable=1
# direction vector (walking west) then the line: x=160 across the footpath
line-crossing-Westward=200;240;120;240;160;150;160;330
line-crossing-Eastward=120;250;200;250;160;150;160;330
class-id=0
extended=0
mode=balanced

[roi-filtering-stream-0]
enable=1
roi-Path=0;150;320;150;320;330;0;330
class-id=0
"""

# IOU association without the Kalman filter: boxes are the detector's
TRACKER = """%YAML:1.0
BaseConfig:
  minDetectorConfidence: 0.3
TargetManagement:
  maxTargetsPerStream: 64
  probationAge: 2
  maxShadowTrackingAge: 15
  earlyTerminationAge: 1
DataAssociator:
  checkClassMatch: 1
  minMatchingScore4Overall: 0.1
  minMatchingScore4SizeSimilarity: 0.5
  minMatchingScore4Iou: 0.2
  matchingScoreWeight4SizeSimilarity: 0.3
  matchingScoreWeight4Iou: 0.7
StateEstimator:
  stateEstimatorType: 0
"""

APP = """[application]
enable-perf-measurement=0

[source0]
enable=1
type=3
uri=file://street.mp4

[streammux]
width=768
height=576
batch-size=1

[primary-gie]
enable=1
config-file=config_infer_primary_yoloV4_tiny.txt

[tracker]
enable=1
ll-lib-file=/opt/nvidia/deepstream/deepstream/lib/libnvds_nvmultiobjecttracker.so
ll-config-file=tracker.yml

[nvds-analytics]
enable=1
config-file=config_nvdsanalytics.txt

[osd]
enable=1
border-width=2

[sink0]
enable=1
type=3
container=1
codec=1
output-file=out.mp4
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory, assets):
    folder = tmp_path_factory.mktemp("footage")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(FIRST / 10), "-i", str(assets.videos["street"]),
                    "-frames:v", str(LAST - FIRST + 1), "-c", "copy", str(folder / "street.mp4")], check=True)
    for name, key in (("yolov4-tiny.cfg", "yolov4_tiny_cfg"), ("yolov4-tiny.weights", "yolov4_tiny_weights")):
        (folder / name).symlink_to(assets.models[key])
    (folder / "labels.txt").symlink_to(assets.labels["coco"])
    (folder / "config_infer_primary_yoloV4_tiny.txt").write_text(DEEPSTREAM_YOLO)
    (folder / "tracker.yml").write_text(TRACKER)
    (folder / "config_nvdsanalytics.txt").write_text(ANALYTICS)
    (folder / "app.txt").write_text(APP)
    done = subprocess.run([sys.executable, "-m", "runner", "app.txt", "--jsonl", "out.jsonl", "--no-dashboard",
                           "--report", "run.json", "--engine-dir", str(folder / "engines")], cwd=folder, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (folder / "out.jsonl").read_text().splitlines()]
    return folder, records


def test_line_crossings_on_real_footage_match_the_hand_checked_counts(run):
    _, records = run
    assert len(records) == LAST - FIRST + 1
    crossings = [(FIRST + r["frame_num"], o["track_id"], line) for r in records for o in r["objects"]
                 for line in o.get("analytics", {}).get("lines", [])]
    assert [line for _, _, line in crossings] == ["Westward", "Westward"]
    (f1, id1, _), (f2, id2, _) = crossings
    assert 185 <= f1 <= 195 and 205 <= f2 <= 215 and id1 != id2
    last = records[-1]["analytics"]["lines"]
    assert last == {"Westward": {"now": 0, "total": 2}, "Eastward": {"now": 0, "total": 0}}
    report = json.loads((run[0] / "run.json").read_text())
    assert report["analytics"]["0"]["lines"] == {"Westward": 2, "Eastward": 0}
    # the per-frame count is cumulative: 0 before the first crossing, 1 between, 2 after
    totals = [r["analytics"]["lines"]["Westward"]["total"] for r in records]
    assert totals == [0] * (f1 - FIRST) + [1] * (f2 - f1) + [2] * (LAST - f2 + 1)


def test_roi_counts_are_the_people_on_the_path(run):
    _, records = run
    for r in records:
        on_path = [o for o in r["objects"] if "Path" in o.get("analytics", {}).get("roi", [])]
        assert r["analytics"]["roi"]["Path"] == len(on_path)
        assert all(o["class_id"] == 0 for o in on_path)
    # hand check: the light-blue coat is on the path (x < 320) from frame 170 on, with the man in the
    # striped jumper from 190 on; frame 200 shows both of them there
    assert records[200 - FIRST]["analytics"]["roi"]["Path"] >= 2


def test_the_osd_draws_the_lines_and_their_counts(run):
    folder, _ = run
    cap = cv2.VideoCapture(str(folder / "out.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, LAST - FIRST)
    ok, frame = cap.read()
    assert ok
    # the counting line x=160, y 150..330 in green (BGR), 2 px
    column = frame[160:320, 158:163].astype(int)
    green = (column[..., 1] > 180) & (column[..., 0] < 100) & (column[..., 2] < 100)
    assert green.any(axis=1).mean() > 0.9


def test_dashboard_and_metrics_show_cumulative_crossings_per_line():
    view = RunView(elapsed_s=1.0, paused=False, sources=(), stages=(), engines=(), gpus=(),
                   analytics={0: {"lines": {"Westward": 2, "Eastward": 0}, "roi": {"Path": 3},
                                  "overcrowding": {"OC": {"count": 4, "crowded": True}}}},
                   brokers={"sink1": {"protocol": "Redis", "address": "127.0.0.1:6379", "state": "down",
                                      "sent": 7, "queued": 3, "dropped": 1}})
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(render(view))
    text = console.export_text()
    assert "analytics 0:  Westward 2 crossed  Eastward 0 crossed  Path 3 in  OC 4 in CROWDED" in text
    assert "sink1 Redis 127.0.0.1:6379 down  sent 7  queued 3  dropped 1" in text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in Exporter._analytics(view)
               for s in m.samples}
    assert samples[("dsrun_analytics_line_crossings_total", (("line", "Westward"), ("source_id", "0")))] == 2
    assert samples[("dsrun_analytics_roi_objects", (("roi", "Path"), ("source_id", "0")))] == 3
    assert samples[("dsrun_analytics_overcrowded", (("roi", "OC"), ("source_id", "0")))] == 1
    assert samples[("dsrun_broker_messages_dropped_total", (("protocol", "Redis"), ("sink", "sink1")))] == 1
    assert np.isclose(samples[("dsrun_broker_connected", (("protocol", "Redis"), ("sink", "sink1")))], 0)


def test_deepstreams_own_sample_config_runs_unchanged_on_the_tracked_people(run):
    """deepstream-nvdsanalytics-test's config_nvdsanalytics.txt (written for 1920x1080), replayed on the
    tracked people of the run: its ROI "RF" and line "Exit" lie on the lawn in the bottom left of this
    scene once scaled to 768x576 — hand check: nobody walks on that lawn in frames 150..259."""
    from runner.config.load_analytics import read_analytics
    from runner.pipeline.analytics.stage import AnalyticsStage
    from runner.pipeline.batch import Batch, Objects
    from tests.test_analytics import NVDSANALYTICS_TEST

    _, records = run
    stage = AnalyticsStage(read_analytics(NVDSANALYTICS_TEST, []))
    frames = np.zeros((1, 576, 768, 3), np.uint8)
    for r in records:
        objs = r["objects"]
        batch = Batch(frames=frames, source_id=np.array([0]), frame_num=np.array([r["frame_num"]]),
                      pts=np.array([r["pts"]]), ntp_ts=np.array([0]), source_size=np.array([[768, 576]]),
                      objects=Objects.from_columns(frame=np.zeros(len(objs), int), gie_id=1,
                                                   class_id=[o["class_id"] for o in objs],
                                                   xyxy=np.array([o["bbox"] for o in objs]).reshape(-1, 4),
                                                   track_id=[o["track_id"] for o in objs]))
        out = stage.process(batch)
        rows = dict(zip(zip(out.analytics_frames.kind, out.analytics_frames.label), out.analytics_frames.count))
        assert rows[("roi", "RF")] == 0 and rows[("line", "Exit")] == 0
    # the rules were scaled to the frame: the ROI's first point (295, 643) at 768/1920, 576/1080
    assert stage.contexts[0].drawn_roi[0][2][0] == (118, 342)
