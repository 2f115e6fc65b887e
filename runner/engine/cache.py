"""The engine cache: keys, the ``engines/<model>/<key>/`` layout, manifests, locks, atomic writes.

An entry is a folder ``<root>/<model>/<key>/`` holding the engine artefact and ``manifest.json`` (every
field of the key, plus when and how long it took to build). The key is a digest of those fields
(:data:`KEY_FIELDS`), so anything that changes the engine — model bytes, shapes, batch, precision,
runtime version, device, calibration data, custom parser — gives another folder.
Entries appear whole or not at all: a build writes into ``<model>/.tmp-<key>-<pid>/`` and renames it
into place; a lock file per key makes concurrent builders build once.

>>> cache_key({"model_sha256": "ab", "precision": "fp16"}) == cache_key({"precision": "fp16", "model_sha256": "ab"})
True
>>> mismatch({"batch": 4, "precision": "fp16"}, {"batch": 8, "precision": "fp16"})
['built for batch 4, config asks 8']
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from runner.engine.base import EngineError

ENV_DIR = "DSRUN_ENGINE_DIR"
MANIFEST = "manifest.json"
#: Bump when dsrun changes how it builds an engine from the same inputs.
RECIPE = 2  # 2: uint8 activations for ONNX Runtime CPU INT8
#: Every field of a cache key, in the order messages name them (one place: build.py fills them).
KEY_FIELDS = ("model_sha256", "model_source", "inputs", "batch", "precision", "backend", "backend_version",
              "device", "calib_sha256", "parser_sha256", "recipe")
_LABELS = {"model_sha256": "ONNX file (sha256 {})", "model_source": "Darknet files {}",
           "inputs": "inputs {}", "batch": "batch {}", "precision": "{}", "backend": "{}",
           "backend_version": "runtime version {}", "device": "device {}", "calib_sha256": "calibration data {}",
           "parser_sha256": "custom parser {}", "recipe": "dsrun build recipe {}"}


def default_engine_dir(engine_dir: str | Path | None = None) -> Path:
    """``--engine-dir``, else ``$DSRUN_ENGINE_DIR``, else the per-user cache
    (``$XDG_CACHE_HOME/dsrun/engines``, default ``~/.cache/dsrun/engines``)."""
    if engine_dir:
        return Path(engine_dir).expanduser().absolute()
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dsrun" / "engines"


def cache_key(fields: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of the canonical JSON of the key fields."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def mismatch(have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Why an engine built for ``have`` does not serve ``want``, one phrase per differing field."""
    out = []
    for name in KEY_FIELDS:
        a, b = have.get(name), want.get(name)
        if a == b or (name not in have and name not in want):
            continue
        label = _LABELS[name]
        show = (lambda v: (str(v)[:12] if v else "none")) if name.endswith("sha256") else _show
        out.append(f"built for {label.format(show(a))}, config asks {show(b)}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} {v}" for k, v in value.items())
    return "none" if value is None else str(value)


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) within the process."""
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[memo] = digest.hexdigest()
    return _HASHES[memo]


def files_sha256(paths: list[Path]) -> str:
    """One digest over several files' names and bytes (a calibration image folder)."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.name.encode() + b"\0" + file_sha256(p).encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One cache entry: its folder, manifest and artefact."""

    dir: Path
    manifest: dict[str, Any]

    @property
    def artefact(self) -> Path:
        return self.dir / self.manifest["artefact"]

    @property
    def last_used(self) -> float:
        return (self.dir / MANIFEST).stat().st_mtime

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())


class EngineCache:
    """A cache root. ``lookup`` → ``lock`` → ``lookup`` again → ``staging`` is the build protocol.

    >>> import tempfile
    >>> cache = EngineCache(Path(tempfile.mkdtemp()))
    >>> with cache.staging("det", "0123456789abcdef") as tmp:
    ...     _ = (tmp / "engine.onnx").write_bytes(b"x")
    ...     write_json(tmp / MANIFEST, {"artefact": "engine.onnx"})
    >>> cache.lookup("det", "0123456789abcdef").artefact.name
    'engine.onnx'
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def entry_dir(self, model: str, key: str) -> Path:
        return self.root / model / key

    def lookup(self, model: str, key: str) -> Entry | None:
        folder = self.entry_dir(model, key)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        entry = Entry(folder, manifest)
        return entry if entry.artefact.is_file() else None

    def touch(self, entry: Entry) -> None:
        """Mark an entry used now (``engines clean --older-than`` removes the unused ones)."""
        with contextlib.suppress(OSError):
            os.utime(entry.dir / MANIFEST)

    @contextlib.contextmanager
    def lock(self, model: str, key: str, on_wait=None) -> Iterator[None]:
        """Hold the build lock of one key (an ``fcntl`` lock: released if the process dies)."""
        folder = self._mkdir(self.root / model)
        with open(folder / f".{key}.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait()
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def staging(self, model: str, key: str) -> Iterator[Path]:
        """A private folder that becomes the entry when the block succeeds and vanishes when it
        fails or is interrupted. Call under :meth:`lock`."""
        parent = self._mkdir(self.root / model)
        for stale in parent.glob(f".tmp-{key}-*"):  # left by a killed builder (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = parent / f".tmp-{key}-{os.getpid()}"
        tmp.mkdir()
        try:
            yield tmp
            final = self.entry_dir(model, key)
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        except OSError as exc:
            raise disk_error(exc, parent) from None
        except Exception:
            # runtimes report a failed write in their own words ("Protobuf serialization failed")
            if _nearly_full(parent):
                raise disk_error(OSError(errno.ENOSPC, "No space left on device"), parent) from None
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def entries(self) -> list[Entry]:
        out = []
        if not self.root.is_dir():
            return out
        for model_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for folder in sorted(p for p in model_dir.iterdir() if p.is_dir()):
                if not folder.name.startswith("."):
                    entry = self.lookup(model_dir.name, folder.name)
                    if entry:
                        out.append(entry)
        return out

    def busy(self, entry: Entry) -> bool:
        """Another process holds this entry's build lock (it is being rebuilt right now)."""
        lock = entry.dir.parent / f".{entry.dir.name}.lock"
        if not lock.exists():
            return False
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def remove(self, entry: Entry) -> None:
        shutil.rmtree(entry.dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            (entry.dir.parent / f".{entry.dir.name}.lock").unlink()
        with contextlib.suppress(OSError):
            entry.dir.parent.rmdir()  # only when empty

    def _mkdir(self, folder: Path) -> Path:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise PermissionError(errno.EACCES, "Permission denied", str(folder))
        except OSError as exc:
            raise disk_error(exc, folder) from None
        return folder


def _nearly_full(folder: Path, margin: int = 4 << 20) -> bool:
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def disk_error(exc: OSError, where: Path) -> EngineError:
    """A full disk or an unwritable folder, explained."""
    if exc.errno == errno.ENOSPC:
        return EngineError(f"{where}: no space left on the device while writing an engine — free "
                           "some space or point --engine-dir (or $DSRUN_ENGINE_DIR) at another disk; "
                           "nothing half-written was kept")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EngineError(f"{where}: not writable ({exc.strerror}) — pass --engine-dir DIR or set "
                           f"${ENV_DIR} to a folder you can write, or fix its permissions")
    return EngineError(f"{where}: cannot write the engine ({exc.strerror or exc}) — check the disk "
                       "and the folder's permissions")


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str).encode() + b"\n")


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block succeeds."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise disk_error(exc, path) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (temp file beside it, fsync, rename)."""
    with _replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` whole or not at all."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, dst.parent) from None
    with _replacing(dst) as tmp:
        shutil.copyfile(src, tmp)


def parse_age(text: str | None) -> float | None:
    """``30d``/``12h``/``45m``/``90s`` → seconds; ``None`` → ``None`` (everything).

    >>> parse_age("30d"), parse_age("12h")
    (2592000.0, 43200.0)
    """
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    unit = text[-1].lower()
    try:
        return float(text[:-1]) * units[unit] if unit in units else float(text) * 86400
    except ValueError:
        raise EngineError(f"--older-than {text!r}: expected a number with a unit, e.g. 30d, 12h, "
                          "45m") from None

