"""``import dsrun``: run DeepStream configs from Python (see runner.api and docs/python.md).

>>> import dsrun
>>> sorted(n for n in dsrun.__all__ if not n[0].isupper())
['batches', 'from_detections', 'run', 'to_detections']
"""

from runner.api import HookBatch, HookError, RunResult, batches, run
from runner.interop.supervision import from_detections, to_detections

__all__ = ["run", "batches", "RunResult", "HookError", "HookBatch", "to_detections", "from_detections"]
