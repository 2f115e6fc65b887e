"""Multi-object trackers (IOU, SORT-class, ByteTrack) and the ``[tracker]`` stage."""

from runner.pipeline.tracker.stage import TrackerStage, build_tracker_stage, tracker_kind

__all__ = ["TrackerStage", "build_tracker_stage", "tracker_kind"]
