"""[sinkN] type=6 against a real mosquitto on loopback: payload contents, cadence, broker outages."""

import json
import time
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from runner.pipeline.batch import Classifications, Objects
from runner.pipeline.labels import UNTRACKED_OBJECT_ID
from runner.pipeline.sinks.msgbroker import MsgBrokerError, make_msgbroker_sink

from tests.mqtt_broker import Mosquitto, Subscriber
from tests.outputs_support import dsrun_log as caplog  # noqa: F401 — the fixture
from tests.outputs_support import make_batch

MQTT_LIB = "/opt/nvidia/deepstream/deepstream/lib/libnvds_mqtt_proto.so"
LABELS = ["car", "bicycle", "person", "roadsign"]
MSGCONV = """[sensor0]
enable=1
type=Camera
id=CAM_A
location=45.29;-75.83;48.15
description=Aisle Camera
coordinate=5.2;10.1;11.2

[sensor1]
enable=1
type=Camera
id=CAM_B
location=1;2;3
description=Gate
coordinate=0;0;0

[place0]
enable=1
id=0
type=garage
name=P
location=30.32;-40.55;100.0
coordinate=1.0;2.0;3.0
place-sub-field1=walsh
place-sub-field2=lane1
place-sub-field3=P2

[analytics0]
enable=1
id=XYZ
description=Vehicle Detection
source=OpenALR
version=1.0
"""


def app_for(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    nvinfer = SimpleNamespace(gie_unique_id=1, labelfile_path=labels, classifier_type=None)
    sgie = SimpleNamespace(enable=True, nvinfer=SimpleNamespace(gie_unique_id=4, labelfile_path=None,
                                                                classifier_type="vehicletype"))
    return SimpleNamespace(primary_gie=SimpleNamespace(enable=True, nvinfer=nvinfer), secondary_gies=(sgie,),
                           message_converter=None, sources=(0, 1))


def sink_config(tmp_path, port, **over):
    conf = tmp_path / "msgconv.txt"
    conf.write_text(MSGCONV)
    base = dict(index=2, enable=1, type=6, msg_broker_proto_lib=MQTT_LIB, msg_broker_conn_str=f"127.0.0.1;{port}",
                topic="dsrun/test", msg_conv_payload_type=0, msg_conv_frame_interval=5, msg_conv_config=conf,
                disable_msgconv=False)
    base.update(over)
    return SimpleNamespace(**base)


def run_batches(sink, frame_nums, rng):
    """Two sources per batch, 0-3 objects per frame; returns the batches sent."""
    sent = []
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    for k in frame_nums:
        counts = rng.integers(0, 4, 2)
        frame = np.repeat([0, 1], counts)
        n = len(frame)
        xy = rng.uniform(0, 500, (n, 2))
        objs = Objects.from_columns(frame=frame, gie_id=1, class_id=rng.integers(0, 4, n),
                                    confidence=rng.uniform(0.3, 1, n), xyxy=np.hstack([xy, xy + 40.7]),
                                    track_id=np.where(rng.random(n) < 0.8, rng.integers(0, 100, n), -1))
        cls = Classifications.from_columns(obj=np.arange(n), frame=frame, gie_id=4, class_id=1,
                                           confidence=0.5, label="sedan")
        batch = make_batch(frames, [0, 1], [k, k], objs, cls)
        start = time.monotonic()
        sink.process(batch)
        assert time.monotonic() - start < 0.5, "the broker sink must never hold up the pipeline"
        sent.append(batch)
    return sent


def expected_objects(batches, interval):
    out = []
    for b in batches:
        for i in range(len(b)):
            if b.frame_num[i] % interval:
                continue
            for r in np.flatnonzero(b.objects.frame == i).tolist():
                out.append((int(b.source_id[i]), b, r))
    return out


@pytest.fixture
def broker():
    b = Mosquitto.on_free_port(persistent=True).start()
    yield b
    b.stop()


def test_full_payloads_one_per_object_every_frame_interval_matching_the_metadata(tmp_path, broker):
    sub = Subscriber(broker.port, "dsrun/test")
    sub.wait_subscribed()
    sink = make_msgbroker_sink(sink_config(tmp_path, broker.port), app_for(tmp_path), None)
    batches = run_batches(sink, range(12), np.random.default_rng(1))
    sink.close()
    want = expected_objects(batches, 5)  # frames 0, 5, 10
    got = [json.loads(m) for m in sub.wait_for(len(want))]
    time.sleep(0.3)
    assert len(sub.messages) == len(want) and len(want) > 3
    for msg, (sid, b, r) in zip(got, want):
        obj = msg["object"]
        x1, y1, x2, y2 = b.objects.xyxy[r].tolist()
        assert obj["bbox"] == {"topleftx": int(x1), "toplefty": int(y1), "bottomrightx": int(x2),
                               "bottomrighty": int(y2)}
        label = LABELS[int(b.objects.class_id[r])]
        assert obj[label]["confidence"] == pytest.approx(float(b.objects.confidence[r]), rel=1e-6)
        assert obj[label]["vehicletype"] == "sedan"
        tid = int(b.objects.track_id[r])
        assert obj["id"] == str(tid if tid >= 0 else UNTRACKED_OBJECT_ID)
        assert msg["sensor"]["id"] == ("CAM_A" if sid == 0 else "CAM_B")
        assert msg["mdsversion"] == "1.0" and msg["event"]["type"] == "" and msg["videoPath"] == ""
        assert (msg["place"] is not None) == (sid == 0)
    assert got[0]["place"]["place-sub-field"] == {"id": "walsh", "name": "lane1", "level": "P2",
                                                  "coordinate": {"x": 1.0, "y": 2.0, "z": 3.0}}
    assert len({m["messageid"] for m in got}) == len(got)
    sub.close()


def test_minimal_payload_is_one_message_per_frame_with_pipe_separated_objects(tmp_path, broker):
    sub = Subscriber(broker.port, "dsrun/test")
    sub.wait_subscribed()
    sink = make_msgbroker_sink(sink_config(tmp_path, broker.port, msg_conv_payload_type=1,
                                           msg_conv_frame_interval=2), app_for(tmp_path), None)
    batches = run_batches(sink, range(4), np.random.default_rng(2))
    sink.close()
    got = [json.loads(m) for m in sub.wait_for(4)]  # frames 0 and 2 of two sources
    assert [(m["id"], m["sensorId"]) for m in got] == [("0", "CAM_A"), ("0", "CAM_B"), ("2", "CAM_A"),
                                                        ("2", "CAM_B")]
    b = batches[2]
    rows = np.flatnonzero(b.objects.frame == 1)
    assert len(got[3]["objects"]) == len(rows)
    for text, r in zip(got[3]["objects"], rows.tolist()):
        fields = text.split("|")
        tid = int(b.objects.track_id[r])
        assert fields[0] == str(tid if tid >= 0 else UNTRACKED_OBJECT_ID)
        np.testing.assert_allclose([float(v) for v in fields[1:5]], b.objects.xyxy[r], rtol=1e-5)
        assert fields[5] == LABELS[int(b.objects.class_id[r])] and fields[6:8] == ["#", "sedan"]
        assert float(fields[8]) == pytest.approx(float(b.objects.confidence[r]), rel=1e-5)
    sub.close()


def test_broker_down_at_start_and_restarted_mid_run_messages_resume(tmp_path, broker, caplog):
    caplog.set_level("WARNING", logger="dsrun")
    sub = Subscriber(broker.port, "dsrun/test", persistent=True)  # session kept by the broker
    sub.wait_subscribed()
    broker.stop()  # down before the run starts
    sink = make_msgbroker_sink(sink_config(tmp_path, broker.port, msg_conv_frame_interval=1),
                               app_for(tmp_path), None)
    rng = np.random.default_rng(3)
    early = run_batches(sink, range(0, 5), rng)  # produced while the broker is down
    broker.start()
    sub.wait_subscribed()
    first = len(expected_objects(early, 1))
    assert len(sub.wait_for(first, timeout=15)) == first
    broker.stop()  # restarted mid-run
    middle = run_batches(sink, range(5, 10), rng)
    broker.start()
    late = run_batches(sink, range(10, 15), rng)
    total = first + len(expected_objects(middle + late, 1))
    msgs = sub.wait_for(total, timeout=15)
    sink.close()
    got = Counter(tuple(json.loads(m)["object"]["bbox"].values()) for m in msgs)
    want = Counter(tuple(int(v) for v in b.objects.xyxy[r]) for _, b, r in expected_objects(early + middle + late, 1))
    assert not want - got  # every payload delivered (QoS 1: at least once), none lost
    sub.close()
    # each outage is said once, and its end once, with what was buffered meanwhile
    said = [r.getMessage() for r in caplog.records if "MQTT 127.0.0.1" in r.getMessage()]
    down = [m for m in said if "unreachable" in m]
    back = [m for m in said if " is back after " in m]
    assert len(down) == 2 and len(back) == 2, said
    assert f"{len(expected_objects(early, 1))} buffered messages are being delivered, 0 were dropped" in back[0]


def test_unknown_and_unimplemented_adaptors_are_refused_with_a_clear_error(tmp_path):
    cfg = sink_config(tmp_path, 9092, msg_broker_proto_lib="/opt/nvidia/deepstream/deepstream/lib/libnvds_azure_proto.so")
    with pytest.raises(MsgBrokerError, match=r"\[sink2\] msg-broker-proto-lib: the Azure IoT adaptor .* not implemented"):
        make_msgbroker_sink(cfg, app_for(tmp_path), None)
    with pytest.raises(MsgBrokerError, match=r"msg-broker-proto-lib: unknown adaptor libmy_proto.so — dsrun "
                                             r"implements libnvds_mqtt_proto.so \(MQTT\), libnvds_redis_proto.so"):
        make_msgbroker_sink(sink_config(tmp_path, 1, msg_broker_proto_lib="/x/libmy_proto.so"), app_for(tmp_path), None)
    with pytest.raises(MsgBrokerError, match=r"msg-broker-conn-str: 'localhost' is not host;port"):
        make_msgbroker_sink(sink_config(tmp_path, 1, msg_broker_conn_str="localhost"), app_for(tmp_path), None)
