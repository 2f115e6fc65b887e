"""GLib key-file reading (what deepstream-app and Gst-nvinfer use), keeping file:line for everything.

Follows GLib's GKeyFile rules: ``#`` comment lines (after optional whitespace), ``[group]`` headers
(whitespace after ``]`` allowed), ``key=value`` with whitespace around ``=`` ignored, a repeated key
(the later value wins; we warn), a repeated group (its keys merge into the first), CRLF or LF, no final
newline needed. Values stay raw text here; :func:`parse_int` & co. read them as GLib's
``g_key_file_get_*`` do, including the inline ``# comment`` GLib tolerates after an integer.

>>> doc = parse_keyfile(b"[streammux]\\nwidth=1920\\nwidth=1280\\n", "a.txt")
>>> doc.groups["streammux"].entries["width"].value, doc.groups["streammux"].entries["width"].line
('1280', 3)
>>> [d.code for d in doc.diagnostics]
['duplicate-key']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runner.config.diagnostics import Diagnostic


@dataclass(slots=True)
class Entry:
    """One key as written: its raw value (``str``, or ``list`` for a YAML sequence) and line."""
    key: str
    value: object
    line: int | None


@dataclass(slots=True)
class Group:
    name: str
    line: int | None
    entries: dict[str, Entry] = field(default_factory=dict)


@dataclass(slots=True)
class Document:
    """A parsed config file: groups in file order, each key with its line; problems found on the way."""
    path: str
    format: str  # "ini" | "yaml"
    groups: dict[str, Group] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def add(self, severity: str, code: str, line: int | None, group: str | None, key: str | None,
            message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(severity, code, self.path, line, group, key, message, hint))

    def put(self, group: Group, entry: Entry, rule: str = "this later value wins") -> None:
        """Store ``entry`` in ``group``; a key set twice is a warning and the later value wins."""
        previous = group.entries.pop(entry.key, None)
        if previous is not None:
            self.add("warning", "duplicate-key", entry.line, group.name, entry.key,
                     f"set twice (line {previous.line} and here); {rule}",
                     f"delete one of the two '{entry.key}' lines")
        group.entries[entry.key] = entry


def parse_keyfile(data: bytes, path: str) -> Document:
    """Read GLib key-file bytes into a :class:`Document`; never raises on bad input."""
    doc = Document(path, "ini")
    current: Group | None = None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            text = raw.decode("latin-1")
            bad = raw[error.start:error.start + 1]
            group = current.name if current else None
            key = text.split("=", 1)[0].strip() if "=" in text else None
            doc.add("error", "encoding", number, group, key,
                    f"byte 0x{bad.hex().upper()} is not UTF-8 (the file must be UTF-8, as GLib requires)",
                    "re-save the file as UTF-8 or replace the character")
            if key is None or current is None:
                continue
        if text.endswith("\r"):
            text = text[:-1]
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            name = _group_name(stripped)
            if name is None:
                guess = stripped[1:].split("]")[0].strip()
                doc.add("error", "syntax", number, guess or None, None,
                        f"'{stripped}' is not a valid group header",
                        f"write it as [{guess or 'group-name'}] on a line of its own")
                current = Group(guess, number)  # detached: its keys are not reported again
                continue
            if name in doc.groups:
                current = doc.groups[name]
            else:
                current = doc.groups[name] = Group(name, number)
            continue
        if "=" not in stripped:
            doc.add("error", "syntax", number, current.name if current else None, None,
                    f"'{stripped}' is not a key=value pair, a [group] or a # comment",
                    "add '=value', make it a comment with '#', or remove the line")
            continue
        key, value = stripped.split("=", 1)
        key = key.strip()
        value = value.strip()
        if current is None:
            doc.add("error", "syntax", number, None, key or None,
                    "key=value before any [group] header",
                    "move the line below the [group] it belongs to")
            continue
        if not key or "[" in key or "]" in key:
            doc.add("error", "syntax", number, current.name, key or None,
                    f"'{key}' is not a valid key name", "a key is a name such as batch-size")
            continue
        doc.put(current, Entry(key, value, number), "this later value wins, as in GLib")
    return doc


def _group_name(line: str) -> str | None:
    end = line.find("]")
    if end <= 1 or line[end + 1:].strip(" \t"):
        return None
    name = line[1:end]
    if "[" in name or not name.strip():
        return None
    return name


# ---- values, read as GLib's g_key_file_get_* read them -------------------------------------------

_INT = re.compile(r"\s*([+-]?\d+)(?:\s.*)?", re.S)
_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|nan)\s*", re.I)
_ESCAPES = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\", ";": ";"}


def parse_int(text: str) -> int | None:
    """GLib integer: digits, then optionally whitespace and anything (so ``1 # mp4`` is 1).

    >>> parse_int("1 # mp4"), parse_int("four"), parse_int("-1920")
    (1, None, -1920)
    """
    match = _INT.fullmatch(text)
    if not match:
        return None
    value = int(match.group(1))
    return value if -2**31 <= value < 2**31 else None


def parse_float(text: str) -> float | None:
    """GLib double (g_ascii_strtod, whole value).

    >>> parse_float("0.25"), parse_float("0.5x")
    (0.25, None)
    """
    if not _FLOAT.fullmatch(text):
        return None
    return float(text)


def parse_bool(text: str) -> bool | None:
    """GLib boolean ``true``/``false``/``1``/``0``; deepstream-app reads many flags as integers, so an
    integer (with GLib's tolerance for a trailing comment) counts too: non-zero is true.

    >>> parse_bool("true"), parse_bool("0 # off"), parse_bool("maybe")
    (True, False, None)
    """
    word = text.strip()
    if word in ("true", "false"):
        return word == "true"
    number = parse_int(text)
    return None if number is None else number != 0


def unescape(text: str) -> str | None:
    """GLib string unescaping (``\\s \\n \\t \\r \\\\``); None for an invalid escape."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in _ESCAPES:
                return None
            out.append(_ESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def split_list(text: str) -> list[str] | None:
    """GLib ``;``-separated list: ``\\;`` escapes a separator, one trailing ``;`` is dropped.

    >>> split_list("1;1;1;1;"), split_list("a\\\\;b;c")
    (['1', '1', '1', '1'], ['a;b', 'c'])
    """
    items, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == ";":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if current:
        items.append("".join(current))
    out = [unescape(item) for item in items]
    return None if any(item is None for item in out) else out  # type: ignore[return-value]
