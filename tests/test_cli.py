"""The command line: deepstream-app's spellings run a config, help leads with the run, errors name the
user's words (not internal names), --version."""

import json
import subprocess
import sys

import pytest

from runner import __version__
from runner.cli import _normalise, main


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["app.txt"], ["run", "app.txt"]),
        (["-c", "app.txt"], ["run", "-c", "app.txt"]),
        (["--debug", "-c", "app.txt"], ["--debug", "run", "-c", "app.txt"]),
        (["-c", "app.txt", "--debug", "-i", "v.mp4"], ["--debug", "run", "-c", "app.txt", "-i", "v.mp4"]),
        (["app.txt", "--report", "r.json"], ["run", "app.txt", "--report", "r.json"]),
        (["--report", "r.json", "app.txt"], ["run", "--report", "r.json", "app.txt"]),
        (["check", "--debug", "a.txt"], ["--debug", "check", "a.txt"]),
        (["check", "a.txt"], ["check", "a.txt"]),
        (["--version"], ["--version"]),
    ],
)
def test_deepstream_app_spellings_mean_run(argv, expected):
    assert _normalise(argv) == expected


@pytest.mark.parametrize("argv, key, value", [
    (["check", "--json", "a.txt"], "json", True),
    (["build-engines", "--json", "a.txt"], "json", True),
    (["bench", "a.txt", "--json", "b.json"], "json", "b.json"),
    (["engines", "list", "--engine-dir", "/e"], "engine_dir", "/e"),
    (["a.txt", "--jsonl", "f.jsonl", "--rep", "r.json"], "report", "r.json"),
])
def test_a_subcommands_options_are_its_own_not_the_run_options_shown_in_the_help(argv, key, value):
    """The top level shows the run options for --help; they never claim another command's option."""
    from runner.cli import _parser

    assert getattr(_parser().parse_args(_normalise(argv)), key) == value


def test_help_leads_with_dsrun_config_and_lists_the_run_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: dsrun CONFIG [options]")
    for option in ("-c CONFIG", "-i URI", "--report JSON", "--no-dashboard", "--metrics-port N", "--jsonl FILE",
                   "--workers N", "--engine-dir DIR", "--version", "check", "build-engines", "samples"):
        assert option in text, option
    assert "exit status" in text and "130 Ctrl-C" in text


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"dsrun {__version__}"


@pytest.mark.parametrize("argv, said", [
    (["engines"], "dsrun engines: error: the following arguments are required: {list,clean}"),
    (["check"], "dsrun check: error: the following arguments are required: CONFIG"),
    (["samples", "run"], "dsrun samples run: error: the following arguments are required: NAME"),
    (["build-engines"], "dsrun build-engines: error: the following arguments are required: CONFIG"),
    (["--report", "r.json"], "dsrun: error: give the config to run: dsrun CONFIG [options], or dsrun -c CONFIG"),
    (["a.txt", "-c", "b.txt"], "dsrun: error: two configs given (a.txt and -c b.txt): give one"),
])
def test_usage_errors_name_what_the_user_typed_and_exit_2(argv, said, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and said in err
    assert "_command" not in err and "required: configs" not in err


def test_dash_c_and_dash_i_run_the_config_on_another_input(tmp_path, assets, repo_root):
    """``dsrun -c CONFIG -i FILE``: deepstream-app's flags; the report names the input that was read."""
    from samples_support import cut, sample_copy

    clip = cut(assets.videos["short"], tmp_path / "clip.mp4", 10)
    folder = sample_copy("test1", tmp_path, assets)
    report = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "-m", "runner", "-c", str(folder / "deepstream_app_config.txt"),
                           "-i", "clip.mp4", "--no-dashboard", "--report", str(report)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(repo_root)})
    assert done.returncode == 0, done.stderr[-2000:]
    (source,) = json.loads(report.read_text())["sources"]
    assert source["uri"] == f"file://{clip}" and source["frames_processed"] == 10 and source["state"] == "ended"


def test_subcommand_options_are_not_taken_for_abbreviations_of_the_run_options(conformance, capsys):
    """`dsrun --help` lists the run options at the top level; `check --json` must still reach check
    (not be refused as an ambiguous abbreviation of --jsonl / --jsonl-rotate / --jsonl-keep)."""
    config = next(iter(sorted(conformance.rglob("deepstream_app_config*.txt"))))
    main(["check", "--json", str(config)])
    out = capsys.readouterr()
    assert "ambiguous option" not in out.err
    assert json.loads(out.out)["configs"][0]["path"] == str(config)
