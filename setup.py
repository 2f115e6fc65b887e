"""The wheel carries the sample gallery and the JSON Schemas inside the package.

They stay top-level folders in the repository (``samples/``, ``schemas/``); building the wheel copies
them to ``runner/_data/`` (``runner.resources.data_dir`` finds them there). Everything else about the
package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("samples", "schemas")  # runner.resources.SHIPPED


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        for name in SHIPPED:
            target = Path(self.build_lib) / "runner" / "_data" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(root / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
