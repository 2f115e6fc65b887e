"""nvdsanalytics results as JSON-ready dicts, for ``--jsonl`` and the message broker payloads.

Per frame (``NvDsAnalyticsFrameMeta``)::

    {"roi": {"RF": 3}, "overcrowding": {"OC": {"count": 4, "crowded": true}},
     "lines": {"Exit": {"now": 1, "total": 12}}, "classes": {"0": 5}}

per object (``NvDsAnalyticsObjInfo``, only objects it has something to say about)::

    {"status": " ROI:RF LC:Exit ", "roi": ["RF"], "overcrowding": [], "lines": ["Exit"], "direction": ""}

>>> import numpy as np
>>> from runner.pipeline.batch import AnalyticsFrames
>>> f = AnalyticsFrames.from_rows([(0, "line", "Exit", 1, 12, False), (0, "class", "0", 5, 0, False)])
>>> frame_analytics(f, 1)
[{'roi': {}, 'overcrowding': {}, 'lines': {'Exit': {'now': 1, 'total': 12}}, 'classes': {'0': 5}}]
"""

from __future__ import annotations

__all__ = ["frame_analytics", "object_analytics"]


def frame_analytics(frames, n_frames: int) -> list[dict | None]:
    """One dict per frame of the batch (None for every frame when the pipeline has no analytics)."""
    if frames is None:
        return [None] * n_frames
    out = [{"roi": {}, "overcrowding": {}, "lines": {}, "classes": {}} for _ in range(n_frames)]
    for i, kind, label, count, total, flag in zip(frames.frame.tolist(), frames.kind.tolist(),
                                                   frames.label.tolist(), frames.count.tolist(),
                                                   frames.total.tolist(), frames.flag.tolist()):
        rec = out[i]
        if kind == "roi":
            rec["roi"][label] = count
        elif kind == "overcrowding":
            rec["overcrowding"][label] = {"count": count, "crowded": flag}
        elif kind == "line":
            rec["lines"][label] = {"now": count, "total": total}
        else:
            rec["classes"][label] = count
    return out


def object_analytics(objects) -> dict[int, dict]:
    """Object row → its analytics dict (rows without results are absent)."""
    if objects is None:
        return {}
    return {int(r): {"status": s, "roi": list(roi), "overcrowding": list(oc), "lines": list(lc), "direction": d}
            for r, s, roi, oc, lc, d in zip(objects.obj.tolist(), objects.status.tolist(), objects.roi.tolist(),
                                            objects.overcrowding.tolist(), objects.lines.tolist(),
                                            objects.direction.tolist())}
