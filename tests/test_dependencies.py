"""Every import of the package is declared in pyproject.toml, and a missing optional one is one line.

The same rule as ``../shared/hooks/check-deps``, kept here so CI enforces it on any machine: a module
imported anywhere in ``runner/`` (module level or inside a function) comes from
``[project].dependencies``, unless ``runner.extras.OPTIONAL`` names it — then the extra it names exists
and declares its distribution. Import names are mapped to distributions from the installed metadata.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from importlib.metadata import packages_distributions
from pathlib import Path

from runner.extras import OPTIONAL, SYSTEM

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# import names whose distribution is named differently and may not be installed here
NOT_INSTALLED_HERE = {"cv2": "opencv-python-headless", "yaml": "pyyaml", "scipy": "scipy",
                      "onnxconverter_common": "onnxconverter-common"}


def _dist(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports() -> dict[str, list[str]]:
    local = {"runner"}
    uses: dict[str, list[str]] = defaultdict(list)
    for path in sorted((ROOT / "runner").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = {node.module.split(".")[0]}
            else:
                continue
            for top in tops - local - set(sys.stdlib_module_names) - {"__future__"}:
                uses[top].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return uses


def test_every_import_of_the_package_is_declared_in_pyproject():
    base = {_dist(d) for d in PROJECT["dependencies"]}
    extras = {name: {_dist(d) for d in ds} for name, ds in PROJECT["optional-dependencies"].items()}
    installed = {m: {d.lower().replace("_", "-") for d in ds} for m, ds in packages_distributions().items()}
    problems = []
    for top, where in sorted(_third_party_imports().items()):
        if top in SYSTEM:
            continue
        if top in OPTIONAL:
            extra, dist = OPTIONAL[top]
            if dist not in extras.get(extra, set()):
                problems.append(f"{top}: runner.extras says extra '{extra}' installs {dist}, pyproject.toml's "
                                f"[{extra}] does not declare it ({where[0]})")
            continue
        owners = installed.get(top) or {NOT_INSTALLED_HERE.get(top, top)}
        if not owners & base:
            problems.append(f"{top} ({'/'.join(sorted(owners))}): imported by {', '.join(where[:3])} but not in "
                            "[project].dependencies — declare it, or make it optional in runner/extras.py")
    assert problems == []


def test_every_extra_named_for_an_optional_module_exists():
    extras = set(PROJECT["optional-dependencies"])
    assert {extra for extra, _ in OPTIONAL.values()} <= extras


def test_without_the_optional_packages_every_module_imports_or_names_its_extra():
    hidden = ",".join(name for name in OPTIONAL)
    done = subprocess.run([sys.executable, "-m", "runner.importcheck", "--without", hidden],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert 'runner.engine.onnx_torch: optional — the torch backend needs \'torch\', which is not installed — ' \
           'pip install "dsrun[torch]"' in lines
    assert lines[-1].endswith(", 0 failed")
