"""Run-time control of a sink's encoder: the REST API's ``/enc/force-idr``, ``/enc/force-intra``,
``/enc/bitrate`` and ``/enc/iframe-interval`` (gstdsnvmultiurisrcbin.cpp ``s_enc_api_impl`` pushes
``nv-enc-force-idr``, ``nv-enc-bitrate-update`` and ``nv-enc-iframeinterval-update`` events to the
encoders; each takes effect on the next frame the encoder receives).

Keyframes are placed here, not by the codec's own GOP logic (the encoders are opened with an endless
GOP): a frame is a keyframe when it is the first, when one was forced, or when ``interval`` frames have
passed since the last keyframe. A new interval therefore counts from the last keyframe; when that is
already ``interval`` frames back, the next frame is one. 0 means the encoders' default, 30 (as dsrun
reads ``iframeinterval=0`` in a ``[sinkN]`` group).

The bitrate is held as GStreamer's x264enc holds it (deepstream_sink_bin.c uses x264enc for software
H.264; ``gst_x264_enc_reconfig``, pass=cbr): average and VBV maximum both ``bitrate``, VBV buffer
``bitrate × 600 / 1000`` (vbv-buf-capacity 600 ms). A change sets all three; libavcodec's libx264
wrapper hands them to ``x264_encoder_reconfig`` before the next frame. Only H.264 (libx264) can take
a new bitrate while running; libx265 and mpeg4 keep theirs (:attr:`EncoderControl.live_bitrate`).

>>> control = EncoderControl(gop=3)
>>> [control.next_is_keyframe() for _ in range(7)]
[True, False, False, True, False, False, True]
>>> control.set_iframe_interval(2); control.next_is_keyframe(), control.next_is_keyframe()
(False, True)
>>> vbv_options(4_000_000)
{'maxrate': '4000000', 'bufsize': '2400000'}
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import threading

import av

log = logging.getLogger("dsrun")

DEFAULT_IFRAME_INTERVAL = 30  # nvv4l2h264enc's iframeinterval default; dsrun's reading of 0
VBV_BUFFER_MS = 600  # x264enc's vbv-buf-capacity default


def vbv_options(bitrate: int) -> dict[str, str]:
    """libavcodec options for x264enc's constant-bitrate pass: VBV maximum = bitrate, buffer 600 ms."""
    return {"maxrate": str(int(bitrate)), "bufsize": str(int(bitrate) * VBV_BUFFER_MS // 1000)}


class EncoderControl:
    """What the REST thread asks of one encoder, applied by the sink's thread to the next frame."""

    def __init__(self, gop: int, live_bitrate: bool = False) -> None:
        self.gop = int(gop) or DEFAULT_IFRAME_INTERVAL
        self.live_bitrate = live_bitrate
        self._since_keyframe: int | None = None  # frames since the last keyframe; None before the first
        self._forced = False
        self._bitrate: int | None = None
        self._lock = threading.Lock()

    # -- asked by the REST API (any thread) ------------------------------------------------------------

    def request_keyframe(self) -> None:
        self._forced = True

    def set_iframe_interval(self, interval: int) -> None:
        self.gop = int(interval) or DEFAULT_IFRAME_INTERVAL

    def set_bitrate(self, bitrate: int) -> None:
        with self._lock:
            self._bitrate = int(bitrate)

    # -- applied by the sink (its own thread) ---------------------------------------------------------

    def next_is_keyframe(self) -> bool:
        """Whether the frame about to be encoded is a keyframe; counts it."""
        forced, self._forced = self._forced, False
        key = forced or self._since_keyframe is None or self._since_keyframe + 1 >= self.gop
        self._since_keyframe = 0 if key else self._since_keyframe + 1
        return key

    def apply(self, frame: av.VideoFrame, codec_context) -> None:
        """Before ``codec_context.encode(frame)``: a pending bitrate, and the frame's picture type."""
        with self._lock:
            bitrate, self._bitrate = self._bitrate, None
        if bitrate is not None:
            set_bitrate(codec_context, bitrate)
        if self.next_is_keyframe():
            frame.pict_type = av.video.frame.PictureType.I


# -- libavcodec's rate-control fields ------------------------------------------------------------------
# PyAV sets ``bit_rate`` on an open encoder but has no setter for ``rc_max_rate``/``rc_buffer_size``;
# they are set through libavutil's AVOptions on the AVCodecContext PyAV holds (the first field after the
# Cython object's header and vtable). The address is verified against two fields PyAV reports before
# anything is written; where it does not match, only ``bit_rate`` changes (x264 then keeps its VBV
# maximum, so a rate above the configured one is capped at it) and a warning says so.

_AVUTIL = None


def _avutil():
    global _AVUTIL
    if _AVUTIL is None:
        libs = os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs")
        found = sorted(glob.glob(os.path.join(libs, "libavutil*.so*")))
        try:
            _AVUTIL = ctypes.CDLL(found[0]) if found else ctypes.CDLL(None)
            _AVUTIL.av_opt_set_int  # noqa: B018  (raises AttributeError when absent)
        except (OSError, AttributeError):
            _AVUTIL = False
    return _AVUTIL


def _codec_context_pointer(ctx) -> ctypes.c_void_p | None:
    lib = _avutil()
    if not lib:
        return None
    pointer = ctypes.c_void_p(ctypes.c_void_p.from_address(id(ctx) + 3 * ctypes.sizeof(ctypes.c_void_p)).value)
    value = ctypes.c_int64()
    for name, expected in ((b"b", ctx.bit_rate or 0), (b"g", ctx.gop_size)):
        if lib.av_opt_get_int(pointer, name, 0, ctypes.byref(value)) != 0 or value.value != expected:
            return None
    return pointer


def set_bitrate(ctx, bitrate: int) -> None:
    """x264enc's reconfig on an open libavcodec encoder: average, VBV maximum and buffer."""
    pointer = _codec_context_pointer(ctx)
    ctx.bit_rate = int(bitrate)
    if pointer is None:
        log.warning("encoder: only the average bitrate changed to %d (the VBV maximum stays where it was "
                    "set when the encoder opened)", bitrate)
        return
    lib = _avutil()
    for name, value in vbv_options(bitrate).items():
        lib.av_opt_set_int(pointer, name.encode(), int(value), 0)
