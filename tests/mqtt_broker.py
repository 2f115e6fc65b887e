"""A real MQTT broker for tests: Debian's mosquitto on a free loopback port, plus a recording subscriber.

>>> broker = Mosquitto.on_free_port()      # doctest: +SKIP
>>> broker.start(); broker.stop(); broker.start()   # same port again: a broker restart
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{port} within {timeout}s")


class Mosquitto:
    """mosquitto with a generated config: one listener on 127.0.0.1:<port>, anonymous, no persistence."""

    def __init__(self, port: int, persistent: bool = False) -> None:
        """``persistent``: keep sessions and queued QoS 1 messages across restarts (in a tmp dir)."""
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="dsrun-mqtt-"))
        self.conf = self.dir / "mosquitto.conf"
        persistence = (f"persistence true\npersistence_location {self.dir}/\n" if persistent
                       else "persistence false\n")
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{persistence}"
                             f"log_dest file {self.dir / 'mosquitto.log'}\n")
        self.proc: subprocess.Popen | None = None

    @classmethod
    def on_free_port(cls, persistent: bool = False) -> "Mosquitto":
        return cls(free_port(), persistent)

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _wait_listening(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Subscriber:
    """Records every message on ``topic``; reconnects by itself when the broker restarts."""

    def __init__(self, port: int, topic: str, persistent: bool = False) -> None:
        """``persistent``: a fixed client id and clean_session=False, so a persistent broker keeps
        the subscription and the QoS 1 messages published while this subscriber is away."""
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{port}",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(0.1, 0.5)

        def on_connect(client, userdata, flags, reason_code, properties):
            client.subscribe(topic, qos=1)

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            self.subscribed.set()

        def on_disconnect(client, userdata, flags, reason_code, properties):
            self.subscribed.clear()

        def on_message(client, userdata, msg):
            with self.lock:
                self.messages.append(msg.payload)

        self.client.on_connect, self.client.on_subscribe = on_connect, on_subscribe
        self.client.on_disconnect, self.client.on_message = on_disconnect, on_message
        self.client.connect_async("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def wait_subscribed(self, timeout: float = 10.0) -> None:
        assert self.subscribed.wait(timeout), "subscriber did not (re)subscribe"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
