"""``[sinkN] type=1`` fakesink (and display sinks 2/5, which have no display here): frames are
discarded; with ``sync=1`` batches are released at their PTS, as a rendering sink would.

>>> from types import SimpleNamespace
>>> sink = make_fake_sink(SimpleNamespace(type=1, sync=0, index=0), None, None)
>>> sink.name
'sink0'
"""

from __future__ import annotations

import logging

from runner.pipeline.batch import Batch
from runner.pipeline.sinks import Pacer, register_sink

log = logging.getLogger("dsrun")


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
    if int(cfg.type) in (2, 5):
        log.warning("[sink%s] type=%d is an on-screen display; dsrun has none — frames are discarded "
                    "(use type=3 to write a file)", index, int(cfg.type))
    return FakeSink(f"sink{index}", bool(getattr(cfg, "sync", 0)))


for _type in (1, 2, 5):
    register_sink(_type, make_fake_sink)
