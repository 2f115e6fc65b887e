"""``dsrun check [--json] CONFIG...``: validate configs and show the pipeline they describe.

Each CONFIG may be a deepstream-app config, a Gst-nvinfer config, an NvMultiObjectTracker config or a
Gst-nvdsanalytics config (recognised by its groups and keys, :mod:`runner.config.kinds`; other
plugins' files are named and not validated). For an app config, what the run would refuse or leave
out is added by the ``preflight`` the CLI passes (runner/preflight.py). Exit status 0 when every file
is valid, 2 when any has an error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from runner.config.diagnostics import Diagnostic
from runner.config.kinds import detect_kind, not_validated
from runner.config.load_analytics import read_analytics
from runner.config.load import inspect_app, inspect_nvinfer, inspect_tracker
from runner.config.model import AppConfig, GieConfig, NvInferConfig
from runner.config.model_tracker import TRACKER_SECTIONS
from runner.redact import redact_tree


def check(paths: list[str], as_json: bool, preflight=None) -> int:
    """``preflight(app) -> [Diagnostic]`` (runner.preflight, passed in by the CLI: the config layer does
    not import the pipeline) adds what the run would refuse or leave out to an app config's report."""
    reports = [redact_tree(_inspect(Path(p), preflight)) for p in paths]  # no credentials in any output
    valid = all(r["valid"] for r in reports)
    if as_json:
        doc = {"valid": valid, "configs": reports,
               "diagnostics": [d for r in reports for d in r["diagnostics"]]}
        sys.stdout.write(json.dumps(doc, indent=1, default=str) + "\n")
    else:
        console = Console(highlight=False, soft_wrap=True)
        for report in reports:
            _print(console, report)
    return 0 if valid else 2


def _inspect(path: Path, preflight=None) -> dict:
    kind = detect_kind(path)
    inspect = {"app": inspect_app, "nvinfer": inspect_nvinfer, "tracker": inspect_tracker,
               "nvdsanalytics": _inspect_analytics}.get(kind, _not_validated)
    config, diags = inspect(path)
    if isinstance(config, AppConfig) and preflight is not None and not any(d.is_error for d in diags):
        diags = diags + preflight(config)
    diags = sorted(diags, key=lambda d: (d.file, d.line or 0, d.severity))
    report = {"path": str(path), "kind": kind, "valid": not any(d.is_error for d in diags),
              "diagnostics": [d.as_dict() for d in diags]}
    if isinstance(config, AppConfig):
        report["pipeline"] = _app_summary(config)
        report["unsupported"] = list(config.unsupported)
    elif isinstance(config, NvInferConfig):
        report["pipeline"] = {"nvinfer": _nvinfer_summary(config)}
    elif config is not None and kind == "tracker":
        report["pipeline"] = {"tracker": {name: getattr(config, name) is not None
                                          for name in TRACKER_SECTIONS}}
    return report


def _inspect_analytics(path: Path):
    diags: list[Diagnostic] = []
    return read_analytics(path.absolute(), diags), diags


def _not_validated(path: Path):
    return None, [not_validated(path.absolute(), detect_kind(path))]


def _nvinfer_summary(n: NvInferConfig) -> dict:
    return {"config_file": n.path, "model": n.model_path, "engine": n.model_engine_file,
            "labels": n.labelfile_path, "network_type": n.network_type.name.lower(),
            "network_mode": n.network_mode.name.lower(), "batch_size": n.batch_size,
            "interval": n.interval, "gie_unique_id": n.gie_unique_id,
            "process_mode": n.process_mode.name.lower(), "operate_on_gie_id": n.operate_on_gie_id,
            "operate_on_class_ids": list(n.operate_on_class_ids),
            "num_detected_classes": n.num_detected_classes, "backend": n.dsrun_backend.value,
            "clustering": _clustering(n)}


def _clustering(n: NvInferConfig) -> str | None:
    """How a detector's boxes are clustered at run time — cluster-mode 0 is NMS in stock DeepStream."""
    if n.network_type != n.network_type.DETECTOR:
        return None
    if n.group_rectangles_as_nms:
        return ("cluster-mode=0 runs as NMS with topk 20 and nms-iou-threshold 0.5 on every class, as stock "
                "DeepStream does (nvdsinfer built without OpenCV); dsrun-opencv-clustering=1 for groupRectangles")
    return f"cluster-mode={int(n.cluster_mode)} ({n.cluster_mode.name.lower()})" + (
        ", OpenCV groupRectangles (dsrun-opencv-clustering=1)" if n.dsrun_opencv_clustering else "")


def _gie_summary(g: GieConfig) -> dict:
    out = {"group": g.group, "enable": g.enable, "plugin": g.plugin_type.name.lower(),
           "config_file": g.config_file}
    if g.nvinfer is not None:
        out.update(_nvinfer_summary(g.nvinfer))
    return out


def _app_summary(c: AppConfig) -> dict:
    m, t, o = c.streammux, c.tiled_display, c.osd
    return {
        "sources": [{"index": s.index, "type": s.type.name.lower(), "uri": s.uri,
                     "group": s.group} for s in c.sources],
        "streammux": {"width": m.width, "height": m.height, "batch_size": c.batch_size,
                      "batched_push_timeout": m.batched_push_timeout, "live_source": m.live_source},
        "gies": [_gie_summary(g) for g in ([c.primary_gie] if c.primary_gie else [])
                 + list(c.secondary_gies)],
        "tracker": None if c.tracker is None else {
            "enable": c.tracker.enable, "width": c.tracker.tracker_width,
            "height": c.tracker.tracker_height, "ll_config_file": c.tracker.ll_config_file},
        "nvds_analytics": _analytics_summary(c.nvds_analytics),
        "osd": {"enable": o.enable, "border_width": o.border_width, "text_size": o.text_size},
        "tiled_display": {"enable": t.enable, "rows": t.rows, "columns": t.columns,
                          "width": t.width, "height": t.height},
        "sinks": [{"group": s.group, "enable": s.enable, "type": s.type.name.lower(),
                   "output_file": s.output_file, "sync": s.sync} for s in c.sinks],
    }


def _analytics_summary(group) -> dict | None:
    if group is None:
        return None
    out = {"enable": group.enable, "config_file": group.config_file, "streams": {}}
    a = group.analytics
    if a is not None:
        out["streams"] = {sid: {"roi": [r.label for r in s.roi], "overcrowding": [r.label for r in s.overcrowding],
                                "lines": [r.label for r in s.lines], "directions": [r.label for r in s.directions]}
                          for sid, s in a.streams.items()}
    return out


def _print(console: Console, report: dict) -> None:
    say = lambda text="": console.print(text)  # noqa: E731
    say(f"[bold]{escape(report['path'])}[/bold]  ({report['kind']} config)")
    pipe = report.get("pipeline") or {}
    if report["kind"] == "app" and pipe:
        say(f"  sources ({len(pipe['sources'])}):")
        for s in pipe["sources"]:
            say(f"    {s['index']}: {s['type']} {escape(str(s['uri']))}")
        m = pipe["streammux"]
        say(f"  streammux: {m['width']}x{m['height']}, batch-size {m['batch_size']}, "
            f"batched-push-timeout {m['batched_push_timeout']} µs, live-source {int(m['live_source'])}")
        for g in pipe["gies"]:
            say(f"  {g['group']}: {'enabled' if g['enable'] else 'disabled'}, {g['plugin']}, "
                f"config {escape(str(g['config_file']))}")
            if "model" in g:
                _print_nvinfer(say, g)
        tr = pipe["tracker"]
        if tr:
            say(f"  tracker: {'enabled' if tr['enable'] else 'disabled'}, "
                f"{tr['width']}x{tr['height']}, ll-config-file {escape(str(tr['ll_config_file']))}")
        an = pipe.get("nvds_analytics")
        if an:
            rules = "; ".join(f"stream {sid}: " + ", ".join(f"{kind} {'/'.join(labels)}" for kind, labels in r.items()
                                                              if labels) for sid, r in an["streams"].items())
            say(f"  nvds-analytics: {'enabled' if an['enable'] else 'disabled'}, config "
                f"{escape(str(an['config_file']))}" + (f" — {escape(rules)}" if rules else ""))
        o, t = pipe["osd"], pipe["tiled_display"]
        say(f"  osd: {'enabled' if o['enable'] else 'disabled'}; tiled-display: "
            f"{'enabled' if t['enable'] else 'disabled'} {t['rows']}x{t['columns']} tiles, "
            f"{t['width']}x{t['height']}")
        for s in pipe["sinks"]:
            say(f"  {s['group']}: {'enabled' if s['enable'] else 'disabled'}, {s['type']}"
                + (f", output-file {escape(str(s['output_file']))}" if s["output_file"] else ""))
        if report.get("unsupported"):
            say(f"  accepted, not yet supported ({len(report['unsupported'])}): "
                + escape(", ".join(report["unsupported"])))
    elif report["kind"] == "nvinfer" and pipe:
        _print_nvinfer(say, pipe["nvinfer"])
    for d in report["diagnostics"]:
        colour = "red" if d["severity"] == "error" else "yellow"
        say(f"  [{colour}]{d['severity']}[/{colour}] {escape(str(Diagnostic(**d)))}")
    errors = sum(d["severity"] == "error" for d in report["diagnostics"])
    warnings = len(report["diagnostics"]) - errors
    verdict = "[green]valid[/green]" if report["valid"] else f"[red]{errors} error(s)[/red]"
    say(f"  {verdict}, {warnings} warning(s)")
    say()


def _print_nvinfer(say, n: dict) -> None:
    say(f"    model {escape(str(n['model']))}; engine {escape(str(n['engine']))}")
    say(f"    {n['network_type']}, {n['network_mode']}, batch-size {n['batch_size']}, interval "
        f"{n['interval']}, gie-unique-id {n['gie_unique_id']}, process-mode {n['process_mode']}, "
        f"operate-on-gie-id {n['operate_on_gie_id']}, operate-on-class-ids "
        f"{n['operate_on_class_ids'] or 'all'}")
    if n.get("clustering"):
        say(f"    clustering: {escape(n['clustering'])}")
