"""What the run would refuse or leave out, said before it starts, by ``dsrun check`` and by the run.

Both ask the same places the running pipeline asks, so a feature added there is known to both at
once — no list of its own here:

- sinks: the sink registry (:func:`runner.pipeline.sinks.sink_factory`); a type with no factory is
  skipped by the run, so it is a warning;
- message brokers: checked while loading, by the function the msgbroker sink uses
  (runner/broker_settings.py);
- GIEs: :func:`runner.pipeline.infer.runnable_network` (network types, parser names from
  runner.deepstream_libs, Python custom parsers), and each model against its config
  (:mod:`runner.model_check`);
- groups and feature keys: the SUPPORTED table (runner/config/supported.py) — an enabled group
  whose ``enable`` nobody acts on, or a feature switch such as ``smart-record``, is a warning;
- sources: :func:`runner.pipeline.source.unsupported`, and a config with no source at all.

Errors stop the run before anything is built (exit 2, as config errors do); warnings are printed by
``dsrun check`` and logged when the run starts. Every problem is located at its file, line and key.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from runner.config import AppConfig, ConfigError, Diagnostic, load_app
from runner.config.files import cached_document, key_line
from runner.config.groups import app_group
from runner.config.kinds import detect_kind, not_validated
from runner.config.keyfile import parse_bool
from runner.config.load import APP_SPEC
from runner.config.supported import FEATURE_SWITCHES, is_supported
from runner.config.validate import is_disabled
from runner.errors import DsrunError


class ModelMismatch(ConfigError):
    """A model that cannot run with its nvinfer config: a model error (exit status 3), found before
    any engine is built."""

    exit_code = 3


def load_runnable(path: str | Path) -> AppConfig:
    """:func:`runner.config.load_app`, then :func:`preflight`: ConfigError (exit 2) for what the run
    refuses, :class:`ModelMismatch` (exit 3) for a model that cannot run; the warnings join
    ``AppConfig.warnings``."""
    app = load_app(path)
    found, models = _problems(app)
    if any(d.is_error for d in found):
        raise ConfigError(list(app.warnings) + found + models)
    if any(d.is_error for d in models):
        raise ModelMismatch(list(app.warnings) + found + models)
    found += models
    return dataclasses.replace(app, warnings=app.warnings + tuple(found)) if found else app


def preflight(app: AppConfig) -> list[Diagnostic]:
    """Every problem the run would meet with this (loaded, error-free) config."""
    found, models = _problems(app)
    return found + models


def _problems(app: AppConfig) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(what the run refuses or leaves out, what is wrong with a model — for the GIEs it would run)."""
    from runner.model_check import model_problems

    found, models = _sources(app) + _groups(app) + _sinks(app), []
    gies = ([app.primary_gie] if app.primary_gie else []) + list(app.secondary_gies)
    for nvinfer in (g.nvinfer for g in gies if g.enable and g.nvinfer is not None):
        refused = _gie(nvinfer)
        found += refused
        models += [] if refused else model_problems(nvinfer)
    return found, models


def _diag(severity: str, file, group: str | None, key: str | None, message: str, hint: str,
          code: str = "unsupported") -> Diagnostic:
    line = key_line(file, group, key) if group else None
    return Diagnostic(severity, code, str(file), line, group, key, message, hint)


def _sources(app: AppConfig) -> list[Diagnostic]:
    from runner.pipeline.source import source_specs, unsupported

    if not app.sources:
        source_list = getattr(app, "source_list", None)
        if source_list is not None and source_list.use_nvmultiurisrcbin:
            return []  # nvmultiurisrcbin may start empty: streams come through the REST API
        kind = detect_kind(app.path) if app.path else "app"
        if kind != "app":  # e.g. a Service Maker pipeline given as an app config
            return [not_validated(app.path, kind)]
        return [Diagnostic("error", "inconsistent", str(app.path), None, None, None,
                           "no enabled source: the run would have nothing to read",
                           "enable a [source0] group (enable=1, type, uri), or list the streams in "
                           "[source-list] with [source-attr-all]")]
    out = []
    groups = {s.index: s.group for s in app.sources}
    for spec in source_specs(app):
        refused = unsupported(spec)
        if refused is not None:
            group = groups.get(spec.source_id)
            out.append(_diag("warning", app.path, group, "uri" if group != "source-list" else "list",
                             f"source {spec.source_id} will fail when the run starts: {refused.problem} "
                             "(the other sources run on)", refused.hint))
    return out


def _groups(app: AppConfig) -> list[Diagnostic]:
    """Enabled groups and feature keys the run does not act on: said, never silently dropped."""
    doc = cached_document(app.path)
    out = []
    for name, group in (doc.groups.items() if doc is not None else ()):
        kind = app_group(name)
        if kind is None or "enable" not in {f.name for f in dataclasses.fields(kind.cls)}:
            continue
        if kind.name in APP_SPEC.skip_disabled:
            enabled = not is_disabled(group, doc.format)
        else:
            entry = group.entries.get("enable")
            enabled = entry is not None and isinstance(entry.value, str) and bool(parse_bool(entry.value))
        if not enabled:
            continue
        if not is_supported(kind.name, "enable"):
            out.append(_diag("warning", app.path, name, "enable",
                             f"[{name}] is enabled, but dsrun does not run it yet: the run goes on without it",
                             "set enable=0 to say so, or run this config with DeepStream"))
            continue
        for key in FEATURE_SWITCHES.get(kind.name, ()):
            entry = group.entries.get(key)
            if entry is not None and isinstance(entry.value, str) and parse_bool(entry.value) \
                    and not is_supported(kind.name, key):
                out.append(_diag("warning", app.path, name, key,
                                 f"{key}={entry.value} is accepted, but dsrun does not do it yet: the run "
                                 "goes on without it", f"set {key}=0 to say so, or run this config with "
                                 "DeepStream"))
    return out


def _sinks(app: AppConfig) -> list[Diagnostic]:
    from runner.pipeline.sinks import sink_factory
    from runner.pipeline.sinks.fake import DISPLAYS

    out = []
    for sink in app.sinks:
        if not sink.enable:
            continue
        if sink_factory(sink.type) is None:
            out.append(_diag("warning", app.path, sink.group, "type",
                             f"type={int(sink.type)} ({sink.type.name.lower()}) is not supported yet: the run "
                             "skips this sink", "use type=1 (fake), 3 (file), 4 (RTSP) or 6 (message broker)"
                             " — or set enable=0"))
        elif int(sink.type) in DISPLAYS:
            out.append(_diag("warning", app.path, sink.group, "type",
                             f"type={int(sink.type)} shows frames in {DISPLAYS[int(sink.type)]}; dsrun has no "
                             "display, so this sink discards them", "use type=3 to write a file, or type=4 "
                             "to stream over RTSP"))
    return out


_KEYED = re.compile(r"(?:\[(?P<group>[\w-]+)\] )?(?P<key>[a-z][a-z0-9-]*): (?P<rest>.*)", re.S)


def _gie(nvinfer) -> list[Diagnostic]:
    """What :func:`runnable_network` refuses, located at the key its message names."""
    from runner.pipeline.infer import runnable_network

    try:
        runnable_network(nvinfer)
    except DsrunError as error:
        return [located(error, nvinfer.path, "property")]
    return []


def located(error: Exception, file, group: str) -> Diagnostic:
    """A run-time error written as ``[group] key: problem — fix`` as a located Diagnostic."""
    text = str(error)
    match = _KEYED.fullmatch(text)
    key = match["key"] if match else None
    rest = match["rest"] if match else text
    message, _, hint = rest.rpartition(" — ") if " — " in rest else (rest, "", "")
    return _diag("error", file, match["group"] or group if match else group, key, message, hint)
