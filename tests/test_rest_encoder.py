"""The REST API's encoder and ROI routes against a running dsrun, over real HTTP, on real footage
(market_street.mp4). Answers are nvmultiurisrcbin's (gstdsnvmultiurisrcbin.cpp ``s_enc_api_impl`` /
``s_roi_api_impl``, nvds_enc_parse.cpp, nvds_roi_parse.cpp); the effect is measured in the written
file with PyAV (packet sizes → kbit/s per second of video, keyframe flags), never read from dsrun.

Where a change lands depends on when the request arrives, so each run brackets it with forced
keyframes (``/enc/force-idr`` before and after): requests are answered in order and each acts on the
encoder's next frame, so the change lands between the two markers.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from rest_client import DsrunProcess, add_body, live_config

FPS = 30
FRAMES = 300


@pytest.fixture(scope="module")
def footage(tmp_path_factory, assets):
    """The first 300 frames of market_street.mp4 (real street footage, 640x360) at 30 fps, H.264."""
    path = tmp_path_factory.mktemp("rest_encoder") / "market.mp4"
    with av.open(str(assets.videos["market_street"])) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "crf": "16", "bf": "0"}
        for i, frame in zip(range(FRAMES), src.decode(video=0)):
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _sink(bitrate: int, iframeinterval: int) -> str:
    return (f"\n[sink1]\nenable=1\ntype=3\ncontainer=1\ncodec=1\nsync=1\nbitrate={bitrate}\n"
            f"iframeinterval={iframeinterval}\noutput-file=out.mp4\nsource-id=0\n")


def _packets(path) -> tuple[np.ndarray, list[int]]:
    """(bytes per frame, indices of keyframes) of the written file, in order."""
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
    return np.array([p.size for p in packets]), [i for i, p in enumerate(packets) if p.is_keyframe]


def _kbps(sizes: np.ndarray, start: int, stop: int) -> float:
    return float(sizes[start:stop].sum()) * 8 / ((stop - start) / FPS) / 1000


def _ok(code: int = 200, text: str = "OK") -> str:
    return f"HTTP/1.1 {code} {text}"


def _run_with_change(tmp_path, footage, sink: str, route: str, body: dict, marker_after: bool = True):
    """Run the footage through a file sink; once 60 frames are through, POST force-idr, ``route`` and
    (``marker_after``) force-idr again. Returns the written file's packets and ``route``'s answer."""
    idr = {"stream": {"stream_id": "0", "force_idr": 1}}
    with DsrunProcess(live_config(tmp_path, extra=sink), tmp_path) as run:
        assert run.post("/api/v1/stream/add", add_body("market", footage.as_uri()))["reason"] == "STREAM_ADD_SUCCESS"
        run.wait(lambda: run.frames_processed(0) >= 60, what="60 frames through the pipeline")
        assert run.post("/api/v1/enc/force-idr", idr)["reason"] == "FORCE_IDR_UPDATE_SUCCESS"
        answer = run.post(route, body)
        if marker_after:
            assert run.post("/api/v1/enc/force-idr", idr)["reason"] == "FORCE_IDR_UPDATE_SUCCESS"
        assert run.finish() == 0
    assert "Traceback" not in run.log.read_text()
    return _packets(tmp_path / "out.mp4"), answer


def test_bitrate_update_takes_the_running_encoder_to_the_new_rate(tmp_path, footage):
    (sizes, keys), answer = _run_with_change(tmp_path, footage, _sink(4_000_000, 1000), "/api/v1/enc/bitrate",
                                             {"stream": {"stream_id": "0", "bitrate": 500_000}})
    assert answer == {"status": _ok(), "reason": "BITRATE_UPDATE_SUCCESS"}
    assert len(sizes) == FRAMES
    # iframeinterval=1000: the keyframes are the first frame and the two markers (one, if both
    # requests reached the encoder before the same frame)
    assert keys[0] == 0 and 2 <= len(keys) <= 3, keys
    first, last = keys[1], keys[-1]
    assert first >= 30 and last + 60 + FPS <= FRAMES, keys  # a second before, two seconds after
    before = _kbps(sizes, 0, first)
    after = _kbps(sizes, last + 60, FRAMES)  # x264's rate control settles within two seconds
    assert 3000 <= before <= 5000, before  # the configured 4 Mbit/s
    assert 375 <= after <= 625, after  # the new 500 kbit/s, ±25 %


def test_bitrate_update_can_raise_the_rate_above_the_configured_one(tmp_path, footage):
    (sizes, keys), answer = _run_with_change(tmp_path, footage, _sink(500_000, 1000), "/api/v1/enc/bitrate",
                                             {"stream": {"stream_id": "0", "bitrate": 2_000_000}})
    assert answer["reason"] == "BITRATE_UPDATE_SUCCESS"
    first, last = keys[1], keys[-1]
    assert first >= 30 and last + 60 + FPS <= FRAMES, keys
    assert 375 <= _kbps(sizes, 0, first) <= 625
    assert 1500 <= _kbps(sizes, last + 60, FRAMES) <= 2500


def test_iframe_interval_update_spaces_keyframes_from_the_next_frame(tmp_path, footage):
    (sizes, keys), answer = _run_with_change(tmp_path, footage, _sink(2_000_000, 1000),
                                             "/api/v1/enc/iframe-interval",
                                             {"stream": {"stream_id": "0", "iframeinterval": 25}},
                                             marker_after=False)
    assert answer == {"status": _ok(), "reason": "IFRAME_INTERVAL_UPDATE_SUCCESS"}
    assert len(sizes) == FRAMES
    # before the change: the first frame and the marker only (iframeinterval=1000); from the change
    # on, a keyframe every 25 frames to the end
    assert keys[0] == 0 and keys[1] >= 30, keys
    assert len(keys) >= 6 and keys[2:] == list(range(keys[2], FRAMES, 25)), keys


def test_encoder_and_roi_routes_refuse_what_deepstream_refuses(tmp_path, footage):
    with DsrunProcess(live_config(tmp_path, drop_pipeline_eos=True, extra=_sink(1_000_000, 30)), tmp_path) as run:
        post = run.post
        bad = _ok(400, "Bad Request")
        # nvds_enc_parse.cpp: the range checks (bitrate is a UInt: a negative number is not one)
        assert post("/api/v1/enc/iframe-interval", {"stream": {"stream_id": "0", "iframeinterval": 257}}) == {
            "status": bad, "reason": "IFRAME_INTERVAL_UPDATE_FAIL, iframeinterval value not parsed correctly, "
                                     "Unsigned Integer Range: 0 - 4294967295"}
        assert post("/api/v1/enc/bitrate", {"stream": {"stream_id": "0", "bitrate": -5}})["status"] == bad
        # nvds_roi_parse.cpp, in its order: stream_id, roi_count, roi
        roi = {"stream_id": "0", "roi_count": 1,
               "roi": [{"roi_id": "0", "left": 100, "top": 50, "width": 200, "height": 150}]}
        for change, reason in (({"stream_id": ""}, "ROI_UPDATE_FAIL, stream_id value not parsed correctly"),
                               ({"roi_count": 0}, "ROI_UPDATE_FAIL, roi id is 0"),
                               ({"roi": ""}, "ROI_UPDATE_FAIL, roi is empty"),
                               ({"roi_count": "two"}, "ROI_UPDATE_FAIL, error: Value is not convertible to UInt.")):
            assert post("/api/v1/roi/update", {"stream": {**roi, **change}}) == {"status": bad, "reason": reason}
        # s_enc_api_impl / s_roi_api_impl: a stream that is not there
        missing = _ok(500, "Internal Server Error")
        assert post("/api/v1/enc/bitrate", {"stream": {"stream_id": "0", "bitrate": 800_000}}) == {
            "status": missing, "reason": "BITRATE_UPDATE_FAIL, Not able to find source id"}
        assert post("/api/v1/enc/iframe-interval", {"stream": {"stream_id": "0", "iframeinterval": 10}}) == {
            "status": missing, "reason": "IFRAME_INTERVAL_UPDATE_FAIL, Not able to find source id"}
        assert post("/api/v1/roi/update", {"stream": roi}) == {
            "status": missing, "reason": "ROI_UPDATE_FAIL, Unable to find stream id for ROI updation"}
        # with the stream there: dsrun has no nvdspreprocess, so — as a DeepStream pipeline without one
        # — the nv-roi-update event is pushed, nothing acts on it, and the answer is success
        assert post("/api/v1/stream/add", add_body("market", footage.as_uri()))["reason"] == "STREAM_ADD_SUCCESS"
        assert post("/api/v1/roi/update", {"stream": roi}) == {"status": _ok(), "reason": "ROI_UPDATE_SUCCESS"}
        assert post("/api/v1/app/quit", {"value": {"app_quit": True}})["reason"] == "QUIT_SUCCESS"
        assert run.finish() == 0
    assert "no pre-process element" in run.log.read_text()
