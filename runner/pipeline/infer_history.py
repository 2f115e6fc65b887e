"""Per-track inference history of a secondary GIE (nvinfer's ``GstNvInferObjectHistory``), columnar.

For tracked objects nvinfer remembers, per track id, the frame number and box area of the last
inference and the last classifier result, so that a classifier re-infers only when
``secondary-reinfer-interval`` frames have passed or the box grew by more than 20 %, and otherwise
re-attaches the cached result. Entries untouched for 150 frames are dropped. Track ids are unique
across sources in dsrun, so the track id alone is the key.

>>> import numpy as np
>>> h = TrackHistory()
>>> h.touch(np.array([7, 3]), frame_num=np.array([10, 10]), area=np.array([100.0, 50.0]), inferred=True)
>>> idx, found = h.lookup(np.array([3, 9]))
>>> found.tolist(), h.last_inferred[idx[found]].tolist()
([True, False], [10])
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Classifications

REINFER_AREA_THRESHOLD = 0.2  # gstnvinfer.cpp
CLEANUP_ACCESS_CRITERIA = 150  # frames without access before an entry is dropped


class TrackHistory:
    def __init__(self) -> None:
        self.key = np.zeros(0, np.int64)  # sorted track ids
        self.last_inferred = np.zeros(0, np.int64)
        self.last_accessed = np.zeros(0, np.int64)
        self.area = np.zeros(0, np.float64)
        # cached classifier results: one row per (track, head); ``obj`` holds the track id
        self.cached = Classifications.empty()

    def __len__(self) -> int:
        return len(self.key)

    def lookup(self, tracks: np.ndarray):
        """(index into the table, found mask) for each track id."""
        idx = np.searchsorted(self.key, tracks)
        idx = np.minimum(idx, max(len(self.key) - 1, 0))
        found = (len(self.key) > 0) & (self.key[idx] == tracks) if len(self.key) else np.zeros(len(tracks), bool)
        return idx, found

    def touch(self, tracks, frame_num, area=None, inferred: bool = False) -> None:
        """Mark ``tracks`` accessed at ``frame_num``; with ``inferred`` also record inference + area."""
        tracks = np.asarray(tracks, np.int64)
        if not len(tracks):
            return
        tracks, first = np.unique(tracks, return_index=True)
        frame_num = np.asarray(frame_num, np.int64)[first]
        area = None if area is None else np.asarray(area, np.float64)[first]
        idx, found = self.lookup(tracks)
        self.last_accessed[idx[found]] = frame_num[found]
        if inferred:
            self.last_inferred[idx[found]] = frame_num[found]
            self.area[idx[found]] = area[found]
        new = ~found
        if new.any():
            key = np.concatenate([self.key, tracks[new]])
            order = np.argsort(key, kind="stable")
            self.key = key[order]
            last_inf = frame_num[new] if inferred else np.full(new.sum(), -(2**62))
            self.last_inferred = np.concatenate([self.last_inferred, last_inf])[order]
            self.last_accessed = np.concatenate([self.last_accessed, frame_num[new]])[order]
            new_area = area[new] if area is not None else np.zeros(new.sum())
            self.area = np.concatenate([self.area, new_area])[order]

    def store_results(self, tracks: np.ndarray, results: Classifications) -> None:
        """Replace the cached result of ``tracks`` by ``results`` (whose ``obj`` are track ids)."""
        keep = ~np.isin(self.cached.obj.astype(np.int64), tracks) if len(self.cached) else slice(None)
        self.cached = self.cached[keep].concat(results) if len(self.cached) else results

    def cached_for(self, tracks: np.ndarray, rows: np.ndarray) -> tuple[Classifications, np.ndarray]:
        """Cached results of ``tracks`` and, per result row, the object row it belongs to."""
        if not len(self.cached) or not len(tracks):
            return Classifications.empty(), np.zeros(0, np.int32)
        order = np.argsort(tracks, kind="stable")
        st = tracks[order]
        ct = self.cached.obj.astype(np.int64)
        pos = np.minimum(np.searchsorted(st, ct), len(st) - 1)
        hit = st[pos] == ct
        return self.cached[hit], rows[order][pos[hit]]

    def cleanup(self, newest_frame_num: int, busy: np.ndarray | None = None) -> None:
        """Drop entries not accessed for :data:`CLEANUP_ACCESS_CRITERIA` frames."""
        stale = newest_frame_num - self.last_accessed > CLEANUP_ACCESS_CRITERIA
        if busy is not None and len(busy):
            stale &= ~np.isin(self.key, busy)
        if stale.any():
            gone = self.key[stale]
            self.key, self.last_inferred = self.key[~stale], self.last_inferred[~stale]
            self.last_accessed, self.area = self.last_accessed[~stale], self.area[~stale]
            if len(self.cached):
                self.cached = self.cached[~np.isin(self.cached.obj.astype(np.int64), gone)]
