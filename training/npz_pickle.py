"""Read the pickled dicts of VideoPose3D ``.npz`` files without letting them run code.

VideoPose3D stores ``{subject: {action: array}}`` dicts as 0-d object arrays, which
``np.load(allow_pickle=True)`` un-pickles with the full :mod:`pickle` machinery: a swapped
file could then run anything (a ``__reduce__`` that calls ``os.system``). Here the object
array is read by a restricted unpickler that builds only containers (dict, list, tuple),
plain scalars and strings, and numpy arrays and dtypes; any other global a pickle names is
refused with :class:`UnsafePickleError` before it is imported or called.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

#: numpy's own reconstruction helpers, found from live objects (their module moved from
#: ``numpy.core`` to ``numpy._core`` in numpy 2; files name either).
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_FROMBUFFER = np.arange(1).__reduce_ex__(5)[0]  # protocol 5 pickles of arrays
_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for something other than arrays, dicts, lists, strings and numbers."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 only."""
    if encoding.replace("-", "").lower() != "latin1" or not isinstance(text, str):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _RECONSTRUCT for m in _MULTIARRAY},
    **{(m, "scalar"): _SCALAR for m in _MULTIARRAY},
    **{(m, "_frombuffer"): _FROMBUFFER for m in _NUMERIC},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): dict,
    ("_codecs", "encode"): _latin1_encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler whose only importable names are those in :data:`_ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle {module}.{name}: only numpy arrays, dicts, lists, "
                "strings and numbers are allowed in these files"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a pickle with persistent ids")


_HEADER_READERS = {
    (1, 0): npy_format.read_array_header_1_0,
    (2, 0): npy_format.read_array_header_2_0,
}


def load_pickled_item(path: str | Path, key: str) -> Any:
    """``np.load(path, allow_pickle=True)[key].item()``, but nothing in the file can run.

    Raises :class:`UnsafePickleError` (a ``ValueError``) when the pickle names any other
    global than numpy's array/dtype reconstruction, ``KeyError`` when ``key`` is absent.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        member = f"{key}.npy"
        if member not in zf.namelist():
            raise KeyError(f"{path}: no array {key!r} (has {sorted(zf.namelist())})")
        with zf.open(member) as f:
            version = npy_format.read_magic(f)
            if version not in _HEADER_READERS:
                raise ValueError(f"{path}:{member}: unsupported .npy version {version}")
            _shape, _fortran, dtype = _HEADER_READERS[version](f)
            if dtype.hasobject:
                arr = _ArrayUnpickler(f).load()
                if not isinstance(arr, np.ndarray):
                    raise UnsafePickleError(f"{path}:{member}: pickle is not a numpy array")
            else:
                arr = None
        if arr is None:
            with zf.open(member) as f:
                arr = npy_format.read_array(f, allow_pickle=False)
    return arr.item() if arr.ndim == 0 else arr
