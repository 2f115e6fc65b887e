"""deepstream-app's whole-config rules, applied after every group is read
(deepstream_app_config_parser.c parse_config_file, deepstream_app.c create_pipeline):

- ``[source-list]`` needs ``[source-attr-all]``;
- GIE ids must differ: each enabled secondary GIE's app-level ``gie-unique-id`` (0 when the group
  does not set it) against the primary's and against the other secondaries';
- batch sizes a source list imposes: with ``[source-list]`` (key files) streammux batches the number
  of sources, the primary GIE too and the secondaries ``sgie-batch-size``; with
  ``use-nvmultiurisrcbin=1`` streammux and the primary batch ``max-batch-size``, the secondaries
  ``sgie-batch-size``. A GIE's batch size changes only where its app group sets ``batch-size``
  (deepstream_primary_gie_bin.c / deepstream_secondary_gie_bin.c set the property only when
  ``is_batch_size_set``).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.config.diagnostics import Diagnostic
from runner.config.model import GieConfig, SourceListConfig
from runner.config.validate import Section


@dataclass(frozen=True, slots=True)
class ListBatch:
    """Batch sizes a source list imposes (None: the config's own value stands).

    >>> list_batch(SourceListConfig(list=("file:///a", "file:///b")), 2, "ini")
    ListBatch(streammux=2, primary=2, secondary=None)
    >>> list_batch(SourceListConfig(use_nvmultiurisrcbin=True, max_batch_size=10, sgie_batch_size=40), 2, "ini")
    ListBatch(streammux=10, primary=10, secondary=40)
    """
    streammux: int | None = None
    primary: int | None = None
    secondary: int | None = None


def list_batch(source_list: SourceListConfig | None, num_sources: int, fmt: str) -> ListBatch:
    if source_list is None:
        return ListBatch()
    if source_list.use_nvmultiurisrcbin:  # deepstream_app.c: create_pipeline overrides, INI or YAML
        return ListBatch(source_list.max_batch_size or None, source_list.max_batch_size or None,
                         source_list.sgie_batch_size or None)
    if fmt == "ini":  # parse_config_file "Updating batch size when source list is enabled"
        return ListBatch(num_sources or None, num_sources or None, source_list.sgie_batch_size or None)
    return ListBatch()  # the YAML parser has this block commented out


def with_batch(gie: GieConfig, size: int | None) -> GieConfig:
    """``gie`` with the list's batch size, where its app group sets batch-size (is_batch_size_set)."""
    import dataclasses

    if size is None or gie.batch_size is None:
        return gie
    return dataclasses.replace(gie, batch_size=size)


def source_list_problems(sections: dict[str, Section], fmt: str, file: str) -> list[Diagnostic]:
    source_list = sections.get("source-list")
    if fmt != "ini" or source_list is None or "source-attr-all" in sections:
        return []
    return [Diagnostic("error", "inconsistent", file, source_list.line, "source-list", None,
                       "[source-list] without [source-attr-all]: deepstream-app stops "
                       "(\"[source-attr-all] group not present\")",
                       "add a [source-attr-all] group with enable=1 and the settings every listed "
                       "source shares (type, latency, …)")]


def gie_id_problems(primary: GieConfig | None, secondaries: tuple[GieConfig, ...],
                    sections: dict[str, Section], file: str) -> list[Diagnostic]:
    """"Non unique gie ids found": the app groups' ids compared as parse_config_file compares them
    (each enabled secondary against the primary, whose id is 0 when it is absent, disabled or sets
    none, then against the secondaries before it)."""
    def id_of(gie: GieConfig | None) -> int:
        return (gie.gie_unique_id or 0) if gie is not None and gie.enable else 0

    def said(gie: GieConfig | None) -> str:
        if gie is None or not gie.enable:
            return "the primary GIE's (0: no enabled [primary-gie])"
        line = sections[gie.group].line_of("gie_unique_id")
        if gie.gie_unique_id is None:
            return f"[{gie.group}]'s (0: it sets no gie-unique-id; line {line})"
        return f"[{gie.group}]'s (line {line})"

    out = []
    enabled = [g for g in secondaries if g.enable]
    for i, gie in enumerate(enabled):
        same = primary if id_of(gie) == id_of(primary) else next(
            (o for o in enabled[:i] if id_of(o) == id_of(gie)), False)
        if same is False:
            continue
        section = sections[gie.group]
        unset = gie.gie_unique_id is None
        out.append(Diagnostic(
            "error", "inconsistent", file, section.line if unset else section.line_of("gie_unique_id"),
            gie.group, None if unset else "gie-unique-id",
            f"{'no gie-unique-id, so deepstream-app takes 0' if unset else f'id {gie.gie_unique_id}'}"
            f" — the same id as {said(same)}: deepstream-app stops (\"Non unique gie ids found\")",
            "give every GIE its own gie-unique-id in its app group (e.g. 1 for the primary, "
            "2, 3… for the secondaries)"))
    return out
