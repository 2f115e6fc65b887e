"""Read a Gst-nvdsanalytics config file into :class:`~runner.config.model_analytics.AnalyticsConfig`.

Follows ``nvdsanalytics_parse_config_file`` (src/gst-plugins/gst-nvdsanalytics/
nvdsanalytics_property_parser.cpp): ``[property]`` must exist and set ``enable``, ``config-width`` and
``config-height``; groups named ``roi-filtering-stream-N``, ``overcrowding-stream-N``,
``line-crossing-stream-N``, ``direction-detection-stream-N`` hold rules for stream N; lists are
``;``-separated. Where DeepStream prints "Unknown key"/"Group ignored" and goes on, dsrun warns at the
line; where it fails the element (a rule group without its ``roi-``/``line-crossing-``/``direction-``
key, a negative coordinate, ``osd-mode`` outside 0..2) dsrun reports an error at the line. Lists of
the wrong length, which DeepStream reads past their end, are errors too.

>>> from runner.config.keyfile import parse_keyfile
>>> text = b"[property]\\nenable=1\\nconfig-width=1920\\nconfig-height=1080\\n" \\
...        b"[line-crossing-stream-0]\\nenable=1\\nline-crossing-Exit=789;672;1084;900;851;773;1203;732\\n"
>>> diags = []
>>> cfg = analytics_from_document(parse_keyfile(text, "a.txt"), diags)
>>> rule = cfg.streams[0].lines[0]
>>> rule.label, rule.direction, rule.line, rule.mode, rule.extended, diags
('Exit', ((789, 672), (1084, 900)), ((851, 773), (1203, 732)), 'loose', True, [])
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from runner.config.diagnostics import Diagnostic
from runner.config.files import Ref, is_yaml, read_document
from runner.config.keyfile import Document, Entry, Group, parse_bool, parse_int, split_list
from runner.config.model_analytics import (AnalyticsConfig, DirectionRule, LineMode, LineRule,
                                           OvercrowdingRule, RoiRule, StreamRules)

__all__ = ["read_analytics", "analytics_from_document", "RULE_GROUPS"]

#: group name prefix → rule kind (the StreamRules field it fills)
RULE_GROUPS = {"roi-filtering-stream-": "roi", "overcrowding-stream-": "overcrowding",
               "line-crossing-stream-": "lines", "direction-detection-stream-": "directions"}
_RULE_KEY = {"roi": "roi-", "overcrowding": "roi-", "lines": "line-crossing-", "directions": "direction-"}
_POINTS = {"lines": 8, "directions": 4}  # integers per rule key (roi: an even number, >= 3 points)
_EXAMPLE = {"roi": "0;0;100;0;100;100;0;100", "overcrowding": "0;0;100;0;100;100;0;100",
            "lines": "10;10;10;100;1;50;100;50", "directions": "10;10;100;10"}
_GROUP_KEYS = {"roi": {"enable", "class-id", "inverse-roi"},
               "overcrowding": {"enable", "class-id", "object-threshold", "time-threshold"},
               "lines": {"enable", "class-id", "extended", "mode"},
               "directions": {"enable", "class-id", "mode"}}


def read_analytics(path: Path, diags: list[Diagnostic], ref: Ref | None = None) -> AnalyticsConfig | None:
    """The nvdsanalytics file at ``path``; None (with errors in ``diags``) when it cannot be used."""
    if is_yaml(path):
        file, line, group, key = ref or (str(path), None, None, None)
        diags.append(Diagnostic("error", "unsupported", file, line, group, key,
                                f"{path.name}: the YAML form of the nvdsanalytics config is not read yet",
                                "write it in the key-file form (DeepStream's config_nvdsanalytics.txt)"))
        return None
    doc = read_document(path, diags, ref, "nvdsanalytics config")
    if doc is None:
        return None
    before = len(diags)
    config = analytics_from_document(doc, diags)
    if config is None or any(d.is_error for d in diags[before:]):
        return None
    return replace(config, path=path)


class _Reader:
    def __init__(self, doc: Document, diags: list[Diagnostic]) -> None:
        self.doc, self.diags = doc, diags

    def say(self, severity: str, code: str, group: Group, entry: Entry | None, message: str, hint: str) -> None:
        self.diags.append(Diagnostic(severity, code, self.doc.path, entry.line if entry else group.line,
                                     group.name, entry.key if entry else None, message, hint))

    def integer(self, group: Group, entry: Entry, lo: int | None = 0, hi: int | None = None) -> int | None:
        value = parse_int(str(entry.value))
        if value is None:
            self.say("error", "bad-type", group, entry, f"{entry.value!r} is not an integer",
                     f"write a whole number, e.g. {entry.key}=1")
        elif (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            self.say("error", "out-of-range", group, entry, f"{value} is out of range", f"use a value {bounds}")
            return None
        return value

    def boolean(self, group: Group, entry: Entry) -> bool | None:
        value = parse_bool(str(entry.value))
        if value is None:
            self.say("error", "bad-type", group, entry, f"{entry.value!r} is not a boolean",
                     f"write {entry.key}=1 or {entry.key}=0")
        return value

    def integers(self, group: Group, entry: Entry, lo: int | None = 0) -> list[int] | None:
        items = entry.value if isinstance(entry.value, list) else split_list(str(entry.value))
        values = [parse_int(str(v)) for v in (items or [])]
        if not values or any(v is None for v in values):
            self.say("error", "bad-type", group, entry, f"{entry.value!r} is not a ;-separated list of integers",
                     f"write e.g. {entry.key}=295;643;579;634")
            return None
        if lo is not None and any(v < lo for v in values):
            self.say("error", "out-of-range", group, entry, "coordinates must be >= 0 (nvdsanalytics refuses "
                     "negative values)", "use points inside config-width x config-height")
            return None
        return values  # type: ignore[return-value]


def analytics_from_document(doc: Document, diags: list[Diagnostic]) -> AnalyticsConfig | None:
    """The config a parsed key file describes (see the module docstring); problems go to ``diags``."""
    r = _Reader(doc, diags)
    prop = doc.groups.get("property")
    if prop is None:
        diags.append(Diagnostic("error", "inconsistent", doc.path, None, None, None,
                                "no [property] group (nvdsanalytics needs one)",
                                "add [property] with enable=1, config-width and config-height"))
        return None
    settings = _property(r, prop)
    streams: dict[int, dict[str, list]] = {}
    for name, group in doc.groups.items():
        if name == "property":
            continue
        prefix = next((p for p in RULE_GROUPS if name.startswith(p)), None)
        if prefix is None:
            r.say("warning", "unknown-group", group, None, "nvdsanalytics ignores this group",
                  "rule groups are roi-filtering-stream-N, overcrowding-stream-N, line-crossing-stream-N, "
                  "direction-detection-stream-N")
            continue
        number = name[len(prefix):]
        if not number.isdigit():
            r.say("error", "unknown-group", group, None, f"'{number}' is not a stream number",
                  f"name the group {prefix}<source id>, e.g. {prefix}0")
            continue
        kind = RULE_GROUPS[prefix]
        rules = _rules(r, group, kind)
        streams.setdefault(int(number), {k: [] for k in _RULE_KEY})[kind].extend(rules)
    if settings is None:
        return None
    return AnalyticsConfig(**settings, streams=MappingProxyType({
        sid: StreamRules(**{k: tuple(v) for k, v in kinds.items()}) for sid, kinds in sorted(streams.items())}))


def _property(r: _Reader, group: Group) -> dict | None:
    out: dict = {}
    required = {"enable": "enable", "config-width": "config_width", "config-height": "config_height"}
    for key, entry in group.entries.items():
        if key == "enable":
            out["enable"] = r.boolean(group, entry)
        elif key in ("config-width", "config-height"):
            out[required[key]] = r.integer(group, entry, lo=0)
        elif key == "osd-mode":
            out["osd_mode"] = r.integer(group, entry, lo=0, hi=2)
        elif key == "display-font-size":
            size = r.integer(group, entry, lo=0)
            if size:  # 0 keeps the default, as the plugin does
                out["font_size"] = size
        elif key == "obj-cnt-win-in-ms":
            out["obj_cnt_win_in_ms"] = r.integer(group, entry, lo=1, hi=1_000_000_000)
        elif key == "display-obj-cnt":
            out["display_obj_cnt"] = r.boolean(group, entry)
        else:
            r.say("warning", "unknown-key", group, entry, "nvdsanalytics does not read this key",
                  "[property] keys: enable, config-width, config-height, osd-mode, display-font-size, "
                  "obj-cnt-win-in-ms, display-obj-cnt")
    missing = [key for key in required if key not in group.entries]
    for key in missing:
        r.say("error", "inconsistent", group, None, f"{key} is not set (nvdsanalytics requires it)",
              f"add {key}=<value> to [property]" + (" (the frame size the coordinates are written for)"
                                                     if key != "enable" else ""))
    if missing or any(v is None for v in out.values()):
        return None
    if out["enable"] and (out["config_width"] == 0 or out["config_height"] == 0):
        r.say("error", "out-of-range", group, group.entries["config-width" if out["config_width"] == 0
                                                            else "config-height"],
              "0 cannot scale the coordinates", "set the frame size the coordinates are written for")
        return None
    return out


def _rules(r: _Reader, group: Group, kind: str) -> list:
    common: dict = {"enable": False, "class_ids": ()}
    named: list[tuple[str, Entry, list[int]]] = []
    for key, entry in group.entries.items():
        if key == "enable" or key in ("inverse-roi", "extended"):
            value = r.boolean(group, entry)
            if value is not None and key in _GROUP_KEYS[kind]:
                common[key.replace("-", "_")] = value
            if key not in _GROUP_KEYS[kind]:
                r.say("warning", "unknown-key", group, entry, "nvdsanalytics does not read this key here",
                      f"keys of this group: {', '.join(sorted(_GROUP_KEYS[kind]))}, {_RULE_KEY[kind]}<label>")
        elif key == "class-id":
            ids = r.integers(group, entry, lo=None)
            if ids is not None:
                common["class_ids"] = tuple(ids)
        elif key in ("object-threshold", "time-threshold") and kind == "overcrowding":
            value = r.integer(group, entry, lo=0)
            if value is not None:
                common["object_threshold" if key == "object-threshold" else "time_threshold_ms"] = value
        elif key == "mode" and kind in ("lines", "directions"):
            mode = str(entry.value).strip()
            if mode not in LineMode.ALL:
                fallback = LineMode.LOOSE if kind == "lines" else LineMode.BALANCED
                r.say("warning", "bad-enum", group, entry, f"unknown mode '{mode}'; nvdsanalytics uses "
                      f"'{fallback}'", "write mode=loose, mode=balanced or mode=strict")
                mode = fallback
            common["mode"] = mode
        elif key.startswith(_RULE_KEY[kind]):
            values = r.integers(group, entry)
            if values is not None and _length_ok(r, group, entry, kind, values):
                named.append((key[len(_RULE_KEY[kind]):], entry, values))
        else:
            r.say("warning", "unknown-key", group, entry, "nvdsanalytics does not read this key here",
                  f"keys of this group: {', '.join(sorted(_GROUP_KEYS[kind]))}, {_RULE_KEY[kind]}<label>")
    if not any(k.startswith(_RULE_KEY[kind]) for k in group.entries):
        r.say("error", "inconsistent", group, None, f"no {_RULE_KEY[kind]}<label> key (nvdsanalytics requires "
              "one)", f"add e.g. {_RULE_KEY[kind]}A={_EXAMPLE[kind]}")
    return [_rule(kind, label, values, common) for label, _entry, values in _last_per_label(named)]


def _last_per_label(named: list) -> list:
    """A label written twice keeps its first place and its later value (the parser's find-and-replace)."""
    out: dict[str, tuple] = {}
    for item in named:
        out[item[0]] = item
    return list(out.values())


def _length_ok(r: _Reader, group: Group, entry: Entry, kind: str, values: list[int]) -> bool:
    want = _POINTS.get(kind)
    if want is not None and len(values) != want:
        what = "direction x1;y1;x2;y2 then line x1;y1;x2;y2" if kind == "lines" else "x1;y1;x2;y2"
        r.say("error", "bad-type", group, entry, f"{len(values)} integers where nvdsanalytics reads {want}",
              f"write {want} integers: {what}")
        return False
    if want is None and (len(values) % 2 or len(values) < 6):
        r.say("error", "bad-type", group, entry, f"{len(values)} integers do not make a polygon",
              "write x;y pairs of at least 3 points")
        return False
    return True


def _rule(kind: str, label: str, v: list[int], common: dict):
    cls = {"roi": RoiRule, "overcrowding": OvercrowdingRule, "lines": LineRule, "directions": DirectionRule}[kind]
    if kind in ("roi", "overcrowding"):
        return cls(label=label, points=tuple(zip(v[0::2], v[1::2])), **common)
    if kind == "lines":
        return cls(label=label, direction=((v[0], v[1]), (v[2], v[3])), line=((v[4], v[5]), (v[6], v[7])), **common)
    return cls(label=label, start=(v[0], v[1]), end=(v[2], v[3]), **common)

