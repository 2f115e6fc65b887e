"""Shared fixtures: where the real data lives.

- ``conformance``: ../shared/conformance (unchanged DeepStream 9.1 sample configs).
- ``assets``: the models and videos materialised from PyPI packages by scripts/prepare_assets.py
  (``.ci/run`` prepares them before the tests run).
"""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def conformance() -> Path:
    path = SHARED / "conformance"
    assert path.is_dir(), f"{path} is missing: the tests need ../shared beside the checkout"
    return path


@pytest.fixture(scope="session")
def assets():
    """The prepared assets (runner.assets.Assets): models and videos with verified checksums."""
    from runner.assets import ensure_assets

    return ensure_assets()
