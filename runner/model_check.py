"""Each model against its Gst-nvinfer config, from the ONNX graph's inputs and outputs only (the
weights are not read: :mod:`runner.engine.onnxio`). Asked by runner/preflight.py, so ``dsrun check``
and the run say the same, located at the config key:

- a file that is not an ONNX model — error (the engine cannot be built);
- ``output-blob-names`` naming a layer the model lacks — warning, as nvinfer warns ("Could not find
  output layer '…' in engine", nvdsinfer_context_impl.cpp);
- nvinfer's default detector parser without a ``cov`` / ``bbox`` output — error (it cannot parse a
  batch: "Could not find output coverage layer"); ``num-detected-classes`` different from the
  coverage layer's C — warning (parseBoundingBox parses min(C, num-detected-classes) classes);
- a classifier config (network-type=1, softmax parser) on an output that is not (C) or (C,1,1) — a
  detector's grid or a feature map — warning;
- a label file with fewer labels than the model has classes — warning: nvinfer attaches no label to
  those classes (a detector: one line per class; a classifier: line l lists output l's labels).
"""

from __future__ import annotations

from pathlib import Path

from runner.config import Diagnostic
from runner.config.files import key_line
from runner.engine.onnxinfo import GraphTensor
from runner.engine.onnxio import NotOnnx, read_graph_io


def model_problems(nvinfer) -> list[Diagnostic]:
    onnx_file = nvinfer.onnx_file
    if onnx_file is None or not Path(onnx_file).is_file():
        return []  # nothing to compare (a missing onnx-file is reported by the loader)
    file = nvinfer.path

    def diag(severity: str, key: str | None, message: str, hint: str) -> Diagnostic:
        return Diagnostic(severity, "inconsistent", str(file), key_line(file, "property", key) if file else None,
                          "property", key, message, hint)

    try:
        _, outputs = read_graph_io(onnx_file)
    except (NotOnnx, OSError) as exc:
        return [diag("error", "onnx-file", f"{onnx_file} is not a readable ONNX model ({exc})",
                     "re-export the model, or fix the path; check it with `python -m onnx.checker FILE`")]
    names = [t.name for t in outputs]
    out = [diag("warning", "output-blob-names",
                f"the model has no output layer {name!r} (its outputs: {', '.join(names)}); nvinfer only warns",
                "fix the name, or remove it from output-blob-names")
           for name in nvinfer.output_blob_names if name not in names]
    network_type = 1 if nvinfer.is_classifier and int(nvinfer.network_type) == 0 else int(nvinfer.network_type)
    labels = _labels(nvinfer.labelfile_path)
    if network_type == 0:
        out += _detector(nvinfer, outputs, labels, diag)
    elif network_type == 1 and not nvinfer.parse_classifier_func_name:
        out += _classifier(outputs, labels, diag)
    return out


def _labels(path) -> list[list[str]] | None:
    """nvinfer's parseLabelsFile: non-empty lines, each split on ';' (None when there is no file)."""
    try:
        return [line.split(";") for line in Path(path).read_text(encoding="utf-8").split("\n") if line] \
            if path else None
    except (OSError, UnicodeDecodeError):
        return None


def _detector(nvinfer, outputs: list[GraphTensor], labels, diag) -> list[Diagnostic]:
    out = []
    n = nvinfer.num_detected_classes
    if not nvinfer.parse_bbox_func_name:  # nvinfer's own DetectNet_v2 parser (parseBoundingBox)
        cov = next((t for t in reversed(outputs) if "cov" in t.name), None)  # the last match wins, as in C
        bbox = next((t for t in reversed(outputs) if "bbox" in t.name), None)
        if cov is None or bbox is None:
            missing = " and ".join(w for w, t in (("'cov'", cov), ("'bbox'", bbox)) if t is None)
            return [diag("error", "parse-bbox-func-name",
                         f"no parse-bbox-func-name, so nvinfer's DetectNet_v2 parser reads the outputs, but no "
                         f"output name contains {missing} (outputs: {', '.join(t.name for t in outputs)})",
                         "set parse-bbox-func-name (and custom-lib-path) to the parser this model needs")]
        classes = cov.dims[0] if cov.dims and cov.dims[0] > 0 else None
        if classes is not None and n and classes != n:
            out.append(diag("warning", "num-detected-classes",
                            f"num-detected-classes={n} but the model's coverage output {cov.name!r} has "
                            f"{classes} classes: nvinfer parses {min(classes, n)}",
                            f"set num-detected-classes={classes}"))
            n = min(classes, n)
    if labels is not None and n and len(labels) < n:
        out.append(diag("warning", "labelfile-path",
                        f"{nvinfer.labelfile_path} has {len(labels)} labels for {n} classes: objects of "
                        f"classes {len(labels)}–{n - 1} get no label", "add a line per class"))
    return out


def _classifier(outputs: list[GraphTensor], labels, diag) -> list[Diagnostic]:
    out = []
    for index, tensor in enumerate(outputs):
        dims = tensor.dims
        if len(dims) > 1 and any(d != 1 for d in dims[1:]):
            shape = "x".join("?" if d < 0 else str(d) for d in dims)
            out.append(diag("warning", "network-type",
                            f"network-type=1 (classifier), but output {tensor.name!r} is {shape}, not a "
                            "classifier's C or Cx1x1 — this looks like a detector's or another model's output",
                            "set network-type to what the model is (0 detector, 2 segmentation, 100 other)"))
            continue
        classes = dims[0] if dims and dims[0] > 0 else None
        have = len(labels[index]) if labels is not None and index < len(labels) else None
        if classes is not None and have is not None and have < classes:
            out.append(diag("warning", "labelfile-path",
                            f"line {index + 1} of the label file has {have} labels for output {tensor.name!r}, "
                            f"which has {classes} classes: results of classes {have}–{classes - 1} get no label",
                            "list every class of that output on its line, separated by ';'"))
    return out
