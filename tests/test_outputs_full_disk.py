"""A full disk under one output stops that output alone, with its path and what to do; the sources and
the outputs on healthy disks go on; line outputs keep whole lines; MP4 keeps whole fragments; a report
that cannot be written is a clear error, not a traceback. Real disks: a small tmpfs filled by the kernel's
own ENOSPC (tests/full_disk.py), real encoded video, the real CLI."""

from __future__ import annotations

import json

import av
import pytest

from full_disk import fill, small_disk
from pipeline_helpers import count_frames, make_clip, write_config
from runner.cli import main

FRAMES = 60


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("fulldisk") / "cam.mp4", frames=FRAMES, size=(320, 240), fps=25)


def _decodes_cleanly(path) -> int:
    """Frames FFmpeg decodes from ``path``; raises on any demux/decode error (a cut fragment)."""
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _run(capsys, cfg, *args):
    code = main([str(cfg), "--no-dashboard", *map(str, args)])
    return code, capsys.readouterr()


def test_a_full_disk_stops_only_the_file_sink_on_it_and_the_other_outputs_go_on(tmp_path, clip, capsys):
    healthy = tmp_path / "healthy"
    with small_disk(tmp_path / "disk", size_kib=1024) as disk:
        fill(disk, leave_kib=300)  # room for a few 10-frame fragments (~100 KiB each), not the whole clip
        cfg = write_config(tmp_path, [{"uri": clip}], sinks=[
            {"type": 3, "container": 1, "codec": 1, "output-file": disk / "cam.mp4", "iframeinterval": 10},
            {"type": 3, "container": 2, "codec": 1, "output-file": healthy / "cam.mkv"}])
        report = healthy / "run.json"
        code, out = _run(capsys, cfg, "--report", report, "--jsonl", healthy / "frames.jsonl")
        doc = json.loads(report.read_text())
        kept = _decodes_cleanly(disk / "cam.mp4")  # whole fragments only: plays without an error

    assert code == 1 and doc["exit_code"] == 1 and doc["status"] == "failed"
    error = doc["stages"]["sink0"]["error"]
    assert error.startswith("sink0 stopped after ")
    assert f"cannot write {disk / 'cam.mp4'}: No space left on device — free space on that disk" in error
    assert error in doc["errors"] and error in out.err and "Traceback" not in out.err
    # the other outputs and the source went on to the end
    assert doc["sources"][0]["state"] == "ended" and doc["sources"][0]["frames_processed"] == FRAMES
    assert count_frames(healthy / "cam.mkv") == FRAMES
    lines = (healthy / "frames.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame_num"] for line in lines] == list(range(FRAMES))
    written = int(error.split("stopped after ")[1].split(" ")[0])
    assert 0 < kept <= written < FRAMES
    print(f"full disk, file sink: {FRAMES - kept} of {FRAMES} frames lost in the MP4 on it "
          f"(kept {kept}, encoded {written}); 0 lost in the MKV and the jsonl")


def test_jsonl_on_a_full_disk_ends_with_its_last_whole_line_and_the_run_goes_on(tmp_path, clip, capsys):
    healthy = tmp_path / "healthy"
    with small_disk(tmp_path / "disk", size_kib=256) as disk:
        fill(disk, leave_kib=8)
        cfg = write_config(tmp_path, [{"uri": clip}], sinks=[
            {"type": 3, "container": 2, "codec": 1, "output-file": healthy / "cam.mkv"}])
        code, out = _run(capsys, cfg, "--jsonl", disk / "frames.jsonl", "--report", healthy / "run.json")
        text = (disk / "frames.jsonl").read_text()
    doc = json.loads((healthy / "run.json").read_text())
    assert code == 1
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]  # every line whole
    assert [r["frame_num"] for r in records] == list(range(len(records))) and 0 < len(records) < FRAMES
    error = doc["stages"]["jsonl"]["error"]
    assert f"jsonl stopped after {len(records)} frame(s): cannot write {disk / 'frames.jsonl'}: " \
           "No space left on device" in error and error in out.err
    assert count_frames(healthy / "cam.mkv") == FRAMES
    print(f"full disk, --jsonl: {FRAMES - len(records)} of {FRAMES} lines lost, none cut")


def test_a_report_on_a_full_disk_is_a_clear_error_and_leaves_no_partial_file(tmp_path, clip, capsys):
    with small_disk(tmp_path / "disk", size_kib=128) as disk:
        fill(disk)
        cfg = write_config(tmp_path, [{"uri": clip}])
        code, out = _run(capsys, cfg, "--report", disk / "run.json", "--jsonl", tmp_path / "frames.jsonl")
        left = sorted(p.name for p in disk.iterdir())
    assert code == 1  # the run went well, but an output asked for is missing
    assert f"--report {disk / 'run.json'}: cannot write it: No space left on device — free space on that " \
           "disk" in out.err
    assert "Traceback" not in out.err and left == ["filler"]
    assert len((tmp_path / "frames.jsonl").read_text().splitlines()) == FRAMES


def test_dev_full_gives_the_same_error_for_jsonl_where_no_tmpfs_can_be_mounted(tmp_path, clip, capsys):
    cfg = write_config(tmp_path, [{"uri": clip}], sinks=[
        {"type": 3, "container": 2, "codec": 1, "output-file": tmp_path / "cam.mkv"}])
    code, out = _run(capsys, cfg, "--jsonl", "/dev/full")
    assert code == 1
    assert "jsonl stopped after 0 frame(s): cannot write /dev/full: No space left on device" in out.err
    assert count_frames(tmp_path / "cam.mkv") == FRAMES
