"""A stage's first half one batch ahead, on a thread of its own: ``prepare(batch)`` of the next batch
runs while ``process(batch)`` of this one does.

A stage that says it splits (``splits`` true; the GIE stages with ``process-mode=1``, see
``runner.pipeline.infer``) has ``prepare(batch) -> batch``: work that depends on nothing the stage's own
``process`` of earlier batches leaves behind (the GIE: its interval decision and the network's
pre-processing), and stores its result for ``process`` to pick up. The graph (``graph.py``) then reads
the stage's input through a :class:`PrepareAhead`:

* batches keep their order: one thread takes them from the stage's input queue, prepares them and
  hands them on through a queue of one, and the stage thread takes them from there;
* at most one batch is prepared ahead: a batch is prepared only once the stage has taken the one
  before it, so besides the batch ``process`` holds, one prepared batch exists (on a GPU a batch's
  input tensor for a 1080p batch of 32 is ~200 MB);
* batches that hold only an end of stream pass unprepared, as ``process`` never sees them;
* on a GPU, ``prepare`` runs on this thread's own CUDA stream (``runner.pipeline.gpu_streams``) and
  leaves ``Batch.device_ready`` an event after its work, which the stage thread's stream waits for;
* an error in ``prepare`` fails the run as an error in ``process`` does (the stage and the batch's
  sources named); the end (the graph's end marker), an abort and an error all end the thread, and
  the graph joins it before it closes the stage.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable

from runner.pipeline.batch import Batch

__all__ = ["PrepareAhead"]

_POLL_S = 0.1  # how often a waiting thread looks at the abort flag


class _Stopped(Exception):
    pass


class PrepareAhead:
    """The thread that prepares a stage's batches one ahead. ``prepare(batch) -> batch`` does the work
    (the graph passes the stage's ``prepare`` run on the thread's CUDA stream); ``fail(batch, exc)``
    ends the run with ``exc``; ``abort`` is the graph's flag to stop at once.

    The stage thread reads prepared batches (and, last, the end marker) from :attr:`out` and calls
    :meth:`taken` after each; :meth:`join` waits for the thread."""

    def __init__(self, name: str, inq: queue.Queue, prepare: Callable[[Batch], Batch],
                 fail: Callable[[Batch | None, BaseException], None], abort: threading.Event) -> None:
        self.out: queue.Queue = queue.Queue(1)
        self._inq, self._prepare, self._fail, self._abort = inq, prepare, fail, abort
        self._free = threading.Semaphore(1)  # one prepared batch not yet taken by the stage
        self._thread = threading.Thread(target=self._run, name=f"stage-{name}-prepare", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def taken(self) -> None:
        """The stage took a batch from :attr:`out`: the next one may be prepared."""
        self._free.release()

    def join(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()

    def _wait(self, attempt: Callable[[], bool]) -> None:
        while not attempt():
            if self._abort.is_set():
                raise _Stopped

    def _get(self):
        item = []

        def attempt() -> bool:
            try:
                item.append(self._inq.get(timeout=_POLL_S))
                return True
            except queue.Empty:
                return False

        self._wait(attempt)
        return item[0]

    def _put(self, item) -> None:
        def attempt() -> bool:
            try:
                self.out.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                return False

        self._wait(attempt)

    def _run(self) -> None:
        batch = None
        try:
            while True:
                self._wait(lambda: self._free.acquire(timeout=_POLL_S))
                item = self._get()
                if not isinstance(item, Batch):  # the graph's end marker: the last item
                    self._put(item)
                    return
                batch = item
                if len(batch):
                    batch = self._prepare(batch)
                self._put(batch)
        except _Stopped:
            pass
        except BaseException as exc:  # the run ends with it, as with an error in process()
            self._fail(batch, exc)
