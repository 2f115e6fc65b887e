"""JSON Schemas for the three config kinds, generated from the dataclass field tables (the one
source of truth), written to ``schemas/`` for tools and docs, and used to validate every file.

    python3 scripts/gen_schemas.py          # rewrite schemas/app.json, nvinfer.json, tracker.json

tests/test_config_schema.py fails when the files differ from what the dataclasses give.

>>> s = build_schema("nvinfer")
>>> s["$defs"]["property"]["properties"]["network-type"]["enum"]
[0, 1, 2, 3, 100]
"""

from __future__ import annotations

import enum
import json
import sys
from functools import cache
from pathlib import Path

import jsonschema

from runner.config.coerce import Kind, indexed_prefix, key_kinds
from runner.config.groups import APP_GROUPS, NVINFER_GROUPS, TRACKER_GROUPS, GroupKind
from runner.resources import data_dir

SCHEMA_DIR = data_dir("schemas")  # the repository's schemas/, shipped inside the wheel
KINDS = {"app": APP_GROUPS, "nvinfer": NVINFER_GROUPS, "tracker": TRACKER_GROUPS}
TITLES = {"app": "deepstream-app configuration (INI or YAML), as dsrun reads it",
          "nvinfer": "Gst-nvinfer configuration ([property], [class-attrs-*])",
          "tracker": "NvMultiObjectTracker low-level configuration (YAML)"}


def _json_type(base: type) -> dict:
    if base is bool:
        return {"type": "boolean"}
    if isinstance(base, type) and issubclass(base, enum.StrEnum):
        return {"type": "string", "enum": [m.value for m in base]}
    if isinstance(base, type) and issubclass(base, enum.IntEnum):
        return {"type": "integer", "enum": [m.value for m in base],
                "description": ", ".join(f"{m.value} {m.name}" for m in base)}
    if base is int:
        return {"type": "integer"}
    if base is float:
        return {"type": "number"}
    return {"type": "string"}


def _bounds(prop: dict, meta) -> dict:
    if meta.get("lo") is not None:
        prop["minimum"] = meta["lo"]
    if meta.get("hi") is not None:
        prop["maximum"] = meta["hi"]
    return prop


def _default(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_default(v) for v in value]
    if isinstance(value, (int, float, str, bool)):
        return value
    return None


def property_schema(kind: Kind, field) -> dict:
    meta = field.metadata
    if kind.base in (tuple, dict):
        prop = {"type": "array", "items": _bounds(_json_type(kind.item), meta)}
        if meta.get("length"):
            prop["minItems"] = prop["maxItems"] = meta["length"]
    else:
        prop = _bounds(_json_type(kind.base), meta)
    if meta.get("path"):
        prop["x-path"] = meta["path"]
    if meta.get("doc"):
        prop["description"] = (prop.get("description", "") + "; " if "description" in prop else "") \
            + meta["doc"]
    default = _default(field.default)
    if default is not None:
        prop["default"] = default
    return prop


def group_schema(kind: GroupKind) -> dict:
    props, patterns = {}, {}
    for dskey, (_, k, f) in key_kinds(kind.cls).items():
        prefix = indexed_prefix(dskey)
        if prefix:
            patterns[f"^{prefix}[0-9]+$"] = property_schema(k, f)
        else:
            props[dskey] = property_schema(k, f)
    out = {"type": "object", "description": (kind.cls.__doc__ or "").strip().split("\n")[0],
           "properties": props}
    if patterns:
        out["patternProperties"] = patterns
    return out


def build_schema(name: str) -> dict:
    kinds = KINDS[name]
    defs = {k.name: group_schema(k) for k in kinds}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://dsrun.local/schemas/{name}.json", "title": TITLES[name],
            "type": "object", "$defs": defs,
            "patternProperties": {f"^{k.pattern}$": {"$ref": f"#/$defs/{k.name}"} for k in kinds}}


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """The validator for a config kind, from schemas/<name>.json (or built when not shipped)."""
    path = SCHEMA_DIR / f"{name}.json"
    schema = json.loads(path.read_text()) if path.is_file() else build_schema(name)
    return jsonschema.Draft202012Validator(schema)


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name in KINDS:
        path = directory / f"{name}.json"
        path.write_text(json.dumps(build_schema(name), indent=1) + "\n")
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(written)
