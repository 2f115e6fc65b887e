"""Each broken config of ../shared/conformance/broken fails (or warns) at exactly its defect."""

import json
from pathlib import Path

import pytest

from runner.config import ConfigError, inspect_app, inspect_nvinfer, load_app, load_nvinfer

BROKEN = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "broken"
CASES = json.loads((BROKEN / "expected.json").read_text())


def _is_nvinfer(case: dict) -> bool:
    return "nvinfer" in case["defect"] or "Gst-nvinfer" in case["defect"]


def _inspect(case: dict):
    path = BROKEN / case["file"]
    return (inspect_nvinfer if _is_nvinfer(case) else inspect_app)(path)


def _at_defect(diag, case) -> bool:
    return (diag.file == str(BROKEN / case["file"]) and diag.line == case["line"]
            and diag.group == case["group"] and diag.key == case["key"])


@pytest.mark.parametrize("case", [c for c in CASES if c["should_fail"]], ids=lambda c: c["file"])
def test_broken_config_fails_at_exactly_its_defect(case):
    _, diags = _inspect(case)
    located = [d for d in diags if _at_defect(d, case)]
    assert located, [str(d) for d in diags]
    assert located[0].is_error
    assert str(located[0]).startswith(f"{BROKEN / case['file']}")
    loader = load_nvinfer if _is_nvinfer(case) else load_app
    with pytest.raises(ConfigError) as raised:
        loader(BROKEN / case["file"])
    assert raised.value.exit_code == 2
    assert str(located[0]) in str(raised.value)


@pytest.mark.parametrize("case", [c for c in CASES if c.get("expect_warning")], ids=lambda c: c["file"])
def test_suspicious_config_warns_at_exactly_its_defect(case):
    _, diags = _inspect(case)
    located = [d for d in diags if _at_defect(d, case)]
    assert located and located[0].severity == "warning", [str(d) for d in diags]
    # nothing else about the defect is an error
    assert not [d for d in diags if d.is_error and d.group == case["group"] and d.key == case["key"]]


def test_misspelt_key_suggests_the_right_spelling():
    case = next(c for c in CASES if c["key"] == "batch-szie")
    _, diags = _inspect(case)
    assert "did you mean 'batch-size'" in str(next(d for d in diags if _at_defect(d, case)))


def test_group_typo_suggests_the_right_group():
    case = next(c for c in CASES if c["group"] == "primary-gei")
    _, diags = _inspect(case)
    assert "[primary-gie]" in str(next(d for d in diags if _at_defect(d, case)))


def test_duplicated_key_keeps_the_later_value_as_glib_does():
    case = next(c for c in CASES if c["defect"].startswith("duplicated key"))
    config, diags = _inspect(case)
    assert config.streammux.width == 1280
    assert f"line {case['first_line']}" in next(str(d) for d in diags if _at_defect(d, case))


def test_unterminated_group_header_is_one_error_not_a_cascade():
    case = next(c for c in CASES if "unterminated" in c["defect"])
    _, diags = _inspect(case)
    assert [d.line for d in diags if d.code == "syntax"] == [case["line"]]
