"""The examples in the pipeline runtime's docstrings run and hold."""

import doctest
import importlib

import pytest

MODULES = ["runner.pipeline.source", "runner.pipeline.mux", "runner.pipeline.report", "runner.pipeline.sinks",
           "runner.pipeline.sinks.fake", "runner.pipeline.sinks.file",
           "runner.placement", "runner.placement.merge", "runner.placement.devices",
           "runner.pipeline.live_sources", "runner.pipeline.tiler", "runner.rest.parse", "runner.rest.api",
           "runner.pipeline.tracker.pairs", "runner.pipeline.tracker.iou_batched",
           "runner.pipeline.tracker.sort_batched", "runner.pipeline.tracker.stage",
           "runner.pipeline.cluster", "runner.pipeline.nms", "runner.pipeline.parsers.detectnet_v2"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
