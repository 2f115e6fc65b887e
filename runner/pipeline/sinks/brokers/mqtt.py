"""The MQTT adaptor (``libnvds_mqtt_proto.so``): payloads published with paho-mqtt, QoS 1.

``msg-broker-conn-str`` = ``host;port`` (a third ``;topic`` part is accepted when ``topic`` is unset).
paho's network thread connects and reconnects every 0.2–2 s; a publishing thread takes payloads from
the bounded buffer (:mod:`runner.pipeline.sinks.brokers.base`) while connected. A payload handed to paho
while the connection drops is kept by paho (QoS 1) and sent on reconnection.
"""

from __future__ import annotations

import threading
import time

from runner.pipeline.sinks.brokers.base import MAX_QUEUED, BufferedPublisher

__all__ = ["MqttPublisher"]


class MqttPublisher(BufferedPublisher):
    protocol = "MQTT"

    def __init__(self, host: str, port: int, topic: str, *, client_id: str = "", keepalive: int = 10,
                 max_queued: int = MAX_QUEUED, name: str = "msgbroker") -> None:
        import paho.mqtt.client as mqtt

        super().__init__(f"{host}:{port}", max_queued=max_queued, name=name)
        self.host, self.port, self.topic = host, port, topic
        self.connected = threading.Event()
        self._closing = False
        self._in_hand = False  # a payload taken from the buffer and not yet handed to paho
        self._last_info = None  # paho's MQTTMessageInfo of the last payload handed to it
        self._mqtt = mqtt
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.reconnect_delay_set(0.2, 2)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.connect_async(host, port, keepalive=keepalive)
        self.client.loop_start()  # paho's thread retries the first connection too
        self._thread = threading.Thread(target=self._publish_loop, name=f"mqtt-{host}:{port}", daemon=True)
        self._thread.start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._went_down(f"refused: {reason_code}")
            return
        self.connected.set()
        self._came_up()
        with self._cond:
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._closing:
            self._went_down(f"disconnected: {reason_code}")

    def _on_connect_fail(self, client, userdata) -> None:
        self._went_down("connection refused")

    def _publish_loop(self) -> None:
        while True:
            with self._cond:
                while not (self._closing and not self.queue) and not (self.queue and self.connected.is_set()):
                    self._cond.wait(0.2)
                if self._closing and not self.queue:
                    return
                payload = self.queue.popleft()
                self._in_hand = True
            try:
                info = self.client.publish(self.topic, payload, qos=1)
            finally:
                with self._cond:
                    self._in_hand = False
            self._last_info = info
            if info.rc in (self._mqtt.MQTT_ERR_SUCCESS, self._mqtt.MQTT_ERR_NO_CONN):
                self.sent += 1  # NO_CONN: paho keeps a QoS 1 message and sends it on reconnection
                self._dropped_ok, self._last_ok = self.dropped, time.monotonic()
                if self.sent % 64 == 0 or not self.queue:
                    self._update_stats()
            else:
                with self._cond:
                    self.queue.appendleft(payload)
                time.sleep(0.05)

    def close(self, drain_timeout: float = 5.0) -> int:
        """Deliver what is buffered (up to ``drain_timeout`` s), then disconnect; returns payloads lost."""
        deadline = time.monotonic() + drain_timeout
        while (self.queue or self._in_hand) and time.monotonic() < deadline:  # also waits for a (re)connection
            time.sleep(0.02)
        with self._cond:
            lost = self.lost()
            self.queue.clear()
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=max(deadline - time.monotonic(), 0) + 1)
        info = self._last_info
        if info is not None and self.connected.is_set():  # QoS 1: the broker has it once it acknowledged
            try:
                info.wait_for_publish(timeout=max(deadline - time.monotonic(), 0.1))
            except (RuntimeError, ValueError):  # the connection dropped meanwhile: paho says so
                pass
        while self.client.want_write() and self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)  # let paho flush what it accepted
        self.client.disconnect()
        self.client.loop_stop()
        self._update_stats()
        return lost
