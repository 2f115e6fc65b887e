"""Read a PyTorch checkpoint's tensors with numpy only: both of ``torch.save``'s formats.

* the zip format (PyTorch >= 1.6): ``<name>/data.pkl`` + one ``<name>/data/<key>`` file per storage;
* the legacy format (torchvision's 2018-2019 ``.pth`` files): five pickles in a row — magic number,
  protocol version, system info, the object, the storage keys — then each storage as an int64 element
  count and its raw little-endian bytes, in the order of the keys.

Tensors are rebuilt as ``torch._utils._rebuild_tensor_v2`` does (storage, offset, size, stride); only
the classes a state dict needs are allowed out of the pickle, so a checkpoint cannot run code.

>>> sorted(_DTYPES)[:3]
['BFloat16Storage', 'BoolStorage', 'ByteStorage']
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from runner.convert import ConvertError

__all__ = ["load_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
           "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
           "BoolStorage": "?", "BFloat16Storage": "<u2"}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = np.dtype(_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not size:
        return storage[offset:offset + 1].reshape(())
    item = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * item for s in stride))
    return np.array(view)  # own copy, contiguous


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: io.BytesIO, storages) -> None:
        super().__init__(data)
        self._storages = storages

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        if module == "torch" and name == "Size":
            return tuple
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a plain state dict")

    def persistent_load(self, saved_id):
        kind, storage_type, key = saved_id[0], saved_id[1], str(saved_id[2])
        if kind != "storage":
            raise pickle.UnpicklingError(f"persistent id {kind!r} is not a storage")
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else np.dtype(storage_type)
        return self._storages(key, dtype)


def _legacy(data: bytes, path: Path) -> dict:
    stream = io.BytesIO(data)
    if pickle.load(stream) != LEGACY_MAGIC:
        raise ConvertError(f"{path}: not a PyTorch checkpoint (wrong magic number)")
    pickle.load(stream)  # protocol version
    pickle.load(stream)  # system info
    obj_start = stream.tell()
    dtypes: dict[str, np.dtype] = {}
    _KeysOnly(stream, dtypes).load()  # first pass: each storage's key and dtype (its bytes come later)
    arrays: dict[str, np.ndarray] = {}
    for key in pickle.load(stream):
        count = int(np.frombuffer(stream.read(8), "<i8")[0])
        arrays[key] = np.frombuffer(stream.read(count * dtypes[key].itemsize), dtypes[key])
    stream.seek(obj_start)
    return _Unpickler(stream, lambda key, dtype: arrays[key]).load()


class _KeysOnly(pickle.Unpickler):
    """First pass over a legacy checkpoint's object pickle: records each storage's key and dtype."""

    def __init__(self, stream, dtypes: dict) -> None:
        super().__init__(stream)
        self._dtypes = dtypes

    def find_class(self, module: str, name: str):
        if module == "torch._utils":
            return lambda *args: None
        return _Unpickler.find_class(self, module, name)

    def persistent_load(self, saved_id):
        self._dtypes[str(saved_id[2])] = saved_id[1].dtype
        return None


def _zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ConvertError(f"{path}: a zip without data.pkl is not a PyTorch checkpoint")
        prefix = pkl[: -len("data.pkl")]
        storage = lambda key, dtype: np.frombuffer(z.read(f"{prefix}data/{key}"), dtype)
        return _Unpickler(io.BytesIO(z.read(pkl)), storage).load()


def load_state_dict(path: Path) -> "OrderedDict[str, np.ndarray]":
    """The ``{name: array}`` of a checkpoint that holds a state dict (or ``{"state_dict": ...}``)."""
    path = Path(path)
    try:
        obj = _zip(path) if zipfile.is_zipfile(path) else _legacy(path.read_bytes(), path)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as error:
        raise ConvertError(f"{path}: cannot be read as a PyTorch state dict ({error})") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return OrderedDict((k, v) for k, v in obj.items() if isinstance(v, np.ndarray))
