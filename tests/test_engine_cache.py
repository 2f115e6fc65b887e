"""Engines are built once, reused, rebuilt only for a real reason (and the reason is named)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from engine_support import conv_net, video_frames, write_images
from runner.engine import EngineError, EngineSpec, load_engine
from runner.engine.build import plan_engine
from runner.engine.cache import KEY_FIELDS, MANIFEST, EngineCache
from runner.engine.progress import PlainProgress

REPO = Path(__file__).resolve().parents[1]


class Lines(PlainProgress):
    """Plain progress that keeps its lines (to assert on the messages a user sees)."""

    def __init__(self):
        import io
        super().__init__(io.StringIO())

    @property
    def text(self):
        return self.stream.getvalue()


@pytest.fixture
def model(tmp_path):
    return conv_net(tmp_path / "det.onnx")


def test_second_load_reuses_the_cached_engine_and_builds_nothing(model, tmp_path):
    spec = EngineSpec(onnx_file=model, batch_size=4, infer_dims=(3, 64, 64))
    first = load_engine(spec, tmp_path / "engines", Lines())
    assert first.origin == "built"
    entry_dir = first.path.parent
    assert entry_dir.parent == tmp_path / "engines" / "det"
    manifest = json.loads((entry_dir / MANIFEST).read_text())
    assert set(KEY_FIELDS) <= set(manifest) and manifest["batch"] == 4 and manifest["device"] == "cpu"
    built_at = first.path.stat().st_mtime_ns

    progress = Lines()
    second = load_engine(spec, tmp_path / "engines", progress)
    assert second.origin == "cache" and second.path == first.path
    assert first.path.stat().st_mtime_ns == built_at and progress.text == ""  # no build, no output
    x = np.random.default_rng(1).random((3, 3, 64, 64), dtype=np.float32)
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(second.infer(x)["cov"], want, rtol=1e-5, atol=1e-6)
    assert [str(s) for s in second.inputs] == ["input float32[3x64x64]"]
    assert second.max_batch == 4


def test_cache_key_changes_with_every_field_that_changes_the_engine(model, tmp_path):
    base = EngineSpec(onnx_file=model, batch_size=4)
    key = plan_engine(base).key
    assert plan_engine(base).key == key  # deterministic
    (tmp_path / "other").mkdir()
    other_model = conv_net(tmp_path / "other" / "det.onnx", seed=1)
    changes = [base.replace(batch_size=8), base.replace(precision="fp16"),
               base.replace(infer_dims=(3, 64, 64)), base.replace(opt_batch=2),
               base.replace(onnx_file=other_model), base.replace(parse_func="NvDsInferParseCustom")]
    keys = {plan_engine(s).key for s in changes}
    assert key not in keys and len(keys) == len(changes)


def test_model_engine_file_is_written_where_configured_and_then_used_directly(model, tmp_path):
    target = tmp_path / "models" / "det_b4_fp32.engine"
    spec = EngineSpec(onnx_file=model, model_engine_file=target, batch_size=4)
    assert load_engine(spec, tmp_path / "engines", Lines()).origin == "built"
    assert target.is_file()
    again = load_engine(spec, tmp_path / "engines", Lines())
    assert again.origin == "engine-file" and again.path == target


def test_engine_built_for_another_batch_is_named_and_rebuilt_to_the_configured_path(model, tmp_path):
    target = tmp_path / "det.engine"
    load_engine(EngineSpec(onnx_file=model, model_engine_file=target, batch_size=4), tmp_path / "e", Lines())
    progress = Lines()
    engine = load_engine(EngineSpec(onnx_file=model, model_engine_file=target, batch_size=8,
                                    precision="fp16"), tmp_path / "e", progress)
    assert "built for batch 4, config asks 8" in progress.text
    assert "built for fp32, config asks fp16" in progress.text
    assert f"rebuilding it to {target}" in progress.text
    assert engine.origin == "built" and engine.max_batch == 8
    assert load_engine(EngineSpec(onnx_file=model, model_engine_file=target, batch_size=8,
                                  precision="fp16"), tmp_path / "e", Lines()).origin == "engine-file"


def test_engine_from_another_runtime_version_is_named_and_rebuilt(model, tmp_path):
    import onnx

    target = tmp_path / "det.engine"
    spec = EngineSpec(onnx_file=model, model_engine_file=target)
    load_engine(spec, tmp_path / "e", Lines())
    old = onnx.load(str(target))  # as if built by an older onnxruntime
    meta = json.loads(old.metadata_props[0].value)
    meta["backend_version"] = "1.16.3"
    old.metadata_props[0].value = json.dumps(meta)
    onnx.save(old, str(target))
    progress = Lines()
    assert load_engine(spec, tmp_path / "e", progress).origin in ("cache", "built")
    assert f"built for runtime version 1.16.3, config asks {ort.__version__}" in progress.text
    assert load_engine(spec, tmp_path / "e", Lines()).origin == "engine-file"


def test_a_foreign_file_at_model_engine_file_is_kept_as_bak_not_lost(model, tmp_path):
    target = tmp_path / "det.engine"
    target.write_bytes(b"a TensorRT plan from another machine")
    progress = Lines()
    load_engine(EngineSpec(onnx_file=model, model_engine_file=target), tmp_path / "e", progress)
    assert "it is not a dsrun onnxruntime engine" in progress.text
    assert (tmp_path / "det.engine.bak").read_bytes() == b"a TensorRT plan from another machine"
    assert load_engine(EngineSpec(onnx_file=model, model_engine_file=target), tmp_path / "e",
                       Lines()).origin == "engine-file"


def test_engines_list_and_clean_older_than(model, tmp_path, capsys):
    from runner.engine.commands import clean_engines, list_engines

    load_engine(EngineSpec(onnx_file=model), tmp_path / "e", Lines())
    load_engine(EngineSpec(onnx_file=model, precision="fp16"), tmp_path / "e", Lines())
    assert list_engines(str(tmp_path / "e")) == 0
    out = capsys.readouterr().out
    assert "fp16" in out and "fp32" in out and "det" in out
    assert clean_engines(str(tmp_path / "e"), "30d") == 0
    assert "removed 0 engine(s)" in capsys.readouterr().out
    assert len(EngineCache(tmp_path / "e").entries()) == 2
    clean_engines(str(tmp_path / "e"), None)
    assert "removed 2 engine(s)" in capsys.readouterr().out
    assert EngineCache(tmp_path / "e").entries() == []


def _child(code: str, stdin=None, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env}, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


BUILD_INT8 = """
    import sys
    from pathlib import Path
    from runner.engine import EngineSpec, load_engine
    spec = EngineSpec(onnx_file=Path("{model}"), precision="int8",
                      calib_images=Path("{images}"), calib_method="entropy", net_scale_factor=1/255,
                      int8_calib_file=Path("{table}"))
    try:
        print(load_engine(spec, "{engines}", {progress}).origin, flush=True)
    except KeyboardInterrupt:
        sys.exit(130)
"""

#: Put before BUILD_INT8 (``progress="Held()"``): the build is held at the start of its entropy search
#: until the test has sent Ctrl-C (the progress waits for the test to close the child's stdin), so the
#: signal lands inside the build however the scheduler runs the two processes. SIGINT is set as a
#: terminal's foreground job has it: a test run started as a background job of a script (``.ci/run &``)
#: hands its children SIGINT *ignored*, Python then installs no KeyboardInterrupt handler, and the
#: Ctrl-C the test sends is lost (the build goes on and exits 0).
HELD = """
    import signal, sys
    from runner.engine.progress import PlainProgress
    signal.signal(signal.SIGINT, signal.default_int_handler)

    class Held(PlainProgress):
        def phase(self, name, total=None):
            super().phase(name, total)
            if name == "calibrate: entropy ranges":
                sys.stdin.read()  # until the test, having sent SIGINT, closes stdin
"""


@pytest.fixture
def calib_images(tmp_path, assets):
    frames = video_frames(assets.videos["short"], 12, (64, 64))
    return write_images(tmp_path / "calib", frames)


def test_two_processes_building_the_same_engine_build_it_once(tmp_path, calib_images):
    model = conv_net(tmp_path / "det.onnx", channels=(16,) * 12)  # a build of a few seconds
    code = BUILD_INT8.format(model=model, images=calib_images, table=tmp_path / "t.table",
                             engines=tmp_path / "e", progress="None")
    procs = [_child(code), _child(code)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert sorted(o[0].strip() for o in outs) == ["built", "cache"]
    assert sum("built in" in o[1] for o in outs) == 1
    # the second really waited on the first's lock (they ran at the same time)
    assert sum("another dsrun process is building this engine" in o[1] for o in outs) == 1
    entries = EngineCache(tmp_path / "e").entries()
    assert len(entries) == 1 and entries[0].manifest["precision"] == "int8"


def test_ctrl_c_during_a_build_stops_it_and_leaves_no_partial_entry(tmp_path, calib_images):
    model = conv_net(tmp_path / "det.onnx", channels=(16,) * 12)
    code = HELD + BUILD_INT8.format(model=model, images=calib_images, table=tmp_path / "t.table",
                                    engines=tmp_path / "e", progress="Held()")
    proc = _child(code, stdin=subprocess.PIPE)
    try:
        seen = []
        for line in proc.stderr:  # the build reaches its entropy search and waits there
            seen.append(line)
            if "entropy ranges" in line:
                break
        assert seen and "entropy ranges" in seen[-1], "".join(seen)
        proc.send_signal(signal.SIGINT)  # pending in the child before it may go on
        rest = proc.communicate(timeout=60)  # closes its stdin: the build goes on
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + rest[1]
    assert "interrupted (nothing kept)" in rest[1] and "built in" not in rest[1]
    assert rest[0] == ""  # load_engine returned nothing
    model_dir = tmp_path / "e" / "det"
    assert [p.name for p in model_dir.iterdir() if not p.name.endswith(".lock")] == []
    assert not (tmp_path / "t.table").exists()
    # and the next run builds it cleanly
    spec = EngineSpec(onnx_file=model, precision="int8", calib_images=calib_images,
                      net_scale_factor=1 / 255, int8_calib_file=tmp_path / "t.table")
    assert load_engine(spec, tmp_path / "e", Lines()).origin == "built"
    assert (tmp_path / "t.table").read_text().startswith("dsrun-")


def test_progress_is_a_live_bar_on_a_terminal_and_plain_lines_otherwise(model, tmp_path):
    import io

    from runner.engine.progress import RichProgress, auto_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    plain_stream, tty = io.StringIO(), Terminal()
    assert isinstance(auto_progress(plain_stream), PlainProgress)
    bar = auto_progress(tty)
    assert isinstance(bar, RichProgress)
    load_engine(EngineSpec(onnx_file=model, precision="fp16"), tmp_path / "e", bar)
    assert "engine det.onnx fp16 b1: built in" in tty.getvalue()
    plain = PlainProgress(plain_stream)
    load_engine(EngineSpec(onnx_file=model), tmp_path / "e2", plain)
    phases = [ln.split(": ", 1)[1].split(" (")[0] for ln in plain_stream.getvalue().splitlines()]
    assert phases[:4] == ["parse", "optimise", "serialise", "validate"] and "built in" in phases[-1]


def test_a_damaged_cache_entry_is_rebuilt_not_fatal(model, tmp_path):
    spec = EngineSpec(onnx_file=model, batch_size=2)
    first = load_engine(spec, tmp_path / "e", Lines())
    first.path.write_bytes(first.path.read_bytes()[:300])  # e.g. a disk error after the build
    progress = Lines()
    again = load_engine(spec, tmp_path / "e", progress)
    assert "the cached engine does not load" in progress.text and again.origin == "built"
    assert again.infer(np.zeros((2, 3, 64, 64), np.float32))["cov"].shape == (2, 4, 16, 16)


def test_an_engine_file_without_its_onnx_still_runs(model, tmp_path):
    target = tmp_path / "det.engine"
    spec = EngineSpec(onnx_file=model, model_engine_file=target, batch_size=2)
    load_engine(spec, tmp_path / "e", Lines())
    model.unlink()  # DeepStream users often ship only the engine
    engine = load_engine(spec, tmp_path / "e", Lines())
    assert engine.origin == "engine-file" and engine.max_batch == 2
    with pytest.raises(EngineError) as err:  # but another batch needs the ONNX to rebuild
        load_engine(spec.replace(batch_size=4), tmp_path / "e", Lines())
    assert f"{model} does not exist" in str(err.value)


def test_network_mode_best_is_int8_with_calibration_data_else_fp32_on_the_cpu(model, calib_images):
    assert plan_engine(EngineSpec(onnx_file=model, precision="best")).precision == "fp32"
    with_images = plan_engine(EngineSpec(onnx_file=model, precision="best", calib_images=calib_images))
    assert with_images.precision == "int8" and with_images.fields["calib_sha256"]


def test_clean_leaves_an_engine_that_another_process_is_building(model, tmp_path, capsys):
    from runner.engine.commands import clean_engines

    spec = EngineSpec(onnx_file=model)
    load_engine(spec, tmp_path / "e", Lines())
    cache = EngineCache(tmp_path / "e")
    holder = _child(f"""
        import sys, time
        from pathlib import Path
        from runner.engine.cache import EngineCache
        with EngineCache(Path("{tmp_path / 'e'}")).lock("det", "{plan_engine(spec).key}"):
            print("locked", flush=True)
            time.sleep(30)
    """)
    assert holder.stdout.readline().strip() == "locked"
    try:
        clean_engines(str(tmp_path / "e"))
        assert "removed 0 engine(s)" in capsys.readouterr().out
        assert len(cache.entries()) == 1
    finally:
        holder.kill()
        holder.wait()
    clean_engines(str(tmp_path / "e"))
    assert cache.entries() == []
