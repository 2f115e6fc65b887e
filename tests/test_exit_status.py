"""Every way a run ends has its exit status (listed in the README) and writes the --report asked for:
a model that cannot be read is exit 3 with the error in the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from runner.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _app(folder: Path, assets, onnx: Path) -> Path:
    (folder / "pgie.txt").write_text(f"""[property]
onnx-file={onnx}
net-scale-factor=0.00392156862745098
batch-size=1
num-detected-classes=4
gie-unique-id=1
""")
    (folder / "app.txt").write_text(f"""[source0]
enable=1
type=2
uri=file://{assets.videos['short']}
[streammux]
batch-size=1
width=320
height=240
[primary-gie]
enable=1
config-file=pgie.txt
[sink0]
enable=1
type=1
""")
    return folder / "app.txt"


def test_a_truncated_onnx_model_exits_3_and_writes_the_report(tmp_path, assets, capsys):
    real = Path(assets.models["detectnet_small"]).read_bytes()
    broken = tmp_path / "detector.onnx"
    broken.write_bytes(real[: len(real) // 3])  # a copy cut off part-way
    report = tmp_path / "out" / "run.json"
    code = main([str(_app(tmp_path, assets, broken)), "--no-dashboard", "--report", str(report),
                 "--engine-dir", str(tmp_path / "engines")])
    err = capsys.readouterr().err
    doc = json.loads(report.read_text())
    assert code == 3 and doc["exit_code"] == 3 and doc["status"] == "model_error"
    assert f"{broken} is not a readable ONNX model" in doc["errors"][0] and doc["errors"][0] in err
    assert "Traceback" not in err


def test_the_readme_lists_every_exit_status_the_report_knows():
    from runner.pipeline.report import STATUS

    text = README.read_text()
    listed = re.search(r"Exit status(.*?)\n\n", text, re.S)
    assert listed, "README has no 'Exit status' paragraph"
    for code in STATUS:
        assert f"`{code}`" in listed.group(1), f"exit status {code} ({STATUS[code]}) missing from the README"
