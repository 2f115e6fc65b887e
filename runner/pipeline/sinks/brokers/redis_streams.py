"""The Redis adaptor (``libnvds_redis_proto.so``): payloads appended to a Redis Stream.

As DeepStream's src/utils/nvds_msgapi/redis_protocol_adaptor/nvds_redis_client.cpp: each payload is
``XADD <topic> [MAXLEN ~ <streamsize>] * <payloadkey> <payload>`` (``payloadkey`` default ``metadata``);
the server is ``msg-broker-conn-str`` = ``host;port`` when it is longer than 3 characters, else the
cfg file's ``hostname`` and ``port``; the password is the cfg file's ``password``, overridden by the
``PASSWORD_REDIS`` environment variable. ``consumergroup``/``consumername`` (for subscribers) and
``share-connection`` are read and not needed for publishing.
"""

from __future__ import annotations

from runner.pipeline.sinks.brokers.base import ThreadedPublisher

__all__ = ["RedisPublisher"]

DEFAULT_PAYLOAD_KEY = "metadata"  # nvds_redis_client.cpp DFLT_PAYLOAD_KEY


class RedisPublisher(ThreadedPublisher):
    protocol = "Redis"

    def __init__(self, host: str, port: int, topic: str, *, password: str | None = None,
                 payload_key: str = DEFAULT_PAYLOAD_KEY, stream_size: int | None = None, **kw) -> None:
        super().__init__(f"{host}:{port}", **kw)
        self.host, self.port, self.topic = host, port, topic
        self._password, self.payload_key, self.stream_size = password, payload_key, stream_size
        self._client = None

    def _connect(self) -> None:
        import redis

        client = redis.Redis(host=self.host, port=self.port, password=self._password, socket_timeout=5,
                             socket_connect_timeout=3)
        client.ping()
        self._client = client

    def _send(self, payload) -> None:
        self._client.xadd(self.topic, {self.payload_key: payload}, maxlen=self.stream_size,
                          approximate=self.stream_size is not None)

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
