"""``[sinkN] type=6``: nvmsgconv + nvmsgbroker — DeepStream JSON payloads published to a broker.

Payloads are made by :class:`runner.pipeline.msgconv.MessageConverter` from the sink's
``msg-conv-*`` keys (or, with ``disable-msgconv=1``, from the ``[message-converter]`` group, as
deepstream-app does). ``msg-broker-proto-lib`` picks the protocol: the MQTT adaptor
(``libnvds_mqtt_proto.so``) publishes with paho-mqtt to ``msg-broker-conn-str`` = ``host;port``
(a third ``;topic`` part is accepted when ``topic`` is unset) on ``topic``. Kafka, Redis, AMQP and
Azure adaptors are refused with a clear "not supported yet" error.

The pipeline never waits for the broker: ``process`` only queues payloads. A background thread
(paho's network loop) connects, reconnects every 0.2–2 s when the broker is down or restarts, and
publishes queued payloads with QoS 1 once connected — so messages made while the broker was away are
delivered when it is back (up to :data:`MAX_QUEUED` waiting payloads; older ones are dropped first,
with a warning). ``close`` waits up to ``drain_timeout`` seconds for the queue to empty.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path

from runner.deepstream_libs import BROKERS_SUPPORTED, broker_adaptor
from runner.errors import DsrunError
from runner.pipeline.batch import Batch
from runner.pipeline.labels import app_labels, classifier_types
from runner.pipeline.msgconv import MessageConverter, read_msgconv_config
from runner.pipeline.sinks import register_sink

__all__ = ["MsgBrokerSink", "MqttPublisher", "MsgBrokerError", "parse_conn_str", "make_msgbroker_sink",
           "MAX_QUEUED"]

log = logging.getLogger("dsrun")
MAX_QUEUED = 10_000


class MsgBrokerError(DsrunError):
    """A ``[sinkN] type=6`` setting dsrun cannot act on."""

    exit_code = 2


def parse_conn_str(conn_str: str | None, topic: str | None, where: str) -> tuple[str, int, str]:
    """``host;port[;topic]`` + ``topic`` → (host, port, topic).

    >>> parse_conn_str("localhost;1883", "dsrun", "[sink1]")
    ('localhost', 1883, 'dsrun')
    >>> parse_conn_str("10.0.0.2;1884;events", None, "[sink1]")
    ('10.0.0.2', 1884, 'events')
    """
    parts = [p.strip() for p in (conn_str or "").split(";")]
    if len(parts) < 2 or not parts[0] or not parts[1].isdigit():
        raise MsgBrokerError(f"{where} msg-broker-conn-str: {conn_str!r} is not host;port — "
                             f"write e.g. msg-broker-conn-str=localhost;1883")
    topic = topic or (parts[2] if len(parts) > 2 and parts[2] else None)
    if not topic:
        raise MsgBrokerError(f"{where} topic: not set — add topic=<name> (the MQTT topic to publish on)")
    return parts[0], int(parts[1]), topic


class MqttPublisher:
    """Queues payloads and publishes them from paho's network thread (see the module docstring)."""

    def __init__(self, host: str, port: int, topic: str, *, client_id: str = "", keepalive: int = 10,
                 max_queued: int = MAX_QUEUED) -> None:
        import paho.mqtt.client as mqtt

        self.host, self.port, self.topic = host, port, topic
        self.queue: collections.deque[str] = collections.deque()
        self.max_queued = max_queued
        self.sent = 0
        self.dropped = 0
        self.connected = threading.Event()
        self._wake = threading.Condition()
        self._closing = False
        self._mqtt = mqtt
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.reconnect_delay_set(0.2, 2)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(host, port, keepalive=keepalive)
        self.client.loop_start()  # paho's thread retries the first connection too
        self._thread = threading.Thread(target=self._publish_loop, name=f"mqtt-{host}:{port}", daemon=True)
        self._thread.start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self.connected.set()
            with self._wake:
                self._wake.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()

    def publish(self, payload: str) -> None:
        with self._wake:
            if len(self.queue) >= self.max_queued:
                self.queue.popleft()
                self.dropped += 1
                if self.dropped == 1:
                    log.warning("MQTT %s:%s unreachable: %d payloads queued, dropping the oldest",
                                self.host, self.port, self.max_queued)
            self.queue.append(payload)
            self._wake.notify_all()

    def _publish_loop(self) -> None:
        while True:
            with self._wake:
                while not (self._closing and not self.queue) and not (self.queue and self.connected.is_set()):
                    self._wake.wait(0.2)
                if self._closing and not self.queue:
                    return
                payload = self.queue.popleft()
            info = self.client.publish(self.topic, payload, qos=1)
            if info.rc in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):
                self.sent += 1  # NO_CONN: paho keeps a QoS 1 message and sends it on reconnection
            else:
                with self._wake:
                    self.queue.appendleft(payload)
                time.sleep(0.05)

    def close(self, drain_timeout: float = 5.0) -> int:
        """Deliver what is queued (up to ``drain_timeout`` s), then disconnect; returns payloads lost."""
        deadline = time.monotonic() + drain_timeout
        while self.queue and time.monotonic() < deadline:  # also waits for a (re)connection
            time.sleep(0.02)
        with self._wake:
            lost = len(self.queue) + self.dropped
            self.queue.clear()
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout=1)
        while self.client.want_write() and self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)  # let paho flush what it accepted
        self.client.disconnect()
        self.client.loop_stop()
        return lost


class MsgBrokerSink:
    """The type-6 sink stage: converts each batch and hands payloads to the publisher."""

    def __init__(self, name: str, converter: MessageConverter, publisher, drain_timeout: float = 5.0) -> None:
        self.name = name
        self.converter = converter
        self.publisher = publisher
        self.drain_timeout = drain_timeout

    def process(self, batch: Batch) -> Batch:
        for _, payload in self.converter.convert(batch):
            self.publisher.publish(payload)
        return batch

    def close(self) -> None:
        lost = self.publisher.close(self.drain_timeout)
        if lost:
            log.warning("%s: %d messages were not delivered (broker %s:%s unreachable at exit)", self.name,
                        lost, self.publisher.host, self.publisher.port)


def _adaptor(proto_lib, where: str) -> str:
    name = Path(str(proto_lib or "")).name.lower()
    if not name:
        raise MsgBrokerError(f"{where} msg-broker-proto-lib: not set — set it to DeepStream's MQTT adaptor, "
                             f"msg-broker-proto-lib=/opt/nvidia/deepstream/deepstream/lib/libnvds_mqtt_proto.so")
    found = broker_adaptor(name)
    if found is not None and found[0] in BROKERS_SUPPORTED:
        return found[0]
    if found is not None:
        raise MsgBrokerError(f"{where} msg-broker-proto-lib: the {found[1]} adaptor ({name}) is not supported "
                             f"yet — dsrun publishes to MQTT: use libnvds_mqtt_proto.so and an MQTT broker")
    raise MsgBrokerError(f"{where} msg-broker-proto-lib: unknown adaptor {name} — dsrun supports "
                         f"libnvds_mqtt_proto.so (MQTT)")


def make_msgbroker_sink(cfg, app, options) -> MsgBrokerSink:
    """Factory for ``[sinkN] type=6`` (registered with the sinks registry)."""
    index = getattr(cfg, "index", 0)
    where = f"[sink{index}]"
    _adaptor(getattr(cfg, "msg_broker_proto_lib", None), where)
    host, port, topic = parse_conn_str(getattr(cfg, "msg_broker_conn_str", None), getattr(cfg, "topic", None),
                                       where)
    conv = cfg
    common = getattr(app, "message_converter", None)
    if getattr(cfg, "disable_msgconv", False) and common is not None and getattr(common, "enable", False):
        conv = common  # deepstream-app: payloads come from the [message-converter] element
    converter = MessageConverter(
        payload_type=int(getattr(conv, "msg_conv_payload_type", 0) or 0),
        frame_interval=int(getattr(conv, "msg_conv_frame_interval", 30) or 30),
        config=read_msgconv_config(getattr(conv, "msg_conv_config", None)),
        labels=app_labels(app), classifier_types=classifier_types(app))
    publisher = MqttPublisher(host, port, topic, client_id=f"dsrun-sink{index}")
    return MsgBrokerSink(f"sink{index}", converter, publisher)


register_sink(6, make_msgbroker_sink)
