"""The DeepStream YAML variant (app configs ``*.yml``, Gst-nvinfer and tracker YAML) read into the
same positioned :class:`~runner.config.keyfile.Document` as key files.

Top-level keys are groups, their keys are entries; scalars become the text a key file would hold
(``true``/``false`` for booleans), sequences become lists of such text. OpenCV's ``%YAML:1.0`` header,
which DeepStream's samples carry and PyYAML rejects, is read as a comment, and so is a ``%YAML 1.2``
directive with no ``---`` after it (yaml-cpp accepts both). Line numbers come from
PyYAML's node API.

>>> doc = parse_yaml(b"%YAML:1.0\\nproperty:\\n  batch-size: 4\\n  offsets: [1, 2]\\n", "a.yml")
>>> e = doc.groups["property"].entries
>>> (e["batch-size"].value, e["batch-size"].line), e["offsets"].value
(('4', 3), ['1', '2'])
"""

from __future__ import annotations

import yaml as pyyaml

from runner.config.keyfile import Document, Entry, Group


def parse_yaml(data: bytes, path: str) -> Document:
    """Read DeepStream YAML bytes into a :class:`Document`; never raises on bad input."""
    doc = Document(path, "yaml")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        doc.add("error", "encoding", line, None, None,
                f"byte 0x{data[error.start:error.start + 1].hex().upper()} is not UTF-8",
                "re-save the file as UTF-8 or replace the character")
        text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if "%YAML:" in text:  # OpenCV's header, wherever the licence comment put it
        lines = ["#" + line if line.startswith("%YAML:") else line for line in lines]
    if not any(line.startswith("---") for line in lines):
        # a '%YAML 1.2' directive with no '---' after it: yaml-cpp (DeepStream's reader) accepts it,
        # PyYAML wants the document start marker; the directive changes nothing for these files
        lines = ["#" + line if line.startswith("%") else line for line in lines]
    text = "\n".join(lines)
    try:
        root = pyyaml.compose(text, Loader=pyyaml.SafeLoader)
    except pyyaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        doc.add("error", "syntax", mark.line + 1 if mark else None, None, None,
                f"YAML syntax: {problem}", "fix the indentation or quoting at this line")
        return doc
    if root is None:
        return doc
    if not isinstance(root, pyyaml.MappingNode):
        doc.add("error", "syntax", root.start_mark.line + 1, None, None,
                "the file is not a mapping of groups", "write 'group:' lines with indented keys")
        return doc
    for key_node, value_node in root.value:
        name = str(key_node.value)
        line = key_node.start_mark.line + 1
        group = doc.groups.get(name)
        if group is None:
            group = doc.groups[name] = Group(name, line)
        if isinstance(value_node, pyyaml.MappingNode):
            for k_node, v_node in value_node.value:
                doc.put(group, Entry(str(k_node.value), _value(v_node), k_node.start_mark.line + 1))
        elif not (isinstance(value_node, pyyaml.ScalarNode) and value_node.value in ("", "~", "null")):
            group.entries[""] = Entry("", _value(value_node), line)  # a top-level scalar: no group
    return doc


def _value(node) -> object:
    if isinstance(node, pyyaml.SequenceNode):
        return [_scalar(item) for item in node.value]
    if isinstance(node, pyyaml.MappingNode):
        return {str(k.value): _value(v) for k, v in node.value}
    return _scalar(node)


def _scalar(node) -> str:
    if not isinstance(node, pyyaml.ScalarNode):
        return str(_value(node))
    if node.tag == "tag:yaml.org,2002:bool" or (node.style is None and node.value.lower() in (
            "true", "false", "yes", "no", "on", "off")):
        return "true" if node.value.lower() in ("true", "yes", "on") else "false"
    if node.style is None and node.value in ("~", "null"):
        return ""
    return node.value
