"""Model file → runnable engine (ONNX Runtime here, TensorRT where installed), built once, cached.

The pipeline's inference stage needs three names::

    from runner.engine import EngineSpec, EngineHandle, load_engine
    spec = EngineSpec.from_nvinfer(gie.nvinfer)        # or EngineSpec(onnx_file=..., batch_size=4)
    handle = EngineHandle(spec, name="primary-gie", on_state=stats.set_engine)   # hot swap
    outputs = handle.current.infer({"input_1": batch})  # between batches: handle.maybe_swap()
"""

from runner.engine.base import Engine, EngineError, TensorSpec
from runner.engine.build import load_engine
from runner.engine.hotswap import EngineHandle
from runner.engine.spec import EngineSpec

__all__ = ["Engine", "EngineError", "EngineHandle", "EngineSpec", "TensorSpec", "load_engine"]
