"""GStreamer RTSP server for dsrun's type-4 sink — run by Debian's /usr/bin/python3 (it has ``gi``).

Not imported by dsrun: ``runner.pipeline.sinks.rtsp`` starts it as a subprocess. It does what
deepstream-app's ``create_udpsink_bin`` + ``start_rtsp_streaming`` do: encoded access units arrive on
stdin, are RTP-payloaded and sent to ``127.0.0.1:<udp-port>``, and a gst-rtsp-server on
``<rtsp-port>`` serves ``/ds-test`` with a shared media ``udpsrc port=<udp-port>`` — so
``rtsp://127.0.0.1:<rtsp-port>/ds-test`` plays as it does from deepstream-app.

stdin protocol, repeated: ``>qI`` header (pts in nanoseconds, payload length) then the Annex-B
access unit. End of stdin ends the server. The first stdout line is ``READY <rtsp-port>`` or
``ERROR <what>``.
"""

import argparse
import struct
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

HEADER = struct.Struct(">qI")


def _read_exact(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtsp-port", type=int, required=True)
    ap.add_argument("--udp-port", type=int, required=True)
    ap.add_argument("--codec", choices=("H264", "H265"), default="H264")
    ap.add_argument("--mount", default="/ds-test")
    ap.add_argument("--udp-buffer-size", type=int, default=512 * 1024)
    args = ap.parse_args()

    Gst.init(None)
    low = args.codec.lower()
    sender = Gst.parse_launch(
        f"appsrc name=src is-live=true format=time do-timestamp=false "
        f"caps=video/x-{low},stream-format=byte-stream,alignment=au ! {low}parse config-interval=-1 ! "
        f"rtp{low}pay pt=96 config-interval=-1 ! "
        f"udpsink host=127.0.0.1 port={args.udp_port} sync=false async=false")
    appsrc = sender.get_by_name("src")

    server = GstRtspServer.RTSPServer()
    server.set_address("0.0.0.0")
    server.set_service(str(args.rtsp_port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(True)
    factory.set_launch(
        f'( udpsrc name=pay0 port={args.udp_port} buffer-size={args.udp_buffer_size} '
        f'caps="application/x-rtp, media=video, clock-rate=90000, encoding-name={args.codec}, '
        f'payload=96" )')
    server.get_mount_points().add_factory(args.mount, factory)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on RTSP port {args.rtsp_port}", flush=True)
        return 1
    sender.set_state(Gst.State.PLAYING)
    print(f"READY {args.rtsp_port}", flush=True)

    def feed():
        stdin = sys.stdin.buffer
        while True:
            header = _read_exact(stdin, HEADER.size)
            if header is None:
                break
            pts, size = HEADER.unpack(header)
            data = _read_exact(stdin, size)
            if data is None:
                break
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = pts
            buf.dts = pts
            appsrc.emit("push-buffer", buf)
        appsrc.emit("end-of-stream")
        GLib.idle_add(loop.quit)

    threading.Thread(target=feed, daemon=True).start()
    try:
        loop.run()
    finally:
        sender.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
