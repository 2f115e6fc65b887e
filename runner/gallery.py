"""The sample gallery: ``dsrun samples`` lists ``samples/<name>/``, ``dsrun samples run NAME`` runs one.

Each sample folder holds DeepStream app configs (``deepstream_app_config*.txt``), the nvinfer configs
and labels they name, and a README whose first heading line is the sample's one-line description.
Running a sample prepares the assets if missing, starts the local services it needs (an RTSP server
for ``multistream``, an MQTT broker for ``msgbroker``), runs each of its app configs with
``runner.app.run_app`` and says where the output is.

>>> [s.name for s in find_samples()][:2]  # doctest: +SKIP
['face-cascade', 'int8']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from runner.errors import DsrunError

__all__ = ["Sample", "find_samples", "list_samples", "run_sample", "SAMPLES_DIR", "OUT_DIR"]

_REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = _REPO / "samples"
OUT_DIR = _REPO / "out" / "samples"
ORDER = ("test1", "lpr-cascade", "multistream", "msgbroker", "face-cascade", "segmentation", "int8")
RTSP_PORT, MQTT_PORT = 8554, 1883


class SampleError(DsrunError):
    """An unknown sample, or a service a sample needs that cannot be started."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Sample:
    """One gallery folder: its name, one-line description and app configs (run in order)."""

    name: str
    folder: Path
    title: str
    configs: tuple[Path, ...]


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


def find_samples() -> list[Sample]:
    """Every sample folder, in gallery order (the order of the README's table)."""
    folders = [p for p in SAMPLES_DIR.iterdir() if p.is_dir() and (p / "README.md").is_file()] \
        if SAMPLES_DIR.is_dir() else []
    folders.sort(key=lambda p: (ORDER.index(p.name) if p.name in ORDER else len(ORDER), p.name))
    return [Sample(p.name, p, _title(p / "README.md"), _configs(p)) for p in folders]


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
        sources.append(uri.rsplit("/", 1)[-1] if uri.startswith("file://") else uri.split("://")[0] + "://…")
    gies = [g for g in (app.primary_gie, *app.secondary_gies) if g is not None]
    models = [Path(str(g.nvinfer.onnx_file)).stem for g in gies if g.nvinfer and g.nvinfer.onnx_file]
    return ", ".join(sources), " → ".join(models)


def list_samples() -> int:
    """``dsrun samples``: print the gallery table."""
    from rich.console import Console
    from rich.table import Table

    samples = find_samples()
    table = Table(title="dsrun sample gallery — run one with: dsrun samples run NAME")
    for column in ("name", "what it shows", "sources", "models"):
        table.add_column(column, overflow="fold")
    for sample in samples:
        sources, models = _summary(sample)
        table.add_row(sample.name, sample.title, sources, models)
    Console().print(table)
    return 0


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _service(cmd: list[str], port: int, what: str) -> Iterator[None]:
    """Run ``cmd`` (a local server on ``port``) for the duration, unless something already listens."""
    if _listening(port):
        yield
        return
    if shutil.which(cmd[0]) is None:
        raise SampleError(f"this sample needs {what} on 127.0.0.1:{port}, and {cmd[0]} is not installed — "
                          f"install it (Debian: apt-get install {cmd[0]}) or start one yourself")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if cmd[0] != "ffmpeg":  # ffmpeg's RTSP listener accepts only once: do not probe it
            deadline = time.monotonic() + 5
            while not _listening(port) and time.monotonic() < deadline:
                time.sleep(0.1)
        else:
            time.sleep(1.0)
        yield
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()


def _services(name: str, assets) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    if name == "multistream":
        video = assets.videos["carphone"]
        stack.enter_context(_service(
            ["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(video), "-c", "copy",
             "-f", "rtsp", "-rtsp_flags", "listen", f"rtsp://127.0.0.1:{RTSP_PORT}/carphone"],
            RTSP_PORT, "an RTSP server"))
    if name == "msgbroker":
        stack.enter_context(_service(["mosquitto", "-p", str(MQTT_PORT)], MQTT_PORT, "an MQTT broker"))
    return stack


def _compare_precisions(out: Path) -> None:
    """int8: box counts per precision and agreement with FP32 (a box matches at IoU >= 0.5)."""
    import numpy as np

    def boxes(tag: str) -> dict[tuple[int, int], np.ndarray]:
        path = out / f"detections_{tag}.jsonl"
        if not path.is_file():
            return {}
        frames = {}
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            frames[(rec["source_id"], rec["frame_num"])] = np.array(
                [o["bbox"] for o in rec.get("objects", [])], np.float32).reshape(-1, 4)
        return frames

    def matched(a: np.ndarray, b: np.ndarray) -> int:
        if not len(a) or not len(b):
            return 0
        x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
        x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])
        iou = inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)
        return int((iou.max(axis=1) >= 0.5).sum())

    ref = boxes("fp32")
    if not ref:
        return
    total = sum(len(v) for v in ref.values())
    print(f"{'precision':10} {'boxes':>7} {'match FP32':>11}")
    for tag in ("fp32", "fp16", "int8"):
        got = boxes(tag)
        if not got:
            continue
        n = sum(len(v) for v in got.values())
        hit = sum(matched(ref[k], got.get(k, np.zeros((0, 4)))) for k in ref)
        print(f"{tag:10} {n:7d} {hit / max(total, 1):10.1%}")


def run_sample(name: str, dashboard: bool = True) -> int:
    """``dsrun samples run NAME``: assets, services, every app config of the sample, output paths."""
    samples = {s.name: s for s in find_samples()}
    if name not in samples:
        raise SampleError(f"no sample {name!r} — the gallery has: {', '.join(samples) or 'nothing'} "
                          "(dsrun samples lists them)")
    sample = samples[name]
    from runner.app import run_app
    from runner.assets import default_root, ensure_assets

    assets = ensure_assets(log=lambda line: print(f"assets: {line}", file=sys.stderr))
    if assets.root != default_root() or assets.root != _REPO / "assets":
        print(f"dsrun: note: samples name ../../assets (in {_REPO}); DSRUN_ASSETS={assets.root} is not used "
              "by their configs", file=sys.stderr)
    out = OUT_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    code = 0
    with _services(name, assets):
        for config in sample.configs:
            tag = config.stem.replace("deepstream_app_config", "").strip("_") or "run"
            args = argparse.Namespace(
                config=str(config), report=str(out / f"report_{tag}.json"), no_dashboard=not dashboard,
                metrics_port=None, engine_dir=None, debug=False,
                jsonl=str(out / ("detections.jsonl" if tag == "run" else f"detections_{tag}.jsonl")))
            print(f"dsrun: sample {name}: running {config.relative_to(_REPO)}", file=sys.stderr)
            code = max(code, run_app(args))
    if name == "int8":
        _compare_precisions(out)
    print(f"dsrun: sample {name} finished (exit {code}); output in {out}")
    return code
