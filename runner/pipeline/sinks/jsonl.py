"""Registers ``--jsonl FILE`` as an app-wide output (see runner.pipeline.jsonl)."""

from runner.pipeline.jsonl import build_jsonl_stage
from runner.pipeline.sinks import register_output


def _jsonl_output(app, options):
    return build_jsonl_stage(app, getattr(options, "jsonl", None), rotation=getattr(options, "jsonl_rotate", None),
                             keep=getattr(options, "jsonl_keep", 0))


register_output(_jsonl_output)
