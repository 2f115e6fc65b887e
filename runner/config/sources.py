"""Expanding the source groups into ``AppConfig.sources`` with DeepStream's source ids.

- ``[source-list]``: one source per ``list`` URI (``num-source-bins`` must match), each starting from
  ``[source-attr-all]``; a ``[sourceN]`` group then overrides source N (deepstream_app_config_parser.c).
- otherwise each enabled ``[sourceN]`` in file order; ``type=3`` (URI_MULTIPLE) expands to
  ``num-sources`` streams of the same URI.
- YAML app configs: ``source: csv-file-path`` names a CSV whose rows are source groups.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from runner.config.build import build
from runner.config.diagnostics import Diagnostic
from runner.config.enums import SourceType
from runner.config.files import check_exists, resolve_uri, usable
from runner.config.keyfile import Document, Entry, Group
from runner.config.model import SourceConfig, SourceListConfig
from runner.config.validate import Section, Spec, validate


def expand_sources(sections: dict[str, Section], base: Path, file: str, diags: list[Diagnostic],
                   spec: Spec) -> tuple[tuple[SourceConfig, ...], SourceListConfig | None,
                                        SourceConfig | None]:
    source_list = sections.get("source-list")
    attr_all = sections.get("source-attr-all")
    groups = [s for name, s in sections.items() if s.kind and s.kind.name == "sourceN"]
    attr = build(SourceConfig, attr_all, base, file, diags, group="source-attr-all") if attr_all else None
    if source_list is not None:
        sl = build(SourceListConfig, source_list, base, file, diags)
        out = _from_list(sl, source_list, attr or SourceConfig(), base, file, diags)
        for section in groups:
            if section.values.get("enable") is False:
                continue  # parse_source returns before reading a disabled group's keys
            index = int(section.name[len("source"):])
            if index >= len(out):
                diags.append(Diagnostic("error", "inconsistent", file, section.line, section.name, None,
                                        f"[source-list] has {len(out)} sources, so there is no "
                                        f"source {index} to override",
                                        f"use [source0]…[source{max(len(out) - 1, 0)}]"))
                continue
            # parse_source writes the group's keys over the [source-attr-all]/list entry in place
            given = _source(section, base, file, diags)
            out[index] = dataclasses.replace(out[index], **{
                f: getattr(given, f) for f in section.values if f != "enable"})
        return tuple(out), sl, attr
    csv_group = sections.get("source")
    if csv_group is not None and csv_group.values.get("csv_file_path"):
        groups = _csv_sections(base, csv_group, file, diags, spec)
    out: list[SourceConfig] = []
    for section in groups:
        source = _source(section, base, section.file or file, diags)
        if not source.enable:
            continue
        count = source.num_sources if source.type == SourceType.URI_MULTIPLE else 1
        for _ in range(count):
            out.append(dataclasses.replace(source, index=len(out)))
    return tuple(out), None, attr


def _source(section: Section, base: Path, file: str, diags: list[Diagnostic]) -> SourceConfig:
    source = build(SourceConfig, section, base, file, diags, group=section.name)
    if source.uri:
        uri = resolve_uri(base, source.uri)
        ref = (file, section.line_of("uri"), section.name, "uri")
        if uri.startswith("file://") and source.enable and usable(Path(uri[len("file://"):]), diags, ref):
            check_exists(Path(uri[len("file://"):]), "asset", diags, ref)
        source = dataclasses.replace(source, uri=uri)
    return source


def _from_list(sl: SourceListConfig, section: Section, attr: SourceConfig, base: Path, file: str,
               diags: list[Diagnostic]) -> list[SourceConfig]:
    uris = list(sl.list)
    if "num_source_bins" in section.values:
        n = sl.num_source_bins
        for field, items in (("list", uris), ("sensor_id_list", sl.sensor_id_list),
                             ("sensor_name_list", sl.sensor_name_list)):
            if field in section.values or field == "list":
                if uris and len(items) != n:
                    key = section.written.get(field, field.replace("_", "-"))
                    diags.append(Diagnostic(
                        "error", "inconsistent", file, section.line_of("num_source_bins"),
                        "source-list", "num-source-bins",
                        f"num-source-bins={n} but {key} holds {len(items)} entries",
                        f"make num-source-bins equal to the number of entries in {key} "
                        f"(line {section.line_of(field)})"))
                    return []
    out = []
    for i, uri in enumerate(uris):
        kind = (SourceType.URI if uri.startswith("file://") else SourceType.RTSP
                if uri.startswith("rtsp://") else SourceType.CAMERA_CSI if uri.startswith("csi:")
                else SourceType.CAMERA_V4L2 if uri.startswith("usb:") else None)
        if kind is None:
            diags.append(Diagnostic("error", "bad-type", file, section.line_of("list"), "source-list",
                                    "list", f"URI {i} '{uri}' is not file://, rtsp://, csi:N or usb:N",
                                    "write each source as file:///path, rtsp://host/path, csi:0 or usb:0"))
            continue
        if uri.startswith("file://") and not usable(Path(resolve_uri(base, uri)[len("file://"):]), diags, (
                file, section.line_of("list"), "source-list", "list")):
            continue
        out.append(dataclasses.replace(
            attr, enable=True, type=kind, uri=resolve_uri(base, uri), index=i, camera_id=i,
            group="source-list",
            sensor_id=sl.sensor_id_list[i] if i < len(sl.sensor_id_list) else None,
            sensor_name=sl.sensor_name_list[i] if i < len(sl.sensor_name_list) else None))
    return out


def _csv_sections(base: Path, csv_group: Section, file: str, diags: list[Diagnostic],
                  spec: Spec) -> list[Section]:
    """The CSV rows as ``sourceN`` sections, each key located at its row in the CSV file."""
    from runner.config.files import resolve

    path = resolve(base, csv_group.values["csv_file_path"])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        diags.append(Diagnostic("error", "missing-file", file, csv_group.line_of("csv_file_path"),
                                "source", "csv-file-path", f"source list {path} does not exist",
                                "fix the path (relative to this config's folder)"))
        return []
    except (OSError, UnicodeDecodeError) as error:
        diags.append(Diagnostic("error", "unreadable", file, csv_group.line_of("csv_file_path"),
                                "source", "csv-file-path", f"source list {path} cannot be read: {error}",
                                "save it as a UTF-8 CSV file"))
        return []
    doc = Document(str(path), "csv")
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in rows[0]] if rows else []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        name = f"source{len(doc.groups)}"
        group = doc.groups[name] = Group(name, number)
        for column, cell in zip(header, row):
            group.entries[column] = Entry(column, cell.strip(), number)
    sections = validate(doc, spec)
    diags.extend(doc.diagnostics)
    out = []
    for section in sections.values():
        section.file = str(path)
        out.append(section)
    return out
