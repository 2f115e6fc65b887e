"""THE table of keys dsrun acts on, per group kind. Everything else a config sets is accepted and
listed by ``dsrun check`` as "accepted, not yet supported".

Helpers implementing a feature add the keys it honours here (one place). Group kinds are the names
of runner.config.groups (``sourceN``, ``sinkN``, ``secondary-gieN``, ``property``, ``class-attrs-N``…);
``gie`` entries apply to both primary-gie and secondary-gieN.

>>> "config-file" in SUPPORTED["gie"]
True
"""

SUPPORTED: dict[str, frozenset[str]] = {
    # the config layer itself acts on these (enable flags, file references, GIE overrides, sources)
    "gie": frozenset({"enable", "plugin-type", "config-file", "batch-size", "interval", "gie-unique-id",
                      "operate-on-gie-id", "operate-on-class-ids", "model-engine-file",
                      "labelfile-path", "dsrun-backend", "dsrun-calib-images", "dsrun-calib-method"}),
    "source-list": frozenset({"list", "num-source-bins", "sensor-id-list", "sensor-name-list"}),
    "source": frozenset({"csv-file-path"}),
    "sourceN": frozenset({"enable", "type", "uri", "num-sources"}),
    "source-attr-all": frozenset({"enable", "type"}),
    "tracker": frozenset({"enable", "ll-config-file"}),
    "property": frozenset({"dsrun-backend", "dsrun-calib-images", "dsrun-calib-method", "is-classifier",
                           "enable-dbscan"}),
    "class-attrs-all": frozenset({"threshold"}),
    "class-attrs-N": frozenset({"threshold"}),
}


def is_supported(group_kind: str, key: str) -> bool:
    kind = "gie" if group_kind in ("primary-gie", "secondary-gieN") else group_kind
    return key in SUPPORTED.get(kind, frozenset()) or (
        kind != group_kind and key in SUPPORTED.get(group_kind, frozenset()))
