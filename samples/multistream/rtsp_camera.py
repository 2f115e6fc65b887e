"""The multistream sample's stand-in camera: gst-rtsp-server serving an H.264 MP4 at rtsp://HOST:PORT/MOUNT.

Run by Debian's ``/usr/bin/python3`` (python3-gi, gir1.2-gst-rtsp-server-1.0), not by dsrun:
``dsrun samples run multistream`` starts it and stops it. By hand:

    /usr/bin/python3 samples/multistream/rtsp_camera.py --port 8554 --mount carphone=assets/videos/carphone_pristine.mp4

Each client gets its own playback from the start, paced in real time; the stream ends (RTSP BYE)
at the end of the file. The first stdout line is ``READY <port>`` once the server listens. The tests
(``tests/rtsp_server.py``) run this same server, also with ``--auth USER:PASSWORD``.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True)
    parser.add_argument("--mount", action="append", required=True, help="NAME=FILE.mp4 (H.264)")
    parser.add_argument("--auth", help="USER:PASSWORD: clients must authenticate (RTSP basic auth)")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mount:
        name, path = spec.split("=", 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f'( filesrc location="{path}" ! qtdemux ! h264parse ! '
                           f'rtph264pay name=pay0 pt=96 config-interval=1 )')
        factory.set_shared(False)
        if args.auth:
            factory.add_role_from_structure(Gst.Structure.from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
        mounts.add_factory(f"/{name}", factory)
    if args.auth:
        user, password = args.auth.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {args.host}:{args.port}", flush=True)
        return 1
    print(f"READY {args.port}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
