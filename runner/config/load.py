"""Config files → typed, validated, frozen objects; all problems collected, then raised at once.

>>> from runner.config import load_app  # doctest: +SKIP
>>> app = load_app("deepstream_app_config.txt")  # doctest: +SKIP
>>> app.primary_gie.nvinfer.batch_size  # doctest: +SKIP
4
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runner.broker_settings import BrokerSettingsError
from runner.broker_settings import resolve as resolve_broker
from runner.config.app_rules import gie_id_problems, list_batch, source_list_problems, with_batch
from runner.config.build import build
from runner.config.diagnostics import ConfigError, Diagnostic
from runner.config.enums import PluginType, ProcessMode, SinkType
from runner.config.files import check_exists, provided_by_dsrun, read_document
from runner.config.groups import (APP_GROUPS, HOME_GROUPS, LEGACY_KEYS, app_group,
                                  foreign_app_group, known_group_names, refused_app_group)
from runner.config.load_analytics import read_analytics
from runner.config.load_infer import read_nvinfer, read_tracker
from runner.config.model import (AppConfig, ApplicationConfig, DsAnalyticsConfig, GieConfig,
                                 ImageSaveConfig, MessageConsumerConfig, MessageConverterConfig,
                                 MuxConfig, NvInferConfig, OsdConfig, PreProcessConfig, SegVisualConfig,
                                 SinkConfig, TestsConfig, TiledDisplayConfig, TrackerConfig)
from runner.config.model_tracker import NvMultiObjectTrackerConfig
from runner.config.sources import expand_sources
from runner.config.supported import is_supported
from runner.config.validate import Section, Spec, validate

APP_SPEC = Spec("app", app_group, known_group_names(APP_GROUPS), foreign_app_group, LEGACY_KEYS,
                skip_disabled=frozenset({"sourceN", "primary-gie", "secondary-gieN", "sinkN"}),
                refuse=refused_app_group, elsewhere=HOME_GROUPS)

#: app GIE keys that override the nvinfer file's [property] (deepstream_primary_gie_bin.c,
#: deepstream_secondary_gie_bin.c set them on the element, which wins over the file). Not
#: labelfile-path: deepstream-app only opens that file (parse_labels_file); nvinfer reads its own.
OVERRIDES = ("batch_size", "interval", "gie_unique_id", "model_engine_file", "gpu_id",
             "dsrun_backend", "dsrun_calib_images", "dsrun_calib_method")
SECONDARY_OVERRIDES = ("operate_on_gie_id", "operate_on_class_ids")


def inspect_app(path: str | Path) -> tuple[AppConfig | None, list[Diagnostic]]:
    """Load an app config without raising: the config and every diagnostic. When a diagnostic is an
    error the config is partial (what could be read) and must not be run."""
    path = Path(path).absolute()
    diags: list[Diagnostic] = []
    doc = read_document(path, diags, what="app config")
    if doc is None:
        return None, diags
    if not doc.groups and not any(d.is_error for d in diags):
        diags.append(Diagnostic("error", "syntax", str(path), None, None, None,
                                "the file is empty (no groups)",
                                "a deepstream-app config has [application], [sourceN], [streammux]… "
                                "groups"))
        return None, diags
    sections = validate(doc, APP_SPEC)
    diags.extend(doc.diagnostics)
    base, file = path.parent, str(path)

    def one(name: str, cls: type, default=None, **extra):
        section = sections.get(name)
        if section is None:
            return default if default is not None else None
        return build(cls, section, base, file, diags, **extra)

    def numbered(kind_name: str) -> list[Section]:
        return [s for s in sections.values() if s.kind and s.kind.name == kind_name]

    sources, source_list, attr_all = expand_sources(sections, base, file, diags, APP_SPEC)
    diags.extend(source_list_problems(sections, doc.format, file))
    batch = list_batch(source_list, len(sources), doc.format)
    read: list = [(path, s) for s in sections.values()]  # every group read, for the unsupported list
    primary = _gie(sections.get("primary-gie"), base, file, diags, read, secondary=False,
                   list_batch=batch.primary)
    secondaries = tuple(g for s in numbered("secondary-gieN")
                        if (g := _gie(s, base, file, diags, read, secondary=True,
                                      list_batch=batch.secondary)) is not None)
    # deepstream-parallel-infer's [secondary-gieN] name a file of secondaries (cfg-file-path): not ours
    diags.extend(gie_id_problems(primary, tuple(g for g in secondaries if "cfg-file-path" not in dict(
        sections[g.group].raw_keys)), sections, file))
    tracker = one("tracker", TrackerConfig)
    analytics = _analytics(sections.get("nvds-analytics"), base, file, diags,
                           tracked=tracker is not None and tracker.enable, num_sources=len(sources))
    if tracker is not None and tracker.enable and tracker.ll_config_file is not None \
            and tracker.ll_config_file.is_file():
        section = sections["tracker"]
        ll = read_tracker(tracker.ll_config_file, diags,
                          (file, section.line_of("ll_config_file"), "tracker", "ll-config-file"), read)
        tracker = dataclasses.replace(tracker, ll_config=ll)
    sinks = tuple(build(SinkConfig, s, base, file, diags, group=s.name,
                        index=_number(s.name)) for s in numbered("sinkN"))
    _check_brokers(sinks, numbered("sinkN"), file, diags)
    consumers = tuple(build(MessageConsumerConfig, s, base, file, diags, index=_number(s.name))
                      for s in numbered("message-consumerN"))
    config = AppConfig(
        application=one("application", ApplicationConfig, ApplicationConfig()),
        tests=one("tests", TestsConfig, TestsConfig()),
        source_list=source_list, source_attr_all=attr_all, sources=sources,
        streammux=_mux(one("streammux", MuxConfig, MuxConfig()), batch.streammux),
        pre_process=one("pre-process", PreProcessConfig),
        primary_gie=primary,
        secondary_pre_process=tuple(build(PreProcessConfig, s, base, file, diags)
                                    for s in numbered("secondary-pre-processN")),
        secondary_gies=secondaries, tracker=tracker,
        nvds_analytics=analytics,
        osd=one("osd", OsdConfig, OsdConfig()), segvisual=one("segvisual", SegVisualConfig),
        tiled_display=one("tiled-display", TiledDisplayConfig, TiledDisplayConfig()),
        sinks=sinks, message_converter=one("message-converter", MessageConverterConfig),
        message_consumers=consumers, img_save=one("img-save", ImageSaveConfig), path=path,
        unsupported=tuple(_unsupported(read, path)),
        warnings=tuple(d for d in diags if not d.is_error))
    return config, diags


def load_app(path: str | Path) -> AppConfig:
    """Read a deepstream-app config (INI or YAML) and every config file it names.

    Raises :class:`ConfigError` (exit status 2) carrying every diagnostic when any is an error;
    warnings are kept in ``AppConfig.warnings``.
    """
    config, diags = inspect_app(path)
    if config is None or any(d.is_error for d in diags):
        raise ConfigError(diags)
    return config


def inspect_nvinfer(path: str | Path) -> tuple[NvInferConfig | None, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    config = read_nvinfer(Path(path).absolute(), diags)
    return config, diags


def load_nvinfer(path: str | Path) -> NvInferConfig:
    """Read a Gst-nvinfer config file (INI or YAML) on its own; ConfigError on any error."""
    config, diags = inspect_nvinfer(path)
    if config is None:
        raise ConfigError(diags)
    return config


def inspect_tracker(path: str | Path) -> tuple[NvMultiObjectTrackerConfig | None, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    return read_tracker(Path(path).absolute(), diags), diags


def load_tracker(path: str | Path) -> NvMultiObjectTrackerConfig:
    """Read an NvMultiObjectTracker YAML config; ConfigError on any error."""
    config, diags = inspect_tracker(path)
    if config is None:
        raise ConfigError(diags)
    return config


def _mux(mux: MuxConfig, list_batch: int | None) -> MuxConfig:
    """The YAML spelling attach-sys-ts sets attach-sys-ts-as-ntp (deepstream_streammux_yaml.cpp); a
    source list's batch size replaces batch-size (:mod:`runner.config.app_rules`)."""
    if list_batch is not None:
        mux = dataclasses.replace(mux, batch_size=list_batch)
    if mux.attach_sys_ts is None:
        return mux
    return dataclasses.replace(mux, attach_sys_ts_as_ntp=mux.attach_sys_ts, attach_sys_ts=None)


def _number(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 0


def _gie(section: Section | None, base: Path, file: str, diags: list[Diagnostic], read: list,
         secondary: bool, list_batch: int | None = None) -> GieConfig | None:
    if section is None:
        return None
    foreign = section.values.get("plugin_type", PluginType.NVINFER) != PluginType.NVINFER
    # model-engine-file is checked once the nvinfer file says whether dsrun can build it (onnx-file)
    kinds = {"model_engine_file": "engine", "labelfile_path": "labels"} \
        | ({"config_file": "asset"} if foreign else {})
    gie = with_batch(build(GieConfig, section, base, file, diags, group=section.name, path_kinds=kinds),
                     list_batch)
    if gie.enable and gie.labelfile_path is not None and not gie.labelfile_path.is_file():
        diags.append(Diagnostic("error", "missing-file", file, section.line_of("labelfile_path"),
                                section.name, section.written.get("labelfile_path", "labelfile-path"),
                                f"{gie.labelfile_path} cannot be opened: deepstream-app stops (parse_gie "
                                "reads this label file; nvinfer uses the one its own config names)",
                                "fix the path, or remove the line (labels come from the Gst-nvinfer "
                                "config's labelfile-path)"))
    if gie.enable and "config_file" not in section.values and "cfg-file-path" not in dict(section.raw_keys):
        diags.append(Diagnostic("error", "inconsistent", file, section.line, section.name, None,
                                "enabled GIE without a config-file",
                                "add config-file=<its Gst-nvinfer config>, or set enable=0"))
    gie = _with_nvinfer(gie, section, file, diags, read, secondary)
    engine = gie.model_engine_file
    models = {name: getattr(gie.nvinfer, name, None) for name in ("onnx_file", "custom_network_config", "model_file")}
    if gie.enable and engine is not None and not provided_by_dsrun("model_engine_file", engine, models, base):
        check_exists(engine, "asset", diags, (file, section.line_of("model_engine_file"), section.name,
                                              section.written.get("model_engine_file", "model-engine-file")))
    return gie


def _check_brokers(sinks, sections: list[Section], file: str, diags: list[Diagnostic]) -> None:
    """A type-6 sink whose broker cannot be reached as configured (unknown adaptor, no server address,
    no topic) is an error at the key to fix, before the run (runner/broker_settings.py decides)."""
    for sink, section in zip(sinks, sections):
        if not sink.enable or sink.type != SinkType.MSG_CONV_BROKER:
            continue
        if sink.msg_broker_config is not None and not Path(sink.msg_broker_config).is_file():
            continue  # build() reported the missing file at its line
        try:
            resolve_broker(sink.msg_broker_proto_lib, sink.msg_broker_conn_str, sink.topic, sink.msg_broker_config)
        except BrokerSettingsError as exc:
            field = exc.key.replace("-", "_")
            line = section.line_of(field) if field in section.written else section.line
            diags.append(Diagnostic("error", "inconsistent", file, line, section.name, exc.key, exc.message,
                                    exc.hint))


def _analytics(section: Section | None, base: Path, file: str, diags: list[Diagnostic], *, tracked: bool,
               num_sources: int) -> DsAnalyticsConfig | None:
    """``[nvds-analytics]`` with its Gst-nvdsanalytics file read when the group is enabled. Rules that
    cannot work in this app are warnings at the nvdsanalytics file's group: line crossing and direction
    without an enabled ``[tracker]`` (nvds_analytics.cpp switches them off at the first untracked
    object), rules for a stream id the app has no source for."""
    if section is None:
        return None
    group = build(DsAnalyticsConfig, section, base, file, diags)
    if not group.enable:
        return group
    if group.config_file is None:
        diags.append(Diagnostic("error", "inconsistent", file, section.line, section.name, None,
                                "enabled without a config-file", "add config-file=<its nvdsanalytics config "
                                "(config_nvdsanalytics.txt)>, or set enable=0"))
        return group
    if not group.config_file.is_file():
        return group  # build() reported the missing file at its line
    ref = (file, section.line_of("config_file"), section.name, "config-file")
    analytics = read_analytics(group.config_file, diags, ref)
    if analytics is not None and analytics.enable:
        where = str(group.config_file)
        for sid, rules in analytics.streams.items():
            moving = [r.label for r in rules.lines + rules.directions if r.enable]
            if moving and not tracked:
                diags.append(Diagnostic("warning", "inconsistent", file, section.line, section.name, None,
                                        f"{where}: stream {sid} counts line crossings / directions "
                                        f"({', '.join(moving)}) but no [tracker] is enabled — nvdsanalytics "
                                        "switches them off at the first untracked object",
                                        "enable [tracker]"))
            if sid >= num_sources:
                diags.append(Diagnostic("warning", "inconsistent", file, section.line, section.name, None,
                                        f"{where}: rules for stream {sid}, but the app has {num_sources} "
                                        f"source(s) (ids 0..{num_sources - 1})", "number the groups by source id"))
    return dataclasses.replace(group, analytics=analytics)


def _with_nvinfer(gie: GieConfig, section: Section, file: str, diags: list[Diagnostic], read: list,
                  secondary: bool) -> GieConfig:
    """The GIE with its Gst-nvinfer file read and the group's overrides applied (when it can be)."""
    if not gie.enable or gie.config_file is None or not gie.config_file.is_file():
        return gie
    if gie.plugin_type != PluginType.NVINFER:
        diags.append(Diagnostic("warning", "unsupported", file, section.line_of("plugin_type"),
                                section.name, "plugin-type",
                                f"plugin-type={int(gie.plugin_type)} ({gie.plugin_type.name.lower()}) "
                                "is accepted, not yet supported; its config file is not read",
                                "use plugin-type=0 (Gst-nvinfer) for dsrun to run this model"))
        return gie
    ref = (file, section.line_of("config_file"), section.name, "config-file")
    nvinfer = read_nvinfer(gie.config_file, diags, ref, read)
    if nvinfer is None:
        return gie
    names = OVERRIDES + (SECONDARY_OVERRIDES if secondary else ())
    changes = {n: getattr(gie, n) for n in names if getattr(gie, n) is not None}
    changes["process_mode"] = ProcessMode.OBJECTS if secondary else ProcessMode.FULL_FRAME
    return dataclasses.replace(gie, nvinfer=dataclasses.replace(nvinfer, **changes))


def _unsupported(read: list, app_path: Path) -> list[str]:
    """'[group] key' (prefixed by the file name when not the app config) for every key set in an
    enabled group that is not in the SUPPORTED table."""
    out = []
    for path, section in read:
        if section.values.get("enable", True) is False:
            continue
        kind = section.kind.name if section.kind else None
        where = "" if path == app_path else f"{path.name} "
        for key, _line in section.raw_keys:
            if kind is None or not is_supported(kind, key):
                out.append(f"{where}[{section.name}] {key}")
    return out
