"""dsrun from Python (``import dsrun``): ``run(config, on_batch=…)``, ``batches(config)``, the config's
``[application] dsrun-batch-hook``, and ``supervision.Detections`` both ways, tested against
supervision itself. Frame counts are FFmpeg's; pixels are FFmpeg's swscale output."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

import dsrun
from pipeline_helpers import count_frames, make_clip

ROOT = Path(__file__).resolve().parents[1]
MULTISTREAM = ROOT / "samples" / "multistream"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("api") / "clip.mp4", frames=24, size=(320, 240))


def app_config(folder: Path, clip: Path, *, detector: bool = False, extra: str = "") -> Path:
    gie = f"""
[primary-gie]
enable=1
gie-unique-id=1
config-file={MULTISTREAM / 'config_infer_primary.txt'}

[tracker]
enable=1
ll-config-file={MULTISTREAM / 'config_tracker.yml'}
""" if detector else ""
    path = folder / "app.txt"
    path.write_text(f"""[source0]
enable=1
type=3
uri={clip.as_uri()}

[source1]
enable=1
type=3
uri={clip.as_uri()}

[streammux]
width={480 if detector else 64}
height={272 if detector else 48}
batch-size=2
{gie}
[sink0]
enable=1
type=1
{extra}""")
    return path


def test_on_batch_sees_every_frame_of_every_source_once_in_order(tmp_path, clip):
    seen: dict[int, list[int]] = {}

    def on_batch(batch):
        assert batch.frames is None  # frames only when asked
        for sid, n in zip(batch.source_id.tolist(), batch.frame_num.tolist()):
            seen.setdefault(sid, []).append(n)

    result = dsrun.run(app_config(tmp_path, clip), on_batch=on_batch, jsonl=tmp_path / "f.jsonl")
    assert result.exit_code == 0 and result.errors == []
    n = count_frames(clip)
    assert seen == {0: list(range(n)), 1: list(range(n))}
    # the config's own outputs ran too: --jsonl saw the same frames
    lines = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert sorted((r["source_id"], r["frame_num"]) for r in lines) == sorted(
        (sid, k) for sid, ks in seen.items() for k in ks)


def test_batches_yields_frames_as_ffmpeg_scales_them_and_leaving_early_stops_the_run(tmp_path, clip):
    with av.open(str(clip)) as container:  # FFmpeg's swscale, as the source reader asks for it
        first = next(container.decode(video=0)).to_ndarray(format="rgb24", width=64, height=48)
    taken = []
    for batch in dsrun.batches(app_config(tmp_path, clip), frames=True):
        taken.append(batch)
        if len(taken) == 3:
            break
    assert taken[0].frames.shape[1:] == (48, 64, 3)
    row = int(np.flatnonzero(taken[0].frame_num == 0)[0])
    assert np.array_equal(taken[0].frames[row], first)
    assert not any(t.name == "dsrun-batches" for t in threading.enumerate())  # the run has ended


def test_a_hook_that_raises_stops_the_run_with_its_file_and_line(tmp_path, clip):
    hooks = tmp_path / "hooks.py"
    hooks.write_text("def on_batch(batch):\n"
                     "    if (batch.frame_num >= 5).any():\n"
                     "        raise ValueError('frame five')\n")
    namespace: dict = {}
    exec(compile(hooks.read_text(), str(hooks), "exec"), namespace)
    with pytest.raises(dsrun.HookError) as caught:
        dsrun.run(app_config(tmp_path, clip), on_batch=namespace["on_batch"])
    assert str(caught.value).startswith(f"{hooks}:3 [batch hook] on_batch raised ValueError: frame five — ")


def _dsrun(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "runner", str(config), "--no-dashboard", *args],
                          capture_output=True, text=True, env=env, timeout=300, cwd=config.parent)


def test_config_declared_hook_runs_under_dsrun_and_its_error_is_located(tmp_path, clip):
    (tmp_path / "hooks.py").write_text(
        "import json\n"
        "def on_batch(batch):\n"
        "    with open('seen.txt', 'a') as f:\n"
        "        f.write(json.dumps(batch.frame_num.tolist()) + '\\n')\n"
        "def broken(batch):\n"
        "    raise RuntimeError('no camera ' + str(batch.source_id.tolist()))\n")
    ok = app_config(tmp_path, clip, extra="[application]\ndsrun-batch-hook=hooks.py:on_batch\n")
    done = _dsrun(ok)
    assert done.returncode == 0, done.stderr
    numbers = sorted(k for line in (tmp_path / "seen.txt").read_text().splitlines() for k in json.loads(line))
    assert numbers == sorted(list(range(count_frames(clip))) * 2)

    ok.write_text(ok.read_text().replace("hooks.py:on_batch", "hooks.py:broken"))
    failed = _dsrun(ok)
    assert failed.returncode == 1
    assert f"{tmp_path / 'hooks.py'}:6 [batch hook] hooks.py:broken raised RuntimeError: no camera" in failed.stderr
    assert "Traceback" not in failed.stderr

    ok.write_text(ok.read_text().replace("hooks.py:broken", "hooks.py:missing"))
    missing = _dsrun(ok)
    assert missing.returncode == 2
    assert "has no function 'missing' (it defines: on_batch, broken)" in missing.stderr


def test_supervision_detections_round_trip_and_drive_supervisions_own_tools(tmp_path, clip):
    sv = pytest.importorskip("supervision")
    frames_seen = []

    def on_batch(batch):
        for i in range(len(batch)):
            det = dsrun.to_detections(batch, i)
            objects = batch.objects[batch.objects.frame == i]
            assert isinstance(det, sv.Detections) and len(det) == len(objects)
            np.testing.assert_array_equal(det.xyxy, objects.xyxy)
            np.testing.assert_array_equal(det.class_id, objects.class_id)
            names = ["car", "bicycle", "person", "roadsign"]
            assert list(det.data["class_name"]) == [names[c] for c in objects.class_id]
            back = dsrun.from_detections(det, frame=i)
            np.testing.assert_array_equal(back.xyxy, objects.xyxy)
            np.testing.assert_array_equal(back.track_id, objects.track_id)
            np.testing.assert_array_equal(back.gie_id, objects.gie_id)
            # supervision's own tools accept them: annotate, filter by zone, count
            image = np.ascontiguousarray(batch.frames[i])
            annotated = sv.BoxAnnotator().annotate(image.copy(), det)
            assert annotated.shape == image.shape
            if len(det):
                assert not np.array_equal(annotated, image)
            polygon = np.array([[0, 0], [240, 0], [240, 272], [0, 272]])
            inside = sv.PolygonZone(polygon).trigger(det)
            centre_x = (objects.xyxy[:, 0] + objects.xyxy[:, 2]) / 2  # BOTTOM_CENTER anchor, by hand
            bottom = objects.xyxy[:, 3]
            np.testing.assert_array_equal(inside, (centre_x >= 0) & (centre_x <= 240) & (bottom <= 272))
            frames_seen.append((len(det), det.tracker_id is not None))

    assert dsrun.run(app_config(tmp_path, clip, detector=True), on_batch=on_batch, frames=True).exit_code == 0
    assert sum(n for n, _ in frames_seen) > 0  # the detector found objects
    assert any(tracked for _, tracked in frames_seen)  # the tracker's ids came through as tracker_id


@pytest.mark.parametrize("name", ["runner.interop.supervision", "runner.pipeline.sinks.hook", "dsrun", "runner.api"])
def test_docstring_examples_hold(name, clip):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS,
                             extraglobs={"CLIP": clip})
    assert result.failed == 0 and result.attempted > 0
