"""Validated sections → frozen dataclasses: paths resolved against the naming file and checked."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from runner.config.coerce import key_kinds
from runner.config.diagnostics import Diagnostic
from runner.config.files import check_exists, provided_by_dsrun, resolve, usable
from runner.config.validate import Section


def build(cls: type, section: Section | None, base: Path, file: str, diags: list[Diagnostic],
          check: bool = True, path_kinds: dict[str, str] | None = None, **extra):
    """``cls(**values)`` with every path made absolute; missing files reported when ``check``
    (``path_kinds`` re-classifies a path field, e.g. a config file dsrun will not read; a kind
    other than "config"/"asset" is resolved, not checked), except those dsrun provides itself."""
    if section is None:
        return cls(**extra)
    values = dict(section.values)
    enabled = values.get("enable", True) is not False
    for dskey, (name, kind, field) in key_kinds(cls).items():
        if name not in values:
            continue
        path_kind = (path_kinds or {}).get(name, field.metadata.get("path"))
        value = values[name]
        if path_kind:
            ref = (file, section.line_of(name), section.name, section.written.get(name, dskey))
            if isinstance(value, tuple):
                paths = tuple(p for v in value if v.strip() and usable(p := resolve(base, v), diags, ref))
                values[name] = paths
                for p in paths if check and enabled else ():
                    check_exists(p, path_kind, diags, ref)
            elif not value.strip():
                values[name] = None
            elif not usable(resolve(base, value), diags, ref):
                values[name] = None  # said why; nothing later touches the file system with it
            else:
                values[name] = resolve(base, value)
                if check and enabled and not (path_kind == "asset" and provided_by_dsrun(
                        name, values[name], values, base)):
                    check_exists(values[name], path_kind, diags, ref)
        elif kind.base is dict:
            values[name] = MappingProxyType(dict(value))
    values.update(extra)
    return cls(**values)
