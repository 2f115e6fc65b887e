"""A small port of the DeepStream 9.1 C/C++ that dsrun follows (NVIDIA/DeepStream, and the parsers of
marcoslucianops/DeepStream-Yolo), written from the C — one Python function per C function, each naming
the file and function it follows — so tests can compare dsrun with DeepStream on the same inputs.

Scalar loops on purpose: the port reads like the C, not like dsrun's columnar code. Objects are
``NvDsInferObjectDetectionInfo``-like dicts (``classId, left, top, width, height, detectionConfidence``)
with float32 arithmetic where the C uses ``float``.
"""
