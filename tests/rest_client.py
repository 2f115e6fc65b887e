"""A running ``dsrun`` with DeepStream's REST API, driven over real HTTP (requests) by the REST tests.

>>> with DsrunProcess(config, tmp) as run:                                   # doctest: +SKIP
...     run.post("/api/v1/stream/add", add_body("cam1", "file:///v.mp4"))["reason"]
'STREAM_ADD_SUCCESS'
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_body(camera_id: str, url: str, name: str = "", change: str = "camera_add") -> dict:
    """The body DeepStream's documentation gives for /api/v1/stream/add (and, with camera_remove, remove)."""
    return {"key": "sensor", "event": {"camera_id": camera_id, "camera_name": name or camera_id,
                                       "camera_url": url, "change": change,
                                       "metadata": {"resolution": "320x240", "codec": "h264",
                                                    "framerate": 25}},
            "headers": {"source": "vst", "created_at": "2026-12-03T09:00:00.000Z"}}


def live_config(directory: Path, max_batch_size: int = 4, drop_pipeline_eos: bool = False,
                extra: str = "") -> Path:
    """A deepstream-app config whose [source-list] is empty and served by nvmultiurisrcbin."""
    path = directory / "live.txt"
    path.write_text(f"""[application]
enable-perf-measurement=0

[source-list]
num-source-bins=0
use-nvmultiurisrcbin=1
max-batch-size={max_batch_size}
http-ip=127.0.0.1

[source-attr-all]
enable=1
type=3
latency=100

[streammux]
width=320
height=240
batched-push-timeout=40000
drop-pipeline-eos={int(drop_pipeline_eos)}

[sink0]
enable=1
type=1
{extra}""")
    return path


class DsrunProcess:
    """``python -m runner CONFIG --rest-port P --jsonl --report`` in a subprocess; killed on exit."""

    def __init__(self, config: Path, directory: Path, *args: str) -> None:
        self.port = free_port()
        self.directory = Path(directory)
        self.jsonl, self.report = self.directory / "frames.jsonl", self.directory / "report.json"
        self.log = self.directory / "dsrun.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", str(config), "--no-dashboard", "--rest-port", str(self.port),
             "--jsonl", str(self.jsonl), "--report", str(self.report), *args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=self.directory)
        self.base = f"http://127.0.0.1:{self.port}"
        self.responses: list[str] = []  # every response body, for the credential checks

    def __enter__(self) -> "DsrunProcess":
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dsrun exited early:\n{self.log.read_text()}")
            try:
                requests.get(self.base + "/api/v1/live", timeout=2)
                return self
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("dsrun's REST server never answered")

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def post(self, path: str, body) -> dict:
        r = requests.post(self.base + path, data=json.dumps(body), timeout=30)
        self.responses.append(r.text)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, path: str) -> dict:
        r = requests.get(self.base + path, timeout=30)
        self.responses.append(r.text)
        return r.json()

    def streams(self) -> dict[str, int]:
        """camera_id → source_id of the active streams (GET /api/v1/stream/get-stream-info)."""
        info = self.get("/api/v1/stream/get-stream-info")["stream-info"]
        assert info["stream-count"] == len(info["stream-info"])
        return {s["camera_id"]: s["source_id"] for s in info["stream-info"]}

    def frames_processed(self, source_id: int) -> int:
        stats = self.get("/api/v1/metrics")["metrics-info"]["stream-stats"]
        return next((int(s["frame_number"]) for s in stats if s["source_id"] == source_id), 0)

    def wait(self, predicate, timeout: float = 120.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"dsrun exited while waiting for {what}:\n{self.log.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log.read_text()}")

    def finish(self, timeout: float = 120.0) -> int:
        return self.proc.wait(timeout)

    def frames(self) -> dict[int, list[int]]:
        """source id → frame numbers in the order they left the pipeline (from --jsonl)."""
        out: dict[int, list[int]] = {}
        for line in self.jsonl.read_text().splitlines():
            rec = json.loads(line)
            out.setdefault(rec["source_id"], []).append(rec["frame_num"])
        return out
