"""What every broker adaptor shares: a bounded buffer, reconnection with backoff, outage reports.

The pipeline never waits for a broker: :meth:`BufferedPublisher.publish` only appends to a buffer of at
most ``max_queued`` payloads (the oldest is dropped, and counted, when it is full). A background
thread connects, sends, and when the broker goes away reconnects with exponential backoff
(0.2 s doubling to 2 s, as paho's MQTT client does) — payloads made meanwhile wait in the buffer and are delivered when it is back.

An outage is reported twice, once each way, naming the broker by ``host:port`` (never credentials)::

    msgbroker sink1: Redis 127.0.0.1:6379 unreachable (Connection refused) — buffering up to 10000
    messages and reconnecting
    msgbroker sink1: Redis 127.0.0.1:6379 is back after 4.2 s: 38 buffered messages are being
    delivered, 0 were dropped

(dropped: since the last payload the broker took, by the buffer bound).

``close`` delivers what is buffered (up to ``drain_timeout`` s, reconnecting if needed) and returns how
many payloads were lost (never delivered) in the whole run.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from runner.redact import redact

__all__ = ["BufferedPublisher", "ThreadedPublisher", "Undelivered", "MAX_QUEUED", "BACKOFF"]

log = logging.getLogger("dsrun")
MAX_QUEUED = 10_000  # payloads buffered per sink while its broker is away
SEND_BATCH = 256  # payloads handed to a client at once (one Kafka flush, one redis pipeline…)
BACKOFF = (0.2, 2.0)  # first and longest wait between reconnection attempts, seconds


class Undelivered(Exception):
    """Raised by ``_send_many``: these payloads (in order) did not reach the broker; ``reason`` is why."""

    def __init__(self, payloads: list, reason: object) -> None:
        super().__init__(str(reason))
        self.payloads, self.reason = payloads, reason


class BufferedPublisher:
    """The buffer and the outage bookkeeping; subclasses deliver (:class:`ThreadedPublisher`, MQTT)."""

    protocol = "broker"

    def __init__(self, address: str, *, max_queued: int = MAX_QUEUED, name: str = "msgbroker") -> None:
        self.address = address  # host:port, for messages — no credentials
        self.name = name
        self.max_queued = max_queued
        self.queue: collections.deque = collections.deque()
        self.sent = 0
        self.dropped = 0
        self.state = "connecting"
        self.outages = 0
        self.last_outage_s = 0.0  # how long the latest outage lasted, from its detection to reconnection
        self.last_cutoff_s = 0.0  # from the last payload the broker took before it to reconnection
        self._last_ok = time.monotonic()
        self._ok_before_down = 0.0
        self._cond = threading.Condition()
        self._down_at: float | None = None
        self._dropped_at_down = 0
        self._dropped_ok = 0  # self.dropped when the broker last took a payload
        self.stats: dict | None = None  # RunStats.brokers entry, when the sink is bound to a run

    # ---- producer side ---------------------------------------------------------------------------
    def publish(self, payload) -> None:
        with self._cond:
            if len(self.queue) >= self.max_queued:
                self.queue.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("%s: %s %s: buffer full (%d payloads) — dropped the oldest, %d so far",
                                self.name, self.protocol, self.address, self.max_queued, self.dropped)
            self.queue.append(payload)
            self._cond.notify_all()
        self._update_stats()

    # ---- outage reports --------------------------------------------------------------------------
    def _went_down(self, reason: object) -> None:
        if self._down_at is not None:
            return
        self._down_at = time.monotonic()
        self._dropped_at_down = self._dropped_ok
        self._ok_before_down = self._last_ok
        self.state = "down"
        self.outages += 1
        log.warning("%s: %s %s unreachable (%s) — buffering up to %d messages and reconnecting", self.name,
                    self.protocol, self.address, redact(str(reason) or type(reason).__name__), self.max_queued)
        self._update_stats()

    def _came_up(self) -> None:
        self.state = "connected"
        if self._down_at is not None:
            self.last_outage_s = time.monotonic() - self._down_at
            self.last_cutoff_s = time.monotonic() - self._ok_before_down
            log.warning("%s: %s %s is back after %.1f s: %d buffered messages are being delivered, %d were "
                        "dropped", self.name, self.protocol, self.address, time.monotonic() - self._down_at,
                        len(self.queue), self.dropped - self._dropped_at_down)
        self._down_at = None
        self._update_stats()

    def _update_stats(self) -> None:
        if self.stats is not None:
            self.stats.update(state=self.state, sent=self.sent, queued=len(self.queue), dropped=self.dropped,
                              outages=self.outages)

    def lost(self) -> int:
        """Payloads never delivered: dropped by the bound, or still buffered."""
        return self.dropped + len(self.queue)


class ThreadedPublisher(BufferedPublisher):
    """A publisher whose client is driven from one thread: subclasses implement ``_connect``,
    ``_send(payload)`` (or ``_send_many(payloads)``, raising :class:`Undelivered` with what did not
    arrive) and ``_disconnect``. A raise means the broker went away: what was not delivered goes back to
    the front of the buffer and is sent again after reconnection."""

    def __init__(self, address: str, *, backoff: tuple[float, float] = BACKOFF, **kw) -> None:
        super().__init__(address, **kw)
        self.backoff = backoff
        self.connected = False
        self._closing = False
        self._deadline = 0.0
        self._stop = threading.Event()  # wakes a backoff wait when the sink closes (publish must not)
        self._thread = threading.Thread(target=self._run, name=f"{self.protocol}-{address}", daemon=True)

    def start(self) -> "ThreadedPublisher":
        self._thread.start()
        return self

    def _connect(self) -> None:
        raise NotImplementedError

    def _send(self, payload) -> None:
        raise NotImplementedError

    def _send_many(self, payloads: list) -> None:
        for i, payload in enumerate(payloads):
            try:
                self._send(payload)
            except Exception as exc:  # noqa: BLE001
                raise Undelivered(payloads[i:], exc) from exc

    def _disconnect(self) -> None:
        pass

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            with self._cond:
                if self._closing and (not self.queue or time.monotonic() >= self._deadline):
                    break
                if self.connected and not self.queue:
                    self._cond.wait(0.5)
                    continue
            if not self.connected:
                try:
                    self._connect()
                except Exception as exc:  # noqa: BLE001 — any failure to connect is an outage
                    self._went_down(exc)
                    self._wait(delay)
                    delay = min(delay * 2, self.backoff[1])
                    continue
                self.connected, delay = True, self.backoff[0]
                self._came_up()
                continue
            with self._cond:
                if not self.queue:
                    continue
                batch = [self.queue.popleft() for _ in range(min(SEND_BATCH, len(self.queue)))]
            try:
                self._send_many(batch)
                failed: list = []
            except Undelivered as exc:
                failed, reason = exc.payloads, exc.reason
            except Exception as exc:  # noqa: BLE001 — the broker went away mid-send
                failed, reason = batch, exc
            self.sent += len(batch) - len(failed)
            if failed:
                with self._cond:
                    room = self.max_queued - len(self.queue)
                    keep = failed[len(failed) - max(room, 0):] if room < len(failed) else failed
                    self.dropped += len(failed) - len(keep)
                    self.queue.extendleft(reversed(keep))
                self.connected = False
                self._quiet_disconnect()
                self._went_down(reason)
                continue
            self._dropped_ok, self._last_ok = self.dropped, time.monotonic()
            self._update_stats()
        self._quiet_disconnect()
        self._update_stats()

    def _quiet_disconnect(self) -> None:
        try:
            self._disconnect()
        except Exception:  # noqa: BLE001 — a connection already gone
            pass

    def close(self, drain_timeout: float = 5.0) -> int:
        """Deliver what is buffered (up to ``drain_timeout`` s), stop; returns payloads lost."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + drain_timeout
            self._cond.notify_all()
        self._stop.set()
        self._thread.join(timeout=drain_timeout + 10)
        return self.lost()
