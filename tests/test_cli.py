"""The command line routes deepstream-app's spellings to the run command."""

import pytest

from runner.cli import _normalise


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["app.txt"], ["run", "app.txt"]),
        (["-c", "app.txt"], ["run", "app.txt"]),
        (["--debug", "-c", "app.txt"], ["--debug", "run", "app.txt"]),
        (["app.txt", "--report", "r.json"], ["run", "app.txt", "--report", "r.json"]),
        (["check", "--debug", "a.txt"], ["--debug", "check", "a.txt"]),
        (["check", "a.txt"], ["check", "a.txt"]),
    ],
)
def test_deepstream_app_spellings_mean_run(argv, expected):
    assert _normalise(argv) == expected
