"""Where a ``[sinkN] type=6`` publishes: its adaptor, server, topic and adaptor settings, resolved the way
each DeepStream protocol adaptor resolves them — one function read by ``dsrun check`` (a sink that
cannot run is a located error before the run) and by the msgbroker sink (which builds the client).

Per adaptor (``msg-broker-proto-lib``, by the word in the library's name — runner/deepstream_libs.py):

- ``mqtt``: ``msg-broker-conn-str`` = ``host;port[;topic]``; ``topic`` (or that third part) required;
- ``redis``: ``host;port`` when the string is longer than 3 characters, else the cfg file's
  ``hostname``/``port``; ``topic`` is the stream key, required;
- ``amqp``: ``host;port[;user[;password]]``, else the cfg file's ``hostname``/``port`` (5672); topic:
  the sink's, else the cfg file's, else ``deepstream_topic``;
- ``kafka``: ``host;port`` (at most two ``;``), required; ``topic`` required.

The cfg file is ``msg-broker-config``, its ``[message-broker]`` group (every key kept in ``options``).

>>> s = resolve("/opt/nvidia/deepstream/deepstream/lib/libnvds_redis_proto.so", "localhost;6379", "ds", None)
>>> s.adaptor, s.host, s.port, s.topic, s.address
('redis', 'localhost', 6379, 'ds', 'localhost:6379')
>>> try:
...     resolve("libnvds_kafka_proto.so", None, "ds", None)
... except BrokerSettingsError as e:
...     print(e)
msg-broker-conn-str: not set — the Kafka adaptor needs the broker address — write msg-broker-conn-str=<host>;<port>, e.g. localhost;9092
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from runner.deepstream_libs import BROKER_ADAPTORS, BROKERS_SUPPORTED, broker_adaptor

__all__ = ["BrokerSettings", "BrokerSettingsError", "resolve", "read_broker_cfg", "ADAPTOR_LIBS", "DEFAULT_PORTS"]

#: the .so name DeepStream ships for each adaptor dsrun implements (runner/deepstream_libs.py lists them)
ADAPTOR_LIBS = {word: f"libnvds_{word}_proto.so" for word in BROKERS_SUPPORTED}
DEFAULT_PORTS = {"mqtt": 1883, "redis": 6379, "amqp": 5672, "kafka": 9092}
AMQP_DEFAULT_TOPIC = "deepstream_topic"  # amqp_client.cpp DFLT_TOPIC


class BrokerSettingsError(ValueError):
    """A broker setting that cannot work; ``key`` is the DeepStream key to fix (in the ``[sinkN]``)."""

    def __init__(self, key: str, message: str, hint: str) -> None:
        super().__init__(f"{key}: {message} — {hint}")
        self.key, self.message, self.hint = key, message, hint


@dataclass(frozen=True)
class BrokerSettings:
    adaptor: str  # mqtt | redis | amqp | kafka
    host: str
    port: int
    topic: str
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # [message-broker]
    conn_extra: tuple[str, ...] = ()  # parts of msg-broker-conn-str after host;port (AMQP user, password)

    @property
    def protocol(self) -> str:
        return BROKER_ADAPTORS[self.adaptor]

    @property
    def address(self) -> str:
        """``host:port`` — what messages name (never credentials)."""
        return f"{self.host}:{self.port}"


def read_broker_cfg(path: Path) -> dict[str, str]:
    """The ``[message-broker]`` keys of an adaptor cfg file (GLib key file), raw strings."""
    from runner.config.keyfile import parse_keyfile  # here: runner.config imports this module

    try:
        doc = parse_keyfile(Path(path).read_bytes(), str(path))
    except OSError as exc:
        raise BrokerSettingsError("msg-broker-config", f"{path} cannot be read ({exc.strerror})",
                                  "fix the path of the adaptor's cfg file") from None
    group = doc.groups.get("message-broker")
    return {} if group is None else {k: str(e.value).strip() for k, e in group.entries.items()}


def _port(text: str, key: str, what: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise BrokerSettingsError(key, f"port {text!r} of the {what} is not a port number",
                                  "write a number between 1 and 65535")
    return int(text)


def resolve(proto_lib, conn_str: str | None, topic: str | None, cfg_path) -> BrokerSettings:
    """The settings of one sink (see the module docstring); :class:`BrokerSettingsError` when they cannot
    work."""
    name = Path(str(proto_lib or "")).name
    found = broker_adaptor(name) if name else None
    supported = ", ".join(f"{lib} ({BROKER_ADAPTORS[w]})" for w, lib in ADAPTOR_LIBS.items())
    if not name:
        raise BrokerSettingsError("msg-broker-proto-lib", "not set",
                                  f"name DeepStream's adaptor library: {supported}")
    if found is None:
        raise BrokerSettingsError("msg-broker-proto-lib", f"unknown adaptor {name}",
                                  f"dsrun implements {supported}")
    adaptor, protocol = found
    if adaptor not in BROKERS_SUPPORTED:
        raise BrokerSettingsError("msg-broker-proto-lib", f"the {protocol} adaptor ({name}) is not implemented",
                                  f"publish through one dsrun implements: {supported}")
    options = read_broker_cfg(Path(cfg_path)) if cfg_path else {}
    parts = [p.strip() for p in (conn_str or "").split(";")] if conn_str else []
    example = f"msg-broker-conn-str=localhost;{DEFAULT_PORTS[adaptor]}"
    host = port = None
    if adaptor == "redis" and len(conn_str or "") <= 3 or adaptor == "amqp" and not parts:
        host, port = options.get("hostname"), options.get("port", "5672" if adaptor == "amqp" else None)
        where = "hostname/port in msg-broker-config"
        if not host or not port:
            raise BrokerSettingsError("msg-broker-conn-str", f"not set, and no {where} — the {protocol} adaptor "
                                      "needs the server address", f"write {example}")
        port = _port(port, "msg-broker-config", f"{protocol} server ({where})")
    else:
        if not parts:
            raise BrokerSettingsError("msg-broker-conn-str", f"not set — the {protocol} adaptor needs the broker "
                                      "address", f"write msg-broker-conn-str=<host>;<port>, e.g. "
                                      f"localhost;{DEFAULT_PORTS[adaptor]}")
        limit = {"mqtt": 3, "redis": 2, "amqp": 4, "kafka": 3}[adaptor]
        if len(parts) < 2 or not parts[0] or len(parts) > limit:
            raise BrokerSettingsError("msg-broker-conn-str", f"{conn_str!r} is not host;port", f"write {example}")
        host, port = parts[0], _port(parts[1], "msg-broker-conn-str", f"{protocol} broker")
    extra = tuple(parts[2:]) if adaptor == "amqp" else ()
    if adaptor == "mqtt" and not topic and len(parts) > 2 and parts[2]:
        topic = parts[2]
    if adaptor == "amqp":
        topic = topic or options.get("topic") or AMQP_DEFAULT_TOPIC
    if not topic:
        what = "the Redis stream key" if adaptor == "redis" else f"the {protocol} topic"
        raise BrokerSettingsError("topic", "not set", f"add topic=<name> ({what} to publish on)")
    return BrokerSettings(adaptor, host, int(port), topic, MappingProxyType(dict(options)), extra)
