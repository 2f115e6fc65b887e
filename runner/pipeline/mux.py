"""streammux (``[streammux]``): frames of every source → batches of ``batch-size`` frames.

Sources hand decoded, already scaled RGB frames to :class:`MuxInput` (one small queue per source);
:class:`StreamMux` collects them round-robin into a :class:`~runner.pipeline.batch.Batch` — frames in
one ``(B, H, W, 3)`` array, per-frame source id, frame number, PTS and wall-clock columns — and pushes
it when it is full or when ``batched-push-timeout`` (µs, counted from the batch's first frame)
expires. End of stream travels in ``Batch.eos``; a batch may hold only an EOS (``len(batch) == 0``).

Scaling follows nvstreammux: every frame is resized to ``width × height``; with ``enable-padding=1``
the aspect ratio is kept and the picture is centred on black bands (even offsets and sizes).

>>> spec = MuxSpec(batch_size=2, width=64, height=48, enable_padding=True)
>>> letterbox(320, 120, 64, 48)          # (x, y, w, h) of the picture inside the padded frame
(0, 12, 64, 24)
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from runner.pipeline.batch import Batch
from runner.pipeline.preprocess_gpu import is_device_tensor
from runner.pipeline.stats import RunStats

_EOS = object()


@dataclass(frozen=True, slots=True)
class MuxSpec:
    """``[streammux]`` as the runtime needs it (DeepStream's units: µs, pixels)."""

    batch_size: int = 1
    batched_push_timeout: int = -1  # µs from a batch's first frame; -1: wait until the batch is full
    width: int = 0  # 0: keep each source's size (then frames of different sizes travel as a list)
    height: int = 0
    enable_padding: bool = False
    live_source: bool = False
    attach_sys_ts: bool = True  # ntp_ts is the system time when the frame entered streammux

    @classmethod
    def from_config(cls, mux, num_sources: int) -> "MuxSpec":
        """From ``AppConfig.streammux``; batch-size 0/unset means one frame per source."""
        get = lambda name, default: default if getattr(mux, name, None) is None else getattr(mux, name)
        batch = int(get("batch_size", 0)) or max(1, num_sources)
        width, height = int(get("width", 0)), int(get("height", 0))
        if width and height:  # nvstreammux rounds its output up to multiples of 8 x 4
            width, height = -(-width // 8) * 8, -(-height // 4) * 4
        return cls(batch_size=batch, batched_push_timeout=int(get("batched_push_timeout", -1)),
                   width=width, height=height, enable_padding=bool(get("enable_padding", 0)),
                   live_source=bool(get("live_source", 0)),
                   attach_sys_ts=bool(get("attach_sys_ts_as_ntp", 1)))


def letterbox(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """Where nvstreammux puts a ``src_w × src_h`` picture in a ``dst_w × dst_h`` padded frame."""
    h = dst_w * src_h / src_w
    w, h = (dst_w, h) if h <= dst_h else (dst_h * src_w / src_h, dst_h)
    w, h = int(w) // 2 * 2, int(h) // 2 * 2
    return (dst_w - w) // 2 // 2 * 2, (dst_h - h) // 2 // 2 * 2, w, h


def rgb_converter(spec: MuxSpec) -> Callable:
    """A function av.VideoFrame → (H, W, 3) uint8 RGB at the streammux size, run on the source's
    thread (FFmpeg's swscale converts and scales in one pass)."""
    W, H = spec.width, spec.height
    if not (W and H):
        return lambda frame: frame.to_ndarray(format="rgb24")
    if not spec.enable_padding:
        return lambda frame: frame.to_ndarray(format="rgb24", width=W, height=H)
    boxes: dict[tuple[int, int], tuple[int, int, int, int]] = {}

    def convert(frame) -> np.ndarray:
        key = (frame.width, frame.height)
        if key not in boxes:
            boxes[key] = letterbox(frame.width, frame.height, W, H)
        x, y, w, h = boxes[key]
        if (w, h) == (W, H):
            return frame.to_ndarray(format="rgb24", width=W, height=H)
        out = np.zeros((H, W, 3), np.uint8)
        out[y:y + h, x:x + w] = frame.to_ndarray(format="rgb24", width=w, height=h)
        return out

    return convert


class MuxInput:
    """streammux's sink pads: one bounded queue per source, shared by the reader threads and the mux.

    ``put`` blocks while a file source's queue is full (backpressure: files lose no frame) and, for a
    live source, drops the oldest queued frame instead (the source keeps only the newest), counting
    it in ``SourceStats.dropped``."""

    def __init__(self, stats: RunStats, live: dict[int, bool], capacity: int = 4) -> None:
        self._cond = threading.Condition()  # streammux waits here for frames
        # one condition per source, on the same lock: a blocked reader is woken only when *its*
        # queue has room (with 100+ sources, waking every reader per frame costs more than decoding)
        self._room = {sid: threading.Condition(self._cond._lock) for sid in live}
        self._queues = {sid: collections.deque() for sid in live}
        self._live = dict(live)
        self._capacity = max(1, capacity)
        self._stats = stats
        self._closed = False

    @property
    def source_ids(self) -> list[int]:
        return list(self._queues)

    def add_source(self, source_id: int, live: bool) -> None:
        """A source joining a running batch (the REST API's stream/add): a fresh, empty queue.
        Re-using the id of a source that has ended replaces its queue."""
        with self._cond:
            self._queues[source_id] = collections.deque()
            self._room[source_id] = threading.Condition(self._cond._lock)
            self._live[source_id] = bool(live)
            self._cond.notify_all()

    def put(self, source_id: int, image: np.ndarray, pts_ns: int, size: tuple[int, int]) -> bool:
        """Queue one frame; ``False`` when the run is stopping (the reader should return)."""
        q = self._queues[source_id]
        with self._cond:
            if self._live[source_id]:
                while len(q) >= self._capacity:
                    q.popleft()
                    self._stats.sources[source_id].dropped += 1
            else:
                while len(q) >= self._capacity and not self._closed:
                    self._room[source_id].wait(0.1)
            if self._closed:
                return False
            q.append((image, pts_ns, size))
            self._cond.notify_all()
            return True

    @property
    def capacity(self) -> int:
        """Frames a source's queue holds."""
        return self._capacity

    def room(self, source_id: int) -> int:
        """Frames ``source_id``'s queue takes before a file source's ``put`` would block."""
        return self._capacity - len(self._queues[source_id])

    def wake_with(self, source_id: int, room: threading.Condition) -> None:
        """Notify ``room`` (a condition on this input's lock, from :meth:`room_condition`) when
        ``source_id``'s queue gets room: a thread serving several sources waits on one condition
        for all of them (``runner.pipeline.nvdec.NvdecPump``)."""
        with self._cond:
            self._room[source_id] = room

    def room_condition(self) -> threading.Condition:
        return threading.Condition(self._cond._lock)

    def wait_for_room(self, room: threading.Condition, source_ids, need: int, timeout: float) -> None:
        """Wait on ``room`` until one of ``source_ids`` has room for ``need`` frames, the input
        closes, or ``timeout``."""
        limit = self._capacity - need
        with self._cond:
            if not self._closed and all(len(self._queues[s]) > limit for s in source_ids):
                room.wait(timeout)

    def finish(self, source_id: int) -> None:
        """End of stream for ``source_id`` (after its last frame, also after an error)."""
        with self._cond:
            self._queues[source_id].append(_EOS)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop accepting frames: blocked readers return, queued frames are discarded."""
        with self._cond:
            self._closed = True
            for q in self._queues.values():
                q.clear()
            self._cond.notify_all()
            for room in self._room.values():
                room.notify_all()

    def depth(self) -> int:
        return sum(len(q) for q in self._queues.values())


class StreamMux:
    """Forms batches from a :class:`MuxInput`; iterate :meth:`batches` on one thread."""

    name = "streammux"

    def __init__(self, spec: MuxSpec, inputs: MuxInput, stats: RunStats,
                 first_frame_num: dict[int, int] | None = None) -> None:
        self.spec, self.inputs, self.stats = spec, inputs, stats
        # a source resumed after a lost worker (runner.placement) goes on with its frame numbers
        self._frame_num = {sid: (first_frame_num or {}).get(sid, 0) for sid in inputs.source_ids}
        self._ended: set[int] = set()
        self._draining = threading.Event()
        # True while the run must outlive its sources (a REST server waiting for stream/add, or
        # [streammux] drop-pipeline-eos=1): all sources ended then means "wait", not "end"
        self.stay_open = False
        self.paused = threading.Event()  # set: no batch is formed (files wait, live sources drop)
        self._next = 0  # round-robin start
        self._stage = stats.add_stage(self.name, queue_depth=inputs.depth)

    def joined(self, source_id: int) -> None:
        """A source added at run time (after ``MuxInput.add_source``): frame numbers restart at 0."""
        with self.inputs._cond:
            self._ended.discard(source_id)
            self._frame_num[source_id] = 0
            self.inputs._cond.notify_all()

    def active(self, source_id: int) -> bool:
        """The source has a queue whose end of stream streammux has not yet taken."""
        return source_id in self.active_ids()

    def active_ids(self) -> set[int]:
        with self.inputs._cond:
            return set(self.inputs._queues) - self._ended

    def set_batched_push_timeout(self, usec: int) -> None:
        """The REST API's ``/mux/batched-push-timeout``: from the next batch on."""
        with self.inputs._cond:
            self.spec = dataclasses.replace(self.spec, batched_push_timeout=int(usec))
            self.inputs._cond.notify_all()

    def set_stay_open(self, value: bool) -> None:
        with self.inputs._cond:
            self.stay_open = bool(value)
            self.inputs._cond.notify_all()

    def drain(self) -> None:
        """Ctrl-C: emit the frames already queued, then end every source (no new decoding)."""
        self._draining.set()
        with self.inputs._cond:
            self.inputs._cond.notify_all()

    def batches(self) -> Iterator[Batch]:
        """Batches until every source has ended (or :meth:`drain` was called and queues are empty)."""
        while True:
            batch = self._collect()
            if batch is None:
                return
            yield batch

    def _collect(self) -> Batch | None:
        spec, inputs = self.spec, self.inputs
        cond, queues = inputs._cond, inputs._queues
        timeout = spec.batched_push_timeout / 1e6 if spec.batched_push_timeout >= 0 else None
        frames, eos, deadline = [], [], None
        taken = collections.Counter()
        with cond:
            while True:
                active = [sid for sid in queues if sid not in self._ended]
                quota = -(-spec.batch_size // max(1, len(active)))  # fair share per source
                order = active[self._next % len(active):] + active[:self._next % len(active)] if active else []
                for sid in order if not self.paused.is_set() else ():
                    q = queues[sid]
                    while q and len(frames) < spec.batch_size and (taken[sid] < quota or q[0] is _EOS):
                        item = q.popleft()
                        if item is _EOS:
                            self._ended.add(sid)
                            eos.append(sid)
                            break
                        frames.append((sid, self._frame_num[sid], item))
                        self._frame_num[sid] += 1
                        taken[sid] += 1
                    if q and q[0] is _EOS and len(frames) == spec.batch_size:
                        q.popleft()  # EOS right behind the last frame rides in the same batch
                        self._ended.add(sid)
                        eos.append(sid)
                for sid in taken:  # room freed: wake those sources' blocked readers
                    inputs._room[sid].notify()
                if self.paused.is_set() and not self._draining.is_set():
                    cond.wait(0.1)
                    continue
                if (frames or eos) and deadline is None:
                    deadline = time.monotonic() + timeout if timeout is not None else None
                all_ended = self._ended.issuperset(queues)
                draining = self._draining.is_set() and not any(
                    q and q[0] is not _EOS for q in queues.values())
                if all_ended and self.stay_open and not self._draining.is_set():
                    if frames or eos:
                        break  # hand over the last frames and EOS; then wait for a new source
                    cond.wait(0.1)
                    continue
                if len(frames) == spec.batch_size or all_ended or draining:
                    break
                if (frames or eos) and all(taken[s] >= quota for s in active if s not in self._ended):
                    break  # every source gave its share
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                cond.wait(0.1 if deadline is None else min(0.1, deadline - now))
            if draining and not all_ended:
                for sid in queues:
                    if sid not in self._ended:
                        self._ended.add(sid)
                        eos.append(sid)
        self._next += 1
        if not frames and not eos:
            return None
        return self._assemble(frames, tuple(eos))

    def _assemble(self, frames: list, eos: tuple[int, ...]) -> Batch:
        t0 = time.perf_counter()
        n = len(frames)
        # (source, frame number, (image, pts, size)) per frame → columns, each in one C-level pass
        sids, nums, items = zip(*frames) if n else ((), (), ())
        images, pts, sizes = zip(*items) if n else ((), (), ())
        same_size = n and all(img.shape == images[0].shape for img in images)
        if same_size and is_device_tensor(images[0]):  # NVDEC frames: one (B, H, W, 3) tensor on the GPU
            import torch

            pixels = torch.stack(images)
        elif same_size:
            pixels = np.stack(images) if n > 1 else images[0][None]
        elif n:  # sources of different sizes and no streammux size: a list, one array or tensor per frame
            pixels = list(images)
        else:
            h, w = (self.spec.height or 0), (self.spec.width or 0)
            pixels = np.zeros((0, h, w, 3), np.uint8)
        now_ns = time.time_ns()
        batch = Batch(
            frames=pixels,
            source_id=np.array(sids, np.int32).reshape(n),
            frame_num=np.array(nums, np.int64).reshape(n),
            pts=np.array(pts, np.int64).reshape(n),
            ntp_ts=np.full(n, now_ns, np.int64),
            source_size=np.array(sizes, np.int32).reshape(n, 2),
            eos=eos,
        )
        self._stage.batches += 1
        self._stage.frames += n
        self._stage.busy_s += time.perf_counter() - t0
        return batch
