"""GPU utilisation and memory through NVML, when there is a GPU and nvidia-ml-py is installed.

Without either, ``GpuMonitor().available`` is False and ``read()`` returns ``()``: the dashboard and
the metrics simply leave the GPU out (no error, no warning — CPU-only runs are normal).

>>> monitor = GpuMonitor()
>>> monitor.read() if not monitor.available else "has a GPU"
()
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuReading:
    index: int
    name: str
    utilization_pct: float  # busy time of the last sample period, 0..100
    memory_used_gb: float  # GiB
    memory_total_gb: float
    decoder_pct: float | None = None  # NVDEC busy time of the last sample period, None if unknown


class GpuMonitor:
    """Opens NVML once; ``read()`` is cheap (a few NVML calls per device)."""

    def __init__(self) -> None:
        self._nvml = None
        self._handles: list = []
        try:
            import pynvml  # nvidia-ml-py (optional dependency: pip install "dsrun[gpu]")

            pynvml.nvmlInit()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i)
                             for i in range(pynvml.nvmlDeviceGetCount())]
            self._names = [_text(pynvml.nvmlDeviceGetName(h)) for h in self._handles]
            self._nvml = pynvml
        except Exception:  # no module, no driver, no device: no GPU panel
            self._handles = []

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def read(self) -> tuple[GpuReading, ...]:
        if not self._handles:
            return ()
        nvml, out = self._nvml, []
        try:
            for i, h in enumerate(self._handles):
                util = nvml.nvmlDeviceGetUtilizationRates(h)
                mem = nvml.nvmlDeviceGetMemoryInfo(h)
                out.append(GpuReading(i, self._names[i], float(util.gpu), mem.used / 2**30, mem.total / 2**30,
                                      _decoder_pct(nvml, h)))
        except Exception:  # device lost mid-run: stop asking
            self._handles = []
            return ()
        return tuple(out)

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml, self._handles = None, []


def _decoder_pct(nvml, handle) -> float | None:
    """How busy the video decoders (NVDEC) were, 0..100; None where the device does not say."""
    try:
        return float(nvml.nvmlDeviceGetDecoderUtilization(handle)[0])
    except Exception:
        return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
