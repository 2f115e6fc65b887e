"""KITTI dumps and JSON lines, compared field by field with the batches' metadata."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from runner.pipeline.batch import Classifications, Objects
from runner.pipeline.jsonl import JsonlError, JsonlStage
from runner.pipeline.kitti import KittiError, KittiStage, build_kitti_stages

from tests.outputs_support import make_batch, video_frames

LABELS = {1: ["car", "bicycle", "person", "roadsign"], 2: ["face"]}


def batches():
    """Two batches of two sources: PGIE (gie 1) objects, an SGIE detector (gie 2) object, tracks."""
    rng = np.random.default_rng(3)
    out = []
    for k in range(2):
        n = 5
        frame = np.array([0, 0, 0, 1, 1])
        xy = rng.uniform(0, 300, (n, 2)).astype(np.float32)
        wh = rng.uniform(10, 80, (n, 2)).astype(np.float32)
        objs = Objects.from_columns(frame=frame, gie_id=[1, 1, 2, 1, 1], class_id=[0, 2, 0, 3, 7],
                                    confidence=rng.uniform(0.2, 1, n), xyxy=np.hstack([xy, xy + wh]),
                                    track_id=[10 + k, -1, 12, 13, 14],
                                    tracker_confidence=[0.9, -1, 0.5, 0.7, 0.6], parent=[-1, -1, 0, -1, -1])
        out.append(make_batch(video_frames(2, 320, 240), [0, 1], [k, k], objs))
    # a frame with no object
    out.append(make_batch(video_frames(1, 320, 240), [1], [2]))
    return out


def read_kitti(path):
    return [line.split(" ") for line in path.read_text().splitlines()]


def test_kitti_detector_dump_has_one_file_per_frame_with_deepstream_columns(tmp_path):
    stage = KittiStage(tmp_path, labels=LABELS, gie_id=1)
    data = batches()
    for b in data:
        stage.process(b)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["00_000_000000.txt", "00_000_000001.txt", "00_001_000000.txt", "00_001_000001.txt",
                     "00_001_000002.txt"]
    assert (tmp_path / "00_001_000002.txt").read_text() == ""
    for k, b in enumerate(data[:2]):
        for i, sid in enumerate(b.source_id.tolist()):
            rows = np.flatnonzero((b.objects.frame == i) & (b.objects.gie_id == 1))
            lines = read_kitti(tmp_path / f"00_{sid:03d}_{k:06d}.txt")
            assert len(lines) == len(rows)
            for fields, r in zip(lines, rows):
                assert len(fields) == 16
                names = LABELS[1]
                cid = int(b.objects.class_id[r])
                assert fields[0] == (names[cid] if cid < len(names) else "")
                assert fields[1:4] == ["0.0", "0", "0.0"] and fields[8:15] == ["0.0"] * 7
                np.testing.assert_allclose([float(v) for v in fields[4:8]], b.objects.xyxy[r], atol=1e-5)
                assert float(fields[15]) == pytest.approx(float(b.objects.confidence[r]), abs=1e-6)


def test_kitti_track_dump_carries_track_id_and_tracker_confidence(tmp_path):
    stage = KittiStage(tmp_path, track=True, labels=LABELS)
    b = batches()[0]
    stage.process(b)
    lines = read_kitti(tmp_path / "00_000_000000.txt")
    rows = np.flatnonzero(b.objects.frame == 0)
    assert [f[1] for f in lines] == ["10", "18446744073709551615", "12"]  # untracked: UNTRACKED_OBJECT_ID
    assert [f[0] for f in lines] == ["car", "person", "face"]  # every object, SGIE ones too
    for fields, r in zip(lines, rows):
        assert len(fields) == 17
        np.testing.assert_allclose([float(v) for v in fields[5:9]], b.objects.xyxy[r], atol=1e-5)
        assert float(fields[16]) == pytest.approx(float(b.objects.tracker_confidence[r]), abs=1e-6)


def test_kitti_stages_come_from_the_application_group(tmp_path):
    app = SimpleNamespace(application=SimpleNamespace(gie_kitti_output_dir=tmp_path / "det",
                                                      kitti_track_output_dir=None),
                          primary_gie=SimpleNamespace(enable=True, gie_unique_id=3, nvinfer=None,
                                                      labelfile_path=None),
                          secondary_gies=())
    det, trk = build_kitti_stages(app)
    assert trk is None and det.gie_id == 3 and (tmp_path / "det").is_dir()


def test_kitti_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(KittiError, match="gie-kitti-output-dir: cannot create .* — choose a writable"):
        KittiStage(blocker / "sub")


def test_jsonl_has_a_line_per_frame_matching_the_metadata(tmp_path):
    path = tmp_path / "meta.jsonl"
    stage = JsonlStage(path, labels=LABELS)
    data = batches()
    data[0].classifications = Classifications.from_columns(
        obj=[0, 3, -1], frame=[0, 1, 1], gie_id=[4, 4, 5], class_id=[1, 2, 0], confidence=[0.6, 0.7, 0.8],
        label=["sedan", "suv", "day"])
    data[0].masks = {7: np.array([[[0, 1], [1, -1]], [[2, 2], [2, 2]]], np.int32)}
    data[0].inferred = {1: np.array([True, False])}
    for b in data:
        stage.process(b)
    stage.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 5
    first = lines[0]
    b = data[0]
    assert (first["source_id"], first["frame_num"], first["pts"]) == (0, 0, int(b.pts[0]))
    assert first["inferred"] == {"1": True} and lines[1]["inferred"] == {"1": False}
    rows = np.flatnonzero(b.objects.frame == 0)
    assert [o["label"] for o in first["objects"]] == ["car", "person", "face"]
    for o, r in zip(first["objects"], rows):
        np.testing.assert_allclose(o["bbox"], b.objects.xyxy[r], atol=1e-4)
        assert o["track_id"] == int(b.objects.track_id[r]) and o["gie_id"] == int(b.objects.gie_id[r])
        assert o["confidence"] == pytest.approx(float(b.objects.confidence[r]), abs=1e-6)
    assert first["objects"][2]["parent"] == 0
    assert first["objects"][0]["classifications"] == [
        {"gie_id": 4, "head": 0, "class_id": 1, "label": "sedan", "confidence": pytest.approx(0.6)}]
    second = lines[1]
    assert second["objects"][0]["classifications"][0]["label"] == "suv"  # object row 3 is frame 1's id 0
    assert second["classifications"][0]["label"] == "day"
    assert first["masks"] == {"7": {"shape": [2, 2], "pixels": {"0": 1, "1": 2}}}
    assert lines[4]["objects"] == []


def test_jsonl_unwritable_path_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(JsonlError, match="--jsonl .*: cannot write"):
        JsonlStage(tmp_path / "file" / "meta.jsonl")


def test_sinks_registry_builds_the_jsonl_and_kitti_outputs_a_run_asks_for(tmp_path):
    from runner.pipeline.sinks import RunOptions, build_sink_stages

    app = SimpleNamespace(sinks=(), primary_gie=None, secondary_gies=(),
                          application=SimpleNamespace(gie_kitti_output_dir=tmp_path / "det",
                                                      kitti_track_output_dir=tmp_path / "trk"))
    stages = build_sink_stages(app, RunOptions(jsonl=tmp_path / "meta.jsonl"))
    assert sorted(s.name for s in stages) == ["jsonl", "kitti"]
    b = batches()[0]
    for s in stages:
        s.process(b)
        s.close()
    assert (tmp_path / "det" / "00_000_000000.txt").is_file() and (tmp_path / "trk" / "00_001_000000.txt").is_file()
    assert len((tmp_path / "meta.jsonl").read_text().splitlines()) == 2
    assert build_sink_stages(SimpleNamespace(sinks=(), application=SimpleNamespace()), RunOptions()) == []
