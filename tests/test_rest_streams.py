"""DeepStream's REST API against a running dsrun: streams added and removed live over real HTTP, with real
files and the real RTSP camera. Expected reasons and codes are nvmultiurisrcbin's
(gstdsnvmultiurisrcbin.cpp ``s_stream_api_impl``, nvds_stream_parse.cpp, nvds_*_parse.cpp); expected
frame counts are FFmpeg's (``count_frames``)."""

from __future__ import annotations

import json

import pytest
import requests

from pipeline_helpers import count_frames, make_clip
from rest_client import DsrunProcess, add_body, live_config
from rtsp_server import rtsp_server  # noqa: F401  (fixture)

PASSWORD = "s3cr3t-Pw"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("rest_clips")
    return {"a": make_clip(d / "a.mp4", frames=50, size=(320, 240)),
            "b": make_clip(d / "b.mp4", frames=35, size=(320, 240)),
            # the camera's clip: long enough (24 s in real time) to still play when it is removed
            "cam": make_clip(d / "cam.mp4", frames=600, size=(320, 240), fps=25, gop=25)}


def test_two_files_and_the_rtsp_camera_join_at_run_time_and_every_file_frame_is_processed_once(
        tmp_path, clips, rtsp_server):
    camera = rtsp_server({"cam": clips["cam"]}, auth=("admin", PASSWORD))
    cam_url = camera.url("cam", user="admin", password=PASSWORD)
    a_url, b_url = clips["a"].as_uri(), clips["b"].as_uri()
    with DsrunProcess(live_config(tmp_path, max_batch_size=3), tmp_path) as run:
        assert run.streams() == {}  # an empty list: the server waits for streams
        assert run.post("/api/v1/stream/add", add_body("cam", cam_url))["reason"] == "STREAM_ADD_SUCCESS"
        run.wait(lambda: run.frames_processed(run.streams()["cam"]) > 0, what="the camera's first frames")
        assert run.post("/api/v1/stream/add", add_body("fileA", a_url)) == {
            "status": "HTTP/1.1 200 OK", "reason": "STREAM_ADD_SUCCESS"}

        # refused requests change nothing
        assert run.post("/api/v1/stream/add", add_body("fileA", b_url)) == {
            "status": "HTTP/1.1 500 Internal Server Error",
            "reason": "STREAM_ADD_FAIL, Duplicate Camera id, unable to add stream"}
        missing = (tmp_path / "missing.mp4").as_uri()
        assert run.post("/api/v1/stream/add", add_body("ghost", missing)) == {
            "status": "HTTP/1.1 500 Internal Server Error", "reason": "STREAM_ADD_FAIL, Failed to add source stream"}
        assert run.post("/api/v1/stream/add", {"value": {"camera_id": "x", "change": "camera_add"}}) == {
            "status": "HTTP/1.1 400 Bad Request", "reason": "STREAM_ADD_FAIL, Source url empty"}

        assert run.post("/api/v1/stream/add", add_body("fileB", b_url))["reason"] == "STREAM_ADD_SUCCESS"
        full = run.post("/api/v1/stream/add", add_body("fileC", a_url))  # a 4th stream, max-batch-size=3
        assert full == {"status": "HTTP/1.1 500 Internal Server Error",
                        "reason": "STREAM_ADD_FAIL, Active sources exceded max-batch-size of nvstreammux"}
        # source ids as nvmultiurisrcbin gives them: the next free pad after the last one given
        ids = {"cam": 0, "fileA": 1, "fileB": 2}
        # the added cameras' Prometheus series carry their camera ids, as DeepStream's sensor labels
        metrics = requests.get(run.base + "/metrics", timeout=10).text
        assert 'sensor_id="cam",sensor_name="cam",source_id="0"' in metrics
        assert run.streams().items() <= ids.items() and "cam" in run.streams()

        # the files end by themselves; the camera keeps playing until it is removed
        run.wait(lambda: set(run.streams()) == {"cam"}, what="both files to end")
        assert run.post("/api/v1/stream/remove", add_body("cam", "rtsp://wrong/url", change="camera_remove")) == {
            "status": "HTTP/1.1 500 Internal Server Error",
            "reason": "STREAM_REMOVE_FAIL, No record found. Failed to remove source stream"}
        assert run.post("/api/v1/stream/remove", add_body("cam", cam_url, change="camera_remove")) == {
            "status": "HTTP/1.1 200 OK", "reason": "STREAM_REMOVE_SUCCESS"}
        assert run.finish() == 0  # the last source ended: the run ends

        frames = run.frames()
        assert sorted(frames[ids["fileA"]]) == list(range(count_frames(clips["a"])))
        assert sorted(frames[ids["fileB"]]) == list(range(count_frames(clips["b"])))
        cam = frames[ids["cam"]]
        assert 0 < len(cam) < count_frames(clips["cam"]) and len(set(cam)) == len(cam)
        report = json.loads(run.report.read_text())
        by_id = {s["source_id"]: s for s in report["sources"]}
        assert by_id[ids["cam"]]["state"] == "ended" and by_id[ids["cam"]]["errors"] == []
        assert by_id[ids["fileA"]]["frames_processed"] == count_frames(clips["a"])
        for text in [run.log.read_text(), run.report.read_text(), run.jsonl.read_text(), *run.responses]:
            assert PASSWORD not in text


def test_drop_pipeline_eos_keeps_the_run_open_until_app_quit(tmp_path, clips):
    config = live_config(tmp_path, max_batch_size=2, drop_pipeline_eos=True)
    with DsrunProcess(config, tmp_path) as run:
        assert run.post("/api/v1/stream/add", add_body("a", clips["a"].as_uri()))["reason"] == "STREAM_ADD_SUCCESS"
        run.wait(lambda: run.streams() == {}, what="the file to end")
        assert run.proc.poll() is None  # still serving: drop-pipeline-eos=1
        # a stream added after every other one ended starts its frame numbers again at 0
        assert run.post("/api/v1/stream/add", add_body("b", clips["b"].as_uri()))["reason"] == "STREAM_ADD_SUCCESS"
        run.wait(lambda: run.streams() == {}, what="the second file to end")
        assert run.post("/api/v1/app/quit", {"value": {"app_quit": 1}}) == {
            "status": "HTTP/1.1 200 OK", "reason": "QUIT_SUCCESS"}
        assert run.finish() == 0
        frames = run.frames()
        assert sorted(frames[0]) == list(range(count_frames(clips["a"])))
        assert sorted(frames[1]) == list(range(count_frames(clips["b"])))


def test_runtime_parameter_routes_answer_as_deepstream_does(tmp_path, clips):
    with DsrunProcess(live_config(tmp_path, drop_pipeline_eos=True), tmp_path) as run:
        post = run.post
        assert post("/api/v1/infer/set-interval", {"stream": {"stream_id": "0", "interval": 33}}) == {
            "status": "HTTP/1.1 400 Bad Request",
            "reason": "INFER_INTERVAL_UPDATE_FAIL, interval value not parsed correctly, Unsigned Integer. Range: 0 - 32"}
        assert post("/api/v1/infer/set-interval", {"stream": {"stream_id": "7", "interval": 2}}) == {
            "status": "HTTP/1.1 500 Internal Server Error",
            "reason": "INFER_INTERVAL_UPDATE_FAIL, Unable to find stream id for infer property updation"}
        assert post("/api/v1/dec/drop-frame-interval", {"stream": {"stream_id": "0", "drop_frame_interval": 31}}) \
            ["reason"].startswith("DROP_FRAME_INTERVAL_UPDATE_FAIL, drop_frame_interval value not parsed")
        assert post("/api/v1/mux/batched-push-timeout", {"stream": {"batched_push_timeout": 20000}}) == {
            "status": "HTTP/1.1 200 OK", "reason": "BATCHED_PUSH_TIMEOUT_UPDATE_SUCCESS"}
        assert post("/api/v1/mux/batched-push-timeout", {"stream": {"batched_push_timeout": -2}})["status"] \
            == "HTTP/1.1 400 Bad Request"
        assert post("/api/v1/dec/skip-frames", {"stream": {"stream_id": "0", "skip_frames": 1}})["status"] \
            == "HTTP/1.1 501 Not Implemented"
        assert post("/api/v1/stream/add", {"value": {"camera_id": "a", "camera_url": "file:///x",
                                                     "change": "camera_rename"}}) == {
            "status": "HTTP/1.1 400 Bad Request", "reason": "Sensor API change string not supported"}
        assert run.get("/api/v1/health/get-dsready-state")["reason"] == "GET_READY_INFO_SUCCESS"
        assert run.get("/version") == {"version": "DeepStream-SDK 9.1 - REST API Version v1"}
        assert requests.get(run.base + "/api/v1/stream/add", timeout=10).status_code == 405
        assert requests.post(run.base + "/api/v1/no/such/route", data="{}", timeout=10).status_code == 404
        # with a stream present, the per-stream routes act on it
        assert post("/api/v1/stream/add", add_body("a", clips["cam"].as_uri()))["reason"] == "STREAM_ADD_SUCCESS"
        assert post("/api/v1/infer/set-interval", {"stream": {"stream_id": "0", "interval": 2}}) == {
            "status": "HTTP/1.1 200 OK", "reason": "INFER_INTERVAL_UPDATE_SUCCESS"}
        assert post("/api/v1/dec/drop-frame-interval", {"stream": {"stream_id": "0", "drop_frame_interval": 2}}) == {
            "status": "HTTP/1.1 200 OK", "reason": "DROP_FRAME_INTERVAL_UPDATE_SUCCESS"}
        assert post("/api/v1/app/quit", {"value": {"app_quit": True}})["reason"] == "QUIT_SUCCESS"
        assert run.finish() == 0


def test_the_tiler_lays_its_grid_out_again_as_streams_come_and_go(tmp_path, clips):
    from runner.config import load_app
    from runner.pipeline.graph import build_graph
    from runner.pipeline.live_sources import LiveSources, live_source_list
    from runner.pipeline.stats import RunStats

    cfg = live_config(tmp_path, extra="\n[tiled-display]\nenable=1\nrows=1\ncolumns=1\nwidth=320\nheight=240\n")
    app = load_app(cfg)
    graph = build_graph(app, RunStats())  # not started: sources join, nothing decodes
    live = LiveSources(graph, app, live_source_list(app))
    tiler = next(s for s in graph.stages if s.name == "tiler")
    assert (tiler.rows, tiler.columns) == (1, 1)
    live.add("a", "a", clips["a"].as_uri())
    live.add("b", "b", clips["b"].as_uri())
    live.add("c", "c", clips["a"].as_uri())
    # deepstream-app's rule (create_pipeline): columns kept, rows = ceil(3 sources / 1 column)
    assert (tiler.rows, tiler.columns) == (3, 1)
    live.remove("c", clips["a"].as_uri())  # source 2 gone: tiles for sources 0 and 1
    assert (tiler.rows, tiler.columns) == (2, 1)


def _keyframes(path) -> list[int]:
    import av

    with av.open(str(path)) as out:
        return [i for i, p in enumerate(p for p in out.demux(video=0) if p.size) if p.is_keyframe]


def test_force_idr_makes_the_file_sinks_next_frame_a_keyframe(tmp_path, clips):
    sink = ("\n[sink1]\nenable=1\ntype=3\ncontainer=1\ncodec=1\nsync=1\niframeinterval=1000\n"
            "output-file=out.mp4\nsource-id=0\n")
    runs = {}
    for forced in (False, True):
        folder = tmp_path / f"forced-{forced}"
        folder.mkdir()
        with DsrunProcess(live_config(folder, extra=sink), folder) as run:
            if forced:
                assert run.post("/api/v1/enc/force-idr", {"stream": {"stream_id": "0", "force_idr": 1}}) == {
                    "status": "HTTP/1.1 500 Internal Server Error",
                    "reason": "FORCE_IDR_UPDATE_FAIL, Not able to find source id"}
            assert run.post("/api/v1/stream/add", add_body("a", clips["a"].as_uri()))["reason"] == \
                "STREAM_ADD_SUCCESS"
            run.wait(lambda: run.frames_processed(0) >= 10, what="10 frames written")  # sync=1: real time
            if forced:
                assert run.post("/api/v1/enc/force-idr", {"stream": {"stream_id": "0", "force_idr": 1}}) == {
                    "status": "HTTP/1.1 200 OK", "reason": "FORCE_IDR_UPDATE_SUCCESS"}
            assert run.finish() == 0
        runs[forced] = _keyframes(folder / "out.mp4")
    # iframeinterval=1000 on a 50-frame clip: only the first frame is a keyframe — and the forced one
    assert runs[False] == [0]
    assert len(runs[True]) == 2 and runs[True][0] == 0 and runs[True][1] > 0
