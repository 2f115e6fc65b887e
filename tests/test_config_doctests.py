"""The examples in runner/config docstrings run and stay true."""

import doctest
import importlib
import pkgutil

import pytest

import runner.config

MODULES = [m.name for m in pkgutil.iter_modules(runner.config.__path__, "runner.config.")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
