"""One CUDA stream per stage thread, for batches whose frames are on a GPU.

Without this, every stage's kernels and copies go to the one legacy default stream that all threads
share, with the decoders' per-frame work: a stage that waits for its results (``.cpu()`` of the
network outputs, a pageable copy of metadata) waits for whatever any other thread queued before it —
the next batch's decoding, another GIE's network. With a stream per stage, a stage waits only for its
own work and for what the batch it holds depends on:

* before ``process``: the stage's stream waits for the legacy default stream (where the decoders and
  streammux produced the frames, in enqueue order) and for the previous stage's work on this batch
  (``Batch.device_ready``, an event recorded when that stage finished);
* after it: the input frames are marked as used on this stream (``record_stream``: the caching
  allocator does not hand their memory to another stream before this stream's work on them is done),
  and ``Batch.device_ready`` becomes an event on this stream, for the next stage.

Only stages that say they queue device work (``uses_device`` true: the GIE stages with an engine on
the frames' GPU) get a stream; the others (tracker, analytics, sinks, which read host metadata or copy
frames out on the default stream, after streammux's work in its order) run as they are — each stream
call gives the interpreter lock away and waits to get it back, a cost a CPU stage need not pay
(py-spy, 64 sources on the H200: 22 % of the tracker thread's time when every stage was wrapped).

``DSRUN_CUDA_STREAMS=0`` turns it off (every stage on the default stream, as before). Batches of host
frames pass straight through.
"""

from __future__ import annotations

import os
import threading

from runner.pipeline.batch import Batch
from runner.pipeline.preprocess_gpu import is_device_tensor

__all__ = ["StageStreams", "ready_event", "wait_ready"]


def _enabled() -> bool:
    return os.environ.get("DSRUN_CUDA_STREAMS", "1").strip() != "0"


class StageStreams:
    """Runs ``stage.process(batch)`` on the calling thread's own CUDA stream (one per thread and
    device, made on first use). Safe to share between stage threads."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = _enabled() if enabled is None else enabled
        self._local = threading.local()

    def process(self, stage, batch: Batch, step=None) -> Batch:
        """``step(batch)`` (default ``stage.process``; the graph passes a split stage's steps on the
        threads that run them ahead of ``process``, ``runner.pipeline.prepare_ahead``)."""
        step = stage.process if step is None else step
        frames = batch.frames
        if not self.enabled or not getattr(stage, "uses_device", False) or not is_device_tensor(frames) \
                or not frames.is_cuda:
            return step(batch)
        import torch

        device = frames.device
        streams = getattr(self._local, "streams", None)
        if streams is None:
            streams = self._local.streams = {}
        stream = streams.get(device)
        if stream is None:
            stream = streams[device] = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.default_stream(device))
        if batch.device_ready is not None:
            stream.wait_event(batch.device_ready)
        with torch.cuda.stream(stream):
            batch = step(batch)
            done = torch.cuda.Event()
            done.record(stream)
        frames.record_stream(stream)  # frames a stage makes are this stream's already
        batch.device_ready = done
        return batch


def ready_event(tensor):
    """An event on the current stream after the work queued so far, when ``tensor`` is on a CUDA
    device (None otherwise): handed with the tensor to another thread, which waits for it
    (:func:`wait_ready`) before reading the tensor on its own stream."""
    if not is_device_tensor(tensor) or not tensor.is_cuda:
        return None
    import torch

    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(tensor.device))
    return event


def wait_ready(event, device) -> None:
    """The current stream of ``device`` waits for ``event`` (from :func:`ready_event`; None: nothing)."""
    if event is not None:
        import torch

        torch.cuda.current_stream(device).wait_event(event)
