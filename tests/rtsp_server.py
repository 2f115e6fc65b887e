"""A real RTSP server on loopback for tests: GStreamer's gst-rtsp-server, run by Debian's python3.

The pyenv ``python3`` on PATH has no ``gi``; Debian's ``/usr/bin/python3`` (python3-gi,
gir1.2-gst-rtsp-server-1.0) does, so the server runs as a subprocess of that interpreter, executing
the multistream sample's camera script (``samples/multistream/rtsp_camera.py``). Each client gets its own playback of the file from the start, paced in real time.

>>> server = RtspServer({"cam": Path("clip.mp4")}, auth=("admin", "s3cret"))   # doctest: +SKIP
>>> server.start(); server.url("cam", user="admin", password="s3cret")         # doctest: +SKIP
'rtsp://admin:s3cret@127.0.0.1:40123/cam'
>>> server.stop(); server.start()   # same port: clients see the stream vanish and come back

Fixture (import it into a test module): ``rtsp_server`` — a factory ``rtsp_server(mounts, auth=None)``
that starts a server and stops it when the test ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

DEBIAN_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "samples" / "multistream" / "rtsp_camera.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gst_rtsp_available() -> bool:
    """True when Debian's python3 can import GstRtspServer (the test skips otherwise — CI installs it)."""
    if not os.path.exists(DEBIAN_PYTHON):
        return False
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
                            "from gi.repository import GstRtspServer"], capture_output=True)
    return probe.returncode == 0


class RtspServer:
    """gst-rtsp-server serving H.264 MP4 files at ``rtsp://127.0.0.1:PORT/MOUNT``."""

    def __init__(self, mounts: dict[str, Path], auth: tuple[str, str] | None = None, port: int | None = None):
        self.mounts = {name: Path(p).resolve() for name, p in mounts.items()}
        self.auth = auth
        self.port = port or _free_port()
        self._proc: subprocess.Popen | None = None

    def url(self, mount: str, user: str | None = None, password: str | None = None) -> str:
        cred = f"{user}:{password}@" if user is not None else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}/{mount}"

    def start(self, timeout: float = 15.0) -> "RtspServer":
        args = [DEBIAN_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, path in self.mounts.items():
            args += ["--mount", f"{name}={path}"]
        if self.auth:
            args += ["--auth", f"{self.auth[0]}:{self.auth[1]}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYENV"))}
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        line = self._proc.stdout.readline()  # "READY <port>" once the server listens
        if not line.startswith("READY"):
            err = self._proc.stderr.read() if self._proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r} {err}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # wait until the port accepts connections
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("RTSP server never accepted connections")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


try:  # the fixture, when imported by pytest (not in the Debian interpreter)
    import pytest

    @pytest.fixture
    def rtsp_server():
        if not gst_rtsp_available():
            pytest.skip("GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0, python3-gi) not installed")
        servers: list[RtspServer] = []

        def start(mounts: dict[str, Path], auth: tuple[str, str] | None = None) -> RtspServer:
            server = RtspServer(mounts, auth=auth).start()
            servers.append(server)
            return server

        yield start
        for server in servers:
            server.stop()
except ImportError:  # imported without pytest
    pass


def played_whole(source) -> bool:
    """A live camera that played to its end: at least 20 frames received, and every frame received
    either went through the pipeline or was counted as dropped (a live source keeps only its newest
    frame when the pipeline runs slower than real time, as on a loaded machine), some went through.
    ``source``: a report's source dict or a :class:`runner.pipeline.stats.SourceStats`."""
    get = source.get if isinstance(source, dict) else lambda key: getattr(source, key)
    return (get("state") == "ended" and get("frames_decoded") >= 20 and get("frames_processed") >= 1
            and get("frames_processed") + get("dropped") == get("frames_decoded"))
