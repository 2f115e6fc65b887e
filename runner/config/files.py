"""Reading config files (INI or YAML by extension), resolving the paths they name, checking them.

A missing file that holds configuration is an error (it cannot be validated and the run would fail);
a missing run-time asset (model, engine, video, label file, .so) is a warning — unless dsrun makes
or replaces it itself (:func:`provided_by_dsrun`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from collections.abc import Mapping
from pathlib import Path

from runner.config.diagnostics import Diagnostic
from runner.config.keyfile import Document, parse_keyfile
from runner.config.yaml import parse_yaml
from runner.deepstream_libs import darknet_model, replaced_library

Ref = tuple[str, int | None, str | None, str | None]  # file, line, group, key naming a file


def is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yml", ".yaml")


def read_document(path: Path, diags: list[Diagnostic], ref: Ref | None = None,
                  what: str = "config file") -> Document | None:
    """Parse ``path``; a file that cannot be read becomes an error at ``ref`` (the naming key)."""
    file, line, group, key = ref or (str(path), None, None, None)

    def fail(code: str, message: str, hint: str) -> None:
        diags.append(Diagnostic("error", code, file, line, group, key, message, hint))

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        fail("missing-file", f"{what} {path} does not exist",
             "fix the path (relative paths are taken from the folder of the file naming them)")
        return None
    except IsADirectoryError:
        fail("unreadable", f"{path} is a directory, not a {what}", "name the file inside it")
        return None
    except PermissionError:
        fail("unreadable", f"{what} {path} cannot be read: permission denied",
             f"make it readable (chmod a+r {path})")
        return None
    except OSError as error:
        fail("unreadable", f"{what} {path} cannot be read: {error.strerror}", "check the path")
        return None
    doc = (parse_yaml if is_yaml(path) else parse_keyfile)(data, str(path))
    diags.extend(doc.diagnostics)
    doc.diagnostics = []
    return doc


def resolve(base: Path, value: str) -> Path:
    """DeepStream's get_absolute_file_path: absolute stays, relative joins the naming file's folder.

    >>> resolve(Path("/cfg"), "../models/a.onnx")
    PosixPath('/models/a.onnx')
    """
    if value.startswith("file://"):
        value = value[len("file://"):]
    return Path(os.path.normpath(base / os.path.expanduser(value)))


def resolve_uri(base: Path, uri: str) -> str:
    """``file://relative.mp4`` → ``file:///abs/relative.mp4`` (as deepstream-app does); others kept."""
    if uri.startswith("file://"):
        return "file://" + str(resolve(base, uri[len("file://"):]))
    return uri


#: Linux limits (limits.h): bytes in one file name, bytes in a whole path
NAME_MAX, PATH_MAX = 255, 4096


def usable(path: Path, diags: list[Diagnostic], ref: Ref) -> bool:
    """False (with an error at ``ref``) when no file system here can hold ``path``: a name over
    NAME_MAX bytes or a path over PATH_MAX (open() would fail with ENAMETOOLONG).

    >>> d = []; usable(Path("/m") / ("a" * 256 + ".onnx"), d, ("app.txt", 3, "property", "onnx-file"))
    False
    >>> str(d[0])[:80]
    'app.txt:3 [property] onnx-file: a file name of 261 bytes (aaaaaaaaaaaa….onnx): f'
    """
    long_name = next((part for part in path.parts if len(part.encode()) > NAME_MAX), None)
    if long_name is None and len(str(path).encode()) <= PATH_MAX:
        return True
    file, line, group, key = ref
    what = (f"a file name of {len(long_name.encode())} bytes ({long_name[:12]}…{Path(long_name).suffix}): "
            f"file systems allow {NAME_MAX}" if long_name is not None else
            f"a path of {len(str(path).encode())} bytes: Linux allows {PATH_MAX}")
    diags.append(Diagnostic("error", "bad-type", file, line, group, key, what,
                            "shorten the file name (rename the file and this value)"))
    return False


def check_exists(path: Path, kind: str, diags: list[Diagnostic], ref: Ref) -> bool:
    """Report a missing file: an error for configuration, a warning for a run-time asset."""
    if path.exists():
        return True
    file, line, group, key = ref
    if kind == "config":
        diags.append(Diagnostic("error", "missing-file", file, line, group, key,
                                f"{path} does not exist (a configuration file dsrun must read)",
                                "fix the path (relative paths are taken from this file's folder)"))
    elif kind == "asset":
        diags.append(Diagnostic("warning", "missing-file", file, line, group, key,
                                f"{path} missing, needed at run time",
                                "put the file there, or fix the path, before running"))
    return False


def provided_by_dsrun(field: str, path: Path, values: Mapping[str, object], base: Path) -> bool:
    """Whether dsrun makes or stands in for the run-time file ``path`` (config field ``field``;
    ``values``: the other fields of its group, paths relative to ``base``), so that its absence is
    no problem: a ``model-engine-file`` beside an ``onnx-file``, or beside a Darknet
    ``custom-network-config`` + ``model-file`` pair, that exists (dsrun builds the engine there), or a
    DeepStream library dsrun implements itself (:mod:`runner.deepstream_libs`).

    >>> provided_by_dsrun("ll_lib_file", Path("/opt/libnvds_nvmultiobjecttracker.so"), {}, Path("/"))
    True
    >>> provided_by_dsrun("model_engine_file", Path("/m/a.engine"), {"onnx_file": "no.onnx"}, Path("/m"))
    False
    """
    if field == "model_engine_file":  # dsrun builds it from an ONNX file or a Darknet cfg + weights pair
        def present(name: str) -> bool:
            value = values.get(name)
            return bool(value) and (value if isinstance(value, Path) else resolve(base, str(value))).is_file()

        darknet = darknet_model(values.get("custom_network_config"), values.get("model_file"))
        return present("onnx_file") or (darknet and present("custom_network_config") and present("model_file"))
    return replaced_library(field, path, values)


def key_line(path: Path | str, group: str, key: str | None = None) -> int | None:
    """The line of ``key`` in ``[group]`` of the config file ``path`` (the group's line when ``key``
    is None or not there; None when the file or group is gone), for problems found after loading.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_text("[sink0]\\nenable=1\\ntype=7\\n")
    >>> key_line(p, "sink0", "type"), key_line(p, "sink0"), key_line(p, "osd")
    (3, 1, None)
    """
    try:
        stamp = Path(path).stat().st_mtime_ns
    except OSError:
        return None
    doc = _document(str(path), stamp)
    found = doc.groups.get(group) if doc is not None else None
    if found is None:
        return None
    entry = found.entries.get(key) if key is not None else None
    return entry.line if entry is not None else found.line


def cached_document(path: Path | str | None) -> Document | None:
    """The parsed config file (read once per modification), or None when it cannot be read."""
    try:
        return _document(str(path), Path(str(path)).stat().st_mtime_ns) if path else None
    except OSError:
        return None


@lru_cache(maxsize=32)
def _document(path: str, _stamp: int) -> Document | None:
    return read_document(Path(path), [])
