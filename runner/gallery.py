"""The sample gallery: ``dsrun samples`` lists ``samples/<name>/``, ``dsrun samples run NAME`` runs one.

Each sample folder holds DeepStream app configs (``deepstream_app_config*.txt``), the nvinfer configs
and labels they name, and a README whose first heading line is the sample's one-line description.
The gallery ships inside the package (:func:`runner.resources.data_dir`); its files name the assets as
``../../assets/<file>`` and their outputs as ``../../out/samples/<name>/<file>``, which is where they
point in the repository. Running a sample (:func:`run_sample`):

1. prepares the assets that sample needs, and only those (:func:`asset_files`: the files its configs
   name, a folder meaning every asset in it, and the video behind a local RTSP camera), one progress
   line per asset built;
2. writes a runnable copy of the sample to ``<out>/configs/`` (``<out>``: ``--out``, default
   ``./dsrun-out/<name>``) with those paths made absolute — edit it and run it with ``dsrun CONFIG``;
3. starts the local services its configs name (an RTSP camera for ``multistream``, an MQTT broker and
   a listener for ``msgbroker``; see :mod:`runner.gallery_services`), runs each app config with
   ``runner.app.run_app`` and says where the output is: ``<out>/`` gets the videos, ``detections*.jsonl``
   (every frame's objects), ``report_*.json`` and ``summary.json``.

>>> [s.name for s in find_samples()][:3]
['test1', 'lpr-cascade', 'multistream']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from runner.errors import DsrunError
from runner.resources import data_dir

__all__ = ["Sample", "SampleError", "find_samples", "list_samples", "run_sample", "prepare_samples",
           "asset_files", "materialise", "compare_precisions", "SAMPLES_DIR"]

SAMPLES_DIR = data_dir("samples")
DEFAULT_OUT = Path("dsrun-out")  # under the current directory: ./dsrun-out/<name>
# how a sample's files name the assets, their outputs and the engine folder (relative to the sample)
ASSETS_REF, ENGINES_REF = "../../assets/", "../../engines/"
OUT_REF = "../../out/samples/{name}/"
_ASSET_PATH = re.compile(re.escape(ASSETS_REF) + r"([^\s\"',;#]+)")
_LOCAL_CAMERA = re.compile(r"rtsp://(?:127\.0\.0\.1|localhost):\d+/([\w.-]+)")
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
                  "output in ./dsrun-out/NAME/ (--out DIR); dsrun samples prepare NAME builds its assets ahead")
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


def asset_files(sample: Sample) -> list[str]:
    """The asset files (relative to the assets root; a folder stands for the assets in it) that a
    sample's files name: ``../../assets/<path>`` outside comments, and ``rtsp://127.0.0.1:PORT/<video>``
    (the gallery's RTSP camera serves that video). Adding a sample needs no other declaration.

    >>> asset_files(sample_at(SAMPLES_DIR / "test1"))
    ['models/detectnet_resnet18_small.onnx', 'videos/sample_720p.h264']
    """
    from runner.assets import SPECS

    videos = {s.name: s.file for s in SPECS if s.kind == "videos"}
    found: set[str] = set()
    for path in sorted(sample.folder.rglob("*")):
        if not path.is_file() or path.suffix in (".md", ".py", ".png", ".jpg"):
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.split("#", 1)[0]  # INI and YAML comments (an asset a comment names is not needed)
            found.update(m.rstrip("/") for m in _ASSET_PATH.findall(line))
            found.update(videos[m] for m in _LOCAL_CAMERA.findall(line) if m in videos)
    return sorted(found)


def materialise(sample: Sample, out: Path, assets_root: Path) -> Path:
    """A runnable copy of ``sample`` in ``out/configs`` whose paths name ``assets_root`` and ``out``."""
    out = out.resolve()
    target = out / "configs"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(sample.folder, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in target.rglob("*"):
        if not path.is_file() or path.suffix in (".md", ".py", ".png", ".jpg"):
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        new = (text.replace(ASSETS_REF, f"{assets_root}/").replace(OUT_REF.format(name=sample.name), f"{out}/")
               .replace(ENGINES_REF, f"{out}/"))
        if new != text:
            path.write_text(new, encoding="utf-8", errors="surrogateescape")
    return target


def _sample(name: str) -> Sample:
    samples = {s.name: s for s in find_samples()}
    if name not in samples:
        raise SampleError(f"no sample {name!r} — the gallery has: {', '.join(samples) or 'nothing'} "
                          "(dsrun samples lists them)")
    return samples[name]


def _prepare(sample: Sample, log) -> "Assets":  # noqa: F821
    from runner.assets import ensure_assets

    files = asset_files(sample)
    log(f"sample {sample.name} needs {len(files)} asset(s): {', '.join(files) or 'none'}")
    return ensure_assets(only=files, log=lambda line: log(f"assets: {line}"))


def prepare_samples(names: list[str], everything: bool = False) -> int:
    """``dsrun samples prepare NAME... | --all``: build the assets of these samples (``--all``: of every
    sample, and those the tests and benchmarks use) ahead of running them."""
    from runner.assets import ensure_assets

    log = lambda line: print(f"dsrun: {line}", file=sys.stderr)
    if everything:
        assets = ensure_assets(log=lambda line: log(f"assets: {line}"))
        for sample in find_samples():  # a sample may name an asset beyond the default set
            _prepare(sample, log)
    else:
        if not names:
            raise SampleError("say which samples to prepare (dsrun samples prepare NAME...), or --all")
        for sample in [_sample(n) for n in names]:
            assets = _prepare(sample, log)
    print(f"dsrun: assets ready in {assets.root}")
    return 0


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


def run_sample(name: str, dashboard: bool = True, *, out: Path | str | None = None, folder: Path | None = None,
               engine_dir: str | None = None) -> int:
    """``dsrun samples run NAME [--out DIR]``: its assets, a runnable copy in ``DIR/configs`` (default
    ``./dsrun-out/NAME``), services, every app config of the sample, output paths.

    ``folder``: run the sample in that folder as it is (a copy of a gallery folder whose paths are
    already absolute, e.g. with shorter clips); its outputs go where its configs' file sinks write.
    """
    from runner.app import run_app
    from runner.config import load_app

    log = lambda line: print(f"dsrun: {line}", file=sys.stderr)
    if folder is None:
        sample = _sample(name)
        assets = _prepare(sample, log)
        out = Path(out) if out is not None else DEFAULT_OUT / name
        sample = sample_at(materialise(sample, out, assets.root))
        out = out.resolve()
    else:
        from runner.assets import ensure_assets

        sample = sample_at(folder)
        assets = ensure_assets(only=[])  # the paths of every asset; a copy names them itself
        out = None
    log = lambda line: print(f"dsrun: sample {name}: {line}", file=sys.stderr)  # noqa: E731
    apps = [load_app(config) for config in sample.configs]
    if out is None:
        out = next((Path(s.output_file).parent for app in apps for s in app.sinks
                    if int(s.type) == FILE_SINK and getattr(s, "output_file", None)), sample.folder / "out")
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
    if folder is None:
        print(f"  configs: {sample.folder} (edit and run: dsrun {sample.configs[0]})")
    return code
