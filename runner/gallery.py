"""The sample gallery: ``dsrun samples`` lists ``samples/<name>/``, ``dsrun samples run NAME`` runs one.

Each sample folder holds DeepStream app configs (``deepstream_app_config*.txt``), the nvinfer configs
and labels they name, and a README whose first heading line is the sample's one-line description.
Running a sample prepares the assets if missing, starts the local services its configs name (an RTSP
camera for ``multistream``, an MQTT broker and a listener for ``msgbroker``; see
:mod:`runner.gallery_services`), runs each of its app configs with ``runner.app.run_app`` and says
where the output is: the folder of its file sink (``out/samples/<name>/``), which also gets
``detections*.jsonl`` (every frame's objects), ``report_*.json`` and ``summary.json``.

>>> [s.name for s in find_samples()][:3]
['test1', 'lpr-cascade', 'multistream']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from runner.errors import DsrunError

__all__ = ["Sample", "SampleError", "find_samples", "list_samples", "run_sample", "compare_precisions",
           "SAMPLES_DIR", "OUT_DIR"]

_REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = _REPO / "samples"
OUT_DIR = _REPO / "out" / "samples"
ORDER = ("test1", "test2", "lpr-cascade", "multistream", "msgbroker", "faces", "face-cascade", "segmentation", "int8")
FILE_SINK = 3
MSGBROKER_SINK = 6


class SampleError(DsrunError):
    """An unknown sample."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Sample:
    """One gallery folder: its name, one-line description and app configs (run in order)."""

    name: str
    folder: Path
    title: str
    configs: tuple[Path, ...]

    @property
    def command(self) -> str:
        return f"dsrun samples run {self.name}"


def _title(readme: Path) -> str:
    try:
        first = readme.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return ""
    return first.lstrip("# ").split(" — ", 1)[-1].strip()


def _configs(folder: Path) -> tuple[Path, ...]:
    found = sorted(folder.glob("deepstream_app_config*.txt"))
    main = [p for p in found if p.name == "deepstream_app_config.txt"]
    if main:  # variants (e.g. _loop) are for running by hand
        return tuple(main)
    rank = {"fp32": 0, "fp16": 1, "int8": 2}
    return tuple(sorted(found, key=lambda p: rank.get(p.stem.rsplit("_", 1)[-1], 9)))


def sample_at(folder: Path) -> Sample:
    """The sample in ``folder`` (a gallery folder, or a copy of one elsewhere)."""
    folder = Path(folder).resolve()
    return Sample(folder.name, folder, _title(folder / "README.md"), _configs(folder))


def find_samples() -> list[Sample]:
    """Every sample folder, in gallery order (the order of docs/samples.md's table)."""
    folders = [p for p in SAMPLES_DIR.iterdir() if p.is_dir() and (p / "README.md").is_file()] \
        if SAMPLES_DIR.is_dir() else []
    folders.sort(key=lambda p: (ORDER.index(p.name) if p.name in ORDER else len(ORDER), p.name))
    return [sample_at(p) for p in folders]


def _summary(sample: Sample) -> tuple[str, str]:
    """(sources, models) of a sample's first app config, read by the config layer."""
    try:
        from runner.config import load_app

        app = load_app(sample.configs[0])
    except Exception as error:  # listing must not fail because one config is being edited
        return "?", f"(config error: {str(error).splitlines()[-1][:60]})"
    sources = []
    for s in app.sources:
        uri = getattr(s, "uri", "") or ""
        sources.append(uri.rsplit("/", 1)[-1] if uri.startswith("file://") else uri)
    gies = [g for g in (app.primary_gie, *app.secondary_gies) if g is not None]
    models = [Path(str(g.nvinfer.onnx_file or g.nvinfer.custom_network_config)).stem for g in gies
              if g.nvinfer and (g.nvinfer.onnx_file or g.nvinfer.custom_network_config)]
    text = " → ".join(models)
    if len(sample.configs) > 1:
        text += f" (in {len(sample.configs)} app configs)"
    return ", ".join(sources), text


def list_samples() -> int:
    """``dsrun samples``: print the gallery table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dsrun sample gallery", caption="run one: dsrun samples run NAME — "
                  "output in out/samples/NAME/; docs/samples.md shows a frame of each")
    for column in ("name", "what it shows", "sources", "models", "command"):
        table.add_column(column, overflow="fold")
    for sample in find_samples():
        sources, models = _summary(sample)
        table.add_row(sample.name, sample.title, sources, models, sample.command)
    Console().print(table)
    return 0


# -- the int8 sample's comparison ------------------------------------------------------------------


def _frames(path: Path) -> dict[tuple[int, int], tuple["np.ndarray", "np.ndarray"]]:
    """(source, frame) → (boxes (n, 4), confidences (n,)) of a detections JSONL."""
    import numpy as np

    frames = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        objs = rec.get("objects", [])
        frames[(rec["source_id"], rec["frame_num"])] = (
            np.array([o["bbox"] for o in objs], np.float32).reshape(-1, 4),
            np.array([o["confidence"] for o in objs], np.float32))
    return frames


def _best_iou(a, b):
    """For each box of ``a``: (its best IoU with a box of ``b``, that box's index)."""
    import numpy as np

    from runner.pipeline.cluster import iou_matrix

    if not len(a) or not len(b):
        return np.zeros(len(a)), np.zeros(len(a), int)
    iou = iou_matrix(a, b)
    return iou.max(axis=1), iou.argmax(axis=1)


def compare_precisions(out: Path, tags=("fp32", "fp16", "int8")) -> dict[str, dict]:
    """int8: each precision's boxes against FP32's (a match: IoU >= 0.5). ``recall``: FP32 boxes found
    again; ``precision``: boxes FP32 also found; ``same_count``: frames with as many boxes as FP32;
    ``mean_iou`` and ``mean_conf_diff``: of the matched boxes, how far they moved and how much their
    confidence changed.

    Prints the table and returns ``{tag: {"boxes", "recall", "precision", "same_count", "mean_iou",
    "mean_conf_diff"}}``.
    """
    import numpy as np

    paths = {t: out / f"detections_{t}.jsonl" for t in tags}
    if not paths[tags[0]].is_file():
        return {}
    ref = _frames(paths[tags[0]])
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    ref_total = sum(len(v[0]) for v in ref.values())
    table = {}
    print(f"{'precision':10} {'boxes':>6} {'FP32 boxes found':>17} {'boxes FP32 found':>17} "
          f"{'same count':>11} {'mean IoU':>9} {'mean |Δconf|':>13}")
    for tag in tags:
        if not paths[tag].is_file():
            continue
        got = _frames(paths[tag])
        total = sum(len(v[0]) for v in got.values())
        found, ious, dconf = 0, [], []
        for k, (boxes, conf) in ref.items():
            best, which = _best_iou(boxes, got.get(k, empty)[0])
            hit = best >= 0.5
            found += int(hit.sum())
            ious += best[hit].tolist()
            dconf += np.abs(conf[hit] - got[k][1][which[hit]]).tolist() if hit.any() else []
        kept = sum(int((_best_iou(v[0], ref.get(k, empty)[0])[0] >= 0.5).sum()) for k, v in got.items())
        same = sum(len(ref[k][0]) == len(got.get(k, empty)[0]) for k in ref) / max(len(ref), 1)
        row = {"boxes": total, "recall": found / max(ref_total, 1), "precision": kept / max(total, 1),
               "same_count": same, "mean_iou": float(np.mean(ious)) if ious else 0.0,
               "mean_conf_diff": float(np.mean(dconf)) if dconf else 0.0}
        table[tag] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
        print(f"{tag:10} {total:6d} {row['recall']:17.1%} {row['precision']:17.1%} {same:11.1%} "
              f"{row['mean_iou']:9.3f} {row['mean_conf_diff']:13.4f}")
    return table


# -- running a sample ------------------------------------------------------------------------------


def _output_dir(app, name: str) -> Path:
    """The folder of the first file sink's output-file (where the sample writes), else out/samples/NAME."""
    for sink in app.sinks:
        if int(sink.type) == FILE_SINK and getattr(sink, "output_file", None):
            return Path(sink.output_file).parent
    return OUT_DIR / name


def _services(apps, assets, out: Path, stack: contextlib.ExitStack, log) -> list:
    """Start what the configs name on 127.0.0.1 (see runner.gallery_services); the message listeners."""
    from runner import gallery_services as svc
    from runner.pipeline.sinks.msgbroker import parse_conn_str

    listeners = []
    cameras: set[tuple[int, str]] = set()
    for app in apps:
        for source in app.sources:
            where = svc.parse_local_rtsp(getattr(source, "uri", "") or "")
            if where and where not in cameras and where[1] in assets.videos:
                cameras.add(where)
                stack.enter_context(svc.rtsp_camera(assets.videos[where[1]], where[0], where[1], out, log))
        for sink in app.sinks:
            if int(sink.type) != MSGBROKER_SINK:
                continue
            host, port, topic = parse_conn_str(sink.msg_broker_conn_str, sink.topic, f"[sink{sink.index}]")
            if host in svc.LOCAL:
                stack.enter_context(svc.mosquitto(port, log))
                listener = svc.MessageListener("127.0.0.1", port, topic)
                listeners.append(stack.enter_context(listener))
    return listeners


def run_sample(name: str, dashboard: bool = True, *, folder: Path | None = None,
               engine_dir: str | None = None) -> int:
    """``dsrun samples run NAME``: assets, services, every app config of the sample, output paths.

    ``folder``: run the sample in that folder instead (a copy of a gallery folder, e.g. with shorter
    clips); its outputs go where its configs' file sinks write.
    """
    if folder is None:
        samples = {s.name: s for s in find_samples()}
        if name not in samples:
            raise SampleError(f"no sample {name!r} — the gallery has: {', '.join(samples) or 'nothing'} "
                              "(dsrun samples lists them)")
        sample = samples[name]
    else:
        sample = sample_at(folder)
    from runner.app import run_app
    from runner.assets import ensure_assets
    from runner.config import load_app

    log = lambda line: print(f"dsrun: sample {name}: {line}", file=sys.stderr)
    assets = ensure_assets(log=lambda line: print(f"assets: {line}", file=sys.stderr))
    apps = [load_app(config) for config in sample.configs]
    out = _output_dir(apps[0], name)
    out.mkdir(parents=True, exist_ok=True)
    code, written, summary = 0, [], {"sample": name, "configs": [str(c) for c in sample.configs]}
    with contextlib.ExitStack() as stack:
        listeners = _services(apps, assets, out, stack, log)
        for config in sample.configs:
            tag = config.stem.replace("deepstream_app_config", "").strip("_") or "run"
            jsonl = out / ("detections.jsonl" if tag == "run" else f"detections_{tag}.jsonl")
            report = out / f"report_{tag}.json"
            args = argparse.Namespace(config=str(config), report=str(report), no_dashboard=not dashboard,
                                      metrics_port=None, engine_dir=engine_dir, debug=False, jsonl=str(jsonl))
            log(f"running {config}")
            code = max(code, run_app(args))
            written += [p for p in (jsonl, report) if p.is_file()]
        for listener in listeners:
            count = listener.settle()
            path = out / "messages.jsonl"
            listener.save(path)
            written.append(path)
            summary["messages_received"] = count
            log(f"{count} messages received on MQTT topic {listener.topic} (127.0.0.1:{listener.port}), "
                f"saved to {path}")
    if len(sample.configs) > 1 and all("fp" in c.stem or "int8" in c.stem for c in sample.configs):
        summary["precisions"] = compare_precisions(out)
    summary["exit_code"] = code
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    videos = [Path(s.output_file) for app in apps for s in app.sinks
              if int(s.type) == FILE_SINK and getattr(s, "output_file", None)]
    print(f"dsrun: sample {name} finished (exit {code}); output in {out}:")
    for path in [*videos, *written, out / "summary.json"]:
        if path.is_file():
            print(f"  {path}")
    return code
