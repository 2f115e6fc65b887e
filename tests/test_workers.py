"""`dsrun CONFIG --workers N`: the sources split over N processes, one run to the user — every frame of
every source processed once, one --report, one stream of **PERF lines, Ctrl-C drains, configs whose
outputs need every source in one process refused. Real clip (the assets' 30-frame short_360p), the
generated DetectNet_v2-shaped detector, real child processes."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from infer_models import write_pgie
from runner.cli import main
from runner.placement import plan_shards
from runner.ui.perf import VALUE_LINE

from pipeline_helpers import count_frames

SOURCES = 4
HEADER = re.compile(r"\*\*PERF:\s+((?:FPS \d+ \(Avg\)\s*)+)")
PAIR = re.compile(r"(\d+\.\d+) \((\d+\.\d+)\)")


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def write_app(folder, assets, *, tiled=0, sinks=((1, ""),), perf=False, loop=False):
    """4 sources of the same clip, DetectNet_v2-shaped PGIE, streammux batch 4 at 640x360."""
    write_pgie(folder, assets)
    lines = ["[application]", f"enable-perf-measurement={int(perf)}", "perf-measurement-interval-sec=1", "",
             "[tiled-display]", f"enable={tiled}", "rows=2", "columns=2", "width=640", "height=360", "",
             "[osd]", "enable=0", "",
             "[streammux]", "batch-size=4", "width=640", "height=360", "batched-push-timeout=40000", ""]
    for i in range(SOURCES):
        lines += [f"[source{i}]", "enable=1", "type=2", f"uri=file://{assets.videos['short']}", ""]
    lines += ["[primary-gie]", "enable=1", "config-file=pgie.txt", ""]
    for i, (kind, extra) in enumerate(sinks):
        lines += [f"[sink{i}]", "enable=1", f"type={kind}", "sync=0", extra, ""]
    lines += ["[tests]", f"file-loop={int(loop)}", ""]
    path = folder / "app.txt"
    path.write_text("\n".join(lines))
    return path


def run(config, engine_dir, *extra):
    return main(["run", str(config), "--no-dashboard", "--engine-dir", str(engine_dir), *extra])


def test_the_split_is_round_robin_over_ascending_source_ids_and_covers_each_once():
    ids = [7, 0, 3, 12, 5]
    shares = [list(shard.sources) for shard in plan_shards(ids, 3)]
    assert shares == [[0, 7], [3, 12], [5]]
    assert sorted(s for share in shares for s in share) == sorted(ids)


def test_two_workers_process_every_frame_of_every_source_once_with_the_same_detections(
        tmp_path, assets, engine_dir):
    config = write_app(tmp_path, assets)
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert run(config, engine_dir, "--report", str(one)) == 0
    assert run(config, engine_dir, "--workers", "2", "--report", str(two)) == 0

    frames = count_frames(assets.videos["short"])
    single, split = json.loads(one.read_text()), json.loads(two.read_text())
    assert [(s["source_id"], s["frames_processed"], s["state"]) for s in split["sources"]] == \
        [(sid, frames, "ended") for sid in range(SOURCES)]
    totals = split["totals"]
    for key in ("frames_decoded", "frames_processed", "dropped", "reconnects"):
        assert totals[key] == sum(s[key] for s in split["sources"])
    assert totals["frames_processed"] == SOURCES * frames and totals["sources"] == SOURCES
    assert split["workers"][0]["sources"] == [0, 2] and split["workers"][1]["sources"] == [1, 3]
    assert [w["exit_code"] for w in split["workers"]] == [0, 0]
    assert len({w["pid"] for w in split["workers"]}) == 2
    # the same model on the same frames: the children's counts add up to the one-process run's
    assert single["inference"]["objects"] and split["inference"] == single["inference"]
    assert split["totals"]["objects"] == single["totals"]["objects"] > 0
    assert split["stages"]["primary-gie"]["frames"] == SOURCES * frames
    assert all(0 <= s["first_output_s"] < s["last_output_s"] <= split["elapsed_s"] for s in split["sources"])


@pytest.mark.parametrize("change, named", [
    ({"tiled": 1}, r"app\.txt:6 \[tiled-display\] enable: enable=1"),
    ({"sinks": ((1, ""), (3, "output-file=out.mp4"))}, r"app\.txt:\d+ \[sink1\] type: type=3 \(encode to file\)"),
    ({"sinks": ((4, ""),)}, r"\[sink0\] type: type=4 \(RTSP streaming\)"),
])
def test_outputs_that_need_every_source_in_one_process_are_refused_naming_the_key(
        tmp_path, assets, engine_dir, capsys, change, named):
    config = write_app(tmp_path, assets, **change)
    report = tmp_path / "run.json"
    assert run(config, engine_dir, "--workers", "2", "--report", str(report)) == 2
    err = capsys.readouterr().err
    assert re.search(named, err), err
    assert "--workers" in err and "worker 0" not in err  # refused before any child started
    assert json.loads(report.read_text())["status"] == "config_error"


def test_jsonl_is_refused_with_workers(tmp_path, assets, engine_dir, capsys):
    config = write_app(tmp_path, assets)
    assert run(config, engine_dir, "--workers", "2", "--jsonl", str(tmp_path / "out.jsonl")) == 2
    assert "--jsonl cannot be combined with --workers" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_a_worker_that_cannot_start_is_an_error_naming_it_and_its_sources(
        tmp_path, assets, engine_dir, capsys, monkeypatch):
    config = write_app(tmp_path, assets)
    report = tmp_path / "run.json"
    monkeypatch.setattr(sys, "executable", "/bin/false")  # a real program that exits 1 at once
    assert run(config, engine_dir, "--workers", "2", "--report", str(report)) == 1
    err = capsys.readouterr().err
    assert "worker 0 (sources 0, 2) failed to start: it exited with status 1" in err
    assert "worker 1 (sources 1, 3) failed to start" in err
    written = json.loads(report.read_text())
    assert [s["state"] for s in written["sources"]] == ["failed"] * SOURCES
    assert any("worker 1 (sources 1, 3)" in e for e in written["errors"])


def test_perf_lines_list_every_source_and_ctrl_c_drains_every_worker(tmp_path, assets, engine_dir, repo_root):
    config = write_app(tmp_path, assets, perf=True, loop=True)
    report = tmp_path / "run.json"
    parent = subprocess.Popen([sys.executable, "-m", "runner", "run", str(config), "--no-dashboard",
                               "--workers", "2", "--engine-dir", str(engine_dir), "--report", str(report)],
                              cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    header, moving, deadline = None, None, time.monotonic() + 60
    try:
        for line in parent.stdout:  # wait for a line where every source has frames in its interval
            line = line.rstrip("\n")
            if HEADER.fullmatch(line):
                header = [int(x) for x in re.findall(r"FPS (\d+)", line)]
            elif VALUE_LINE.fullmatch(line):
                figures = [(float(a), float(b)) for a, b in PAIR.findall(line)]
                if all(fps > 0 and avg > 0 for fps, avg in figures):
                    moving = figures
                    break
            assert time.monotonic() < deadline, "no **PERF line with every source moving in 60 s"
        parent.send_signal(signal.SIGINT)
        out, err = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert header == list(range(SOURCES)) and len(moving) == SOURCES
    assert parent.returncode == 130, err
    assert "stopping: the workers finish the frames already decoded" in err
    written = json.loads(report.read_text())
    assert written["interrupted"] and written["exit_code"] == 130
    assert [w["exit_code"] for w in written["workers"]] == [130, 130]
    assert all(s["state"] == "ended" and s["frames_processed"] > 0 for s in written["sources"])
    assert written["totals"]["frames_processed"] == sum(s["frames_processed"] for s in written["sources"])


def test_a_worker_child_waits_for_the_parents_start_before_decoding(tmp_path, assets, engine_dir, repo_root):
    """Children start together: a child that is ready decodes nothing until the parent says start."""
    config = write_app(tmp_path, assets)
    assert run(config, engine_dir, "--report", str(tmp_path / "warm.json")) == 0  # engines built
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", str(config), "--no-dashboard",
                              "--engine-dir", str(engine_dir), "--shard", "1,3", "--worker-index", "1"],
                             cwd=repo_root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        messages = iter(map(json.loads, child.stdout))
        assert next(messages)["kind"] == "ready"
        held = [next(messages) for _ in range(5)]  # a second of counters while it waits
        assert all(m["kind"] == "stats" for m in held)
        assert [s["frames_decoded"] for s in held[-1]["stats"]["sources"].values()] == [0, 0]
        child.stdin.write("start\n")
        child.stdin.flush()
        last = [m for m in messages if m["kind"] == "stats"][-1]
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0
    frames = count_frames(assets.videos["short"])
    assert [s["frames_processed"] for s in last["stats"]["sources"].values()] == [frames, frames]


def test_each_worker_gets_its_share_of_the_cores_unless_the_user_set_the_thread_counts(monkeypatch):
    from runner.placement.processes import thread_share

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENCV_FOR_THREADS_NUM", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert thread_share(4) == {"OMP_NUM_THREADS": "4", "OPENCV_FOR_THREADS_NUM": "4"}
    assert thread_share(32) == {"OMP_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_share(4) == {"OPENCV_FOR_THREADS_NUM": "4"}


def test_a_running_mps_daemon_is_recognised_by_its_process_name(tmp_path):
    """The hint to start CUDA MPS looks for its control daemon among the running processes."""
    import shutil

    from runner.placement.processes import mps_running

    assert not mps_running()  # CI and this machine run none
    daemon = tmp_path / "nvidia-cuda-mps-control"
    shutil.copy(shutil.which("sleep"), daemon)
    proc = subprocess.Popen([str(daemon), "30"])
    try:
        deadline = time.monotonic() + 5
        while not mps_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mps_running()
    finally:
        proc.kill()
        proc.wait()
    assert not mps_running()


def test_on_a_machine_with_several_gpus_each_worker_runs_on_its_own(tmp_path, assets, engine_dir, monkeypatch):
    """One worker per GPU: with GPUs 3 and 5 visible, worker 0 runs with CUDA_VISIBLE_DEVICES=3 and
    worker 1 with 5 (each child says what it runs with; on this CPU machine the ids are only names)."""
    config = write_app(tmp_path, assets)
    report = tmp_path / "run.json"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert run(config, engine_dir, "--workers", "2", "--report", str(report)) == 0
    written = json.loads(report.read_text())
    assert [(w["sources"], w["gpu"]) for w in written["workers"]] == [([0, 2], "3"), ([1, 3], "5")]
    assert written["totals"]["frames_processed"] == SOURCES * count_frames(assets.videos["short"])


def test_visible_gpus_follow_cuda_visible_devices_else_the_driver(tmp_path):
    from runner.placement.devices import visible_gpus

    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-8f2a,GPU-11c0"}) == ["GPU-8f2a", "GPU-11c0"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]  # CUDA stops at the first invalid id
    for pci in ("0000:17:00.0", "0000:65:00.0", "0000:ca:00.0"):  # the driver's /proc layout
        (tmp_path / pci).mkdir()
    assert visible_gpus({}, driver=tmp_path) == ["0", "1", "2"]
    assert visible_gpus({}, driver=tmp_path / "absent") == []
