"""`dsrun bench CONFIG`: the gallery's own configs replicated N times on this machine's CPU, each count
in a child process of its own — a table, a JSON row per count, exit 0 when at least one stream holds
the target rate, 1 when even one cannot, 2 for a config error. Rates are not asserted against the
clock (the machine is shared): targets far below (1 fps) and far above (10^6 fps) what any run does."""

import doctest
import importlib
import json

import pytest

from runner.bench.capacity import search
from runner.bench.streams import config_batch, replicate, source_rate
from runner.cli import main
from runner.config import load_app


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def bench(repo_root, engine_dir, out, *extra, sample="test1/deepstream_app_config.txt"):
    return main(["bench", str(repo_root / "samples" / sample), "--seconds", "1.5", "--warmup", "0.5",
                 "--engine-dir", str(engine_dir), "--json", str(out), *extra])


def test_bench_runs_each_count_of_the_test1_sample_and_writes_a_row_per_count(repo_root, engine_dir, tmp_path,
                                                                                  capsys):
    out = tmp_path / "bench.json"
    assert bench(repo_root, engine_dir, out, "--streams", "1,2", "--fps", "1", "--batch", "2", "--ceilings") == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["sources"] for r in rows] == [1, 2]
    assert [r["batch"] for r in rows] == [1, 2]  # the batch grows with the sources up to --batch
    assert all(r["held"] and r["exit_code"] == 0 and r["min_source_fps"] >= 1 for r in rows)
    assert result["max_streams_held"] == 2 and result["target_fps"] == 1.0
    assert result["command"].startswith("dsrun bench ") and "--streams 1,2" in result["command"]
    for r in rows:  # every stage of the sample ran inside the window: the PGIE and the OSD
        assert {"primary-gie", "osd"} <= set(r["stages"]) and r["busiest_stage"] in r["stages"]
        assert r["aggregate_fps"] >= 0.95 * r["sources"] * r["min_source_fps"]
        assert r["phases_ms_per_frame"]["primary-gie"]["infer"] > 0
        assert r["utilisation"]["cpu_cores"] >= 1 and r["bound"]
    assert result["ceilings"]["decode"]["decoder"] == "ffmpeg" and result["ceilings"]["decode"]["fps"] > 0
    assert result["ceilings"]["primary_engine"]["batch"] == 2
    table = capsys.readouterr().out
    assert "busiest stage" in table and "2 stream(s) held at >= 1 fps each" in table


def test_bench_exits_1_and_names_the_bound_when_even_one_stream_cannot_hold(repo_root, engine_dir, tmp_path,
                                                                             capsys):
    out = tmp_path / "bench.json"
    assert bench(repo_root, engine_dir, out, "--fps", "1000000", "--max-streams", "4") == 1
    result = json.loads(out.read_text())
    assert [r["sources"] for r in result["rows"]] == [1]  # the ramp stops at the first count not held
    assert result["max_streams_held"] == 0 and not result["rows"][0]["held"]
    assert result["bound"] == result["rows"][0]["bound"] and result["bound"]
    assert "0 stream(s) held" in capsys.readouterr().out


def test_bench_of_a_broken_config_is_a_config_error_naming_the_file(tmp_path, capsys):
    config = tmp_path / "app.txt"
    config.write_text("[source0]\nenable=1\ntype=3\nuri=file:///nowhere.mp4\n\n[streammux]\nbatch-size=two\n")
    assert main(["bench", str(config), "--json", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert f"{config}:7" in err and "batch-size" in err
    assert not (tmp_path / "b.json").exists()


def test_replicate_cycles_the_configs_sources_and_grows_the_batch_up_to_the_configs(repo_root):
    app = load_app(repo_root / "samples/multistream/deepstream_app_config.txt")
    assert config_batch(app) == 4
    bench_app = replicate(app, 6, interval=0)
    uris = [s.uri for s in app.sources]
    assert [s.uri for s in bench_app.sources] == uris + uris[:2]
    assert [s.index for s in bench_app.sources] == list(range(6)) and bench_app.tests.file_loop
    assert bench_app.streammux.batch_size == 4 and bench_app.primary_gie.nvinfer.batch_size == 4
    assert bench_app.primary_gie.nvinfer.interval == 0 and app.primary_gie.nvinfer.interval == 2
    assert replicate(app, 2).streammux.batch_size == 2
    assert bench_app.tracker == app.tracker and bench_app.secondary_gies == app.secondary_gies


def test_replicate_with_a_clip_and_the_target_is_the_clips_own_rate(repo_root, assets):
    app = load_app(repo_root / "samples/test1/deepstream_app_config.txt")
    clip = assets.videos["short"]
    bench_app = replicate(app, 3, clip=clip, batch=8)
    assert {s.uri for s in bench_app.sources} == {clip.resolve().as_uri()}
    assert bench_app.streammux.batch_size == 3
    import av

    with av.open(str(clip)) as c:
        expected = float(c.streams.video[0].average_rate)
    assert source_rate(app, clip) == (pytest.approx(expected, abs=1e-3), f"{clip.name} rate")


def test_search_doubles_then_bisects_to_an_eighth_of_the_best_count():
    seen = []
    rows = search(lambda n: seen.append(n) or {"sources": n, "held": n <= 40}, max_streams=64)
    assert seen == [1, 2, 4, 8, 16, 32, 64, 48, 40, 44]
    assert max(r["sources"] for r in rows if r["held"]) == 40
    assert [r["sources"] for r in rows] == sorted(seen)


@pytest.mark.parametrize("name", ["runner.bench.streams", "runner.bench.capacity", "runner.bench.utilisation"])
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
