"""The ceilings a pipeline run is compared with: decoders alone, and the primary engine alone.

* :func:`decode_ceiling`: N decoders of the config's first source (or the clip) with nothing after
  them — NVDEC with frames kept on the GPU where the pipeline would use it, FFmpeg (PyAV) otherwise;
* :func:`engine_alone`: the primary GIE's engine on random input at the pipeline's batch size.

A pipeline within a few % of the smaller of the two costs almost nothing on top of its parts.
"""

from __future__ import annotations

import threading
import time

import numpy as np


class _Counter:
    """A streammux stand-in that counts frames (the decode ceiling has nothing after the decoder)."""

    def __init__(self) -> None:
        self.frames = 0
        self.lock = threading.Lock()

    def put(self, source_id, image, pts_ns, size) -> bool:
        with self.lock:
            self.frames += 1
        return True

    def finish(self, source_id) -> None:
        pass


def decode_ceiling(uri: str, n: int, *, gpu: bool | None = None) -> dict:
    """Frames per second of ``n`` readers of ``uri`` decoding the whole file at once."""
    from runner.pipeline.nvdec import NvdecPumps, NvdecReader, nvdec_available
    from runner.pipeline.source import URI, SourceReader, SourceSpec
    from runner.pipeline.stats import SourceStats

    gpu = nvdec_available() if gpu is None else gpu
    sink, readers = _Counter(), []
    pumps = NvdecPumps(sink)  # the threads the pipeline's NVDEC readers run on
    if gpu:
        import torch

        torch.zeros(1, device="cuda")  # CUDA initialised before the clock starts
    for i in range(n):
        spec = SourceSpec(source_id=i, type=URI, uri=uri)
        stats = SourceStats(i, spec.name)
        readers.append(NvdecReader(spec, sink, stats, pump=pumps) if gpu else
                       SourceReader(spec, sink, stats, lambda f: f.to_ndarray(format="rgb24")))
    t0 = time.perf_counter()
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    dt = time.perf_counter() - t0
    errors = sorted({str(r.error) for r in readers if r.error})
    return {"decoder": "nvdec" if gpu else "ffmpeg", "sources": n, "frames": sink.frames,
            "seconds": round(dt, 3), "fps": round(sink.frames / dt, 1), "errors": errors}


def engine_alone(gie, batch: int, *, seconds: float = 5.0, engine_dir=None, backend: str | None = None) -> dict:
    """Images per second of one GIE's engine (as ``dsrun`` would load it; ``backend`` to pick another
    one) at ``batch``."""
    from runner.engine import EngineSpec, load_engine

    engine = load_engine(EngineSpec.from_nvinfer(gie.nvinfer, backend=backend), engine_dir)
    shape = (batch, *engine.inputs[0].shape)
    name = engine.inputs[0].name
    device = str(getattr(engine, "device", "cpu"))
    if device.startswith("cuda") and hasattr(engine, "infer_device"):
        import torch

        x = torch.rand(shape, device=device)
        run = lambda: engine.infer_device({name: x})  # noqa: E731
        sync = torch.cuda.synchronize
    else:
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        run = lambda: engine.infer({name: x})  # noqa: E731
        sync = lambda: None  # noqa: E731
    for _ in range(3):
        run()
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        run()
        n += 1
    sync()
    dt = time.perf_counter() - t0
    return {"backend": engine.backend, "precision": engine.precision, "device": device, "batch": batch,
            "img_per_s": round(n * batch / dt, 1), "ms_per_batch": round(1000 * dt / n, 3)}


def ceilings(app, n: int, *, clip=None, batch: int | None = None, engine_dir=None) -> dict:
    """Decode ceiling at ``n`` sources and the primary engine alone at the bench's batch for ``n``."""
    from runner.bench.streams import replicate

    bench_app = replicate(app, n, clip=clip, batch=batch)
    out = {"decode": decode_ceiling(str(bench_app.sources[0].uri), n)}
    if bench_app.primary_gie is not None:
        out["primary_engine"] = engine_alone(bench_app.primary_gie, int(bench_app.streammux.batch_size),
                                             engine_dir=engine_dir)
    return out
