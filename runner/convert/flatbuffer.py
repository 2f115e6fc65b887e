"""A minimal FlatBuffers reader (tables, scalars, strings, vectors, unions) — enough to walk a TFLite
model with the field numbers of TensorFlow's ``schema.fbs``, without generated code or TensorFlow.

FlatBuffers layout (flatbuffers.dev, "Internals"): a table starts with an int32 offset back to its
vtable; the vtable holds uint16 vtable size, table size, then one uint16 offset per field (0: absent,
the default applies). References (tables, strings, vectors) are uint32 offsets relative to where they
are stored; vectors and strings start with a uint32 length.

>>> import struct
>>> vtable = struct.pack("<HHH", 6, 8, 4)     # 6-byte vtable, 8-byte table, field 0 at +4
>>> table = struct.pack("<iI", 6, 7)           # back 6 bytes to the vtable; field 0 = 7
>>> Table(vtable + table, 6).scalar(0, "<I")
7
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["Table", "root"]


class Table:
    """One table at byte ``pos`` of ``buf``."""

    __slots__ = ("buf", "pos", "_vt", "_vt_len")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self._vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self._vt_len = struct.unpack_from("<H", buf, self._vt)[0]

    def _field(self, index: int) -> int:
        """Absolute position of field ``index``, or 0 when it is absent."""
        at = 4 + 2 * index
        if at >= self._vt_len:
            return 0
        rel = struct.unpack_from("<H", self.buf, self._vt + at)[0]
        return self.pos + rel if rel else 0

    def _deref(self, at: int) -> int:
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def scalar(self, index: int, fmt: str, default=0):
        at = self._field(index)
        return struct.unpack_from(fmt, self.buf, at)[0] if at else default

    def table(self, index: int) -> "Table | None":
        at = self._field(index)
        return Table(self.buf, self._deref(at)) if at else None

    def string(self, index: int) -> str | None:
        at = self._field(index)
        if not at:
            return None
        start = self._deref(at)
        length = struct.unpack_from("<I", self.buf, start)[0]
        return self.buf[start + 4:start + 4 + length].decode("utf-8", "replace")

    def _vector(self, index: int) -> tuple[int, int]:
        at = self._field(index)
        if not at:
            return 0, 0
        start = self._deref(at)
        return start + 4, struct.unpack_from("<I", self.buf, start)[0]

    def vector(self, index: int, dtype: str) -> np.ndarray:
        """A vector of scalars (``dtype`` a numpy type string, e.g. ``"<i4"``, ``"u1"``)."""
        start, n = self._vector(index)
        return np.frombuffer(self.buf, np.dtype(dtype), n, start) if n else np.zeros(0, dtype)

    def tables(self, index: int) -> list["Table"]:
        start, n = self._vector(index)
        return [Table(self.buf, self._deref(start + 4 * i)) for i in range(n)]

    def strings(self, index: int) -> list[str]:
        start, n = self._vector(index)
        out = []
        for i in range(n):
            s = self._deref(start + 4 * i)
            length = struct.unpack_from("<I", self.buf, s)[0]
            out.append(self.buf[s + 4:s + 4 + length].decode("utf-8", "replace"))
        return out


def root(buf: bytes) -> Table:
    """The root table of a FlatBuffer."""
    return Table(buf, struct.unpack_from("<I", buf, 0)[0])
