"""CTC text recogniser parser (PP-OCR recognisers): ``parse-classifier-func-name=NvDsInferParseCTC``.

The output is (n, T, C) per-timestep probabilities. Greedy CTC decoding takes the best class per
timestep, merges repeats and drops the blank (class 0); the label is the text and the confidence the
mean probability of the kept timesteps (0 for empty text, which is then not reported, as nvinfer skips
empty labels). The character list is the model's own: the ONNX metadata ``character`` (one character
per line) with the blank in front and a space at the end, as PaddleOCR builds it; without that
metadata, ``labelfile-path`` lines are used the same way.

>>> import numpy as np
>>> chars = ["blank", "a", "b", " "]
>>> p = np.eye(4, dtype=np.float32)[[1, 1, 0, 2, 2, 0, 1]][None]  # a a _ b b _ a
>>> decode(p, chars)
(['aba'], [1.0])
"""

from __future__ import annotations

import functools

import numpy as np

from runner.pipeline.batch import Classifications
from runner.pipeline.parsers import ParserError


@functools.lru_cache(maxsize=8)
def model_characters(model_path: str) -> tuple[str, ...] | None:
    """``["blank", *metadata characters, " "]`` from an ONNX model's ``character`` metadata."""
    import onnx

    try:
        model = onnx.load(model_path, load_external_data=False)
    except Exception:  # not an ONNX file (an engine): fall back to the label file
        return None
    for prop in model.metadata_props:
        if prop.key == "character":
            return ("blank", *prop.value.splitlines(), " ")
    return None


def decode(probs: np.ndarray, chars) -> tuple[list[str], list[float]]:
    idx = probs.argmax(2)
    best = probs.max(2)
    keep = np.ones_like(idx, bool)
    keep[:, 1:] = idx[:, 1:] != idx[:, :-1]
    keep &= idx != 0
    table = np.asarray(list(chars), dtype=object)
    if idx.max(initial=0) >= len(table):
        raise ParserError(f"the recogniser has {probs.shape[2]} classes but the character list has "
                          f"{len(table)} — use the model's own dictionary")
    texts = ["".join(table[i[k]]) for i, k in zip(idx, keep)]  # O(items), string assembly
    sums = (best * keep).sum(1)
    counts = keep.sum(1)
    conf = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return texts, conf.astype(float).tolist()


def parse_ctc(outputs: dict, ctx) -> Classifications:
    probs = np.asarray(next(iter(outputs.values())), np.float32)
    chars = model_characters(str(ctx.model_path)) if ctx.model_path else None
    if chars is None:
        if not ctx.labels:
            raise ParserError("NvDsInferParseCTC needs the character list: a model with 'character' "
                              "metadata, or labelfile-path with one character per line")
        chars = ("blank", *[line[0] for line in ctx.labels], " ")
    texts, conf = decode(probs, chars)
    conf = np.asarray(conf, np.float32)
    found = np.flatnonzero((conf > ctx.threshold) & (np.asarray([len(t) for t in texts]) > 0))
    return Classifications.from_columns(obj=found, frame=found, head=0, class_id=0,
                                        confidence=conf[found],
                                        label=np.asarray(texts, dtype=object)[found] if len(found) else [])
