"""A stage's first steps one batch ahead, each on a thread of its own: step 1 of batch N+2 and step 2
of batch N+1 run while ``process`` of batch N does.

A stage that splits lists those steps in ``ahead``: ``(name, step)`` pairs, ``step(batch) -> batch``,
in order (the GIE stages with ``process-mode=1``: pre-processing, then the engine; see
``runner.pipeline.infer``). A step may depend on what the earlier steps did to the same batch and on
what it did to earlier batches, never on what a later step or ``process`` did to an earlier batch; it
stores its result for the next step or ``process`` to pick up. The graph (``graph.py``) then reads the
stage's input through a chain of :class:`PrepareAhead`, one thread per step
(``stage-NAME-STEP``), the stage thread reading the last one's output:

* batches keep their order: each thread takes them from the queue before it, runs its step and hands
  them on through a queue of one;
* each step is at most one batch ahead of the next: a thread starts on a batch only once the thread
  (or stage) after it has taken the batch before (on a GPU the input tensor of a 1080p batch of 32 is
  ~200 MB: besides the batch being inferred, one more is pre-processed);
* batches that hold only an end of stream pass through untouched, as ``process`` never sees them;
* on a GPU each step runs on its thread's own CUDA stream (``runner.pipeline.gpu_streams``) and leaves
  ``Batch.device_ready`` an event after its work, which the next thread's stream waits for;
* an error in a step fails the run as an error in ``process`` does (the stage and the batch's sources
  named); the end (the graph's end marker), an abort and an error all end the threads, and the graph
  joins them before it closes the stage;
* each step counts its batches, frames and busy time in a ``RunStats`` stage of its own, named
  ``STAGE:STEP`` (the dashboard's rows, ``--report``, ``dsrun bench``'s busiest stage): the stage's
  own row keeps the time inside ``process``.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from runner.pipeline.batch import Batch

__all__ = ["PrepareAhead"]

_POLL_S = 0.1  # how often a waiting thread looks at the abort flag


class _Stopped(Exception):
    pass


class PrepareAhead:
    """The thread (named ``thread_name``) that runs one step of a stage's batches, one batch ahead of
    whoever reads :attr:`out`. ``step(batch) -> batch`` does the work (the graph passes the stage's
    step run on the thread's CUDA stream); it reads ``inq`` and calls ``taken_from_inq()`` (the
    :meth:`taken` of the thread before it, if any) after each batch it takes; ``fail(batch, exc)`` ends
    the run with ``exc``; ``abort`` is the graph's flag to stop at once.

    The reader takes batches (and, last, the end marker) from :attr:`out` and calls :meth:`taken` after
    each; :meth:`join` waits for the thread. ``stats`` (a ``StageStats``) counts the step's batches,
    frames and seconds."""

    def __init__(self, thread_name: str, inq: queue.Queue, step: Callable[[Batch], Batch],
                 fail: Callable[[Batch | None, BaseException], None], abort: threading.Event,
                 taken_from_inq: Callable[[], None] | None = None, stats=None) -> None:
        self.out: queue.Queue = queue.Queue(1)
        self._inq, self._step, self._fail, self._abort = inq, step, fail, abort
        self._stats = stats
        self._taken_from_inq = taken_from_inq
        self._free = threading.Semaphore(1)  # one batch done here and not yet taken by the reader
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def taken(self) -> None:
        """The reader took a batch from :attr:`out`: the next one may be started."""
        self._free.release()

    def join(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()

    def _wait(self, attempt: Callable[[], bool]) -> None:
        """``attempt()`` until it succeeds; an abort stops at once, before any further batch is taken."""
        while True:
            if self._abort.is_set():
                raise _Stopped
            if attempt():
                return

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
                if self._taken_from_inq is not None:
                    self._taken_from_inq()
                if not isinstance(item, Batch):  # the graph's end marker: the last item
                    self._put(item)
                    return
                batch = item
                if len(batch):
                    t0 = time.perf_counter()
                    batch = self._step(batch)
                    if self._stats is not None:
                        self._stats.busy_s += time.perf_counter() - t0
                        self._stats.batches += 1
                        self._stats.frames += len(batch)
                self._put(batch)
        except _Stopped:
            pass
        except BaseException as exc:  # the run ends with it, as with an error in process()
            self._fail(batch, exc)
