"""The TensorRT backend cannot run here (no GPU, no TensorRT libraries), so every TensorRT and CUDA
name it uses is checked against the real Python modules: ``tensorrt-cu13-bindings==11.4.0.106``,
imported for real with stand-in ``libnvinfer``/``libnvonnxparser`` libraries that only satisfy the
dynamic linker (module initialisation registers every class and enum without calling into them),
and ``cuda-bindings``, which imports without a GPU."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.engine import EngineSpec, tensorrt
from runner.engine.build import plan_engine

# the C symbols tensorrt.so imports from the TensorRT libraries (nm -D --undefined-only)
STUB_C = """
void* createInferBuilder_INTERNAL(void* a, int b) { return 0; }
void* createInferRefitter_INTERNAL(void* a, void* b, int c) { return 0; }
void* createInferRuntime_INTERNAL(void* a, int b) { return 0; }
void* getBuilderPluginRegistry(int a) { return 0; }
void* getPluginRegistry(void) { return 0; }
int initLibNvInferPlugins(void* a, const char* b) { return 0; }
void* createNvOnnxParserRefitter_INTERNAL(void* a, void* b, int c) { return 0; }
void* createNvOnnxParser_INTERNAL(void* a, void* b, int c) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
"""

PROBE = """
import json, sys
import tensorrt_bindings as trt

def resolve(name):
    obj = trt
    for part in name.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True

names = json.loads(sys.argv[1])
print(json.dumps({"version": trt.__version__,
                  "present": {n: resolve(n) for n in names}}))
"""


@pytest.fixture(scope="module")
def trt11(tmp_path_factory):
    """{name: present?} for every listed name, from the real tensorrt 11.4 bindings module."""
    import importlib.util

    spec = importlib.util.find_spec("tensorrt_bindings")
    assert spec is not None, "tensorrt-cu13-bindings==11.4.0.106 is a test dependency: pip install -e '.[test]'"
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc, "a C compiler is needed to build the stand-in TensorRT libraries (.ci/run installs gcc)"
    libs = tmp_path_factory.mktemp("trt_libs")
    (libs / "stub.c").write_text(STUB_C)
    for lib in ("nvinfer", "nvonnxparser", "nvinfer_plugin"):
        subprocess.run([gcc, "-shared", "-fPIC", f"-Wl,-soname,lib{lib}.so.11", "-o",
                        str(libs / f"lib{lib}.so.11"), str(libs / "stub.c")], check=True)
    names = list(tensorrt.TRT_NAMES + tensorrt.TRT10_NAMES)
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(names)], capture_output=True,
                         text=True, env={"LD_LIBRARY_PATH": str(libs), "PATH": "/usr/bin:/bin"},
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_every_tensorrt_name_the_backend_uses_exists_in_tensorrt_11(trt11):
    assert trt11["version"] == "11.4.0.106"
    missing = [n for n in tensorrt.TRT_NAMES if not trt11["present"][n]]
    assert missing == []


def test_tensorrt_10_only_names_are_really_gone_in_11_so_the_version_gate_matters(trt11):
    # implicit FP16/INT8 flags and calibrators were removed: TensorRT 11 builds strongly typed
    assert [n for n in tensorrt.TRT10_NAMES if trt11["present"][n]] == []


def test_the_name_lists_cover_every_trt_attribute_in_the_source():
    from runner.engine import tensorrt_run

    source = Path(tensorrt.__file__).read_text() + Path(tensorrt_run.__file__).read_text()
    used = {re.sub(r"\.__init__$", "", u)
            for u in re.findall(r"\btrt\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)", source)}
    listed = set(tensorrt.TRT_NAMES + tensorrt.TRT10_NAMES)
    assert len(used) > 10
    assert sorted(u for u in used if u not in listed) == []
    # members called on TensorRT objects, by the variable names the backend gives them
    classes = {"builder": "Builder", "config": "IBuilderConfig", "network": "INetworkDefinition",
               "parser": "OnnxParser", "profile": "IOptimizationProfile", "tensor": "ITensor",
               "self.engine": "ICudaEngine", "self.context": "IExecutionContext",
               "self.runtime": "Runtime", "e": "ParserError"}
    calls = set()
    for var, cls in classes.items():
        for member in re.findall(rf"(?<![\w.]){re.escape(var)}\.([A-Za-z_]\w*)", source):
            calls.add(f"{cls}.{member}")
    assert len(calls) > 25
    assert sorted(c for c in calls if c not in listed) == []
    cudart_used = set(re.findall(r"\bcudart\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)", source))
    assert cudart_used <= set(tensorrt.CUDART_NAMES)


def test_every_cuda_runtime_name_exists_in_cuda_python():
    runtime = pytest.importorskip("cuda.bindings.runtime", reason="cuda-bindings is a test dependency")
    missing = []
    for name in tensorrt.CUDART_NAMES:
        obj = runtime
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            missing.append(name)
    assert missing == []


def test_without_tensorrt_libraries_auto_picks_onnxruntime(tmp_path):
    from engine_support import conv_net

    if tensorrt.available():
        pytest.skip("TensorRT is installed on this machine")
    # the bindings wheel is installed (the tests above use it) but does not load without libnvinfer
    import importlib.util
    assert importlib.util.find_spec("tensorrt_bindings") is not None
    model = conv_net(tmp_path / "m.onnx")
    assert plan_engine(EngineSpec(onnx_file=model)).backend != "tensorrt"
    with pytest.raises(Exception) as err:
        plan_engine(EngineSpec(onnx_file=model, backend="tensorrt"))
    assert "TensorRT is not installed here" in str(err.value)
