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
    reader = NvdecReader(spec, sink, stats.add_source(3, spec.name), size=(640, 272))
    assert isinstance(reader, SourceReader) and reader.name == "nvdec-3"
    reader.start()
    reader.join(10)
    assert not reader.is_alive()
    assert isinstance(reader.error, SourceNotFound) and "absent.mp4" in str(reader.error)
    assert stats.sources[3].state == "failed" and stats.sources[3].errors == [str(reader.error)]
    assert stats.sources[3].ended_at is not None
    assert sink.finished == [3]  # EOS reaches streammux even when the source fails
    assert "PyNvVideoCodec" not in sys.modules  # imported lazily, only when decoding


def test_live_and_network_sources_keep_the_pyav_reader():
    assert not nvdec_usable(SourceSpec(0, RTSP, "rtsp://cam/stream"))
    assert not nvdec_usable(SourceSpec(0, URI, "https://host/clip.mp4"))
    assert not nvdec_usable(SourceSpec(0, URI, "file:///v/clip.mp4", live_source=True))
