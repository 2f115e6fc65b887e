"""Raw key text → JSON values (for the schema) → Python values (for the dataclasses).

Each field's Python annotation says how its text is read: ``int``/``float``/``bool`` as GLib reads
them, an ``IntEnum`` as an integer, a ``StrEnum`` as a word, ``tuple[...]`` as a ``;`` list (or a YAML
sequence), ``Path`` as a string resolved later. Text that cannot be read is left as text, so the JSON
Schema reports it (``bad-type``) at the key's line.

>>> kind_of(int | None).base, kind_of(tuple[float, ...]).item
(<class 'int'>, <class 'float'>)
>>> to_json("1 # h264", kind_of(int))
1
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import types
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from runner.config.fields import deepstream_key, is_key
from runner.config.keyfile import parse_bool, parse_float, parse_int, split_list, unescape


@dataclass(frozen=True)
class Kind:
    base: type  # int, float, bool, str, Path, an Enum, tuple (then see item), dict (indexed keys)
    item: type | None = None
    optional: bool = False


def kind_of(hint) -> Kind:
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
        origin = typing.get_origin(hint)
    if origin is tuple:
        return Kind(tuple, typing.get_args(hint)[0], optional)
    if origin in (collections.abc.Mapping, dict):
        return Kind(dict, float, optional)
    if typing.get_origin(hint) is not None:
        hint = typing.get_origin(hint)
    return Kind(hint, None, optional)


@cache
def key_kinds(cls: type) -> dict[str, tuple[str, Kind, dataclasses.Field]]:
    """DeepStream key → (field name, Kind, field) for one config dataclass."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if is_key(f):
            out[deepstream_key(f)] = (f.name, kind_of(hints[f.name]), f)
    return out


def indexed_prefix(dskey: str) -> str | None:
    """``bbox-border-color<N>`` → ``bbox-border-color``."""
    return dskey[:-3] if dskey.endswith("<N>") else None


def _scalar_json(text: str, base: type):
    if base is bool:
        value = parse_bool(text)
    elif isinstance(base, type) and issubclass(base, enum.StrEnum):
        value = text.strip().lower()
    elif base is int or (isinstance(base, type) and issubclass(base, enum.IntEnum)):
        value = parse_int(text)
    elif base is float:
        value = parse_float(text)
        if value is None:
            number = parse_int(text)  # an integer with a trailing comment is a number too
            value = None if number is None else float(number)
    else:  # str, Path
        value = unescape(text)
    return text if value is None else value


def to_json(raw, kind: Kind):
    """The JSON value the schema validates (or the raw text/list when it cannot be read)."""
    if kind.base is tuple or kind.base is dict:
        items = raw if isinstance(raw, list) else split_list(raw) if isinstance(raw, str) else None
        if items is None:
            return raw
        return [_scalar_json(i, kind.item) if isinstance(i, str) else i for i in items]
    if not isinstance(raw, str):
        return raw
    return _scalar_json(raw, kind.base)


def to_python(value, kind: Kind):
    """A schema-valid JSON value → the dataclass field's value (paths stay strings here)."""
    if kind.base is tuple or kind.base is dict:
        item = kind.item
        if isinstance(item, type) and issubclass(item, enum.Enum):
            return tuple(item(v) for v in value)
        if item is float:
            return tuple(float(v) for v in value)
        return tuple(value)
    if isinstance(kind.base, type) and issubclass(kind.base, enum.Enum):
        return kind.base(value)
    if kind.base is float:
        return float(value)
    return value


def is_path(kind: Kind) -> bool:
    return kind.base is Path or kind.item is Path
