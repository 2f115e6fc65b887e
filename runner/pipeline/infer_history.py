"""Per-track inference history of a secondary GIE (nvinfer's ``GstNvInferObjectHistory``), columnar.

For tracked objects nvinfer remembers, per source and track id, the frame number and box area of the
last inference and the last classifier result, so that a classifier re-infers only when
``secondary-reinfer-interval`` frames have passed or the box grew by more than 20 %, and otherwise
re-attaches the cached result (gstnvinfer.cpp ``should_infer_object``, ``gst_nvinfer_process_objects``).

Clean-up is nvinfer's: every :data:`MAP_CLEANUP_INTERVAL` batches (``cleanup_history_map``), a source
whose newest frame number moved on by at least that much since its last sweep loses the entries not
accessed for :data:`CLEANUP_ACCESS_CRITERIA` frames; a source's whole history goes at its end of
stream (``GST_NVEVENT_STREAM_EOS``). Track ids are unique across sources in dsrun, so the track id is
the key; the source column serves the per-source sweeps.

>>> import numpy as np
>>> h = TrackHistory()
>>> h.touch(np.array([7, 3]), frame_num=np.array([10, 10]), source=np.array([0, 1]),
...         area=np.array([100.0, 50.0]), inferred=True)
>>> idx, found = h.lookup(np.array([3, 9]))
>>> found.tolist(), h.last_inferred[idx[found]].tolist()
([True, False], [10])
>>> h.forget_sources(np.array([1])); len(h)
1
"""

from __future__ import annotations

import numpy as np

from runner.pipeline.batch import Classifications

REINFER_AREA_THRESHOLD = 0.2  # gstnvinfer.cpp
CLEANUP_ACCESS_CRITERIA = 150  # frames without access before an entry may be dropped
MAP_CLEANUP_INTERVAL = 1800  # batches between sweeps (and frames of a source between its sweeps)


class TrackHistory:
    def __init__(self) -> None:
        self.key = np.zeros(0, np.int64)  # sorted track ids
        self.source = np.zeros(0, np.int64)
        self.last_inferred = np.zeros(0, np.int64)
        self.last_accessed = np.zeros(0, np.int64)
        self.area = np.zeros(0, np.float64)
        # cached classifier results: one row per (track, head); ``obj`` holds the track id
        self.cached = Classifications.empty()
        self.batch_num = 0  # gstnvinfer.cpp current_batch_num
        self.last_sweep_batch = 0  # last_map_cleanup_frame_num
        self.last_seen: dict[int, int] = {}  # source → newest frame number (last_seen_frame_num)
        self.last_sweep: dict[int, int] = {}  # source → last_cleanup_frame_num

    def __len__(self) -> int:
        return len(self.key)

    def lookup(self, tracks: np.ndarray):
        """(index into the table, found mask) for each track id."""
        idx = np.searchsorted(self.key, tracks)
        idx = np.minimum(idx, max(len(self.key) - 1, 0))
        found = (len(self.key) > 0) & (self.key[idx] == tracks) if len(self.key) else np.zeros(len(tracks), bool)
        return idx, found

    def touch(self, tracks, frame_num, source=None, area=None, inferred: bool = False) -> None:
        """Mark ``tracks`` accessed at ``frame_num``; with ``inferred`` also record inference + area
        (creating entries for tracks not yet known, of source ``source``)."""
        tracks = np.asarray(tracks, np.int64)
        if not len(tracks):
            return
        tracks, first = np.unique(tracks, return_index=True)
        frame_num = np.asarray(frame_num, np.int64)[first]
        source = np.zeros(len(tracks), np.int64) if source is None else np.asarray(source, np.int64)[first]
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
            self.source = np.concatenate([self.source, source[new]])[order]
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

    def end_batch(self, source_id: np.ndarray, frame_num: np.ndarray, busy: np.ndarray | None = None) -> None:
        """After a batch (``source_id``/``frame_num`` of its frames): the sources' newest frame numbers,
        and every :data:`MAP_CLEANUP_INTERVAL` batches nvinfer's ``cleanup_history_map``."""
        self.last_seen.update(zip(source_id.tolist(), frame_num.tolist()))  # a source's later frame wins
        self.batch_num += 1
        if self.batch_num - self.last_sweep_batch > MAP_CLEANUP_INTERVAL:
            self._sweep(busy)
            self.last_sweep_batch = self.batch_num

    def _sweep(self, busy: np.ndarray | None) -> None:
        stale = np.zeros(len(self.key), bool)
        for sid, seen in self.last_seen.items():  # O(sources)
            if seen - self.last_sweep.get(sid, 0) < MAP_CLEANUP_INTERVAL:
                continue
            self.last_sweep[sid] = seen
            stale |= (self.source == sid) & (seen - self.last_accessed > CLEANUP_ACCESS_CRITERIA)
        if busy is not None and len(busy):  # under_inference
            stale &= ~np.isin(self.key, busy)
        self._drop(stale)

    def forget_sources(self, sources: np.ndarray) -> None:
        """End of stream of ``sources``: their whole history is cleared."""
        self._drop(np.isin(self.source, sources))

    def _drop(self, gone_rows: np.ndarray) -> None:
        if not gone_rows.any():
            return
        gone = self.key[gone_rows]
        keep = ~gone_rows
        self.key, self.source = self.key[keep], self.source[keep]
        self.last_inferred, self.last_accessed, self.area = \
            self.last_inferred[keep], self.last_accessed[keep], self.area[keep]
        if len(self.cached):
            self.cached = self.cached[~np.isin(self.cached.obj.astype(np.int64), gone)]
