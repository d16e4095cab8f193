"""Checkpoints: state dicts saved as ``.npz`` files, written atomically, read without pickle.

:func:`save` writes a nested mapping of arrays to a temporary file, fsyncs it
and moves it over the target with ``os.replace``, so a crash leaves either the
old file or the new one. :func:`load` reads with ``allow_pickle=False``, so no
code from the file ever runs.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from minigrad.engine import Tensor

__all__ = ["save", "load"]

# ---------------------------------------------------------------------------

_MANIFEST = "__minigrad__"
_FORMAT = "minigrad-checkpoint"


def _flatten(state: Mapping[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Move every leaf of ``state`` into ``arrays`` under its dotted key.

    Returns the tree's shape: the same nesting, with each leaf replaced by its
    key (so empty mappings survive the round trip).
    """
    tree: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"save: state keys must be non-empty strings, got {key!r}")
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            tree[key] = _flatten(value, name, arrays)
            continue
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: entry {name!r} is not numeric (dtype {array.dtype})")
        if name in arrays or name == _MANIFEST:
            raise ValueError(f"save: two entries flatten to the same key {name!r}")
        arrays[name] = array
        tree[key] = name
    return tree


def _unflatten(tree: Any, arrays: dict[str, np.ndarray], used: set[str]) -> dict[str, Any]:
    """Rebuild the nested state from the manifest's tree and the stored arrays."""
    if not isinstance(tree, dict):
        raise ValueError("its manifest is malformed")
    state: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, str):
            if value not in arrays or value in used:
                raise ValueError(f"its manifest names a missing or repeated entry {value!r}")
            used.add(value)
            state[key] = arrays[value]
        else:
            state[key] = _unflatten(value, arrays, used)
    return state


def save(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to a ``.npz`` file atomically.

    ``state`` maps names to arrays, numbers or nested mappings (stored under
    dotted keys, e.g. ``optim.state.0.v``). The file is written to a temporary
    file in the same folder, flushed and fsynced, then moved over ``path`` with
    ``os.replace``: a crash leaves either the old file or the new one.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"save: state must be a mapping, got {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(state, "", arrays)
    arrays[_MANIFEST] = np.array(json.dumps({"format": _FORMAT, "version": 1, "tree": tree}))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            # The .npz layout (a zip of .npy members), written member by member
            # so that any key is allowed, even one named like np.savez's arguments.
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, array in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`, rebuilding nested mappings.

    Reads with ``allow_pickle=False``, so no code from the file ever runs. A
    truncated, corrupt or foreign file raises ValueError naming it; a missing
    one raises FileNotFoundError.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile) or _MANIFEST not in npz.files:
                raise ValueError("it is not a minigrad checkpoint (no manifest)")
            manifest = json.loads(str(npz[_MANIFEST]))
            if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
                raise ValueError("its manifest is not a minigrad checkpoint's")
            arrays = {k: npz[k] for k in npz.files if k != _MANIFEST}
        used: set[str] = set()
        state = _unflatten(manifest.get("tree"), arrays, used)
        if used != set(arrays):
            raise ValueError(f"it holds entries its manifest does not name: {sorted(set(arrays) - used)}")
    except FileNotFoundError:
        raise
    except Exception as e:  # whatever a damaged file makes numpy, zipfile or json raise
        raise ValueError(f"load: cannot read checkpoint {path!r}: {e}") from None
    return state
