"""The AMQP adaptor (``libnvds_amqp_proto.so``): payloads published to an exchange with pika.

As DeepStream's src/utils/nvds_msgapi/amqp_protocol_adaptor/amqp_client.cpp: the cfg file's
``[message-broker]`` gives ``hostname``, ``port`` (5672), ``username``, ``password``, ``exchange``
(``amq.topic``), ``topic`` (``deepstream_topic``), ``amqp-framesize`` and ``amqp-heartbeat`` (0: off);
``msg-broker-conn-str`` is ``host;port`` (or the deprecated ``host;port;user[;password]``) and wins over
the cfg file's server; ``USER_AMQP`` / ``PASSWORD_AMQP`` environment variables win over both for the
credentials. Each payload is published to the exchange with the sink's ``topic`` (else the cfg
file's) as routing key, virtual host ``/``, ``content_type`` text/plain, persistent delivery
(delivery_mode 2). dsrun also asks the broker to confirm each publish, so a payload the broker did not
take is sent again after reconnection instead of being lost silently.
"""

from __future__ import annotations

from runner.pipeline.sinks.brokers.base import ThreadedPublisher

__all__ = ["AmqpPublisher", "DEFAULTS"]

#: amqp_client.cpp: DFLT_RMQ_EXCHANGE_NAME, DFLT_PORT, DFLT_TOPIC, and the frame size cfg_amqp.txt sets
DEFAULTS = {"exchange": "amq.topic", "port": 5672, "topic": "deepstream_topic", "framesize": 131072,
            "heartbeat": 0}


class AmqpPublisher(ThreadedPublisher):
    protocol = "AMQP"

    def __init__(self, host: str, port: int, topic: str, *, exchange: str = DEFAULTS["exchange"],
                 username: str = "guest", password: str = "guest", frame_max: int = DEFAULTS["framesize"],
                 heartbeat: int = 0, **kw) -> None:
        super().__init__(f"{host}:{port}", **kw)
        self.host, self.port, self.topic, self.exchange = host, port, topic, exchange
        self._user, self._password = username, password
        self.frame_max, self.heartbeat = frame_max, heartbeat
        self._conn = self._channel = None

    def _connect(self) -> None:
        import pika

        params = pika.ConnectionParameters(
            host=self.host, port=self.port, virtual_host="/",
            credentials=pika.PlainCredentials(self._user, self._password), frame_max=max(self.frame_max, 4096),
            heartbeat=self.heartbeat, blocked_connection_timeout=10, socket_timeout=5,
            connection_attempts=1)
        self._conn = pika.BlockingConnection(params)
        self._channel = self._conn.channel()
        self._channel.confirm_delivery()

    def _send(self, payload) -> None:
        import pika

        self._channel.basic_publish(self.exchange, self.topic, payload.encode() if isinstance(payload, str) else payload,
                                    pika.BasicProperties(content_type="text/plain", delivery_mode=2))

    def _disconnect(self) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
        self._conn = self._channel = None
