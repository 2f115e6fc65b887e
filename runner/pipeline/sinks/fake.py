"""``[sinkN] type=1`` fakesink (and display sinks 2/5, which have no display here): frames are
discarded; with ``sync=1`` batches are released at their PTS, as a rendering sink would.

>>> from types import SimpleNamespace
>>> sink = make_fake_sink(SimpleNamespace(type=1, sync=0, index=0), None, None)
>>> sink.name
'sink0'
"""

from __future__ import annotations

from runner.pipeline.batch import Batch
from runner.pipeline.sinks import Pacer, register_sink

#: display sink types (NvDsSinkType): there is no display here, so their frames are discarded —
#: said by runner/preflight.py in ``dsrun check`` and when the run starts
DISPLAYS = {2: "an EGL window", 5: "a DRM overlay"}


class FakeSink:
    def __init__(self, name: str, sync: bool) -> None:
        self.name = name
        self.pacer = Pacer() if sync else None

    def process(self, batch: Batch) -> Batch:
        if self.pacer is not None and len(batch):
            self.pacer.wait(int(batch.pts.min()))
        return batch

    def close(self) -> None:
        pass


def make_fake_sink(cfg, app, options) -> FakeSink:
    index = getattr(cfg, "index", 0)
    return FakeSink(f"sink{index}", bool(getattr(cfg, "sync", 0)))


for _type in (1, *DISPLAYS):
    register_sink(_type, make_fake_sink)
