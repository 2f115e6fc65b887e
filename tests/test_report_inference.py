"""`dsrun CONFIG --report run.json` counts what the GIEs produced: objects per GIE and class, classifier
labels per GIE — equal to the objects and labels the run wrote with --jsonl (a real clip, the generated
DetectNet_v2-shaped detector and ResNet-18-shaped classifier, no tracker)."""

import json
from collections import Counter

import av
import pytest

from runner.cli import main
from infer_models import detector_classifier_app

FRAMES = 48


@pytest.fixture(scope="module")
def clip(tmp_path_factory, assets):
    """The first FRAMES frames of bikes.mp4, re-encoded (H.264 in MP4)."""
    path = tmp_path_factory.mktemp("clip") / "bikes_head.mp4"
    with av.open(str(assets.videos["bikes"])) as src, av.open(str(path), "w") as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 272, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == FRAMES:
                break
            dst.mux(stream.encode(frame.reformat(format="yuv420p")))
        dst.mux(stream.encode())
    return path


def _config(folder, assets, clip):
    (folder / "colours.txt").write_text("black;blue;brown;gold;green;grey\n")
    return detector_classifier_app(folder, assets, clip, sgie_extra="labelfile-path=colours.txt\n")


def test_report_counts_equal_the_objects_and_labels_the_run_produced(tmp_path, assets, clip):
    config = _config(tmp_path, assets, clip)
    report, jsonl = tmp_path / "run.json", tmp_path / "out.jsonl"
    code = main(["run", str(config), "--no-dashboard", "--report", str(report), "--jsonl", str(jsonl),
                 "--engine-dir", str(tmp_path / "engines")])
    assert code == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == FRAMES
    objects = Counter((str(o["gie_id"]), str(o["class_id"])) for rec in lines for o in rec["objects"])
    labels = Counter((str(c["gie_id"]), c["label"]) for rec in lines for o in rec["objects"]
                     for c in o["classifications"])
    assert sum(objects.values()) > 0 and sum(labels.values()) > 0, "the test needs detections and labels"

    run = json.loads(report.read_text())
    inference = run["inference"]
    assert {(g, c): n for g, per in inference["objects"].items() for c, n in per.items()} == dict(objects)
    assert {(g, label): n for g, per in inference["labels"].items() for label, n in per.items()} == dict(labels)
    assert set(inference["objects"]) == {"1"} and set(inference["labels"]) == {"2"}
    assert run["totals"]["objects"] == sum(objects.values())
    assert sum(inference["labels"]["2"].values()) == sum(objects.values())  # threshold 0: every object
