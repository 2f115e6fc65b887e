"""Protocol adaptors behind ``msg-broker-proto-lib``: one client per DeepStream adaptor library.

:func:`make_publisher` builds the publisher for resolved :class:`~runner.broker_settings.BrokerSettings`
(which adaptor, server and topic — shared with ``dsrun check``). Each adaptor reads the cfg-file keys
and environment variables its DeepStream counterpart reads (see each module), buffers boundedly while
its broker is away and reconnects with backoff (:mod:`runner.pipeline.sinks.brokers.base`).
Passwords are handed to :func:`runner.redact.remember_secret` so no output can show them.
"""

from __future__ import annotations

import importlib
import os

from runner.broker_settings import BrokerSettings
from runner.redact import remember_secret

__all__ = ["make_publisher", "PUBLISHERS"]

#: adaptor word (runner/deepstream_libs.py BROKER_ADAPTORS) → module and class of its publisher
PUBLISHERS = {"mqtt": ("runner.pipeline.sinks.brokers.mqtt", "MqttPublisher"),
              "redis": ("runner.pipeline.sinks.brokers.redis_streams", "RedisPublisher"),
              "amqp": ("runner.pipeline.sinks.brokers.amqp", "AmqpPublisher"),
              "kafka": ("runner.pipeline.sinks.brokers.kafka", "KafkaPublisher")}


def _secret(value: str | None) -> str | None:
    if value:
        remember_secret(value)
    return value


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value).split()[0]) if value not in (None, "") else default
    except ValueError:
        return default


def make_publisher(s: BrokerSettings, *, name: str = "msgbroker", client_id: str = "", **kw):
    """The running publisher for ``s`` (``kw``: max_queued, backoff…)."""
    module, cls_name = PUBLISHERS[s.adaptor]
    cls = getattr(importlib.import_module(module), cls_name)
    o = s.options
    if s.adaptor == "mqtt":
        return cls(s.host, s.port, s.topic, client_id=client_id, name=name, **kw)
    if s.adaptor == "redis":  # nvds_redis_client.cpp parse_config: PASSWORD_REDIS overrides the cfg file
        stream_size = _int(o.get("streamsize"), 0) or None
        return cls(s.host, s.port, s.topic, password=_secret(os.environ.get("PASSWORD_REDIS") or o.get("password")),
                   payload_key=o.get("payloadkey") or "metadata", stream_size=stream_size, name=name, **kw).start()
    if s.adaptor == "amqp":  # amqp_client.cpp: env USER_AMQP/PASSWORD_AMQP > conn-str parts > cfg file
        from runner.pipeline.sinks.brokers.amqp import DEFAULTS

        user = os.environ.get("USER_AMQP") or (s.conn_extra[0] if len(s.conn_extra) > 0 else None) \
            or o.get("username") or "guest"
        password = os.environ.get("PASSWORD_AMQP") or (s.conn_extra[1] if len(s.conn_extra) > 1 else None) \
            or o.get("password") or "guest"
        return cls(s.host, s.port, s.topic, exchange=o.get("exchange") or DEFAULTS["exchange"], username=user,
                   password=_secret(password), frame_max=_int(o.get("amqp-framesize"), DEFAULTS["framesize"]),
                   heartbeat=_int(o.get("amqp-heartbeat"), 0), name=name, **kw).start()
    from runner.pipeline.sinks.brokers.kafka import DEFAULT_PARTITION_KEY, parse_proto_cfg

    settings = {**parse_proto_cfg(o.get("proto-cfg")), **parse_proto_cfg(o.get("producer-proto-cfg"))}
    for key in ("sasl.password", "ssl.key.password"):
        _secret(settings.get(key))
    return cls(s.host, s.port, s.topic, settings=settings, key_path=o.get("partition-key") or DEFAULT_PARTITION_KEY,
               name=name, **kw).start()
