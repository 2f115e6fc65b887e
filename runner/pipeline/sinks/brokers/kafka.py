"""The Kafka adaptor (``libnvds_kafka_proto.so``): payloads produced with confluent-kafka (librdkafka,
the library DeepStream's adaptor uses).

As DeepStream's src/utils/nvds_msgapi/kafka_protocol_adaptor (nvds_kafka_proto.cpp, json_helper.cpp):
``msg-broker-conn-str`` is ``host;port``; the cfg file's ``proto-cfg`` and ``producer-proto-cfg`` are
``key=value;key=value`` librdkafka settings (surrounding quotes removed), applied in that order;
``partition-key`` (default ``sensor.id``) is a dotted path into the JSON payload whose string value
becomes the message key (none when the path is absent: librdkafka's default partitioner then spreads
messages). ``consumer-group-id``/``consumer-proto-cfg`` are for subscribers.

One difference, on purpose: DeepStream 9.1's ``json_get_key_value`` cuts the last character of every
path component but the last (``memcpy`` then ``subpath[len - 1] = 0``), so ``sensor.id`` looks up
``senso`` and never matches — every message goes without a key. dsrun follows the documented meaning.

What is buffered is produced in batches of up to 256 and flushed (up to 2 s); what was not delivered
means the broker is away: it goes back to the buffer, the producer is purged (no duplicate later) and
rebuilt on reconnection.
"""

from __future__ import annotations

import json

import logging

from runner.pipeline.sinks.brokers.base import ThreadedPublisher, Undelivered

__all__ = ["KafkaPublisher", "parse_proto_cfg", "partition_key", "DEFAULT_PARTITION_KEY"]

DEFAULT_PARTITION_KEY = "sensor.id"  # nvds_kafka_proto.h DEFAULT_PARTITION_NAME
# librdkafka's own log lines (a FAIL line per reconnection attempt) go here, not to the console: the
# publisher reports outages itself, once each way
_LIBRDKAFKA_LOG = logging.getLogger("dsrun.librdkafka")
_LIBRDKAFKA_LOG.propagate = False
_LIBRDKAFKA_LOG.addHandler(logging.NullHandler())


def parse_proto_cfg(text: str | None) -> dict[str, str]:
    """``key=value;key=value`` as ``nvds_kafka_parse_proto_cfg`` reads it (quotes stripped first).

    >>> parse_proto_cfg('"message.timeout.ms=2000;linger.ms=5"')
    {'message.timeout.ms': '2000', 'linger.ms': '5'}
    """
    text = (text or "").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    out: dict[str, str] = {}
    for item in text.split(";"):
        if "=" in item:
            key, value = item.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def partition_key(payload: str, path: str) -> str | None:
    """The string at the dotted ``path`` of a JSON payload, or None.

    >>> partition_key('{"sensor": {"id": "CAM_A"}, "sensorId": "0"}', "sensor.id")
    'CAM_A'
    >>> partition_key('{"sensorId": "0"}', "sensor.id") is None
    True
    """
    try:
        node = json.loads(payload)
    except ValueError:
        return None
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) else None


class KafkaPublisher(ThreadedPublisher):
    protocol = "Kafka"

    def __init__(self, host: str, port: int, topic: str, *, settings: dict[str, str] | None = None,
                 key_path: str = DEFAULT_PARTITION_KEY, flush_timeout: float = 2.0, **kw) -> None:
        super().__init__(f"{host}:{port}", **kw)
        self.topic, self.key_path, self.flush_timeout = topic, key_path, flush_timeout
        self.conf = {**(settings or {}), "bootstrap.servers": f"{host}:{port}"}
        self._producer = None

    def _connect(self) -> None:
        from confluent_kafka import Producer

        producer = Producer(self.conf, logger=_LIBRDKAFKA_LOG)
        producer.list_topics(timeout=3)  # raises KafkaException while no broker answers
        self._producer = producer

    def _send_many(self, payloads: list) -> None:
        outcome: dict[int, object] = {}
        for i, payload in enumerate(payloads):
            text = payload if isinstance(payload, str) else payload.decode()
            self._producer.produce(self.topic, value=text.encode(), key=partition_key(text, self.key_path),
                                   on_delivery=lambda err, msg, i=i: outcome.__setitem__(i, err))
        self._producer.flush(self.flush_timeout)
        failed = [i for i in range(len(payloads)) if outcome.get(i, "timeout") is not None]
        if failed:
            first = outcome.get(failed[0], "timeout")
            reason = f"not delivered within {self.flush_timeout:g} s" if first == "timeout" else str(first)
            raise Undelivered([payloads[i] for i in failed], reason)

    def _disconnect(self) -> None:
        if self._producer is not None:
            self._producer.purge()
            self._producer.flush(0)
            self._producer = None
