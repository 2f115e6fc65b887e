"""Every DeepStream 9.1 sample config in ../shared/conformance loads as DeepStream would read it."""

import json
from pathlib import Path

import pytest

from runner.config import inspect_app, inspect_nvinfer, inspect_tracker

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
MANIFEST = json.loads((CONFORMANCE / "manifest.json").read_text())
APPS = MANIFEST["app_configs"]
COMPONENTS = MANIFEST["component_configs"]


def _file(repo_path: str) -> Path:
    return CONFORMANCE / "deepstream" / repo_path


def _missing_config_names(app: dict) -> set[str]:
    """SDK files missing from the corpus that deepstream-app itself cannot start without: config files,
    and the label files app GIE groups name (parse_gie → parse_labels_file fails on a missing one)."""
    return {Path(r["value"]).name for r in app["references"] if r["missing"] and (
        r["kind"] == "config" or (r["key"] == "labelfile-path" and r["from"] == app["app_config"]))}


@pytest.mark.parametrize("app", APPS, ids=lambda a: a["app_config"].split("/", 2)[-1])
def test_app_config_loads_with_no_error_but_its_missing_sdk_config_files(app):
    config, diags = inspect_app(_file(app["app_config"]))
    allowed = _missing_config_names(app)
    # NVIDIA's sample sinks ship placeholders (msg-broker-conn-str=<host>;<port>;<topic>) and name the Azure
    # adaptor dsrun does not implement: a run would fail, and check says so at the key
    placeholders = [d for d in diags if d.is_error and (d.key == "msg-broker-conn-str" and "'<" in d.message
                                                        or d.key == "msg-broker-proto-lib" and "Azure" in d.message)]
    unexpected = [str(d) for d in diags if d.is_error and d not in placeholders
                  and not (d.code == "missing-file" and any(name in d.message for name in allowed))]
    assert unexpected == []
    assert config is not None
    if app["consumer"] != "deepstream-nmos-app":  # its sources are NMOS [receiverN] groups
        assert len(config.sources) == (app["num_sources"] or 0)


@pytest.mark.parametrize("component", [c for c in COMPONENTS if c["kind"] == "nvinfer"],
                         ids=lambda c: c["path"].split("/", 2)[-1])
def test_nvinfer_config_loads_on_its_own(component):
    config, diags = inspect_nvinfer(_file(component["path"]))
    assert [str(d) for d in diags if d.is_error] == []
    assert config is not None and config.path == _file(component["path"])


@pytest.mark.parametrize("component", [c for c in COMPONENTS if c["kind"] == "tracker"],
                         ids=lambda c: c["path"].split("/", 2)[-1])
def test_tracker_config_loads_on_its_own(component):
    config, diags = inspect_tracker(_file(component["path"]))
    assert [str(d) for d in diags if d.is_error] == []
    assert config is not None


GIES = [(a, g) for a in APPS for g in a["gies"]
        if g["plugin"] == "nvinfer" and g["config_file_missing"] is False and g["enabled"]
        and (g["group"] == "primary-gie" or g["group"].startswith("secondary-gie"))]


@pytest.mark.parametrize("app, gie", GIES, ids=lambda x: x.get("group", x.get("app_config", "")))
def test_gie_group_keys_override_the_nvinfer_file(app, gie):
    config, _ = inspect_app(_file(app["app_config"]))
    found = config.primary_gie if gie["group"] == "primary-gie" else next(
        g for g in config.secondary_gies if g.group == gie["group"])
    effective = found.nvinfer
    assert effective.path == _file(gie["config_file"])
    for field in ("batch_size", "interval", "gie_unique_id", "operate_on_gie_id"):
        if field in gie:
            assert getattr(effective, field) == gie[field], field
    if "operate_on_class_ids" in gie:
        assert list(effective.operate_on_class_ids) == gie["operate_on_class_ids"]
    assert int(effective.process_mode) == (1 if gie["role"] == "primary" else 2)
