"""A camera that dies is a failure, not a normal end: the real GStreamer RTSP server SIGKILLed mid-run
with no reconnect keys set ends the run with exit 1 and the error in the report, while a server that
ends its stream (RTCP BYE, still there) is a normal end; a server that accepts the connection and never
answers is a network timeout and says so."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from pipeline_helpers import make_clip, write_config
from rtsp_server import played_whole, rtsp_server  # noqa: F401  (rtsp_server: fixture)
from runner.cli import main

CAMERA_FRAMES = 250


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("rtspfaults")
    return {"camera": make_clip(d / "camera.mp4", frames=CAMERA_FRAMES, size=(160, 120), fps=25),
            "short": make_clip(d / "short.mp4", frames=25, size=(160, 120), fps=25),
            "file": make_clip(d / "file.mp4", frames=100, size=(160, 120), fps=25)}


def _run_in_thread(argv):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main(argv)), daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize("protocol", [4, 0], ids=["tcp", "udp"])
def test_a_camera_killed_mid_run_without_reconnect_keys_fails_the_run(tmp_path, media, rtsp_server, capsys,
                                                                      protocol):
    server = rtsp_server({"cam": media["camera"]})
    cfg = write_config(tmp_path, [{"type": 4, "uri": server.url("cam"), "select-rtp-protocol": protocol},
                                  {"uri": media["file"]}], streammux={"batch-size": 2})
    report = tmp_path / "run.json"
    thread, result = _run_in_thread([str(cfg), "--no-dashboard", "--report", str(report),
                                     "--jsonl", str(tmp_path / "frames.jsonl")])
    deadline = time.monotonic() + 30
    frames = tmp_path / "frames.jsonl"
    while time.monotonic() < deadline and (not frames.exists()
                                           or frames.read_text().count('"source_id":0,') < 25):
        time.sleep(0.05)
    server.stop()  # SIGKILL: no RTCP BYE, no TEARDOWN answer
    thread.join(60)
    assert not thread.is_alive()
    doc = json.loads(report.read_text())
    cam, file = doc["sources"]
    assert result["code"] == 1 and doc["exit_code"] == 1 and doc["status"] == "failed"
    assert cam["state"] == "failed" and cam["frames_processed"] >= 25
    assert "without an end-of-stream, and the server no longer answers (connection refused)" in cam["errors"][0]
    assert cam["errors"][0] in doc["errors"] and cam["errors"][0] in capsys.readouterr().err
    assert file["state"] == "ended" and file["frames_processed"] == 100
    print(f"camera SIGKILLed ({'tcp' if protocol == 4 else 'udp'}): {cam['frames_processed']} of "
          f"{CAMERA_FRAMES} frames got through before it died; the file lost none")


def test_a_server_that_ends_its_stream_is_a_normal_end(tmp_path, media, rtsp_server):
    server = rtsp_server({"cam": media["short"]})
    cfg = write_config(tmp_path, [{"type": 4, "uri": server.url("cam"), "select-rtp-protocol": 4}])
    report = tmp_path / "run.json"
    assert main([str(cfg), "--no-dashboard", "--report", str(report)]) == 0
    cam = json.loads(report.read_text())["sources"][0]
    assert played_whole(cam) and not cam["errors"], cam


def test_a_server_that_accepts_and_never_answers_is_a_network_timeout(tmp_path, media, capsys):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def accept_and_say_nothing():
        try:
            while True:
                held.append(listener.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    try:
        cfg = write_config(tmp_path, [{"type": 4, "uri": f"rtsp://127.0.0.1:{port}/cam", "select-rtp-protocol": 4},
                                      {"uri": media["file"]}], streammux={"batch-size": 2})
        report = tmp_path / "run.json"
        code = main([str(cfg), "--no-dashboard", "--report", str(report)])
    finally:
        listener.close()
        for conn in held:
            conn.close()
    doc = json.loads(report.read_text())
    error = doc["sources"][0]["errors"][0]
    assert code == 1 and doc["sources"][0]["state"] == "failed"
    assert "network timeout: the server accepted the connection but sent no stream within 10 s" in error
    assert "no answer within 3 s" in error and "corrupt" not in error and "re-copy" not in error
    assert doc["sources"][1]["frames_processed"] == 100
    assert error in capsys.readouterr().err
