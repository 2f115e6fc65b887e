"""GPU decode (NVDEC) through PyNvVideoCodec: decoded frames stay in GPU memory as torch tensors.

:class:`NvdecReader` is a drop-in for :class:`~runner.pipeline.source.SourceReader` on local H.264 /
H.265 files: the same statistics, EOS and typed errors, but the decoder is the GPU's video engine and
each frame is handed to streammux as an (H, W, 3) uint8 RGB CUDA tensor (DLPack, no host copy), scaled
to the streammux size on the GPU when it differs. Live and network sources keep the PyAV reader.
:func:`nvdec_usable` decides per source; ``DSRUN_DEVICE=cpu`` turns the GPU path off.

Threads. Each PyNvVideoCodec decoder decodes on a thread of its own (C++, no interpreter lock); what
is left in Python per frame is small (a DLPack view, one copy, a queue append). A Python thread per
source for that small work made 64 sources 64 more threads contending for the interpreter lock with
the GIE stages (docs/bench/bench_h200_pyspy_i1_n64.txt). So the readers of a graph share
:class:`NvdecPump` threads, each serving up to ``DSRUN_NVDEC_SOURCES_PER_THREAD`` sources (default
:data:`SOURCES_PER_THREAD`; 1 gives every source a thread of its own): a pump goes round its
sources, takes from each decoder as many frames as streammux's queue for that source has room for,
and sleeps on one condition, woken by streammux, only when none of its sources has room — so a file
source still never loses a frame, and a source whose queue is full does not hold the others back. (A
decoder that has not yet decoded the frames asked for does hold its pump's other sources until it
has: PyNvVideoCodec's call waits; its look-ahead makes that rare while decoding outpaces the pipeline.)
"""

from __future__ import annotations

import os
import threading
from typing import Iterator

from runner.pipeline.source import CAMERA_V4L2, SourceCorruptData, SourceNotFound, SourceReader, SourceSpec
from runner.pipeline.stats import SourceStats

_CODECS = (".mp4", ".mkv", ".mov", ".h264", ".264", ".h265", ".265", ".hevc")
SOURCES_PER_THREAD = 8


def nvdec_available() -> bool:
    """PyNvVideoCodec and a CUDA build of torch with a GPU are present, and not turned off."""
    if os.environ.get("DSRUN_DEVICE", "auto").strip().lower() == "cpu":
        return False
    try:
        import PyNvVideoCodec  # noqa: F401
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def nvdec_usable(spec: SourceSpec) -> bool:
    """This source can decode on the GPU: a local video file (not a camera, not a network stream)."""
    return (not spec.network and spec.type != CAMERA_V4L2 and not spec.live
            and spec.path.suffix.lower() in _CODECS and nvdec_available())


def sources_per_thread() -> int:
    """``DSRUN_NVDEC_SOURCES_PER_THREAD`` (default :data:`SOURCES_PER_THREAD`; at least 1)."""
    raw = os.environ.get("DSRUN_NVDEC_SOURCES_PER_THREAD", "").strip()
    try:
        return max(1, int(raw)) if raw else SOURCES_PER_THREAD
    except ValueError:
        return SOURCES_PER_THREAD


class NvdecReader(SourceReader):
    """Decodes one file on NVDEC and feeds streammux CUDA tensors.

    A :class:`SourceReader` (same statistics, EOS and typed errors) whose decode loop is the GPU's.
    It always runs on a pump thread: ``start`` hands the source to ``pump`` (the graph's shared
    :class:`NvdecPumps`; without one, a pump of its own), not to a thread of its own; ``join``,
    ``is_alive`` and ``stop`` behave as a thread's."""

    def __init__(self, spec: SourceSpec, sink, stats: SourceStats, size: tuple[int, int] = (0, 0),
                 stop: threading.Event | None = None, gpu_id: int = 0, prefetch: int = 2,
                 pump: "NvdecPumps | None" = None) -> None:
        super().__init__(spec, sink, stats, to_rgb=None, stop=stop)
        self.name = f"nvdec-{spec.source_id}"
        self.size = size  # streammux (width, height); (0, 0) keeps the decoded size
        # frames the decoder holds ahead (1080p RGB: 6 MiB each, per source): 2, not 8, keeps 128
        # sources' decoders 8.6 GiB lighter and decoding 11 % faster on the H200
        # (docs/bench/bench_h200_decode_prefetch.json: 3,232 fps / 20.7 GiB at 8, 3,580 fps / 12.1 GiB at 2)
        self.gpu_id, self.prefetch = gpu_id, prefetch
        self.pump = pump if pump is not None else NvdecPumps(sink, per_thread=1)
        self._done = threading.Event()  # the source is over (``join`` waits for it)
        self._started = False

    # -- a thread's interface; a pump runs the source ---------------------------------------------------

    def start(self) -> None:
        self._started = True
        self.pump.attach(self)

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        return self._started and not self._done.is_set()

    # -- decoding -----------------------------------------------------------------------------------

    def steps(self) -> Iterator[bool]:
        """The source's whole life as steps: each ``next`` takes at most one handful of frames from
        the decoder and yields whether it moved (``False``: streammux has no room for this source
        yet). Ends with the source's state, error and EOS set, as :meth:`run` does."""
        try:
            yield from self._play_steps()
            self.stats.state = "ended"
        except Exception as exc:  # a source never takes the run down: it ends with its error
            self._failed(exc)
        finally:
            self._ended()
            self._done.set()

    def _play_steps(self) -> Iterator[bool]:
        spec = self.spec
        if not spec.path.is_file():
            raise SourceNotFound(spec.source_id, spec.uri, "no such file", "check the path in 'uri'")
        while not self.stop_event.is_set():
            before = self._decoded
            finished = yield from self._decode_steps()
            if not finished:
                return  # the run is stopping
            if self._decoded == before:
                raise SourceCorruptData(spec.source_id, spec.uri, "NVDEC decoded no frame",
                                        "check the file with ffprobe; set DSRUN_DEVICE=cpu to decode with FFmpeg")
            if not spec.file_loop:
                return

    def _open_decoder(self):
        """``(decoder, frames per second)``: a PyNvVideoCodec ThreadedDecoder on the file, RGB out."""
        import PyNvVideoCodec as nvc

        decoder = nvc.ThreadedDecoder(str(self.spec.path), buffer_size=self.prefetch, gpu_id=self.gpu_id,
                                      use_device_memory=True, output_color_type=nvc.OutputColorType.RGB)
        meta = decoder.get_stream_metadata()
        return decoder, float(getattr(meta, "average_fps", 0) or getattr(meta, "fps", 0) or 30.0)

    def room_needed(self) -> int:
        """Frames streammux's queue must have room for before the decoder is asked for more."""
        capacity = getattr(self.sink, "capacity", None)
        return self.prefetch if capacity is None else min(self.prefetch, capacity)

    def _decode_steps(self) -> Iterator[bool]:
        """One pass over the file; returns ``True`` at its end, ``False`` when the run is stopping."""
        import torch
        import torch.nn.functional as F

        spec = self.spec
        room = getattr(self.sink, "room", None)
        decoder, fps = self._open_decoder()
        step_ns = int(1e9 / fps)
        width, height = self.size
        first = self._decoded
        # the decoder is asked for its whole look-ahead each time (as a thread per source always did),
        # once streammux's queue has room for all of it: a put that blocked would hold a pump's other
        # sources too (a look-ahead deeper than the queue waits for an empty queue, then may block)
        need = self.room_needed()
        stream = _consumer_stream(torch)
        while not self.stop_event.is_set():
            if room is not None and room(spec.source_id) < need:
                yield False
                continue
            frames = decoder.get_batch_frames(self.prefetch)
            if not frames:
                break
            for frame in frames:
                if self._skip():
                    self._pts_offset += step_ns  # the timeline goes on where the lost worker left it
                    continue
                if not self._count_decoded():
                    continue
                image = frame_tensor(torch, frame, stream)  # (H, W, 3) uint8 on the GPU, decoder-owned
                h, w = int(image.shape[0]), int(image.shape[1])
                if width and height and (w, h) != (width, height):
                    image = F.interpolate(image.permute(2, 0, 1)[None].float(), size=(height, width),
                                          mode="bilinear", align_corners=False)
                    image = image[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
                else:
                    image = image.clone()  # the decoder reuses its surfaces
                pts = self._pts_offset + (self._decoded - 1 - first) * step_ns
                if not self.sink.put(spec.source_id, image, pts, (w, h)):
                    return False
            yield True
        self._pts_offset += (self._decoded - first) * step_ns
        return not self.stop_event.is_set()


_DLPACK_CUDA = 2  # DLPack's kDLCUDA


def _consumer_stream(torch) -> int | None:
    """The calling thread's current CUDA stream as DLPack's ``stream`` argument (the legacy default
    stream is 1, as ``torch.from_dlpack`` passes it); ``None`` without a GPU."""
    if not torch.cuda.is_available():
        return None
    handle = torch.cuda.current_stream().cuda_stream
    return 1 if handle == 0 else handle


def frame_tensor(torch, frame, stream: int | None):
    """A decoded frame as a torch tensor, no copy, through DLPack.

    For a CUDA frame the producer's ``__dlpack__`` is called with ``stream`` alone (the stream the
    frame will be read on: the producer orders its decode before it) and the capsule handed to torch.
    ``torch.from_dlpack(frame)`` would give the same tensor, but it offers newer keywords first
    (``max_version``, ``dl_device``, ``copy``); PyNvVideoCodec's binding accepts only ``stream``, so
    each frame cost three refused calls whose TypeError pybind11 formats with the frame's repr —
    two thirds of the pumps' interpreter-lock time in a 64-source run on the H200 (py-spy ``--gil``),
    and the pumps held the lock 24 % of the time. Other producers (host arrays) go through
    ``torch.from_dlpack``."""
    if stream is not None and frame.__dlpack_device__()[0] == _DLPACK_CUDA:
        return torch.utils.dlpack.from_dlpack(frame.__dlpack__(stream=stream))
    return torch.from_dlpack(frame)


class NvdecPump(threading.Thread):
    """One thread running the steps of several :class:`NvdecReader` sources in turn.

    A round gives every source one step; when no source moved (streammux has no room for any of
    them) the pump waits on one condition that streammux notifies when it takes a frame of one of
    them. A source's end (its last step) ends nothing else; the pump ends when it has no source
    left, and :class:`NvdecPumps` starts a new one for sources that join later."""

    def __init__(self, sink, gpu_id: int, capacity: int, index: int) -> None:
        super().__init__(name=f"nvdec-pump-{index}", daemon=True)
        self.sink, self.gpu_id, self.capacity = sink, gpu_id, capacity
        self._lock = threading.Lock()
        self._joining: list[NvdecReader] = []
        self._count = 0  # sources attached, ended or not (a pump is filled once)
        self._over = False  # no source left: attach no more
        self._room = sink.room_condition() if hasattr(sink, "room_condition") else None

    def attach(self, reader: NvdecReader) -> bool:
        """Take ``reader`` (``False`` when full or over: the caller needs another pump)."""
        with self._lock:
            if self._over or self._count >= self.capacity:
                return False
            self._count += 1
            self._joining.append(reader)
        if self._room is not None:
            self.sink.wake_with(reader.spec.source_id, self._room)
        return True

    def run(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_device(self.gpu_id)
        active: dict[NvdecReader, Iterator[bool]] = {}
        while True:
            with self._lock:
                for reader in self._joining:
                    active[reader] = reader.steps()
                self._joining.clear()
                if not active:
                    self._over = True
                    return
            moved = False
            for reader, steps in list(active.items()):
                try:
                    moved |= next(steps)
                except StopIteration:
                    del active[reader]
                    moved = True
            if not moved and active and self._room is not None:  # no source has room: sleep, never spin
                self.sink.wait_for_room(self._room, [r.spec.source_id for r in active],
                                        min(r.room_needed() for r in active), 0.1)


class NvdecPumps:
    """The pump threads of one graph: a reader's ``start`` lands on the newest pump with room."""

    def __init__(self, sink, per_thread: int | None = None) -> None:
        self.sink = sink
        self.per_thread = per_thread or sources_per_thread()
        self._lock = threading.Lock()
        self._pumps: list[NvdecPump] = []

    def attach(self, reader: NvdecReader) -> None:
        with self._lock:
            pump = next((p for p in reversed(self._pumps) if p.gpu_id == reader.gpu_id), None)
            if pump is None or not pump.attach(reader):
                pump = NvdecPump(self.sink, reader.gpu_id, self.per_thread, len(self._pumps))
                pump.attach(reader)
                self._pumps.append(pump)
                pump.start()

