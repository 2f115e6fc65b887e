"""The NVDEC reader is a SourceReader: the same thread life cycle, statistics, typed errors and EOS.

NVDEC itself needs a GPU (the lead's device runs cover it); what runs here is everything it shares
with the PyAV reader, which must not need PyNvVideoCodec or torch to be imported."""

import sys

from runner.pipeline.nvdec import NvdecReader, nvdec_usable
from runner.pipeline.source import RTSP, URI, SourceNotFound, SourceReader, SourceSpec
from runner.pipeline.stats import RunStats


class _Sink:
    def __init__(self):
        self.finished = []

    def put(self, source_id, image, pts_ns, size):
        raise AssertionError("no frame can come from a missing file")

    def finish(self, source_id):
        self.finished.append(source_id)


def test_missing_file_ends_the_source_failed_with_a_typed_error_through_source_readers_run(tmp_path):
    spec = SourceSpec(3, URI, f"file://{tmp_path}/absent.mp4")
    stats = RunStats()
    sink = _Sink()
    imported_before = "PyNvVideoCodec" in sys.modules  # on a GPU machine, by an earlier test's run
    reader = NvdecReader(spec, sink, stats.add_source(3, spec.name), size=(640, 272))
    assert isinstance(reader, SourceReader) and reader.name == "nvdec-3"
    reader.start()
    reader.join(10)
    assert not reader.is_alive()
    assert isinstance(reader.error, SourceNotFound) and "absent.mp4" in str(reader.error)
    assert stats.sources[3].state == "failed" and stats.sources[3].errors == [str(reader.error)]
    assert stats.sources[3].ended_at is not None
    assert sink.finished == [3]  # EOS reaches streammux even when the source fails
    assert imported_before or "PyNvVideoCodec" not in sys.modules  # imported lazily, only when decoding


def test_live_and_network_sources_keep_the_pyav_reader():
    assert not nvdec_usable(SourceSpec(0, RTSP, "rtsp://cam/stream"))
    assert not nvdec_usable(SourceSpec(0, URI, "https://host/clip.mp4"))
    assert not nvdec_usable(SourceSpec(0, URI, "file:///v/clip.mp4", live_source=True))


# ---------------------------------------------------------------------------------------------------
# Pump threads: many NVDEC sources on a few Python threads.
#
# PyNvVideoCodec needs a GPU; what the pumps add — scheduling sources in turn, streammux's room,
# EOS, stop, a failing source among good ones — is independent of the decoder. Here each reader's
# decoder is PyAV behind PyNvVideoCodec's ThreadedDecoder interface (get_batch_frames(n): up to n
# decoded RGB frames, [] at the end), on real encoded clips; the frames reach streammux as torch
# tensors through DLPack, as NVDEC's do.

import threading  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pipeline_helpers import make_clip  # noqa: E402
from runner.pipeline.mux import MuxInput, MuxSpec, StreamMux  # noqa: E402
from runner.pipeline.nvdec import NvdecPumps  # noqa: E402

torch = pytest.importorskip("torch")


class _PyavThreadedDecoder:
    """PyNvVideoCodec's ThreadedDecoder interface over PyAV (frames as (H, W, 3) uint8 arrays)."""

    def __init__(self, path, room):
        self._container = av.open(str(path))
        self._frames = self._container.decode(video=0)
        self._room = room
        self.requested = []  # (frames asked for, room in streammux's queue for them then)

    def get_batch_frames(self, n):
        self.requested.append((n, self._room()))
        out = []
        for frame in self._frames:
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == n:
                break
        return out


class _PyavReader(NvdecReader):
    decoders: list = []

    def _open_decoder(self):
        decoder = _PyavThreadedDecoder(self.spec.path, lambda: self.sink.room(self.spec.source_id))
        _PyavReader.decoders.append(decoder)
        return decoder, 25.0


def _decoded(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def pump_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("pump")
    return [make_clip(d / f"s{i}.mp4", frames=12 + 3 * i, size=(64 + 16 * (i % 3), 48)) for i in range(10)]


def _run(specs, per_thread, batch_size=4, on_batch=None):
    """Every batch's (source, frame number, pixels) through a real streammux, and the pump
    threads seen while it ran."""
    stats = RunStats()
    inputs = MuxInput(stats, {s.source_id: False for s in specs})
    mux = StreamMux(MuxSpec(batch_size=batch_size), inputs, stats)
    pumps = NvdecPumps(inputs, per_thread=per_thread)
    # decoders 3 frames ahead, streammux's queues 4 deep: a pump asks only when the queue has room
    readers = [_PyavReader(s, inputs, stats.add_source(s.source_id, s.name), pump=pumps, prefetch=3)
               for s in specs]
    rows, eos, threads = [], [], set()

    def consume():
        for batch in mux.batches():
            threads.update(t.name for t in threading.enumerate() if t.name.startswith("nvdec-"))
            frames = batch.frames if isinstance(batch.frames, list) else list(batch.frames)
            rows.extend((int(s), int(n), f.numpy()) for s, n, f in zip(batch.source_id, batch.frame_num, frames))
            eos.extend(batch.eos)
            if on_batch is not None:
                on_batch(readers, rows)

    consumer = threading.Thread(target=consume, daemon=True)
    for r in readers:
        r.start()
    consumer.start()
    consumer.join(60)
    starved = consumer.is_alive()  # a pump blocked on one source while streammux waited for another
    if starved:
        for r in readers:
            r.stop()
        inputs.close()
        mux.drain()
        consumer.join(10)
    for r in readers:
        r.join(10)
    assert not starved, "streammux starved: a pump thread blocked"
    return rows, eos, threads, readers, stats


def test_ten_sources_on_three_pump_threads_deliver_every_frame_once_in_order(pump_clips):
    specs = [SourceSpec(i, URI, str(p)) for i, p in enumerate(pump_clips)]
    _PyavReader.decoders = []
    rows, eos, threads, readers, stats = _run(specs, per_thread=4)
    assert threads == {"nvdec-pump-0", "nvdec-pump-1", "nvdec-pump-2"}  # not a thread per source
    assert sorted(eos) == list(range(10))
    for i, path in enumerate(pump_clips):
        truth = _decoded(path)
        mine = [(n, px) for s, n, px in rows if s == i]
        assert [n for n, _ in mine] == list(range(len(truth)))  # every frame once, in order
        assert all(np.array_equal(px, t) for (_, px), t in zip(mine, truth))
        assert stats.sources[i].state == "ended" and stats.sources[i].frames_decoded == len(truth)
    assert not any(r.is_alive() for r in readers)
    # a decoder is never asked for more frames than streammux's queue for that source can take (a
    # put that blocked would hold the pump's other sources), and the queues did fill up
    asked = [pair for d in _PyavReader.decoders for pair in d.requested]
    assert all(n == 3 and room >= 3 for n, room in asked)  # PyNvVideoCodec's look-ahead, always whole


def test_a_failing_and_a_stopped_source_end_alone_while_the_pump_serves_the_others(pump_clips, tmp_path):
    specs = [SourceSpec(0, URI, str(pump_clips[0])), SourceSpec(1, URI, str(tmp_path / "absent.mp4")),
             SourceSpec(2, URI, str(pump_clips[2]), file_loop=True), SourceSpec(3, URI, str(pump_clips[3]))]

    def stop_the_loop(readers, rows):
        if sum(1 for s, _, _ in rows if s == 2) >= 40:  # the looping file went round more than twice
            readers[2].stop()

    rows, eos, threads, readers, stats = _run(specs, per_thread=8, on_batch=stop_the_loop)
    assert threads == {"nvdec-pump-0"}
    assert sorted(eos) == [0, 1, 2, 3]
    assert isinstance(readers[1].error, SourceNotFound) and stats.sources[1].state == "failed"
    for i in (0, 3):
        assert [n for s, n, _ in rows if s == i] == list(range(len(_decoded(pump_clips[i]))))
    looped = [n for s, n, _ in rows if s == 2]
    assert looped == list(range(len(looped))) and len(looped) >= 40
    assert not any(r.is_alive() for r in readers)


def test_one_source_per_thread_is_the_old_layout(pump_clips):
    specs = [SourceSpec(i, URI, str(p)) for i, p in enumerate(pump_clips[:3])]
    rows, eos, threads, readers, _ = _run(specs, per_thread=1)
    assert threads == {"nvdec-pump-0", "nvdec-pump-1", "nvdec-pump-2"}
    assert sorted(eos) == [0, 1, 2] and len(rows) == sum(len(_decoded(p)) for p in pump_clips[:3])


def test_a_pump_sleeps_while_streammux_has_no_room_for_its_sources(pump_clips):
    """Streammux stops taking frames for a second: the pump waits on its condition instead of going
    round its sources (a spinning pump holds the interpreter lock the pipeline's stages need)."""
    import time

    specs = [SourceSpec(i, URI, str(p)) for i, p in enumerate(pump_clips[:4])]
    used = []

    def pause_once(readers, rows):
        if not used:
            time.sleep(0.2)  # every queue fills up (4 deep: one look-ahead of 3 fits, a second does not)
            start = time.process_time()
            time.sleep(1.0)
            used.append(time.process_time() - start)

    rows, eos, *_ = _run(specs, per_thread=4, on_batch=pause_once)
    assert sorted(eos) == [0, 1, 2, 3]
    assert used[0] < 0.25, f"the process used {used[0]:.2f} s of CPU while streammux took nothing for 1 s"


class _StreamOnlyProducer:
    """A CUDA DLPack producer with PyNvVideoCodec's binding signature: ``__dlpack__(stream)`` and no
    other keyword (the pixels are host memory here, reported as CUDA: no GPU on this machine)."""

    def __init__(self, array):
        self.array, self.calls = array, []

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None):
        self.calls.append(stream)
        return self.array.__dlpack__()


def test_a_cuda_frame_is_exported_with_the_one_keyword_pynvvideocodec_takes_and_no_refused_call():
    from runner.pipeline.nvdec import frame_tensor

    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    producer = _StreamOnlyProducer(pixels)
    image = frame_tensor(torch, producer, 1)
    assert producer.calls == [1]  # one call, the consumer's stream: no refused newer-keyword tries
    assert image.dtype == torch.uint8 and tuple(image.shape) == (4, 6, 3)
    assert np.array_equal(image.numpy(), pixels) and image.data_ptr() == pixels.ctypes.data  # no copy
    host = frame_tensor(torch, pixels, None)  # host arrays: torch.from_dlpack as before
    assert np.array_equal(host.numpy(), pixels)
