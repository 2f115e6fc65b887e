"""Local services the gallery starts for a sample run: an RTSP camera and an MQTT broker with a listener.

What to start is read from the sample's own app configs, so a sample (or a copy of one with other
ports) needs no table here:

- a ``type=4`` source at ``rtsp://127.0.0.1:PORT/NAME``, where ``NAME`` is a video of the assets
  (``carphone``), gets a gst-rtsp-server (``samples/multistream/rtsp_camera.py`` run by Debian's
  ``/usr/bin/python3``) serving that clip, looped, as a live camera would;
- a ``type=6`` sink whose ``msg-broker-conn-str`` is ``127.0.0.1;PORT`` gets a mosquitto on that port
  when nothing listens there, and a paho-mqtt subscriber on its ``topic`` that keeps every message.

Something already listening on a port is used as it is (your own camera or broker).

>>> parse_local_rtsp("rtsp://127.0.0.1:8554/carphone")
(8554, 'carphone')
>>> parse_local_rtsp("rtsp://10.0.0.7/cam") is None
True
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from runner.errors import DsrunError
from runner.resources import data_dir

__all__ = ["ServiceError", "parse_local_rtsp", "rtsp_camera", "mosquitto", "MessageListener", "DEBIAN_PYTHON"]

DEBIAN_PYTHON = "/usr/bin/python3"
CAMERA_SCRIPT = data_dir("samples") / "multistream" / "rtsp_camera.py"
LOCAL = ("127.0.0.1", "localhost")
CAMERA_LOOPS = 3  # carphone is 4 s; three loops outlast the sample's files (bikes.mp4 is 10 s)


class ServiceError(DsrunError):
    """A service a sample needs cannot be started."""

    exit_code = 2


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _wait_listening(port: int, proc: subprocess.Popen, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ServiceError(f"{what} did not start on 127.0.0.1:{port} — is the port free? "
                               f"(ss -ltnp | grep :{port})")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_local_rtsp(uri: str) -> tuple[int, str] | None:
    """``rtsp://127.0.0.1:PORT/NAME`` → ``(PORT, NAME)``; ``None`` for any other address."""
    parts = urlsplit(uri)
    if parts.scheme != "rtsp" or parts.hostname not in LOCAL:
        return None
    return parts.port or 554, parts.path.strip("/")


def looped_clip(src: Path, dst: Path, loops: int | None = None) -> Path:
    """``src`` played ``loops`` (default ``CAMERA_LOOPS``) times in one MP4, by copying its packets."""
    import av

    loops = CAMERA_LOOPS if loops is None else loops
    with av.open(str(dst), "w") as out:
        ostream = None
        offset = 0
        for _ in range(loops):
            with av.open(str(src)) as inp:
                istream = inp.streams.video[0]
                if ostream is None:
                    ostream = out.add_stream_from_template(istream)
                end = 0
                for packet in inp.demux(istream):
                    if packet.dts is None:
                        continue
                    end = max(end, packet.pts + (packet.duration or 0))
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = ostream
                    out.mux(packet)
                offset += end
    return dst


@contextlib.contextmanager
def rtsp_camera(video: Path, port: int, mount: str, workdir: Path, log=print) -> Iterator[str]:
    """Serve ``video`` (looped) at ``rtsp://127.0.0.1:port/mount`` while the block runs; yields the URL."""
    url = f"rtsp://127.0.0.1:{port}/{mount}"
    if listening(port):
        log(f"using the RTSP server already on 127.0.0.1:{port} for {url}")
        yield url
        return
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                           capture_output=True) if os.path.exists(DEBIAN_PYTHON) else None
    if probe is None or probe.returncode != 0:
        raise ServiceError(f"this sample serves {video.name} at {url} with GStreamer's RTSP server, which "
                           f"needs {DEBIAN_PYTHON} with gi — apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                           "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad, or start a camera at that URL")
    workdir.mkdir(parents=True, exist_ok=True)
    clip = looped_clip(video, workdir / f"camera_{mount}.mp4")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYENV"))}
    proc = subprocess.Popen([DEBIAN_PYTHON, str(CAMERA_SCRIPT), "--port", str(port), "--mount", f"{mount}={clip}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        ready = proc.stdout.readline()
        if not ready.startswith("READY"):
            raise ServiceError(f"the RTSP camera for {url} did not start: {ready.strip() or 'no output'}")
        _wait_listening(port, proc, "the RTSP camera")
        log(f"RTSP camera: {url} serves {video.name} ({CAMERA_LOOPS} loops, real time)")
        yield url
    finally:
        _stop(proc)


@contextlib.contextmanager
def mosquitto(port: int, log=print) -> Iterator[None]:
    """A mosquitto on ``127.0.0.1:port`` (anonymous, no persistence) unless something listens there."""
    if listening(port):
        log(f"using the MQTT broker already on 127.0.0.1:{port}")
        yield
        return
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if binary is None:
        raise ServiceError(f"this sample publishes to an MQTT broker on 127.0.0.1:{port} and mosquitto is not "
                           "installed — apt-get install mosquitto, or start a broker on that port")
    with tempfile.TemporaryDirectory(prefix="dsrun-mqtt-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        f"log_dest file {tmp}/mosquitto.log\n")
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(port, proc, "mosquitto")
            log(f"MQTT broker: mosquitto on 127.0.0.1:{port}")
            yield
        finally:
            _stop(proc)


class MessageListener:
    """Subscribes to ``topic`` on ``host:port`` and keeps every message (paho-mqtt, QoS 1).

    >>> with MessageListener("127.0.0.1", 1883, "dsrun/#") as heard:   # doctest: +SKIP
    ...     run_the_app()
    >>> len(heard.messages)                                             # doctest: +SKIP
    """

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.host, self.port, self.topic = host, port, topic
        self.messages: list[bytes] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()

    def __enter__(self) -> "MessageListener":
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dsrun-gallery-{os.getpid()}")
        client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = lambda c, u, msg: self._add(msg.payload)
        client.connect(self.host, self.port, keepalive=10)
        client.loop_start()
        self.client = client
        if not self._subscribed.wait(10):
            self.__exit__(None, None, None)
            raise ServiceError(f"could not subscribe to {self.topic} on {self.host}:{self.port}")
        return self

    def _add(self, payload: bytes) -> None:
        with self._lock:
            self.messages.append(payload)

    def settle(self, quiet: float = 0.5, limit: float = 5.0) -> int:
        """Wait until no message has arrived for ``quiet`` seconds (at most ``limit``); the count."""
        deadline = time.monotonic() + limit
        seen = -1
        while time.monotonic() < deadline:
            with self._lock:
                count = len(self.messages)
            if count == seen:
                break
            seen = count
            time.sleep(quiet)
        return len(self.messages)

    def save(self, path: Path) -> None:
        """One message per line (the JSON payloads as published)."""
        with self._lock:
            payloads = list(self.messages)
        with path.open("w", encoding="utf-8") as f:
            for payload in payloads:
                text = payload.decode("utf-8", "replace")
                with contextlib.suppress(ValueError):
                    text = json.dumps(json.loads(text), separators=(",", ":"))
                f.write(text.replace("\n", " ") + "\n")

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

