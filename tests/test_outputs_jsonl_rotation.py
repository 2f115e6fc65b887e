"""``--jsonl-rotate SIZE|TIME`` and ``--jsonl-keep N``: a 24/7 run's --jsonl never grows without bound,
every file holds whole lines, and the files in order hold every frame once."""

from __future__ import annotations

import json

import pytest

from pipeline_helpers import make_clip, write_config
from runner.cli import main
from runner.pipeline.rotation import RotatingLines, parse_rotation

FRAMES = 120


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("rotation") / "cam.mp4", frames=FRAMES, size=(320, 240), fps=25)


def _frames_in(paths) -> list[int]:
    out = []
    for path in paths:
        text = path.read_text()
        assert text.endswith("\n")
        out += [json.loads(line)["frame_num"] for line in text.splitlines()]
    return out


def test_rotation_by_size_keeps_every_file_under_the_limit_and_every_frame_once(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}])
    out = tmp_path / "meta" / "frames.jsonl"
    assert main([str(cfg), "--no-dashboard", "--jsonl", str(out), "--jsonl-rotate", "8KB"]) == 0
    rotated = sorted(out.parent.glob("frames.0*.jsonl"))
    assert len(rotated) >= 2 and [p.name for p in rotated][:2] == ["frames.000001.jsonl", "frames.000002.jsonl"]
    assert all(p.stat().st_size <= 8000 for p in rotated + [out])
    assert _frames_in(rotated + [out]) == list(range(FRAMES))


def test_keep_deletes_the_oldest_rotated_files_and_a_rerun_never_overwrites_them(tmp_path, clip):
    cfg = write_config(tmp_path, [{"uri": clip}])
    out = tmp_path / "frames.jsonl"
    args = [str(cfg), "--no-dashboard", "--jsonl", str(out), "--jsonl-rotate", "4KB", "--jsonl-keep", "2"]
    assert main(args) == 0
    first = sorted(tmp_path.glob("frames.0*.jsonl"))
    assert len(first) == 2  # only the newest two rotated files remain
    last_frames = _frames_in(first + [out])
    assert last_frames == list(range(FRAMES - len(last_frames), FRAMES))  # the newest frames, in order
    assert main(args) == 0  # a second run numbers on from the first run's files
    second = sorted(tmp_path.glob("frames.0*.jsonl"))
    assert len(second) == 2 and int(second[0].name.split(".")[1]) > int(first[-1].name.split(".")[1])


def test_rotation_by_time_starts_a_new_file_when_the_period_is_over(tmp_path):
    now = [0.0]
    lines = RotatingLines(tmp_path / "t.jsonl", parse_rotation("15m"), clock=lambda: now[0])
    for minute in range(0, 40, 5):  # a batch every 5 minutes for 35 minutes
        now[0] = minute * 60.0
        lines.write(f'{{"minute":{minute}}}\n'.encode())
    lines.close()
    files = [tmp_path / "t.000001.jsonl", tmp_path / "t.000002.jsonl", tmp_path / "t.jsonl"]
    minutes = [[json.loads(x)["minute"] for x in f.read_text().splitlines()] for f in files]
    assert minutes == [[0, 5, 10], [15, 20, 25], [30, 35]]


def test_a_bad_rotation_spec_is_a_usage_error(tmp_path, clip, capsys):
    cfg = write_config(tmp_path, [{"uri": clip}])
    with pytest.raises(SystemExit) as exit_:
        main([str(cfg), "--jsonl", str(tmp_path / "f.jsonl"), "--jsonl-rotate", "10 parsecs"])
    assert exit_.value.code == 2
    assert "neither a size (500MB, 2GB, 64KiB) nor a time (30s, 15m, 1h, 1d)" in capsys.readouterr().err
