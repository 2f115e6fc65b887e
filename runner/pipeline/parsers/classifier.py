"""nvinfer's softmax classifier parser, and label files.

Each output layer is one attribute ("head"); for every item the class with the highest probability
that is also *above* ``classifier-threshold`` (and above 0) is reported, with the label
``labels[head][class]`` from ``labelfile-path`` — one line per head, labels separated by ``;`` (a
single-head classifier has one line; a detector has one label per line).

>>> import numpy as np
>>> ctx = ClassifierContext(threshold=0.5, labels=[["red", "blue"], ["car", "bus", "van"]])
>>> out = {"color": np.array([[0.3, 0.7], [0.6, 0.4]]), "type": np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])}
>>> res = parse_softmax(out, ctx)
>>> res.obj.tolist(), res.head.tolist(), res.label.tolist()
([0, 0, 1], [0, 1, 0], ['blue', 'van', 'red'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runner.pipeline.batch import Classifications
from runner.pipeline.parsers import NetworkInfo, ParserError

__all__ = ["ClassifierContext", "parse_softmax", "read_labels"]


@dataclass(frozen=True, slots=True)
class ClassifierContext:
    threshold: float = 0.0  # classifier-threshold
    labels: list = field(default_factory=list)  # [head][class] → label
    model_path: Path | None = None
    network: NetworkInfo | None = None


def read_labels(path) -> list[list[str]]:
    """nvinfer's ``parseLabelsFile``: non-empty lines, each split on ``;``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ParserError(f"{path}: cannot read labelfile-path ({exc.strerror}) — check the path in "
                          "[property] labelfile-path") from None
    return [line.split(";") for line in text.split("\n") if line]


def label_table(labels: list, head: int, n: int) -> np.ndarray:
    """Labels of ``head`` for classes 0..n-1, None where the label file has none (then one more None)."""
    names = list(labels[head]) if head < len(labels) else []
    return np.asarray((names + [None] * n)[:max(n, len(names))] + [None], dtype=object)


def parse_softmax(outputs: dict, ctx: ClassifierContext) -> Classifications:
    """``parseAttributesFromSoftmaxLayers`` + ``attach_metadata_classifier``: per output layer the most
    probable class *above* classifier-threshold (and 0) among ``dims.d[0]`` classes — the first axis
    after the batch, so an (n, 1, C) output has one class, as in nvinfer; an object whose found
    attributes all lack a label (class beyond the label file's line) gets nothing attached, as
    ``attach_metadata_classifier`` returns on an empty label string."""
    parts = []
    for head, arr in enumerate(outputs.values()):
        probs = np.asarray(arr, np.float32)
        n_cls = probs.shape[1] if probs.ndim > 1 else 1  # getDimsCHWFromDims: c = d[0]
        probs = probs.reshape(probs.shape[0], -1)[:, :n_cls]
        cls = probs.argmax(1)
        best = probs[np.arange(len(probs)), cls]
        found = (best > ctx.threshold) & (best > 0)
        items = np.flatnonzero(found)
        table = label_table(ctx.labels, head, n_cls)
        parts.append(Classifications.from_columns(
            obj=items, frame=items, head=head, class_id=cls[items], confidence=best[items],
            label=table[cls[items]]))
    if len(parts) == 1:  # one head: one row per item, already in item order
        out = parts[0]
        return out[np.not_equal(out.label, None).astype(bool)]
    out = parts[0].concat(*parts[1:])
    out = out[np.lexsort((out.head, out.obj))]
    labelled = np.not_equal(out.label, None).astype(bool)
    # objects with at least one labelled attribute
    keep = np.bincount(out.obj[labelled], minlength=len(probs)).astype(bool)[out.obj]
    out = out[keep]
    out.label = np.where(labelled[keep], out.label, "").astype(object)
    return out
