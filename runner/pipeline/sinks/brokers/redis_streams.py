"""The Redis adaptor (``libnvds_redis_proto.so``): payloads appended to a Redis Stream.

As DeepStream's src/utils/nvds_msgapi/redis_protocol_adaptor/nvds_redis_client.cpp: each payload is
``XADD <topic> [MAXLEN ~ <streamsize>] * <payloadkey> <payload>`` (``payloadkey`` default ``metadata``);
the server is ``msg-broker-conn-str`` = ``host;port`` when it is longer than 3 characters, else the
cfg file's ``hostname`` and ``port``; the password is the cfg file's ``password``, overridden by the
``PASSWORD_REDIS`` environment variable. ``consumergroup``/``consumername`` (for subscribers) and
``share-connection`` are read and not needed for publishing.
"""

from __future__ import annotations

from runner.pipeline.sinks.brokers.base import ThreadedPublisher, Undelivered

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
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # no retries inside redis-py (its default retries with backoff would hide an outage and hold the
        # buffer): the publisher's own reconnection reports it and keeps the bound
        client = redis.Redis(host=self.host, port=self.port, password=self._password, socket_timeout=5,
                             socket_connect_timeout=3, retry=Retry(NoBackoff(), 0))
        client.ping()
        self._client = client

    def _send(self, payload) -> None:
        self._client.xadd(self.topic, {self.payload_key: payload}, maxlen=self.stream_size,
                          approximate=self.stream_size is not None)

    def _send_many(self, payloads: list) -> None:
        """One round trip for the batch (a pipeline of XADDs, in order); on a failure the whole batch
        is sent again (a payload may then arrive twice, never zero times)."""
        pipe = self._client.pipeline(transaction=False)
        for payload in payloads:
            pipe.xadd(self.topic, {self.payload_key: payload}, maxlen=self.stream_size,
                      approximate=self.stream_size is not None)
        try:
            pipe.execute()
        except Exception as exc:  # noqa: BLE001
            raise Undelivered(payloads, exc) from exc

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
