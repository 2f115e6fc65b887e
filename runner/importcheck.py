"""Imports every module of the installed ``runner`` package: the proof that what it imports is installed.

    python -m runner.importcheck [--without torch,PyNvVideoCodec]

Each module either imports, or (an optional path whose extra is not installed) raises
:class:`~runner.extras.MissingExtra`, whose one-line message is printed. Anything else — an
``ImportError`` of an undeclared dependency, a traceback — is a failure: exit 1. ``--without`` hides
installed modules, to show what a machine without them sees. ``.ci/run`` runs it in a fresh venv
holding only the wheel's declared dependencies; tests/test_dependencies.py runs it too.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.importcheck")
    parser.add_argument("--without", default="", metavar="MODULES",
                        help="comma-separated import names to treat as not installed")
    args = parser.parse_args(argv)
    for name in filter(None, args.without.split(",")):
        sys.modules[name] = None  # `import name` now raises ImportError, as if it were absent

    import runner
    from runner.extras import SYSTEM, MissingExtra

    failed = 0
    names = ["runner"] + sorted(m.name for m in pkgutil.walk_packages(runner.__path__, "runner."))
    for name in names:
        if name == __name__ or name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(name)
        except MissingExtra as missing:
            print(f"{name}: optional — {missing}")
        except ModuleNotFoundError as missing:
            if missing.name not in SYSTEM:
                failed += 1
                print(f"{name}: FAILED\n{traceback.format_exc()}", file=sys.stderr)
            else:
                print(f"{name}: a helper for another interpreter — needs {SYSTEM[missing.name]}")
        except BaseException:  # noqa: BLE001 - every failure is reported, then the run fails
            failed += 1
            print(f"{name}: FAILED\n{traceback.format_exc()}", file=sys.stderr)
    print(f"{len(names)} modules, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
