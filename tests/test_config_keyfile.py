"""The GLib key-file reader: GLib's rules, file:line for everything, and never a traceback."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.config.keyfile import parse_bool, parse_float, parse_int, parse_keyfile, split_list, unescape
from runner.config.yaml import parse_yaml


def entries(doc, group):
    return {k: (e.value, e.line) for k, e in doc.groups[group].entries.items()}


def test_comments_blank_lines_and_whitespace_around_equals_are_ignored():
    doc = parse_keyfile(b"# top\n\n[tests]\n  # indented comment\nfile-loop = 1\n", "t.txt")
    assert entries(doc, "tests") == {"file-loop": ("1", 5)}
    assert doc.diagnostics == []


def test_crlf_and_missing_final_newline_are_read():
    doc = parse_keyfile(b"[osd]\r\nenable=1\r\nfont=Serif", "t.txt")
    assert entries(doc, "osd") == {"enable": ("1", 2), "font": ("Serif", 3)}


def test_repeated_group_merges_and_repeated_key_later_wins_with_a_warning():
    doc = parse_keyfile(b"[sink0]\nsync=0\n[osd]\nenable=1\n[sink0]\nsync=1\n", "t.txt")
    assert entries(doc, "sink0") == {"sync": ("1", 6)}
    assert [(d.code, d.line, d.group, d.key) for d in doc.diagnostics] == [
        ("duplicate-key", 6, "sink0", "sync")]


def test_key_before_any_group_is_a_syntax_error_at_its_line():
    doc = parse_keyfile(b"enable=1\n[osd]\n", "t.txt")
    assert [(d.code, d.line, d.key) for d in doc.diagnostics] == [("syntax", 1, "enable")]


def test_line_that_is_not_a_pair_group_or_comment_is_a_syntax_error():
    doc = parse_keyfile(b"[osd]\nenable\n", "t.txt")
    assert [(d.code, d.line, d.group) for d in doc.diagnostics] == [("syntax", 2, "osd")]


def test_non_utf8_byte_is_an_encoding_error_naming_the_key():
    doc = parse_keyfile("[osd]\nfont=Ari\xe9l\n".encode("latin-1"), "t.txt")
    assert [(d.code, d.line, d.group, d.key) for d in doc.diagnostics] == [("encoding", 2, "osd", "font")]


def test_integers_tolerate_a_trailing_comment_as_glib_does():
    assert parse_int("1 #h264") == 1
    assert parse_int(" -1") == -1
    assert parse_int("1#h264") is None
    assert parse_int("four") is None
    assert parse_int("99999999999") is None  # beyond gint


def test_doubles_and_booleans_follow_glib():
    assert parse_float("0.00392156862745098") == 0.00392156862745098
    assert parse_float("1e-3") == 0.001
    assert parse_float("abc") is None
    assert [parse_bool(v) for v in ("true", "false", "1", "0", "yes")] == [True, False, True, False, None]


def test_lists_drop_one_trailing_separator_and_honour_escapes():
    assert split_list("1;1;1;1;") == ["1", "1", "1", "1"]
    assert split_list("a\\;b;c") == ["a;b", "c"]
    assert split_list("0;") == ["0"]
    assert unescape("a\\sb\\tc\\\\") == "a b\tc\\"
    assert unescape("bad\\q") is None


def test_yaml_keeps_lines_and_reads_the_opencv_header():
    doc = parse_yaml(b"# licence\n%YAML:1.0\nBaseConfig:\n  minDetectorConfidence: 0.5\n", "t.yml")
    assert entries(doc, "BaseConfig") == {"minDetectorConfidence": ("0.5", 4)}


# ---- property tests -------------------------------------------------------------------------------

NAME = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)
VALUE = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"),
                max_size=20).map(str.strip)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(NAME, st.dictionaries(NAME, VALUE, max_size=6), min_size=1, max_size=5))
def test_written_key_file_reads_back_with_every_value_and_line(groups):
    lines, expected = [], {}
    for group, pairs in groups.items():
        lines.append(f"[{group}]")
        for key, value in pairs.items():
            lines.append(f"{key}={value}")
            expected[(group, key)] = (value, len(lines))
        lines.append("# comment")
    doc = parse_keyfile("\n".join(lines).encode(), "p.txt")
    assert doc.diagnostics == []
    got = {(g, k): (e.value, e.line) for g, grp in doc.groups.items() for k, e in grp.entries.items()}
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    for parse in (parse_keyfile, parse_yaml):
        doc = parse(data, "random")
        assert all(d.file == "random" for d in doc.diagnostics)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_app_config_file_gives_diagnostics_not_a_traceback(tmp_path_factory, data):
    from runner.config import inspect_app, inspect_nvinfer

    path = tmp_path_factory.mktemp("cfg") / "app.txt"
    path.write_bytes(b"[streammux]\n" + data)
    config, diags = inspect_app(path)
    assert config is not None or any(d.is_error for d in diags)
    inspect_nvinfer(path)
