"""Damage in the middle of a file costs only the frames it hits: the reader skips the packets the
decoder rejects and goes on, as FFmpeg does, and counts them. The reference is Debian's ffprobe
(``-count_frames``: the frames FFmpeg itself decodes from the damaged file)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from pipeline_helpers import make_clip, write_config
from runner.cli import main

FRAMES = 250


def ffmpeg_frame_count(path) -> int:
    out = subprocess.run(["ffprobe", "-v", "quiet", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout.strip())


def damage(src, dest, at: float, size: int = 64 * 1024, seed: int = 0):
    """``src`` with ``size`` bytes of random garbage written over it at fraction ``at`` of its length."""
    data = bytearray(src.read_bytes())
    start = int(len(data) * at)
    data[start:start + size] = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    dest.write_bytes(bytes(data))
    return dest


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("damaged")
    return {suffix: make_clip(d / f"clip{suffix}", frames=FRAMES, size=(320, 240), fps=25)
            for suffix in (".mp4", ".mkv")}


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_64_kib_of_garbage_mid_file_skips_only_the_damaged_packets_like_ffmpeg(tmp_path, clips, suffix, capsys):
    damaged = damage(clips[suffix], tmp_path / f"damaged{suffix}", at=0.5)
    expected = ffmpeg_frame_count(damaged)
    assert expected < FRAMES  # the damage costs frames in FFmpeg too
    cfg = write_config(tmp_path, [{"uri": damaged}, {"uri": clips[suffix]}], streammux={"batch-size": 2})
    report = tmp_path / "run.json"
    code = main([str(cfg), "--no-dashboard", "--report", str(report)])
    doc = json.loads(report.read_text())
    hurt, healthy = doc["sources"]
    assert code == 0 and hurt["state"] == "ended" and not hurt["errors"]
    assert hurt["frames_decoded"] == expected and hurt["frames_processed"] == expected
    assert hurt["damaged_packets"] > 0 and doc["totals"]["damaged_packets"] == hurt["damaged_packets"]
    assert f"skipped {hurt['damaged_packets']} damaged packet(s)" in capsys.readouterr().err
    assert healthy["frames_processed"] == FRAMES and healthy["damaged_packets"] == 0
    print(f"64 KiB garbage mid-{suffix}: {FRAMES - expected} of {FRAMES} frames lost "
          f"({hurt['damaged_packets']} packets skipped), as FFmpeg")


def test_a_file_whose_every_packet_is_damaged_is_still_a_failure(tmp_path, clips):
    data = bytearray(clips[".mp4"].read_bytes())
    start, end = data.find(b"mdat") + 4, data.find(b"moov") - 4  # the index (moov) is intact: every
    data[start:end] = np.random.default_rng(1).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    (tmp_path / "garbage.mp4").write_bytes(bytes(data))  # packet demuxes, none decodes
    cfg = write_config(tmp_path, [{"uri": tmp_path / "garbage.mp4"}])
    report = tmp_path / "run.json"
    assert main([str(cfg), "--no-dashboard", "--report", str(report)]) == 1
    src = json.loads(report.read_text())["sources"][0]
    assert src["state"] == "failed" and src["frames_processed"] == 0 and src["damaged_packets"] > 0
    assert "no frame decodes" in src["errors"][0]
