"""Which dataclass reads which group, per file kind: the one table the loader and the schemas share.

A group name is matched the way DeepStream matches it (deepstream_app_config_parser.c compares
``source``/``sink``/``secondary-gie``/``message-consumer`` as prefixes, the rest exactly).

>>> app_group("sink2").cls.__name__, app_group("secondary-gie").cls.__name__
('SinkConfig', 'GieConfig')
>>> app_group("primary-gei") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runner.config import model as m
from runner.config.model_nvinfer import ClassAttrs, NvInferConfig
from runner.config.model_tracker import TRACKER_SECTIONS


@dataclass(frozen=True)
class GroupKind:
    pattern: str  # regex over the whole group name
    name: str  # the name used in messages and in the schema's definitions
    cls: type


APP_GROUPS = (
    GroupKind("application", "application", m.ApplicationConfig),
    GroupKind("tests", "tests", m.TestsConfig),
    GroupKind("source-list", "source-list", m.SourceListConfig),
    GroupKind("source-attr-all", "source-attr-all", m.SourceConfig),
    GroupKind("source", "source", m.SourceCsvConfig),
    GroupKind(r"source\d+", "sourceN", m.SourceConfig),
    GroupKind("streammux", "streammux", m.MuxConfig),
    GroupKind("pre-process", "pre-process", m.PreProcessConfig),
    GroupKind("primary-gie", "primary-gie", m.GieConfig),
    GroupKind(r"secondary-gie\d*", "secondary-gieN", m.GieConfig),
    GroupKind(r"secondary-pre-process\d*", "secondary-pre-processN", m.PreProcessConfig),
    GroupKind("tracker", "tracker", m.TrackerConfig),
    GroupKind("nvds-analytics", "nvds-analytics", m.DsAnalyticsConfig),
    GroupKind("osd", "osd", m.OsdConfig),
    GroupKind("segvisual", "segvisual", m.SegVisualConfig),
    GroupKind("tiled-display", "tiled-display", m.TiledDisplayConfig),
    GroupKind(r"sink\d*", "sinkN", m.SinkConfig),
    GroupKind("message-converter", "message-converter", m.MessageConverterConfig),
    GroupKind(r"message-consumer\d*", "message-consumerN", m.MessageConsumerConfig),
    GroupKind("img-save", "img-save", m.ImageSaveConfig),
)

NVINFER_GROUPS = (
    GroupKind("property", "property", NvInferConfig),
    GroupKind("class-attrs-all", "class-attrs-all", ClassAttrs),
    GroupKind(r"class-attrs-\d+", "class-attrs-N", ClassAttrs),
)

TRACKER_GROUPS = tuple(GroupKind(name, name, cls) for name, cls in TRACKER_SECTIONS.items())

#: groups other DeepStream programs (or deepstream-app features dsrun does not model) read:
#: accepted, every key in them reported "not yet supported".
FOREIGN_APP_GROUPS = {
    r"ds-example": "deepstream-app's dsexample plugin",
    r"dewarper": "deepstream-app's dewarper",
    r"replay": "deepstream-app's replay source",
    r"visionencoder": "deepstream-app's vision encoder",
    r"text-embedder": "deepstream-app's text embedder",
    r"audio-transform|audio-classifier": "deepstream-app's audio pipeline",
    r"primary-gie\d+|tracker\d+|nvds-analytics\d+|branch\d+|meta-mux": "deepstream-parallel-infer",
    r"receiver\d+|sender\d+": "deepstream-nmos",
}

#: keys deepstream-app reads in one group only, met elsewhere in configs (parse_tests reads file-loop;
#: parse_source does not)
HOME_GROUPS = {"file-loop": "tests"}

#: keys DeepStream 9.1's parsers no longer read but old sample configs still carry
LEGACY_KEYS = {
    "tracker": {"enable-batch-process", "enable-past-frame", "tracker-algorithm", "iou-threshold"},
}


def _match(kinds: tuple[GroupKind, ...], group: str) -> GroupKind | None:
    for kind in kinds:
        if re.fullmatch(kind.pattern, group):
            return kind
    return None


def app_group(group: str) -> GroupKind | None:
    return _match(APP_GROUPS, group)


def nvinfer_group(group: str) -> GroupKind | None:
    return _match(NVINFER_GROUPS, group)


def tracker_group(group: str) -> GroupKind | None:
    return _match(TRACKER_GROUPS, group)


def foreign_app_group(group: str) -> str | None:
    for pattern, owner in FOREIGN_APP_GROUPS.items():
        if re.fullmatch(pattern, group):
            return owner
    return None


def refused_app_group(group: str, fmt: str) -> tuple[str, str] | None:
    """(message, hint) for a group name deepstream-app refuses: in a key file every group whose name
    starts with ``source`` (a prefix compare in parse_config_file, deepstream_app_config_parser.c)
    other than [source-list] and [source-attr-all] must be ``[source<N>]``.

    >>> refused_app_group("sources", "ini")[0]
    'deepstream-app refuses this group: a group starting with "source" must be [source<N>]'
    >>> refused_app_group("source2", "ini"), refused_app_group("sources", "yaml")
    (None, None)
    """
    if fmt == "ini" and group.startswith("source") and group not in ("source-list", "source-attr-all") \
            and not re.fullmatch(r"source\d+", group):
        return ('deepstream-app refuses this group: a group starting with "source" must be [source<N>]',
                "rename it to [source0], [source1]… (one per stream), or use [source-list] with "
                "[source-attr-all]")
    return None


def known_group_names(kinds: tuple[GroupKind, ...]) -> list[str]:
    """Spellings to suggest for a misspelt group (numbered ones with their first number)."""
    return [k.pattern.replace(r"\d+", "0").replace(r"\d*", "0") for k in kinds]
