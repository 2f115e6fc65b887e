"""Model file → runnable engine: resolve the plan, use a matching engine, build only what is missing.

:func:`load_engine` is what the pipeline calls. Order: the user's ``model-engine-file`` when it was
built for exactly this plan; else the cache entry; else a build (under the key's lock, so concurrent
processes build once) into the cache, copied to ``model-engine-file`` when one is configured.

>>> import tempfile; from runner.engine.spec import EngineSpec  # doctest: +SKIP
>>> engine = load_engine(EngineSpec(onnx_file=Path("det.onnx"), batch_size=4))  # doctest: +SKIP
>>> engine.infer(frames)["cov"].shape  # doctest: +SKIP
(4, 4, 34, 60)
"""

from __future__ import annotations

import hashlib
import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.engine import calibration, darknet
from runner.engine.base import Engine, EngineError
from runner.engine.cache import (MANIFEST, RECIPE, EngineCache, atomic_copy, atomic_write,
                                 cache_key, default_engine_dir, file_sha256, mismatch, write_json)
from runner.engine.onnxinfo import GraphTensor, check_infer_dims, graph_inputs, load_onnx, resolved_dims
from runner.engine.progress import Progress, auto_progress
from runner.engine.spec import EngineSpec

BACKEND_MODULES = {"onnxruntime": "runner.engine.onnxruntime", "tensorrt": "runner.engine.tensorrt",
                   "torch": "runner.engine.torch_backend"}


def backend_module(name: str):
    """The backend's module, once its optional package is known to be installed (``require()``:
    :class:`~runner.extras.MissingExtra` otherwise, one line naming the extra)."""
    module = importlib.import_module(BACKEND_MODULES[name])
    module.require()
    return module


@dataclass(slots=True)
class Calib:
    """Where INT8 ranges come from: calibration images (``images``) or an existing table
    (``ranges``); ``digest`` enters the cache key; ``table`` is ``int8-calib-file``."""

    digest: str
    table: Path | None = None
    images: list[Path] = field(default_factory=list)
    ranges: dict[str, float] | None = None
    header: str = ""

    def write_table(self, ranges: dict[str, float], out_dir: Path) -> dict[str, float]:
        """Write the table (into the entry, and to ``int8-calib-file``); returns the ranges as the
        table stores them, so an engine built later from the table alone is the same engine."""
        text = calibration.format_table(ranges, self.header)
        atomic_write(out_dir / "calibration.table", text.encode())
        if self.table is not None:
            atomic_write(self.table, text.encode())
        return calibration.parse_table(text, out_dir / "calibration.table")[1]


@dataclass(slots=True)
class Plan:
    """A spec resolved against this machine: backend, provider, device, precision, cache key."""

    spec: EngineSpec
    backend: str
    provider: str
    precision: str
    fields: dict[str, Any]
    key: str
    calib: Calib | None = None
    graph_input: GraphTensor | None = None  # filled by the parse phase
    input_dims: tuple[int, ...] = ()
    engine_dir: Path | None = None  # the cache root (TensorRT keeps its timing caches there)

    @property
    def title(self) -> str:
        return f"{self.spec.onnx_file.name} {self.precision} b{self.spec.batch_size}"

    def manifest(self) -> dict[str, Any]:
        return {**self.fields, "key": self.key, "model": self.spec.name,
                "onnx_file": str(self.spec.onnx_file), "provider": self.provider}

    def module(self):
        return backend_module(self.backend)


def plan_engine(spec: EngineSpec) -> Plan:
    """Resolve ``spec`` on this machine and compute its cache key (reads no model but hashes it)."""
    backend = spec.backend if spec.backend != "auto" else auto_backend(spec)
    module = backend_module(backend)
    prov = module.provider(spec.provider)
    device = module.device(prov, spec.gpu_id)
    calib = _calib(spec) if spec.precision in ("int8", "best") else None
    precision = spec.precision
    if precision == "best":  # INT8 when calibration is possible, FP16 on a GPU, else FP32
        precision = "int8" if calib else ("fp16" if prov != "cpu" else "fp32")
    if precision != "int8":
        calib = None
    if precision == "int8" and calib is None:
        where = f"{spec.source}: [property] " if spec.source else ""
        raise EngineError(f"{where}network-mode=1 (INT8) needs calibration: set int8-calib-file to an "
                          "existing calibration table, or dsrun-calib-images to a folder of images that "
                          "resemble the deployment scenes (then int8-calib-file is written)")
    model_sha = file_sha256(spec.onnx_file) if spec.onnx_file.is_file() else None
    lo, opt, _ = spec.profile_batches
    fields = {
        "model_sha256": model_sha,
        "inputs": ";".join(map(str, spec.infer_dims)) if spec.infer_dims else "as in the model",
        "batch": spec.batch_size,
        "profile": f"min {lo} opt {opt}",
        "precision": precision,
        "backend": backend + ("+version-compatible" if spec.version_compatible else ""),
        "backend_version": module.version(),
        "device": device,
        "calib_sha256": calib.digest if calib else None,
        "parser_sha256": _parser_digest(spec),
        "recipe": RECIPE,
        # a Darknet model's ONNX is dsrun's conversion: the key names the cfg and weights it came from
        "model_source": (darknet.source_digests(spec.darknet_cfg, spec.darknet_weights)
                         if spec.darknet_cfg is not None else None),
    }
    return Plan(spec, backend, prov, precision, fields, cache_key(fields), calib)


def auto_backend(spec: EngineSpec) -> str:
    """``dsrun-backend=auto``: TensorRT where installed; on a GPU without it, the torch backend
    (AOTInductor, FP16 channels_last — the faster one on the H100, see scripts/bench_streams.py) for
    FP32/FP16 models whose operators it runs; ONNX Runtime otherwise (CPU, INT8 QDQ models)."""
    from runner.engine import tensorrt, torch_backend

    if spec.provider == "cpu":
        return "onnxruntime"
    if tensorrt.available():
        return "tensorrt"
    if spec.precision in ("fp32", "fp16") and torch_backend.cuda_available() \
            and torch_backend.runs(spec.onnx_file):
        return "torch"
    return "onnxruntime"


def _calib(spec: EngineSpec) -> Calib | None:
    if spec.calib_images is not None:
        images = calibration.calibration_images(spec)
        digest = calibration.images_digest(spec, images)
        header = calibration.table_header(digest, spec.calib_method)
        calib = Calib(digest, spec.int8_calib_file, images, None, header)
        if spec.int8_calib_file and spec.int8_calib_file.is_file():
            have, ranges = calibration.read_table(spec.int8_calib_file)
            if have == header:  # calibrated on these very images: reuse the ranges
                calib.ranges = ranges
        return calib
    if spec.int8_calib_file and spec.int8_calib_file.is_file():
        header, ranges = calibration.read_table(spec.int8_calib_file)
        return Calib(file_sha256(spec.int8_calib_file), spec.int8_calib_file, [], ranges, header)
    return None


def _parser_digest(spec: EngineSpec) -> str | None:
    if spec.custom_lib_path is None and not spec.parse_func:
        return None
    lib = spec.custom_lib_path
    part = file_sha256(lib) if lib is not None and lib.is_file() else str(lib)
    return hashlib.sha256(f"{part}|{spec.parse_func}".encode()).hexdigest()


def load_engine(spec: EngineSpec, engine_dir: str | Path | None = None,
                progress: Progress | None = None) -> Engine:
    """The engine for ``spec``: reused when one was built for exactly this, built otherwise.

    ``engine.origin`` says which: ``"engine-file"`` (the configured ``model-engine-file``),
    ``"cache"`` or ``"built"``. Raises :class:`EngineError` with a message naming the file and the fix.
    """
    say = (progress or auto_progress()).message
    if spec.darknet_cfg is not None:  # custom-network-config + model-file: convert once, into this cache
        converted = darknet.converted_path(spec.darknet_cfg, spec.darknet_weights, engine_dir)
        spec = spec.replace(onnx_file=darknet.ensure_converted(spec.darknet_cfg, spec.darknet_weights,
                                                               converted, say))
    plan = plan_engine(spec)
    cache = EngineCache(default_engine_dir(engine_dir))
    plan.engine_dir = cache.root
    target = spec.model_engine_file
    replace_target = target is not None
    if target is not None and target.is_file():
        reasons = engine_file_mismatch(target, plan)
        if not reasons:
            try:
                engine = plan.module().load(target, plan)
            except EngineError as exc:  # the manifest matches but the engine is damaged
                reasons = [f"it does not load ({exc})"]
            else:
                _restore_table(plan, cache.lookup(plan.spec.name, plan.key))
                engine.origin = "engine-file"
                return engine
        say(f"{target}: {'; '.join(reasons)} — rebuilding it to {target}")
    entry, built = ensure_built(plan, cache, progress)
    try:
        engine = plan.module().load(entry.artefact, plan)
    except EngineError as exc:
        if built:
            raise
        say(f"{entry.dir}: the cached engine does not load ({exc}) — rebuilding it")
        cache.remove(entry)
        entry, built = ensure_built(plan, cache, progress)
        engine = plan.module().load(entry.artefact, plan)
    _restore_table(plan, entry)
    if replace_target and (built or not target.is_file() or engine_file_mismatch(target, plan)
                           or _differs(target, entry.artefact)):
        try:
            _install(entry.artefact, target, plan)
        except EngineError as exc:  # the engine runs from the cache; the user's copy is missing
            say(f"model-engine-file not written: {exc}; running the cached engine {entry.artefact}")
    engine.origin = "built" if built else "cache"
    return engine


def _differs(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size != b.stat().st_size or file_sha256(a) != file_sha256(b)
    except OSError:
        return True


def _restore_table(plan: Plan, entry) -> None:
    """A configured ``int8-calib-file`` that is missing gets the table this engine was calibrated
    with (the engine itself came from the cache, keyed by the images)."""
    table = plan.calib.table if plan.calib else None
    if table is not None and not table.exists() and entry is not None:
        kept = entry.dir / "calibration.table"
        if kept.is_file():
            atomic_copy(kept, table)


def engine_file_mismatch(path: Path, plan: Plan) -> list[str]:
    """Why the engine at ``path`` does not serve ``plan`` ([] when it does)."""
    have = plan.module().read_manifest(path)
    if have is None:
        return [f"it is not a dsrun {plan.backend} engine"]
    want = dict(plan.fields)
    if want["model_sha256"] is None:  # no ONNX beside it: trust the engine for the model
        want["model_sha256"] = have.get("model_sha256")
    return mismatch(have, want)


def ensure_built(plan: Plan, cache: EngineCache, progress: Progress | None = None):
    """(cache entry, whether this call built it). Builds under the key's lock."""
    name, key = plan.spec.name, plan.key
    entry = cache.lookup(name, key)
    if entry:
        cache.touch(entry)
        return entry, False
    if not plan.spec.onnx_file.is_file():
        load_onnx(plan.spec.onnx_file, source=plan.spec.source)  # raises the missing-file message
    progress = progress or auto_progress()
    with cache.lock(name, key, on_wait=lambda: progress.message(
            "another dsrun process is building this engine; waiting for it")):
        entry = cache.lookup(name, key)
        if entry:
            cache.touch(entry)
            return entry, False
        progress.start(plan.title)
        outcome = "failed"
        t0 = time.monotonic()
        try:
            with cache.staging(name, key) as tmp:
                artefact = _build(plan, tmp, progress)
                write_json(tmp / MANIFEST, {**plan.manifest(), "artefact": artefact,
                                            "built_at": time.time(),
                                            "build_seconds": round(time.monotonic() - t0, 3)})
            outcome = "built"
        except KeyboardInterrupt:
            outcome = "interrupted (nothing kept)"
            raise
        finally:
            progress.finish(outcome)
    return cache.lookup(name, key), True


def _build(plan: Plan, tmp: Path, progress: Progress) -> str:
    progress.phase("parse")
    model = load_onnx(plan.spec.onnx_file, source=plan.spec.source)
    check_infer_dims(model, plan.spec.onnx_file, plan.spec.infer_dims, plan.spec.source,
                     nhwc=plan.spec.network_input_order == 1)
    plan.graph_input = graph_inputs(model)[0]
    plan.input_dims = resolved_dims(plan.graph_input, plan.spec.infer_dims)
    if any(d < 0 for d in plan.input_dims) and plan.precision == "int8" and plan.calib.ranges is None:
        raise EngineError(f"{plan.spec.onnx_file}: input {plan.graph_input.name!r} has dynamic axes "
                          f"{plan.graph_input.dims}; set infer-dims (C;H;W) so calibration images can "
                          "be resized to it")
    del model
    artefact = plan.module().build(plan, tmp, progress)
    progress.phase("validate")
    plan.module().load(tmp / artefact, plan).close()
    return artefact


def _install(artefact: Path, target: Path, plan: Plan) -> None:
    """Copy a built engine to the user's ``model-engine-file`` (atomically); a file there that is
    not a dsrun engine is kept as ``<name>.bak`` rather than lost."""
    if target.is_file() and plan.module().read_manifest(target) is None:
        backup = target.with_name(target.name + ".bak")
        target.replace(backup)
    atomic_copy(artefact, target)
    sidecar = getattr(plan.module(), "write_sidecar", None)
    if sidecar:
        sidecar(target, plan.manifest())
