"""``threshold`` and ``pre-cluster-threshold`` write one field; gst_nvinfer_parse_class_attrs reads a
group's keys in file order, so the later one wins (tests/reference/gstnvinfer.py parse_class_attrs)."""

import pytest

from reference.gstnvinfer import parse_class_attrs
from runner.config import load_nvinfer

CASES = [  # [class-attrs-all] keys, [class-attrs-1] keys
    ([("pre-cluster-threshold", 0.5), ("threshold", 0.3)], []),
    ([("threshold", 0.3), ("pre-cluster-threshold", 0.5)], []),
    ([("threshold", 0.3)], [("pre-cluster-threshold", 0.6)]),
    ([("pre-cluster-threshold", 0.6)], [("threshold", 0.35)]),
    ([("pre-cluster-threshold", 0.6), ("threshold", 0.25)], [("threshold", 0.45), ("pre-cluster-threshold", 0.55)]),
    ([], [("pre-cluster-threshold", 0.55), ("threshold", 0.45)]),
]


@pytest.mark.parametrize("all_keys, one_keys", CASES)
def test_the_later_of_threshold_and_pre_cluster_threshold_wins(tmp_path, all_keys, one_keys):
    lines = lambda keys: "".join(f"{k}={v}\n" for k, v in keys)  # noqa: E731
    (tmp_path / "pgie.txt").write_text("[property]\nonnx-file=m.onnx\nnum-detected-classes=2\n"
                                       f"[class-attrs-all]\n{lines(all_keys)}[class-attrs-1]\n{lines(one_keys)}")
    cfg = load_nvinfer(tmp_path / "pgie.txt")
    default = 0.2  # DEFAULT_PRE_CLUSTER_THRESHOLD (gstnvinfer_property_parser.h)
    expect_all = parse_class_attrs(all_keys, default)
    assert cfg.class_attrs(0).pre_cluster_threshold == pytest.approx(expect_all)
    assert cfg.class_attrs(1).pre_cluster_threshold == pytest.approx(parse_class_attrs(one_keys, expect_all))
