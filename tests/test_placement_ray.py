"""`dsrun CONFIG --ray ADDRESS`: the sources sharded over the actors of a real two-node Ray cluster on
loopback (a head and a second node started with `ray start --address`, each with its own resources),
results equal to the one-process run, and a node killed mid-run costing no source and no file frame.

Real things: the `ray` CLI and raylets, 4 file sources of the assets' bikes clip (250 frames) and the
multistream sample's RTSP camera (GStreamer on loopback) playing the same clip, the generated
DetectNet_v2-shaped detector, KITTI dumps (one file per source and frame) to count per-source objects."""

import json
import os
import re
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from infer_models import write_pgie
from pipeline_helpers import count_frames
from rtsp_server import rtsp_server  # noqa: F401 (fixture)

ray = pytest.importorskip("ray")  # the test extra installs it

FILES = 4
# a cluster start, a one-process reference and a sharded run on a loaded 2-core machine: minutes, not seconds
pytestmark = pytest.mark.timeout(1200)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli(*args: str, env: dict) -> None:
    done = subprocess.run([str(Path(sys.executable).with_name("ray")), *args], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr


def _processes() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, command line) of every process on this machine, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # it has just ended
        found[int(entry.name)] = (ppid, cmd)
    return found


def _raylets(temp: str | None = None) -> dict[str, tuple[int, str]]:
    """The raylet of each node on this machine (of the cluster in ``temp``, when given), by the custom
    resource it was started with: name -> (pid, node id)."""
    found = {}
    for pid, (_, cmd) in _processes().items():
        if cmd and cmd[0].endswith("/raylet") and (temp is None or any(temp in a for a in cmd)):
            listed = next((a for a in cmd if a.startswith("--static_resource_list=")), "")
            node_id = next((a.split("=", 1)[1] for a in cmd if a.startswith("--node_id=")), "")
            for name in ("head", "node2"):
                if f"={name}," in listed or f",{name}," in listed:
                    found[name] = (pid, node_id)
    return found


def _kill_tree(root: int) -> None:
    """SIGKILL ``root`` and every process below it at once (a node's raylet, its workers, its agents)."""
    table = _processes()
    doomed, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent and pid not in doomed]
        doomed.update(children)
        frontier += children
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head (2 CPUs, resource `head`) and a second node (2 CPUs, resource `node2`) on this machine,
    in a temp dir of their own; stopped, with every process they started, when the module ends (only
    ours: `ray stop` would also stop another test run's cluster on the same machine).

    The head's Ray Client server and dashboard get free ports (not 10001 and 8265, which another test
    run's cluster on this machine may hold). The client server's command line names the GCS address but
    not the temp dir, and it is not below any process that does (``ray start`` has exited): left alone, it
    outlived the cluster by about a minute on an idle machine, and the session's check failed a run of
    this module alone, under load."""
    env = {**os.environ, **RAY_ENV}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it

    def ours(cmd: list[str]) -> bool:
        return any(temp in arg or (arg.startswith("--address=") and arg.endswith(f":{port}")) for arg in cmd)

    try:
        _ray_cli("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                 f"--temp-dir={temp}", '--resources={"head": 1}', "--include-dashboard=false",
                 f"--ray-client-server-port={_free_port()}", f"--dashboard-port={_free_port()}",
                 "--disable-usage-stats", env=env)
        _ray_cli("start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                 f"--temp-dir={temp}", '--resources={"node2": 1}', env=env)
        yield SimpleNamespace(address=address, temp=temp)
    finally:
        for pid, (_, cmd) in _processes().items():
            if ours(cmd):
                _kill_tree(pid)
        shutil.rmtree(temp, ignore_errors=True)


def write_app(folder: Path, assets, camera_url: str | None, files: int = FILES) -> Path:
    """``files`` file sources (+ the RTSP camera), DetectNet_v2-shaped PGIE, KITTI dumps, fakesink."""
    write_pgie(folder, assets)
    clip = assets.videos["bikes"]
    lines = ["[application]", "enable-perf-measurement=0", f"gie-kitti-output-dir={folder / 'kitti'}", "",
             "[tiled-display]", "enable=0", "", "[osd]", "enable=0", "",
             "[streammux]", "batch-size=4", "width=640", "height=360", "batched-push-timeout=40000", ""]
    for i in range(files):
        lines += [f"[source{i}]", "enable=1", "type=2", f"uri=file://{clip}", ""]
    if camera_url:
        # TCP: RTP over UDP on a loaded loopback loses packets (decode errors that are not the point here)
        lines += [f"[source{files}]", "enable=1", "type=4", f"uri={camera_url}", "select-rtp-protocol=4", ""]
    lines += ["[primary-gie]", "enable=1", "config-file=pgie.txt", "",
              "[sink0]", "enable=1", "type=1", "sync=0", ""]
    (folder / "kitti").mkdir(exist_ok=True)
    path = folder / "app.txt"
    path.write_text("\n".join(lines))
    return path


def dsrun(config: Path, report: Path, engine_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "runner", "run", str(config), "--no-dashboard", "--report",
                             str(report), "--engine-dir", str(engine_dir), *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


def kitti_objects(folder: Path, source: int) -> dict[int, int]:
    """frame number -> objects in that frame's KITTI file, for one source (``00_<src>_<frame>.txt``)."""
    return {int(p.stem.split("_")[2]): len(p.read_text().splitlines())
            for p in (folder / "kitti").glob(f"00_{source:03d}_*.txt")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, assets):
    """The same 4 file sources in one process: what every placement must give."""
    folder = tmp_path_factory.mktemp("one-process")
    config = write_app(folder, assets, camera_url=None)
    proc = dsrun(config, folder / "run.json", folder / "engines")
    err = finish(proc)
    assert proc.returncode == 0, err
    return {sid: kitti_objects(folder, sid) for sid in range(FILES)}


def test_ray_shards_sources_over_both_nodes_with_the_one_process_results(
        cluster, reference, tmp_path, assets, rtsp_server):  # noqa: F811
    camera = rtsp_server({"cam": assets.videos["bikes"]})
    config = write_app(tmp_path, assets, camera.url("cam"))
    report = tmp_path / "run.json"
    proc = dsrun(config, report, tmp_path / "engines", "--ray", cluster.address, "--ray-cpus", "2")
    err = finish(proc)
    assert proc.returncode == 0, err
    written = json.loads(report.read_text())
    frames = count_frames(assets.videos["bikes"])
    assert [(s["source_id"], s["state"]) for s in written["sources"]] == [(i, "ended") for i in range(FILES + 1)]
    assert [s["frames_processed"] for s in written["sources"][:FILES]] == [frames] * FILES
    assert written["sources"][FILES]["frames_processed"] > 0  # the live camera, paced in real time
    # one actor per node (2 CPUs each, --ray-cpus 2), sources dealt round-robin
    nodes = _raylets(cluster.temp)
    assert sorted(w["node"] for w in written["workers"]) == sorted(node for _, node in nodes.values())
    assert sorted(tuple(w["sources"]) for w in written["workers"]) == [(0, 2, 4), (1, 3)]
    assert written["restarts"] == []
    for sid in range(FILES):  # every frame once, with the objects the one-process run found
        assert kitti_objects(tmp_path, sid) == reference[sid]
    assert sum(reference[0].values()) > 0


def test_a_node_lost_mid_run_has_its_sources_resumed_on_the_other_and_no_file_frame_is_lost(
        cluster, reference, tmp_path, assets, rtsp_server):  # noqa: F811
    camera = rtsp_server({"cam": assets.videos["bikes"]})
    config = write_app(tmp_path, assets, camera.url("cam"))
    report = tmp_path / "run.json"
    proc = dsrun(config, report, tmp_path / "engines", "--ray", cluster.address, "--ray-cpus", "2")
    try:
        node2_pid, node2 = _raylets(cluster.temp)["node2"]
        placed = re.compile(r"worker (\d+) \(sources? ([\d, ]+)\) on node \S+ \((\w+)\)")
        victims = None
        while victims is None:  # the driver says where each worker runs
            line = proc.stderr.readline()
            assert line, "dsrun ended before saying where its workers run"
            m = placed.search(line)
            if m and node2.startswith(m.group(3)):
                victims = [int(s) for s in m.group(2).split(",")]
        files = [s for s in victims if s < FILES]
        deadline = time.monotonic() + 300
        while min(len(kitti_objects(tmp_path, s)) for s in files) < 40:  # well into the clip
            assert time.monotonic() < deadline and proc.poll() is None, "node 2's sources never got going"
            time.sleep(0.1)
        _kill_tree(node2_pid)  # the whole node dies at once
        err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "was lost" in err
    written = json.loads(report.read_text())
    frames = count_frames(assets.videos["bikes"])
    assert [s["state"] for s in written["sources"]] == ["ended"] * (FILES + 1)
    assert [s["frames_processed"] for s in written["sources"][:FILES]] == [frames] * FILES
    assert written["totals"]["frames_processed"] == sum(s["frames_processed"] for s in written["sources"])
    assert len(written["restarts"]) == 1, written["restarts"]  # the lost node's actor, once
    [restart] = written["restarts"]
    # its file sources restart; the camera too unless its stream (10 s, real time) had already ended
    assert restart["node"] == node2 and set(files) <= set(restart["sources"]) <= set(victims)
    for sid in files:  # resumed after the last frame the lost actor reported (it reports every 0.2 s,
        # so a little behind the 40+ KITTI files seen at the kill), not from the start
        assert 0 < restart["resumed_at_frame"][str(sid)] < frames
    lost = [w for w in written["workers"] if "lost" in w]
    assert [w["node"] for w in lost] == [node2]
    [replacement] = [w for w in written["workers"] if w.get("replaces") == lost[0]["index"]]
    assert replacement["node"] != node2 and replacement["exit_code"] == 0
    for sid in range(FILES):  # every file frame is there, with the one-process run's objects
        assert kitti_objects(tmp_path, sid) == reference[sid]


def test_a_source_that_keeps_killing_its_actor_fails_after_three_restarts(cluster, tmp_path, assets):
    """A parser that takes its whole process down (as a crashing native parser would): the source is
    restarted on a new actor three times, then fails with an error saying so — the run ends, exit 1."""
    config = write_app(tmp_path, assets, camera_url=None, files=1)
    (tmp_path / "crash.py").write_text("import os\n\n\ndef crash(outputs, network_info, detection_params):\n"
                                       "    os._exit(1)\n")
    pgie = tmp_path / "pgie.txt"
    pgie.write_text(pgie.read_text().replace("[class-attrs-all]", "custom-lib-path=crash.py\n"
                                             "parse-bbox-func-name=crash\n[class-attrs-all]"))
    report = tmp_path / "run.json"
    proc = dsrun(config, report, tmp_path / "engines", "--ray", cluster.address, "--ray-cpus", "2")
    err = finish(proc)
    assert proc.returncode == 1, err
    written = json.loads(report.read_text())
    assert [len(r["sources"]) for r in written["restarts"]] == [1, 1, 1]
    [source] = written["sources"]
    assert source["state"] == "failed"
    assert any("its worker was lost 4 times" in e for e in source["errors"]), source["errors"]
    assert any("its worker was lost 4 times" in e for e in written["errors"])
