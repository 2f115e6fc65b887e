"""The "accepted, not yet supported" table (runner/config/supported.py) tells the truth, checked against
the code: every key in RUNTIME is read by the modules that serve its group, every key those modules read
is in the table (or listed below as read but not acted on), and `dsrun check --json` on real DeepStream
configs lists exactly the keys nobody acts on.

"Read" is found in the source: a config field name used as an attribute (``cfg.batched_push_timeout``)
or as a string (``getattr(cfg, "latency")``, ``_get(osd, "font", ...)``) in a consumer module.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from runner.cli import main
from runner.config.fields import key_fields
from runner.config.groups import APP_GROUPS, NVINFER_GROUPS, TRACKER_GROUPS, app_group, nvinfer_group, \
    tracker_group
from runner.config.supported import CONFIG_LAYER, RUNTIME, SUPPORTED, is_supported

RUNNER = Path(__file__).resolve().parents[1] / "runner"
CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "deepstream"
TAO = CONFORMANCE / ("src/apps/tao_apps/deepstream_app_tao_configs/"
                     "deepstream_app_source1_trafficcamnet_vehiclemakenet_vehicletypenet.txt")
MULTI_VIEW = CONFORMANCE / ("src/apps/reference_apps/deepstream-tracker-3d-multi-view/config_templates/"
                            "config_deepstream.txt")
YOLO = CONFORMANCE / "tools/yolo_deepstream/deepstream_yolo/deepstream_app_config_yolo.txt"

KINDS = {k.name: k.cls for k in APP_GROUPS + NVINFER_GROUPS + TRACKER_GROUPS}

_NVINFER = ("pipeline/infer.py", "pipeline/infer_outputs.py", "pipeline/preprocess.py", "pipeline/cluster.py",
            "pipeline/parsers", "pipeline/labels.py", "engine/spec.py")
#: group kind → the modules (under runner/) that receive its config object; kinds absent here have none
CONSUMERS: dict[str, tuple[str, ...]] = {
    "application": ("ui/perf.py", "pipeline/kitti.py", "pipeline/sinks/hook.py"),
    "tests": ("pipeline/source.py",),
    "sourceN": ("pipeline/source.py", "pipeline/smart_record.py"),
    "source-attr-all": ("pipeline/source.py", "pipeline/smart_record.py"),  # merged into each [source-list] source
    "streammux": ("pipeline/mux.py", "pipeline/source.py", "pipeline/live_sources.py"),
    "source-list": ("pipeline/live_sources.py",),
    "primary-gie": _NVINFER + ("pipeline/osd.py",),  # overrides reach the nvinfer readers
    "secondary-gieN": _NVINFER + ("pipeline/osd.py",),
    "tracker": ("pipeline/tracker", "pipeline/osd.py"),
    "osd": ("pipeline/osd.py", "pipeline/osd_draw.py"),
    "tiled-display": ("pipeline/tiler.py", "pipeline/osd.py"),
    "sinkN": ("pipeline/sinks",),
    "message-converter": ("pipeline/sinks/msgbroker.py", "pipeline/msgconv.py"),
    "nvds-analytics": ("pipeline/analytics",),
    "property": _NVINFER,
    "class-attrs-all": ("pipeline/cluster.py", "pipeline/infer.py"),
    "class-attrs-N": ("pipeline/cluster.py", "pipeline/infer.py"),
    **{k.name: ("pipeline/tracker",) for k in TRACKER_GROUPS},
}

#: keys whose field name a consumer reads without acting on the key: name clashes with another object's
#: attribute, values kept but unused, keys read only to refuse them. They stay "not yet supported".
READ_NOT_ACTED: dict[str, dict[str, str]] = {
    "sourceN": {"source-id": "SourceSpec.source_id is the expanded index, not this key"},
    "source-attr-all": {"source-id": "as [sourceN]"},
    "streammux": {"attach-sys-ts-as-ntp": "MuxSpec keeps it; ntp_ts is always the system time (its default)"},
    "primary-gie": {"device": "EngineSpec/engine .device, not the Triton key",
                    "backend": "EngineSpec.backend (dsrun-backend), not the Triton key",
                    "operate-on-gie-id": "nvinfer's field; a primary GIE's group value is not applied",
                    "operate-on-class-ids": "as operate-on-gie-id"},
    "secondary-gieN": {"device": "as [primary-gie]", "backend": "as [primary-gie]"},
    "sinkN": {"width": "frame sizes, not the display sink's key", "height": "as width"},
    "property": {"proto-file": "read only to say: convert the Caffe model to ONNX",
                 "uff-file": "as proto-file", "tlt-encoded-model": "as proto-file"},
    "TrajectoryManagement": {"minMatchingScore4Overall": "DataAssociator's key of the same name is the one used"},
}


@cache
def _names(module: str) -> frozenset[str]:
    path = RUNNER / module
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    assert files, f"consumer {module} does not exist"
    out = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Attribute):
                out.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
                out.add(node.value)
    return frozenset(out)


def read_keys(kind: str) -> set[str]:
    """DeepStream keys of this group kind whose field the consumer modules read."""
    names = set().union(*(_names(m) for m in CONSUMERS.get(kind, ())))
    return {dskey for dskey, f in key_fields(KINDS[kind]).items() if f.name in names}


def supported(kind: str) -> set[str]:
    gie = SUPPORTED.get("gie", set()) if kind in ("primary-gie", "secondary-gieN") else set()
    return set(SUPPORTED.get(kind, set())) | set(gie)


def acted_on(kind: str) -> set[str]:
    """What the code says dsrun acts on: keys read (not merely read) plus what the config layer acts on."""
    layer = CONFIG_LAYER.get("gie", set()) if kind in ("primary-gie", "secondary-gieN") else set()
    return (read_keys(kind) - set(READ_NOT_ACTED.get(kind, {}))) | set(CONFIG_LAYER.get(kind, set())) | layer


def _kinds_of(table_kind: str) -> list[str]:
    return ["primary-gie", "secondary-gieN"] if table_kind == "gie" else [table_kind]


def test_every_table_entry_is_a_key_of_its_group():
    for table in (CONFIG_LAYER, RUNTIME):
        for table_kind, keys in table.items():
            for kind in _kinds_of(table_kind):
                assert kind in KINDS, table_kind
                unknown = set(keys) - set(key_fields(KINDS[kind]))
                assert not unknown, f"{table_kind}: {sorted(unknown)} are not keys of {KINDS[kind].__name__}"


@pytest.mark.parametrize("table_kind", sorted(RUNTIME))
def test_every_runtime_key_is_read_by_the_code_serving_its_group(table_kind):
    for kind in _kinds_of(table_kind):
        if table_kind == "gie" or kind in RUNTIME:
            keys = RUNTIME[table_kind]
            missing = set(keys) - read_keys(kind)
            assert not missing, f"[{kind}] {sorted(missing)} are in RUNTIME but no consumer reads them"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_key_the_code_reads_is_in_the_table(kind):
    read_not_in_table = read_keys(kind) - supported(kind)
    assert read_not_in_table == set(READ_NOT_ACTED.get(kind, {})), (
        f"[{kind}] read by {CONSUMERS.get(kind)} but not in runner/config/supported.py: "
        f"{sorted(read_not_in_table - set(READ_NOT_ACTED.get(kind, {})))}; listed as read-not-acted but "
        f"no longer read or now supported: {sorted(set(READ_NOT_ACTED.get(kind, {})) - read_not_in_table)}")


def _ini_keys(path: Path) -> list[tuple[str, str, str, bool]]:
    """(group, key, value, group enabled) for every key of an INI file — a regex, not the loader."""
    out, group, enabled = [], None, {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            group = m[1]
        elif m := re.match(r"([^=\s]+)\s*=\s*(.*)", line):
            out.append((group, m[1], m[2].split("#")[0].strip()))
            if m[1] == "enable":
                enabled[group] = out[-1][2] not in ("0", "false")
    return [(g, k, v, enabled.get(g, True)) for g, k, v in out]


def _yaml_keys(path: Path) -> list[tuple[str, str, str, bool]]:
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("%"))
    return [(section, key, "", True) for section, body in yaml.safe_load(text).items()
            if isinstance(body, dict) for key in body]


def _expected_unsupported(app: Path) -> set[str]:
    """Every key the app config and the files it names set, in an enabled group, that the code does
    not act on — computed from the files and the code, not from the table."""
    files: list[tuple[Path, object]] = [(app, app_group)]
    for group, key, value, enabled in _ini_keys(app):
        if enabled and key in ("config-file", "ll-config-file") and (app.parent / value).is_file():
            files.append((app.parent / value, nvinfer_group if key == "config-file" else tracker_group))
    out = set()
    for path, match in files:
        keys = _yaml_keys(path) if path.suffix in (".yml", ".yaml") else _ini_keys(path)
        prefix = "" if path == app else f"{path.name} "
        for group, key, _value, enabled in keys:
            kind = match(group)
            acted = acted_on(kind.name) if kind is not None else set()
            if enabled and key not in acted and re.sub(r"\d+$", "<N>", key) not in acted:
                out.add(f"{prefix}[{group}] {key}")
    return out


@pytest.mark.parametrize("app", [TAO, MULTI_VIEW, YOLO], ids=["tao-3-gies", "tracker-yaml", "yolo"])
def test_check_json_lists_as_unsupported_exactly_the_keys_nobody_acts_on(app, capsys):
    main(["check", "--json", str(app)])  # the TAO config names a tracker YAML of the SDK: exit 2
    listed = json.loads(capsys.readouterr().out)["configs"][0]["unsupported"]
    assert len(listed) == len(set(listed))
    assert set(listed) == _expected_unsupported(app)


def test_keys_the_pipeline_honours_are_not_listed(capsys):
    main(["check", "--json", str(TAO)])
    listed = set(json.loads(capsys.readouterr().out)["configs"][0]["unsupported"])
    for entry in ("[streammux] batched-push-timeout", "[primary-gie] batch-size", "[primary-gie] bbox-border-color0",
                  "[osd] font", "[tiled-display] rows", "[sink0] sync", "[tracker] display-tracking-id",
                  "[secondary-gie0] operate-on-class-ids"):
        assert entry not in listed
    assert "[tracker] tracker-width" in listed and "[streammux] gpu-id" in listed
    assert is_supported("secondary-gieN", "operate-on-gie-id") and not is_supported("primary-gie", "operate-on-gie-id")
