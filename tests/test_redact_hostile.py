"""Hostile passwords (``@``, ``"``, spaces, ``:``, ``%``) never reach any output: ``dsrun check`` (text
and --json), stderr, --report, --debug and the dashboard's last-error line — against a real GStreamer
RTSP server that accepts the password the way FFmpeg sends it (last ``@`` before the host ends the
credentials, percent-encoding decoded; libavformat/utils.c av_url_split, urldecode.c)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from rich.console import Console

from pipeline_helpers import make_clip, write_config
from rtsp_server import played_whole, rtsp_server  # noqa: F401  (rtsp_server: fixture)
from runner.cli import main
from runner.pipeline.stats import RunStats
from runner.redact import redact

GOOD = 'p@ss "w:o%rd'  # the server's password: @, a quote, a space, a colon and a bare %
WRONG = ["p@ssZq9", 'pa"ss w0rd', "a:b:c@d", "100%sure%40x", "sp ace s"]
# pieces that would betray a password if any output cut the URL in the wrong place
FRAGMENTS = ["ssZq9", "w0rd", "b:c@d", "sure", "ace s", "o%rd", "w:o", "p@ss"]


def _leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS + WRONG + [GOOD, quote(GOOD, safe="")] if f in text]


def test_urls_are_split_at_the_last_at_sign_before_the_host_like_ffmpeg():
    for password in WRONG + [GOOD]:
        for spelled in (password, quote(password, safe="")):
            url = f"rtsp://admin:{spelled}@10.0.0.7:554/live/1"
            assert redact(f"source 3 ({url}): timeout") == "source 3 (rtsp://***:***@10.0.0.7:554/live/1): timeout"
            assert redact(json.dumps({"uri": url})) == '{"uri": "rtsp://***:***@10.0.0.7:554/live/1"}'
    assert redact("rtsp://cam.local:554/x and mail ops@") == "rtsp://cam.local:554/x and mail ops@"
    assert redact("file:///videos/a@b/c.mp4") == "file:///videos/a@b/c.mp4"  # no authority, nothing hidden


def test_a_password_seen_in_a_url_is_also_hidden_where_it_appears_alone():
    redact("rtsp://admin:k%22e%20y%40Xq7@cam/x")  # the decoded form is 'k"e y@Xq7'
    for shown in ['k"e y@Xq7', "'k\"e y@Xq7'", '"k\\"e y@Xq7"', "k%22e%20y%40Xq7"]:
        assert "Xq7" not in redact(f"401 for user admin password {shown} at cam")


def test_check_text_and_json_hide_hostile_passwords(tmp_path):
    sources = [{"type": 4, "uri": f"rtsp://admin:{p}@127.0.0.1:8554/cam{i}"} for i, p in enumerate(WRONG)]
    cfg = write_config(tmp_path, sources)
    root = Path(__file__).resolve().parents[1]
    for args in (["check", str(cfg)], ["check", "--json", str(cfg)]):
        out = subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, text=True,
                             timeout=120, cwd=root)
        assert out.returncode == 0, out.stderr
        assert not _leaks(out.stdout + out.stderr)
    doc = json.loads(out.stdout)
    uris = [s["uri"] for s in doc["configs"][0]["pipeline"]["sources"]]
    assert uris == [f"rtsp://***:***@127.0.0.1:8554/cam{i}" for i in range(len(WRONG))]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("hostile") / "cam.mp4", frames=25, size=(160, 120), fps=25)


def test_run_against_a_real_server_plays_the_hostile_password_and_never_prints_any(tmp_path, clip, rtsp_server,
                                                                                    capsys):
    server = rtsp_server({"cam": clip}, auth=("admin", GOOD))
    urls = [server.url("cam", "admin", GOOD), server.url("cam", "admin", quote(GOOD, safe=""))]
    urls += [server.url("cam", "admin", p) for p in WRONG]
    cfg = write_config(tmp_path, [{"type": 4, "uri": u, "select-rtp-protocol": 4} for u in urls])
    report = tmp_path / "run.json"
    code = main([str(cfg), "--report", str(report), "--no-dashboard", "--debug"])
    out = capsys.readouterr()
    text = report.read_text()
    assert not _leaks(out.out + out.err + text)
    doc = json.loads(text)
    by_id = {s["source_id"]: s for s in doc["sources"]}
    for sid in (0, 1):  # raw and percent-encoded spellings of the same password both log in
        assert played_whole(by_id[sid]), by_id[sid]
    for sid in range(2, len(urls)):
        assert by_id[sid]["state"] == "failed" and "access denied" in by_id[sid]["errors"][0]
        assert f"source {sid} (rtsp://***:***@127.0.0.1:{server.port}/cam)" in out.err
    assert code == 1


def test_dashboard_last_error_line_is_redacted():
    from runner.ui.dashboard import render
    from runner.ui.view import Sampler

    stats = RunStats()
    raw = f"rtsp://admin:{WRONG[1]}@cam.local/live"
    src = stats.add_source(0, raw)  # a writer that forgot to redact: the one redaction still applies
    src.errors.append(f"source 0 ({raw}): no data — check the network")
    src.state = "failed"
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render(Sampler(stats).sample()))
    shown = console.file.getvalue()
    assert "last error: source 0 (rtsp://***:***@cam.local/live): no data" in shown
    assert not _leaks(shown)
