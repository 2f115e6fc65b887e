"""Credentials in a config never reach any output: CLI errors, `dsrun check` (text and --json), --report."""

import json
import subprocess
import sys
from pathlib import Path

from runner.redact import redact

PASSWORD, TOKEN = "hunter2", "tok123"

# a config with credentials in its source URIs *and* an error elsewhere in the file: the config layer
# quotes the bad URI in its diagnostic, the CLI prints the ConfigError
CONFIG = f"""\
[source-list]
num-source-bins=2
list=rtsp://admin:{PASSWORD}@10.0.0.5:554/live;http://bob:{PASSWORD}@cam/x?token={TOKEN}

[source-attr-all]
enable=1
type=3

[streammux]
batch-size=four
width=1280
height=720

[sink0]
enable=1
type=1
"""


def _dsrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])


def test_redact_hides_user_and_password_and_keeps_the_rest():
    assert redact("rtsp://user:pa55@cam.local/stream") == "rtsp://***:***@cam.local/stream"
    assert redact("file:///a/b.mp4") == "file:///a/b.mp4"


def test_config_error_quoting_a_uri_with_a_password_is_printed_redacted(tmp_path):
    config = tmp_path / "app.txt"
    config.write_text(CONFIG)
    report = tmp_path / "run.json"
    for args in ([str(config), "--report", str(report)], ["--debug", str(config)]):
        result = _dsrun(*args)
        assert result.returncode == 2
        out = result.stdout + result.stderr
        assert "[source-list] list: URI 1 'http://***:***@cam/x?token=***'" in out  # the error is shown
        assert "[streammux] batch-size" in out
        assert PASSWORD not in out and TOKEN not in out
    assert PASSWORD not in report.read_text() and json.loads(report.read_text())["errors"]


def test_check_text_and_json_never_show_the_password(tmp_path):
    config = tmp_path / "app.txt"
    config.write_text(CONFIG)
    text = _dsrun("check", str(config))
    assert text.returncode == 2 and "batch-size" in text.stdout
    assert PASSWORD not in text.stdout + text.stderr and TOKEN not in text.stdout
    as_json = _dsrun("check", "--json", str(config))
    assert as_json.returncode == 2 and PASSWORD not in as_json.stdout + as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["configs"][0]["pipeline"]["sources"][0]["uri"] == "rtsp://***:***@10.0.0.5:554/live"
    bad_uri = next(d for d in doc["diagnostics"] if d["key"] == "list")
    assert bad_uri["line"] == 3 and "http://***:***@cam/x" in bad_uri["message"]


def test_docstring_examples_hold():
    import doctest

    import runner.redact
    result = doctest.testmod(runner.redact)
    assert result.failed == 0 and result.attempted > 0


def test_prose_about_key_value_pairs_is_not_redacted():
    message = "app.txt:3 [streammux]: 'batch-size' is not a key=value pair, a [group] or a # comment"
    assert redact(message) == message
    assert redact("http://h/x?key=abc&sig=def") == "http://h/x?key=***&sig=***"
