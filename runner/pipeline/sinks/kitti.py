"""Registers the ``[application]`` KITTI dumps as an app-wide output (see runner.pipeline.kitti)."""

from runner.pipeline.kitti import build_kitti_output
from runner.pipeline.sinks import register_output


def _kitti_output(app, options):
    return build_kitti_output(app)


register_output(_kitti_output)
