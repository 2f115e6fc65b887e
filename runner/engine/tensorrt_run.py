"""The TensorRT runtime half: a deserialised engine executing on a CUDA stream (cuda-python).

Loaded only through :func:`runner.engine.tensorrt.load`; every TensorRT/CUDA name used here is on the
lists in ``runner/engine/tensorrt.py`` (checked by tests/test_engine_tensorrt.py). Not run yet: see
docs/engines.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runner.engine.base import Engine, EngineError, TensorSpec
from runner.engine.tensorrt import NAME, _check, _cudart, _logger, _trt, version


class TrtEngine(Engine):
    """A deserialised TensorRT engine executing on its own CUDA stream.

    Device buffers are allocated once for the profile's maximum shapes; :meth:`infer` copies host
    arrays in and out; :meth:`infer_device` takes and returns device pointers (ints) without copies.
    """

    backend = NAME

    def __init__(self, path: Path, gpu_id: int = 0, precision: str = "fp32") -> None:
        trt, cudart = _trt(), _cudart()
        self.path, self.precision, self.device = Path(path), precision, f"cuda:{gpu_id}"
        _check(cudart.cudaSetDevice(gpu_id), "cudaSetDevice")
        self.runtime = trt.Runtime(_logger())
        self.runtime.engine_host_code_allowed = True  # version-compatible plans embed a lean runtime
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise EngineError(f"{self.path}: TensorRT {version()} cannot load this engine — it was built "
                              "by another TensorRT version or for another GPU; delete it (or fix "
                              "model-engine-file) and dsrun rebuilds it")
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self._dtype = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        ins = [n for n in names if is_input[n]]
        for n in ins:  # the profile's largest shapes size the buffers
            self.context.set_input_shape(n, tuple(self.engine.get_tensor_profile_shape(n, 0)[2]))
        self.max_batch = int(self.engine.get_tensor_profile_shape(ins[0], 0)[2][0])
        self._buffers = {}
        for n in names:
            shape = tuple(self.context.get_tensor_shape(n))
            nbytes = int(np.prod([max(d, 1) for d in shape])) * self._dtype[n].itemsize
            self._buffers[n] = _check(cudart.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
            self.context.set_tensor_address(n, int(self._buffers[n]))
        self.inputs = tuple(TensorSpec(n, tuple(self.engine.get_tensor_shape(n))[1:], self._dtype[n])
                            for n in ins)
        self.outputs = tuple(TensorSpec(n, tuple(self.engine.get_tensor_shape(n))[1:], self._dtype[n])
                             for n in names if not is_input[n])

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = _cudart()
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, arr in feeds.items():
            self.context.set_input_shape(name, arr.shape)
            _check(cudart.cudaMemcpyAsync(self._buffers[name], arr.ctypes.data, arr.nbytes, h2d,
                                          self.stream), "cudaMemcpyAsync")
        if not self.context.execute_async_v3(self.stream):
            raise EngineError(f"{self.path}: TensorRT execution failed (see the messages above)")
        out = {}
        for spec in self.outputs:
            host = np.empty(tuple(self.context.get_tensor_shape(spec.name)), spec.dtype)
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, self._buffers[spec.name], host.nbytes, d2h,
                                          self.stream), "cudaMemcpyAsync")
            out[spec.name] = host
        _check(cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return out

    def infer_device(self, feeds: dict[str, tuple[int, tuple[int, ...]]]) -> dict[str, tuple[int, tuple]]:
        """``{name: (device pointer, shape)}`` in and out; runs on this engine's stream (synchronised)."""
        cudart = _cudart()
        for name, (ptr, shape) in feeds.items():
            self.context.set_input_shape(name, shape)
            self.context.set_tensor_address(name, int(ptr))
        self.context.execute_async_v3(self.stream)
        _check(cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        for name in feeds:  # back to our own buffers for infer()
            self.context.set_tensor_address(name, int(self._buffers[name]))
        return {s.name: (int(self._buffers[s.name]), tuple(self.context.get_tensor_shape(s.name)))
                for s in self.outputs}

    def close(self) -> None:
        cudart = _cudart()
        for ptr in getattr(self, "_buffers", {}).values():
            cudart.cudaFree(ptr)
        self._buffers = {}
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)
            self.stream = None
