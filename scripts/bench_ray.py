#!/usr/bin/env python3
"""Ray placement on this machine: the same sources in one process, on a one-node and on a two-node
local Ray cluster (`ray start`, loopback), and the two-node run with its second node killed half-way.

    python3 scripts/bench_ray.py                          # 4 sources of the assets' bikes clip
    python3 scripts/bench_ray.py --sources 8 --cpus 2 --json docs/bench/ray_cpu.json

Each row is a real `dsrun CONFIG [--ray ADDRESS]` run with `--report`; fps is the report's total
frames over the run's wall time (cluster start-up excluded; engine load and actor start-up included).
Prints a table and writes JSON. Needs `pip install "dsrun[ray]"`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).with_name("ray")), *args], env={**os.environ, **RAY_ENV},
                   check=True, capture_output=True, timeout=300)


def start_cluster(nodes: int, cpus: int) -> str:
    port = _port()
    _ray("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
         '--resources={"head": 1}', "--include-dashboard=false", "--disable-usage-stats")
    for n in range(1, nodes):
        _ray("start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
             f'--resources={{"node{n + 1}": 1}}')
    return f"127.0.0.1:{port}"


def stop_cluster() -> None:
    subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"],
                   env={**os.environ, **RAY_ENV}, capture_output=True, timeout=300)


def write_config(folder: Path, clip: Path, sources: int) -> Path:
    from infer_models import write_pgie
    from runner.assets import ensure_assets

    write_pgie(folder, ensure_assets())
    lines = ["[application]", "enable-perf-measurement=0", "", "[tiled-display]", "enable=0", "",
             "[osd]", "enable=0", "", "[streammux]", "batch-size=4", "width=640", "height=360",
             "batched-push-timeout=40000", ""]
    for i in range(sources):
        lines += [f"[source{i}]", "enable=1", "type=2", f"uri=file://{clip}", ""]
    lines += ["[primary-gie]", "enable=1", "config-file=pgie.txt", "", "[sink0]", "enable=1", "type=1",
              "sync=0", ""]
    path = folder / "app.txt"
    path.write_text("\n".join(lines))
    return path


def run(config: Path, engines: Path, *extra: str, kill_node2_after: float | None = None) -> dict:
    report = config.parent / f"report_{time.monotonic_ns()}.json"
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "runner", "run", str(config), "--no-dashboard",
                             "--engine-dir", str(engines), "--report", str(report), *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if kill_node2_after is not None:
            time.sleep(kill_node2_after)
            from test_placement_ray import _kill_tree, _raylets

            _kill_tree(_raylets()["node2"][0])
        _, err = proc.communicate(timeout=1800)
    finally:
        if proc.poll() is None:
            proc.kill()
    wall = time.perf_counter() - t0
    written = json.loads(report.read_text()) if report.exists() else {}
    frames = written.get("totals", {}).get("frames_processed", 0)
    return {"exit_code": proc.returncode, "wall_s": round(wall, 2), "frames": frames,
            "fps": round(frames / wall, 1) if wall else 0.0, "restarts": len(written.get("restarts", [])),
            "workers": len(written.get("workers", [])) or 1, "stderr_tail": err.strip().splitlines()[-3:]}


def main(argv: list[str] | None = None) -> int:
    from runner.assets import ensure_assets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs each Ray node offers (= --ray-cpus: one actor per node)")
    ap.add_argument("--clip", type=Path, default=None, help="default: the assets' bikes clip")
    ap.add_argument("--json", type=Path, default=Path("bench_ray.json"))
    args = ap.parse_args(argv)
    clip = args.clip or Path(ensure_assets().videos["bikes"])
    rows = {}
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, clip, args.sources)
        engines = folder / "engines"
        rows["one process"] = run(config, engines)  # also builds the engine once
        rows["one process"] = run(config, engines)
        for nodes in (1, 2):
            stop_cluster()
            address = start_cluster(nodes, args.cpus)
            try:
                rows[f"ray, {nodes} node(s)"] = run(config, engines, "--ray", address, "--ray-cpus", str(args.cpus))
                if nodes == 2:
                    half = rows["ray, 2 node(s)"]["wall_s"] / 2
                    rows["ray, 2 nodes, node 2 killed half-way"] = run(
                        config, engines, "--ray", address, "--ray-cpus", str(args.cpus), kill_node2_after=half)
            finally:
                stop_cluster()
    print(f"{'placement':40} {'workers':>7} {'frames':>7} {'wall s':>7} {'fps':>7} {'restarts':>8} exit")
    for name, r in rows.items():
        print(f"{name:40} {r['workers']:>7} {r['frames']:>7} {r['wall_s']:>7} {r['fps']:>7} {r['restarts']:>8} "
              f"{r['exit_code']}")
    out = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                       "load_average_at_end": os.getloadavg()},
           "date": time.strftime("%Y-%m-%d"), "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
           "clip": clip.name, "sources": args.sources, "cpus_per_node": args.cpus, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
