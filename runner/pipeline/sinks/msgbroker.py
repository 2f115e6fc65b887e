"""``[sinkN] type=6``: nvmsgconv + nvmsgbroker — DeepStream JSON payloads published to a broker.

Payloads are made by :class:`runner.pipeline.msgconv.MessageConverter` from the sink's
``msg-conv-*`` keys (or, with ``disable-msgconv=1``, from the ``[message-converter]`` group, as
deepstream-app does). ``msg-broker-proto-lib`` picks the protocol adaptor by DeepStream's library name —
MQTT (``libnvds_mqtt_proto.so``), Redis Streams (``libnvds_redis_proto.so``), AMQP
(``libnvds_amqp_proto.so``), Kafka (``libnvds_kafka_proto.so``); the server, topic and the adaptor's
``msg-broker-config`` keys are resolved by :func:`runner.broker_settings.resolve` (also what
``dsrun check`` runs) and the client is built by :mod:`runner.pipeline.sinks.brokers`.

The pipeline never waits for the broker: ``process`` only buffers payloads (at most
:data:`MAX_QUEUED`; the oldest is dropped first, counted). A background thread connects, reconnects
with backoff when the broker goes away, says once that it is unreachable and once that it is back
(with how many messages were buffered and dropped meanwhile), and delivers what was buffered.
``close`` waits up to ``drain_timeout`` seconds for the buffer to empty.
"""

from __future__ import annotations

import logging

from runner.broker_settings import BrokerSettingsError, resolve
from runner.errors import DsrunError
from runner.pipeline.batch import Batch
from runner.pipeline.labels import app_labels, classifier_types
from runner.pipeline.msgconv import MessageConverter, read_msgconv_config
from runner.pipeline.sinks import register_sink
from runner.pipeline.sinks.brokers import make_publisher
from runner.pipeline.sinks.brokers.base import MAX_QUEUED

__all__ = ["MsgBrokerSink", "MsgBrokerError", "parse_conn_str", "make_msgbroker_sink", "MAX_QUEUED"]

log = logging.getLogger("dsrun")


class MsgBrokerError(DsrunError):
    """A ``[sinkN] type=6`` setting dsrun cannot act on."""

    exit_code = 2


def parse_conn_str(conn_str: str | None, topic: str | None, where: str) -> tuple[str, int, str]:
    """MQTT's ``host;port[;topic]`` + ``topic`` → (host, port, topic).

    >>> parse_conn_str("localhost;1883", "dsrun", "[sink1]")
    ('localhost', 1883, 'dsrun')
    >>> parse_conn_str("10.0.0.2;1884;events", None, "[sink1]")
    ('10.0.0.2', 1884, 'events')
    """
    try:
        s = resolve("libnvds_mqtt_proto.so", conn_str, topic, None)
    except BrokerSettingsError as exc:
        raise MsgBrokerError(f"{where} {exc}") from None
    return s.host, s.port, s.topic


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

    def bind_stats(self, stats) -> None:
        """Publish this sink's broker counters in ``stats.brokers`` (dashboard, metrics, --report)."""
        entry = stats.brokers.setdefault(self.name, {"protocol": self.publisher.protocol,
                                                     "address": self.publisher.address})
        self.publisher.stats = entry
        self.publisher._update_stats()

    def close(self) -> None:
        lost = self.publisher.close(self.drain_timeout)
        if lost:
            log.warning("%s: %d messages were not delivered (%s %s unreachable at exit)", self.name,
                        lost, self.publisher.protocol, self.publisher.address)


def make_msgbroker_sink(cfg, app, options) -> MsgBrokerSink:
    """Factory for ``[sinkN] type=6`` (registered with the sinks registry)."""
    index = getattr(cfg, "index", 0)
    where = f"[sink{index}]"
    try:
        settings = resolve(getattr(cfg, "msg_broker_proto_lib", None), getattr(cfg, "msg_broker_conn_str", None),
                           getattr(cfg, "topic", None), getattr(cfg, "msg_broker_config", None))
    except BrokerSettingsError as exc:
        raise MsgBrokerError(f"{where} {exc}") from None
    conv = cfg
    common = getattr(app, "message_converter", None)
    if getattr(cfg, "disable_msgconv", False) and common is not None and getattr(common, "enable", False):
        conv = common  # deepstream-app: payloads come from the [message-converter] element
    converter = MessageConverter(
        payload_type=int(getattr(conv, "msg_conv_payload_type", 0) or 0),
        frame_interval=int(getattr(conv, "msg_conv_frame_interval", 30) or 30),
        config=read_msgconv_config(getattr(conv, "msg_conv_config", None)),
        labels=app_labels(app), classifier_types=classifier_types(app))
    publisher = make_publisher(settings, name=f"msgbroker sink{index}", client_id=f"dsrun-sink{index}")
    return MsgBrokerSink(f"sink{index}", converter, publisher)


register_sink(6, make_msgbroker_sink)
