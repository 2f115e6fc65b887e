"""A parsed document → validated values per group, every problem located at its key's line.

Unknown groups and keys are warnings with "did you mean" (DeepStream only warns too); values are
checked against the JSON Schema of the file kind and each schema error is reported at
``file:line [group] key``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from runner.config.coerce import Kind, indexed_prefix, key_kinds, to_json, to_python
from runner.config.diagnostics import did_you_mean
from runner.config.groups import GroupKind
from runner.config.keyfile import Document, parse_bool, parse_int
from runner.config.schema import validator


@dataclass
class Section:
    """One group's valid values: field name → value (paths still as written), with their lines."""
    name: str
    kind: GroupKind | None
    line: int | None
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int | None] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)  # field name → key as written
    raw_keys: list[tuple[str, int | None]] = field(default_factory=list)  # every key in the group
    file: str | None = None  # set when the group came from another file (a CSV row)

    def line_of(self, field_name: str) -> int | None:
        return self.lines.get(field_name, self.line)


@dataclass
class Spec:
    """How one file kind is read: its group table, schema, and what else is tolerated."""
    schema: str
    match: Callable[[str], GroupKind | None]
    group_names: list[str]
    foreign: Callable[[str], str | None] = lambda name: None
    legacy: dict[str, set[str]] = field(default_factory=dict)
    #: keys the DeepStream program reads in one group only: key → that group (for the hint)
    elsewhere: dict[str, str] = field(default_factory=dict)
    #: group kinds whose DeepStream parser returns before reading any key when the group is disabled
    #: (deepstream_config_file_parser.c parse_source/parse_gie/parse_sink; the YAML parsers likewise)
    skip_disabled: frozenset[str] = frozenset()
    #: (group name, file format) → (message, hint) for a group name the DeepStream program refuses
    refuse: Callable[[str, str], tuple[str, str] | None] = lambda name, fmt: None


def validate(doc: Document, spec: Spec) -> dict[str, Section]:
    """Check every group and key of ``doc``; problems are appended to ``doc.diagnostics``."""
    sections: dict[str, Section] = {}
    instance: dict[str, dict] = {}
    where: dict[tuple[str, str], tuple[Any, int | None, str, Kind]] = {}
    for name, group in doc.groups.items():
        refused = spec.refuse(name, doc.format)
        kind = None if refused else spec.match(name)
        section = sections[name] = Section(name, kind, group.line)
        section.raw_keys = [(k, e.line) for k, e in group.entries.items()]
        if refused:
            doc.add("error", "unknown-group", group.line, name, None, *refused)
            continue
        if kind is None:
            owner = spec.foreign(name)
            if owner:
                doc.add("warning", "unsupported", group.line, name, None,
                        f"group read by {owner}; accepted, not yet supported by dsrun",
                        "dsrun ignores this group for now")
            else:
                guess = did_you_mean(name, spec.group_names)
                doc.add("warning", "unknown-group", group.line, name, None,
                        "unknown group; DeepStream ignores it" + (f" — did you mean [{guess}]?"
                                                                 if guess else ""),
                        f"rename it to [{guess}]" if guess else "remove it or check the spelling")
            continue
        kinds = key_kinds(kind.cls)
        indexed = {indexed_prefix(k): k for k in kinds if indexed_prefix(k)}
        values = instance[name] = {}
        if kind.name in spec.skip_disabled and is_disabled(group, doc.format):
            section.values["enable"] = False  # nothing else is read, checked or reported
            entry = group.entries.get("enable")
            if entry is not None and doc.format == "ini" and parse_bool(str(entry.value)):
                doc.add("warning", "bad-type", entry.line, name, "enable",
                        f"'{entry.value}' is not an integer, so deepstream-app reads the group as "
                        "disabled (g_key_file_get_integer fails); dsrun does the same",
                        "write enable=1 to enable it")
            continue
        for dskey, entry in group.entries.items():
            spec_key = dskey
            if dskey not in kinds:
                prefix = next((p for p in indexed if re.fullmatch(re.escape(p) + r"\d+", dskey)), None)
                if prefix is None:
                    _unknown_key(doc, spec, kind, name, dskey, entry.line, kinds)
                    continue
                spec_key = indexed[prefix]
            _, k, _ = kinds[spec_key]
            values[dskey] = to_json(entry.value, k)
            where[(name, dskey)] = (entry.value, entry.line, spec_key, k)
    bad: set[tuple[str, str]] = set()
    for error in sorted(validator(spec.schema).iter_errors(instance), key=lambda e: list(e.path)):
        path = list(error.absolute_path)
        if len(path) < 2 or (path[0], path[1]) in bad:
            continue
        group, dskey = path[0], path[1]
        bad.add((group, dskey))
        raw, line, spec_key, k = where[(group, dskey)]
        code, message, hint = _explain(error, raw, dskey, k)
        doc.add("error", code, line, group, dskey, message, hint)
    for (group, dskey), (raw, line, spec_key, k) in where.items():
        if (group, dskey) in bad:
            continue
        section = sections[group]
        name_ = key_kinds(section.kind.cls)[spec_key][0]
        value = to_python(instance[group][dskey], k)
        if indexed_prefix(spec_key):
            index = int(dskey[len(indexed_prefix(spec_key)):])
            section.values.setdefault(name_, {})[index] = value
        else:
            section.values[name_] = value
        section.lines[name_] = line
        section.written[name_] = dskey
    return sections


def is_disabled(group, fmt: str) -> bool:
    """Whether DeepStream skips the group: in a key file ``enable`` missing, not an integer or 0
    (``g_key_file_get_integer(...) == FALSE || error``); in YAML ``enable`` present and false.

    >>> from runner.config.keyfile import parse_keyfile
    >>> doc = parse_keyfile(b"[sink0]\\nenable=0\\ntype=99\\n[sink1]\\ntype=1\\n[sink2]\\nenable=1\\n", "a.txt")
    >>> [is_disabled(doc.groups[g], "ini") for g in ("sink0", "sink1", "sink2")]
    [True, True, False]
    """
    entry = group.entries.get("enable")
    if fmt != "ini":  # YAML (and the CSV rows of a YAML app config)
        return entry is not None and isinstance(entry.value, str) and parse_bool(entry.value) is False
    return entry is None or not isinstance(entry.value, str) or not parse_int(entry.value)


def _unknown_key(doc, spec, kind, group, dskey, line, kinds) -> None:
    legacy = spec.legacy.get(kind.name, set())
    if dskey in legacy:
        doc.add("warning", "unknown-key", line, group, dskey,
                "legacy key that DeepStream 9.1 no longer reads; ignored",
                "remove it (the behaviour it selected is now the default)")
        return
    if dskey in spec.elsewhere:
        home = spec.elsewhere[dskey]
        doc.add("warning", "unknown-key", line, group, dskey,
                f"{dskey} is read in [{home}] only; ignored here, as DeepStream does",
                f"move it to [{home}]")
        return
    guess = did_you_mean(dskey, [k for k in kinds if not k.endswith("<N>")])
    doc.add("warning", "unknown-key", line, group, dskey,
            f"unknown key for [{group}]; ignored, as DeepStream does"
            + (f" — did you mean '{guess}'?" if guess else ""),
            f"rename it to '{guess}'" if guess else "remove it or check the spelling")


_TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "1 or 0 (true/false)",
               "string": "text", "array": "a ';'-separated list"}


def _explain(error, raw, dskey: str, kind: Kind) -> tuple[str, str, str]:
    shown = raw if isinstance(raw, str) else repr(raw)
    schema = error.schema
    if error.validator == "type":
        want = schema.get("type")
        example = {"integer": "4", "number": "0.5", "boolean": "1", "string": "text",
                   "array": "1;2;3"}.get(want, "…")
        inside = " in the list" if len(error.absolute_path) > 2 else ""
        return ("bad-type", f"'{shown}'{inside} is not {_TYPE_WORDS.get(want, want)}",
                f"write {_TYPE_WORDS.get(want, want)}, e.g. {dskey}={example}")
    if error.validator == "enum":
        base = kind.item if kind.base in (tuple, dict) else kind.base
        choices = ", ".join(f"{m.value} ({m.name.lower()})" for m in base) if isinstance(
            base, type) and issubclass(base, enum.Enum) else ", ".join(map(str, schema["enum"]))
        return ("bad-enum", f"{error.instance!r} is not a valid {dskey}", f"use one of: {choices}")
    if error.validator in ("minimum", "maximum"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        allowed = (f"between {lo} and {hi}" if lo is not None and hi is not None
                   else f"≥ {lo}" if lo is not None else f"≤ {hi}")
        return ("out-of-range", f"{error.instance} is out of range", f"use a value {allowed}")
    if error.validator in ("minItems", "maxItems"):
        n = schema.get("minItems", schema.get("maxItems"))
        return ("bad-type", f"needs {n} values, got {len(error.instance)}",
                f"write {n} values separated by ';'")
    return ("bad-type", error.message, "check the value against schemas/")
