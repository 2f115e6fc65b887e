"""The engine commands of the CLI: ``build-engines``, ``engines list``, ``engines clean``.

``dsrun build-engines CONFIG`` accepts a deepstream-app config (every GIE's engine) or a Gst-nvinfer
config (its one engine). ``--json`` prints ``{"built": [...], "reused": [...], "failed": [...]}``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from runner.engine import darknet
from runner.engine.base import EngineError
from runner.engine.build import load_engine
from runner.engine.cache import EngineCache, default_engine_dir, parse_age
from runner.engine.progress import PlainProgress, Progress, auto_progress
from runner.engine.spec import EngineSpec
from runner.extras import MissingExtra


def specs_from_config(config_path: str | Path) -> list[tuple[str, EngineSpec | EngineError]]:
    """(GIE name, spec or the error that prevents one) for every GIE of a config file."""
    from runner import config

    path = Path(config_path)
    if _is_nvinfer(path):
        nvinfer = config.load_nvinfer(path)
        return [(path.stem, _spec(nvinfer))]
    return app_specs(config.load_app(path))


def app_specs(app: Any) -> list[tuple[str, EngineSpec | EngineError]]:
    """(GIE name, spec or error) for every enabled GIE of a loaded ``AppConfig``, primary first;
    names as the pipeline's stages carry them (``primary-gie``, ``secondary-gieN``)."""
    out = []
    if getattr(app, "primary_gie", None) is not None and _enabled(app.primary_gie):
        out.append(("primary-gie", _spec(app.primary_gie.nvinfer)))
    for i, gie in enumerate(getattr(app, "secondary_gies", ()) or ()):
        if _enabled(gie):
            out.append((f"secondary-gie{getattr(gie, 'index', i)}", _spec(gie.nvinfer)))
    return out


def _enabled(gie: Any) -> bool:
    return bool(getattr(gie, "enable", True)) and getattr(gie, "nvinfer", None) is not None


def _spec(nvinfer: Any) -> EngineSpec | EngineError:
    try:
        return EngineSpec.from_nvinfer(nvinfer)
    except EngineError as exc:
        return exc


def _is_nvinfer(path: Path) -> bool:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return "[application]" not in text and ("[property]" in text or text.lstrip().startswith("property:"))


def build_engines(config_path: str, as_json: bool = False, engine_dir: str | None = None) -> int:
    """Build every engine a config needs; reuse what is built. Exit 0, or 3 if any failed."""
    report: dict[str, list[dict[str, Any]]] = {"built": [], "reused": [], "failed": []}
    progress: Progress = PlainProgress(sys.stderr) if as_json else auto_progress()
    for name, spec in specs_from_config(config_path):
        if isinstance(spec, EngineError):
            report["failed"].append({"gie": name, "error": str(spec)})
            continue
        try:
            engine = load_engine(spec, engine_dir, progress)
        except (EngineError, MissingExtra) as exc:
            report["failed"].append({"gie": name, "model": str(spec.onnx_file), "error": str(exc)})
            continue
        item = {"gie": name, "model": str(spec.onnx_file), "engine": str(engine.path),
                "backend": engine.backend, "precision": engine.precision,
                "max_batch": engine.max_batch, "device": engine.device}
        if spec.model_engine_file is not None:
            item["model_engine_file"] = str(spec.model_engine_file)
        engine.close()
        report["built" if engine.origin == "built" else "reused"].append(item)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for kind in ("built", "reused"):
            for item in report[kind]:
                print(f"{kind:7} {item['gie']}: {item['engine']} ({item['backend']} "
                      f"{item['precision']}, max batch {item['max_batch']}, {item['device']})")
        for item in report["failed"]:
            print(f"failed  {item['gie']}: {item['error']}", file=sys.stderr)
    return 3 if report["failed"] else 0


def list_engines(engine_dir: str | None = None) -> int:
    cache = EngineCache(default_engine_dir(engine_dir))
    entries = cache.entries()
    if not entries:
        print(f"no engines in {cache.root}")
        return 0
    print(f"engines in {cache.root}:")
    rows = [("MODEL", "KEY", "BACKEND", "PRECISION", "BATCH", "DEVICE", "SIZE", "LAST USED")]
    for e in entries:
        m = e.manifest
        rows.append((m.get("model", e.dir.parent.name), e.dir.name,
                     f"{m.get('backend')} {m.get('backend_version')}", str(m.get("precision")),
                     str(m.get("batch")), str(m.get("device")), _size(e.size), _age(e.last_used)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def clean_engines(engine_dir: str | None = None, older_than: str | None = None) -> int:
    cache = EngineCache(default_engine_dir(engine_dir))
    limit = parse_age(older_than)
    removed, freed = 0, 0
    for e in cache.entries():
        if cache.busy(e):  # being built by another dsrun right now
            continue
        if limit is None or time.time() - e.last_used > limit:
            freed += e.size
            cache.remove(e)
            removed += 1
    converted = 0
    for folder in darknet.converted_folders(cache.root):  # Darknet models converted to ONNX
        if limit is None or time.time() - folder.stat().st_mtime > limit:
            freed += sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            converted += 1
    when = f" unused for {older_than}" if older_than else ""
    also = f" and {converted} converted Darknet model(s)" if converted else ""
    print(f"removed {removed} engine(s){also}{when} from {cache.root}, freed {_size(freed)}")
    return 0


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _age(t: float) -> str:
    s = max(0.0, time.time() - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return "just now"

