"""How a dataclass field maps to a DeepStream key: one helper, read by the loader and the schema script.

Every configuration field is declared with :func:`key`. The field's name is the DeepStream key with
``-`` → ``_`` (``batched-push-timeout`` → ``batched_push_timeout``); its Python annotation gives the type
(int, float, bool, str, Path, an IntEnum, or a tuple of those); the metadata gives what the schema needs
(range, fixed length, whether a path names a configuration file or a run-time asset).

>>> from dataclasses import dataclass, fields
>>> @dataclass(frozen=True)
... class Demo:
...     batch_size: int = key(1, lo=1)
>>> deepstream_key(fields(Demo)[0])
'batch-size'
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: path kinds: a missing "config" file is an error (it cannot be validated); a missing "asset"
#: (model, engine, video, label file, .so) is a warning; "dir" and "output" are never checked.
PATH_KINDS = ("config", "asset", "dir", "output")


def key(default: Any = None, *, lo: float | None = None, hi: float | None = None,
        length: int | None = None, path: str | None = None, name: str | None = None,
        doc: str = "", factory: Any = None) -> Any:
    """Declare a field read from a DeepStream key.

    ``lo``/``hi`` bound numbers (and every item of a list), ``length`` fixes a list's length,
    ``path`` is one of :data:`PATH_KINDS` when the value is a file path (resolved against the file
    that names it), ``name`` overrides the key spelling when it cannot be derived from the field name.
    """
    assert path is None or path in PATH_KINDS, path
    meta = {"dskey": True, "lo": lo, "hi": hi, "length": length, "path": path, "name": name,
            "doc": doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def derived(default: Any = None, *, factory: Any = None, doc: str = "") -> Any:
    """A field dsrun computes (source index, the nvinfer file a GIE names…); not a key."""
    meta = {"dskey": False, "doc": doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def is_key(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("dskey"))


def deepstream_key(f: dataclasses.Field) -> str:
    """The key as DeepStream spells it."""
    return f.metadata.get("name") or f.name.replace("_", "-")


def key_fields(cls: type) -> dict[str, dataclasses.Field]:
    """DeepStream key → field, for one config dataclass."""
    return {deepstream_key(f): f for f in dataclasses.fields(cls) if is_key(f)}
