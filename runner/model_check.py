"""Each model against its Gst-nvinfer config, from the ONNX graph's inputs and outputs only (the
weights are not read: :mod:`runner.engine.onnxio`). Asked by runner/preflight.py, so ``dsrun check``
and the run say the same, located at the config key:

- a file that is not an ONNX model — error (the engine cannot be built);
- ``output-blob-names`` naming a layer the model lacks — warning, as nvinfer warns ("Could not find
  output layer '…' in engine", nvdsinfer_context_impl.cpp);
- nvinfer's default detector parser without a ``cov`` / ``bbox`` output — error (it cannot parse a
  batch: "Could not find output coverage layer");
- ``num-detected-classes`` different from the class count a built-in bbox parser reads from the model's
  output shapes (:data:`CLASS_COUNTS`): DetectNet_v2 / NvDsInferParseCustomResnet coverage C — warning
  (parseBoundingBox parses min(C, num-detected-classes)); NvDsInferParseCustomDDETRTAO ``pred_logits`` C
  — error (the parser returns false on every batch); the YOLO heads (tools/yolo_deepstream V7/V8/V11 and
  their ``_cuda`` forms, dsrun's raw V5/V8 heads) — warning (classes past num-detected-classes are
  dropped), and for V7/V8 a model whose C is not 80 — warning (the C reads 80 scores per row). Parsers
  whose outputs do not carry the class count (DeepStream-Yolo's (n, B, 6), SSD, BatchedNMS) are not
  compared;
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


# -- how many classes a built-in bbox parser finds in the model's outputs ------------------------------
# (graph output dims exclude the batch axis, as nvinfer's inferDims do; -1 where symbolic)

def _first(outputs):
    return outputs[0] if outputs else None


def _rows_minus(k: int):
    """Rows of ``k`` box values + C class scores: C = last dim - k (the first output)."""
    def count(outputs):
        t = _first(outputs)
        return (t, t.dims[-1] - k) if t is not None and t.dims and t.dims[-1] > k else None
    return count


def _features_minus(k: int):
    """An untransposed (k + C, anchors) head: C = first dim - k (the first output)."""
    def count(outputs):
        t = _first(outputs)
        return (t, t.dims[0] - k) if t is not None and len(t.dims) >= 2 and t.dims[0] > k else None
    return count


def _coverage(outputs):
    cov = next((t for t in reversed(outputs) if "cov" in t.name), None)  # the last match wins, as in C
    return (cov, cov.dims[0]) if cov is not None and cov.dims and cov.dims[0] > 0 else None


def _ddetr_logits(outputs):
    t = next((t for t in outputs if t.name == "pred_logits"), None)
    return (t, t.dims[-1]) if t is not None and t.dims and t.dims[-1] > 0 else None


NUM_CLASSES_YOLO = 80  # tools/yolo_deepstream nvdsparsebbox_Yolo.cpp / _cuda.cu: rows are read as 80 scores

# parser name ("" = nvinfer's own DetectNet_v2 parser) → (class count from the outputs, what DeepStream does
# on a mismatch: "min" parses min(C, n) classes (parseBoundingBox, NvDsInferParseCustomResnet); "fail":
# the parser returns false on every batch (NvDsInferParseCustomDDETRTAO); "drop": classes >= n are dropped
# after parsing; "yolo80": as "drop", and the C reads 80 scores per row whatever the model has)
CLASS_COUNTS = {
    "": (_coverage, "min"),
    "NvDsInferParseCustomResnet": (_coverage, "min"),
    "NvDsInferParseCustomYoloV7": (_rows_minus(5), "yolo80"),
    "NvDsInferParseCustomYoloV7_cuda": (_rows_minus(5), "yolo80"),
    "NvDsInferParseCustomYoloV8": (_rows_minus(4), "yolo80"),
    "NvDsInferParseCustomYoloV8_cuda": (_rows_minus(4), "yolo80"),
    "NvDsInferParseYoloV11": (_features_minus(4), "drop"),  # numClasses = inferDims.d[0] - 4
    "NvDsInferParseCustomYoloV11_cuda": (_rows_minus(4), "drop"),
    "NvDsInferParseYoloV5": (_rows_minus(5), "drop"),  # dsrun's raw heads
    "NvDsInferParseYoloV8": (_features_minus(4), "drop"),
    "NvDsInferParseCustomDDETRTAO": (_ddetr_logits, "fail"),
}


def _class_count_problem(parser: str, tensor, classes: int, n: int, rule: str, diag) -> Diagnostic | None:
    where = f"the model's output {tensor.name!r} has {classes} classes"
    fix = f"set num-detected-classes={classes}"
    if rule == "yolo80" and classes != NUM_CLASSES_YOLO:
        also = f"; num-detected-classes={n}: classes {n}–{classes - 1} are dropped" if n and n < classes else ""
        return diag("warning", "num-detected-classes",
                    f"{where}, but DeepStream's {parser} reads {NUM_CLASSES_YOLO} class scores per row "
                    f"(NUM_CLASSES_YOLO) — past each row of this model — and warns 'Num classes mismatch'; "
                    f"dsrun reads the row's own {classes}{also}",
                    f"{fix}; to get the same boxes from DeepStream, use an 80-class model with this parser"
                    if n != classes else "to get the same boxes from DeepStream, use an 80-class model "
                    "with this parser")
    if not n or classes == n:
        return None
    if rule == "min":
        return diag("warning", "num-detected-classes",
                    f"num-detected-classes={n} but {where}: nvinfer parses {min(classes, n)}", fix)
    if rule == "fail":
        return diag("error", "num-detected-classes",
                    f"num-detected-classes={n} but {where}: {parser} refuses every batch (numClassesConfigured "
                    "!= numClasses from output tensor)", fix)
    if classes > n:
        return diag("warning", "num-detected-classes",
                    f"num-detected-classes={n} but {where}: objects of classes {n}–{classes - 1} are dropped", fix)
    return diag("warning", "num-detected-classes",
                f"num-detected-classes={n} but {where}: classes {classes}–{n - 1} never occur", fix)


def _detector(nvinfer, outputs: list[GraphTensor], labels, diag) -> list[Diagnostic]:
    out = []
    n = nvinfer.num_detected_classes
    parser = nvinfer.parse_bbox_func_name or ""
    if not parser:  # nvinfer's own DetectNet_v2 parser (parseBoundingBox)
        cov = next((t for t in reversed(outputs) if "cov" in t.name), None)  # the last match wins, as in C
        bbox = next((t for t in reversed(outputs) if "bbox" in t.name), None)
        if cov is None or bbox is None:
            missing = " and ".join(w for w, t in (("'cov'", cov), ("'bbox'", bbox)) if t is None)
            return [diag("error", "parse-bbox-func-name",
                         f"no parse-bbox-func-name, so nvinfer's DetectNet_v2 parser reads the outputs, but no "
                         f"output name contains {missing} (outputs: {', '.join(t.name for t in outputs)})",
                         "set parse-bbox-func-name (and custom-lib-path) to the parser this model needs")]
    count, rule = CLASS_COUNTS.get(parser, (None, None))
    own_python = Path(str(nvinfer.custom_lib_path or "")).suffix.lower() == ".py"  # the user's parser
    found = count(outputs) if count is not None and not own_python else None
    if found is not None:
        tensor, classes = found
        problem = _class_count_problem(parser, tensor, classes, n, rule, diag)
        if problem is not None:
            out.append(problem)
        n = min(classes, n) if n else n
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
