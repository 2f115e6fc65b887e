"""What a pipeline stage is: something that takes a Batch, adds to it, and passes it on.

The graph (``graph.py``) runs each stage in its own thread, joined to the next by a bounded queue, and
calls ``process`` once per batch in order; ``close`` once after the last batch (flush files, join
workers). A stage never imports ``runner.ui``; it reports through ``runner.pipeline.stats``.

A stage may split its work: ``ahead``, a tuple of ``(name, step)`` pairs (``step(batch) -> batch``), lists
steps the graph runs before ``process``, each on a thread of its own and one batch ahead of the next
(``runner.pipeline.prepare_ahead``; the GIE stages with ``process-mode=1`` do).

>>> class CountObjects:
...     name = "count"
...     def __init__(self): self.total = 0
...     def process(self, batch): self.total += len(batch.objects); return batch
...     def close(self): pass
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from runner.pipeline.batch import Batch


@runtime_checkable
class Stage(Protocol):
    name: str  # shown by the dashboard and in errors ("stage 'pgie' failed on source 2: ...")

    def process(self, batch: Batch) -> Batch:
        """Add this stage's results to ``batch`` (or replace its frames) and return it."""
        ...

    def close(self) -> None:
        """Called once after the last batch, also when the run stops early."""
        ...
