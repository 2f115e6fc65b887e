"""schemas/*.json are generated from the dataclasses (one source of truth) and stay in sync."""

import json

import pytest

from runner.config.schema import KINDS, SCHEMA_DIR, build_schema


@pytest.mark.parametrize("name", sorted(KINDS))
def test_schema_file_matches_the_dataclass_fields(name):
    on_disk = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    assert on_disk == build_schema(name), "run: python3 scripts/gen_schemas.py"


def test_schema_carries_deepstream_enums_ranges_and_defaults():
    app = build_schema("app")["$defs"]
    assert app["sinkN"]["properties"]["type"]["enum"] == [1, 2, 3, 4, 5, 6]
    assert app["streammux"]["properties"]["batched-push-timeout"]["default"] == -1
    assert app["streammux"]["properties"]["width"]["minimum"] == 0
    assert "^bbox-border-color[0-9]+$" in app["primary-gie"]["patternProperties"]
    nvinfer = build_schema("nvinfer")["$defs"]
    assert nvinfer["property"]["properties"]["dsrun-backend"]["enum"] == [
        "auto", "onnxruntime", "tensorrt", "torch"]
    assert nvinfer["class-attrs-all"]["properties"]["topk"]["default"] == -1
