"""Checkpoints: state dicts saved as ``.npz`` files, written atomically, read without pickle.

:func:`save` checks every key first, writes a nested mapping of arrays to a
temporary file, fsyncs it, moves it over the target with ``os.replace`` and
fsyncs the folder, so a crash leaves either the old file or the new one.
:func:`load` reads each ``.npy`` member of the zip by its exact name, checks its
header (dtype, and a declared size within ``max_bytes``) before reading its
data, and never unpickles, so no code from the file ever runs.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
import zipfile
from collections.abc import Mapping
from typing import IO, Any, BinaryIO, cast

import numpy as np

from minigrad._files import atomic_write
from minigrad.engine import Tensor

__all__ = ["save", "load", "DEFAULT_MAX_BYTES"]

# ---------------------------------------------------------------------------

_MANIFEST = "__minigrad__"
_FORMAT = "minigrad-checkpoint"
_MAX_NAME_BYTES = 0xFFFF - len(".npy")  # a zip member's name is at most 65535 bytes

DEFAULT_MAX_BYTES = 2**30
"""The most array data (1 GiB) that :func:`load` reads from one file unless told otherwise."""


def _check_key(key: Any, prefix: str) -> str:
    """The dotted name of ``key`` under ``prefix``; refuse a key its zip member name would not keep unchanged."""
    if not isinstance(key, str) or not key:
        where = f" (in {prefix!r})" if prefix else ""
        raise ValueError(f"save: state keys must be non-empty strings, got {key!r}{where}")
    name = f"{prefix}.{key}" if prefix else key
    if "\x00" in key:
        raise ValueError(f"save: key {name!r} holds a NUL byte, which a zip member name cannot; rename it")
    if "\\" in key:
        # Zip readers on Windows turn a backslash into "/": the key would not load there.
        raise ValueError(f"save: key {name!r} holds a backslash, which zip readers on Windows change; rename it")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"save: key {name!r} is not valid Unicode text (a lone surrogate?); rename it") from None
    if size > _MAX_NAME_BYTES:
        raise ValueError(
            f"save: key {name[:40]!r}... is {size} bytes long; a zip member name holds at most {_MAX_NAME_BYTES}"
        )
    return name


def _flatten(state: Mapping[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Move every leaf of ``state`` into ``arrays`` under its dotted key.

    Returns the tree's shape: the same nesting, with each leaf replaced by its
    key (so empty mappings survive the round trip).
    """
    tree: dict[str, Any] = {}
    for key, value in state.items():
        name = _check_key(key, prefix)
        if isinstance(value, Mapping):
            tree[key] = _flatten(value, name, arrays)
            continue
        if isinstance(value, str):  # (a name, such as the class a state belongs to: a 0-d text array)
            if "\x00" in value:  # (.npy text drops trailing NULs: it would not read back the same)
                raise ValueError(f"save: entry {name!r} is text holding a NUL character, which a checkpoint's "
                                 "text cannot keep; save it as bytes in an array (np.frombuffer(...))")
            array = np.array(str.__str__(value))  # (the text itself: a str Enum's value, not numpy's reading of it)
        else:
            try:
                array = np.asarray(value.data if isinstance(value, Tensor) else value)
            except ValueError as e:  # a ragged list
                raise TypeError(f"save: entry {name!r} is not an array ({e}); save arrays, numbers or text") from None
            if array.dtype.kind not in "biuf":
                raise TypeError(f"save: entry {name!r} is not numeric (dtype {array.dtype}); save arrays, numbers "
                                "or text (a str)")
        if name == _MANIFEST:
            raise ValueError(f"save: the key {name!r} is reserved for the checkpoint's manifest; rename it")
        if name in arrays:
            raise ValueError(f"save: two entries flatten to the same key {name!r}")
        arrays[name] = array
        tree[key] = name
    return tree


def _unflatten(tree: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Rebuild the nested state from the manifest's tree and the stored arrays (a text array as the str saved)."""
    state: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, str):
            array = arrays[value]
            state[key] = str(array[()]) if array.dtype.kind == "U" else array
        else:
            state[key] = _unflatten(value, arrays)
    return state


def _leaves(tree: Any, found: list[str]) -> list[str]:
    """The entry names a manifest's tree refers to, checking its shape on the way."""
    if not isinstance(tree, dict):
        raise ValueError("its manifest is malformed")
    for value in tree.values():
        if isinstance(value, str):
            found.append(value)
        else:
            _leaves(value, found)
    return found


def save(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to a ``.npz`` file atomically.

    ``state`` maps names to arrays, numbers, strings or nested mappings
    (stored under dotted keys, e.g. ``optim.state.0.v``); :func:`load` gives
    a string back as a ``str``, everything else as a numpy array. Every key is checked before
    anything is written: a key must be a non-empty string that a zip member
    name keeps unchanged (no NUL byte, no backslash, valid Unicode). The file is
    written to a temporary file in the same folder, flushed and fsynced, given
    the mode of the file it replaces (or the usual 0666 minus the umask), moved
    over ``path`` with ``os.replace``, and the folder is fsynced so the rename
    itself survives a crash. A symbolic link at ``path`` is followed: the file
    it points to is replaced and the link kept. An OSError names ``path``,
    never the temporary file.
    """
    if not isinstance(state, Mapping):
        hint = "; save its state_dict(), mg.save(model.state_dict(), path)" if hasattr(state, "state_dict") else ""
        raise TypeError(f"save: state must be a mapping, got {type(state).__name__}{hint}")
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(state, "", arrays)
    # Version 2 holds text entries, which a reader of version 1 refuses: it is written only when one is there.
    version = 2 if any(a.dtype.kind == "U" for a in arrays.values()) else 1
    arrays[_MANIFEST] = np.array(json.dumps({"format": _FORMAT, "version": version, "tree": tree}))
    path = os.fsdecode(os.fspath(path))  # (a bytes path too)
    if not path:
        raise ValueError("save: the path is empty; give the checkpoint's file name, such as 'model.npz'")
    try:
        _write_atomically(arrays, path)
    except OSError as e:
        if e.errno is None:
            raise
        # os.replace and mkstemp name the temporary file; the user knows only their own path.
        folder = os.path.dirname(path)
        if e.errno == errno.ENOENT and folder and not os.path.isdir(folder):
            raise OSError(e.errno, f"save: the folder {folder!r} does not exist; create it first "
                                   "(os.makedirs(folder, exist_ok=True))", path) from None
        raise OSError(e.errno, f"save: {e.strerror}", path) from None


def _write_atomically(arrays: dict[str, np.ndarray], path: str) -> None:
    """Write ``arrays`` as an .npz through :func:`minigrad._files.atomic_write` (fsynced, renamed, folder fsynced)."""

    def write(f: BinaryIO) -> None:
        # The .npz layout (a zip of .npy members), written member by member
        # so that any key is allowed, even one named like np.savez's arguments.
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, array in arrays.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    atomic_write(path, write)


def load(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`, rebuilding nested mappings.

    Each entry is read from the zip member of exactly its name, and its
    ``.npy`` header is checked before its data: a dtype that :func:`save`
    never writes, or array data adding up to more than ``max_bytes`` (default
    :data:`DEFAULT_MAX_BYTES`, 1 GiB; a small compressed file can declare
    gigabytes), is refused before it is read. Nothing is unpickled, so no code
    from the file ever runs. A missing path raises FileNotFoundError; a named
    pipe, device or folder, or a truncated, corrupt or foreign file, raises
    ValueError naming the path.
    """
    path = os.fsdecode(os.fspath(path))  # (a bytes path too)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
        raise ValueError(f"load: max_bytes must be a non-negative integer, got {max_bytes!r}")
    f = _open_regular_file(path)
    try:
        with f, zipfile.ZipFile(f) as zf:
            return _read_checkpoint(zf, int(max_bytes))
    except zipfile.BadZipFile as e:
        if str(e) != "File is not a zip file" and not str(e).startswith("Truncated"):
            # A zip directory, but what it points at is wrong (a bad CRC, a bad header): bytes changed since.
            raise ValueError(
                f"load: cannot read checkpoint {path!r}: its data is damaged ({e}: the bytes read differ from the "
                "bytes written, as a failing disk or a broken copy leaves them); load a copy made before"
            ) from None
        # No zip directory at its end: cut short, or another kind of file.
        raise ValueError(
            f"load: cannot read checkpoint {path!r}: it is not a complete checkpoint ({e}); it may have been "
            "cut short (copied while being written?) or be another kind of file"
        ) from None
    except Exception as e:  # whatever a damaged file makes numpy, zipfile or json raise
        raise ValueError(f"load: cannot read checkpoint {path!r}: {e}") from None


def _open_regular_file(path: str) -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file; refuse pipes, devices and folders.

    The open does not block (O_NONBLOCK: a named pipe with no writer would wait
    forever), and the check is made on the opened file, so the file cannot be
    swapped between the check and the read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            what = "a folder" if stat.S_ISDIR(kind) else "a named pipe" if stat.S_ISFIFO(kind) else "a device or socket"
            raise ValueError(f"load: {path!r} is {what}, not a regular file; give the path of a checkpoint file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_checkpoint(zf: zipfile.ZipFile, max_bytes: int) -> dict[str, Any]:
    """Read the manifest, check that it names exactly the file's members, then read them."""
    members = zf.namelist()
    if len(set(members)) != len(members):
        raise ValueError("it holds two members of the same name")
    budget = [max_bytes]  # what is left to read
    if _MANIFEST + ".npy" not in members:
        raise ValueError("it is not a minigrad checkpoint (no manifest)")
    text = _read_member(zf, _MANIFEST, "U", budget)
    if text.shape != ():
        raise ValueError("its manifest is not a minigrad checkpoint's")
    manifest = json.loads(str(text[()]))
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ValueError("its manifest is not a minigrad checkpoint's")
    if manifest.get("version") not in (1, 2):
        raise ValueError(f"it is a checkpoint of format version {manifest.get('version')!r}, and this minigrad reads "
                         "versions 1 and 2; load it with the minigrad that wrote it")
    names = _leaves(manifest.get("tree"), [])
    if len(set(names)) != len(names) or _MANIFEST in names:
        raise ValueError("its manifest names an entry twice")
    unnamed = sorted(set(members) - {n + ".npy" for n in names} - {_MANIFEST + ".npy"})
    if unnamed:
        raise ValueError(f"it holds members its manifest does not name: {unnamed[:5]}")
    missing = sorted(n for n in names if n + ".npy" not in members)
    if missing:
        raise ValueError(f"its manifest names missing entries {missing[:5]}")
    arrays = {name: _read_member(zf, name, "biufU", budget) for name in names}
    return _unflatten(manifest["tree"], arrays)


def _read_member(zf: zipfile.ZipFile, name: str, kinds: str, budget: list[int]) -> np.ndarray:
    """Read member ``name + ".npy"``: its header first, then (if allowed) exactly the data it declares.

    ``budget[0]`` is the number of bytes still allowed; this member's declared
    size is taken from it before any of its data is read.
    """
    with zf.open(name + ".npy") as member:
        f = cast(io.BufferedIOBase, member)  # a ZipExtFile, which has readinto
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"entry {name!r} has .npy format version {version}, which save never writes")
        try:
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as e:  # (numpy's next lines advise allow_pickle=True, which no load here ever sets)
            reason = (str(e).splitlines() or [""])[0][:120].rstrip(".")
            raise ValueError(f"entry {name!r} has a .npy header that save never writes ({reason}); the file is "
                             "damaged or was not written by minigrad's save") from None
        if dtype.kind not in kinds or dtype.hasobject:
            raise ValueError(f"entry {name!r} has dtype {dtype}, which save never writes")
        if dtype.kind == "U" and shape != ():  # (save writes text only as one str)
            raise ValueError(f"entry {name!r} is text of shape {shape}, which save never writes")
        if any(n < 0 for n in shape):
            raise ValueError(f"entry {name!r} declares the impossible shape {shape}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > budget[0]:
            raise ValueError(
                f"entry {name!r} declares {nbytes} bytes (shape {shape}, dtype {dtype}), more than the "
                f"{budget[0]} left of max_bytes; if you trust the file, pass a larger max_bytes="
            )
        budget[0] -= nbytes
        array = np.empty(shape, dtype=dtype, order="F" if fortran_order else "C")
        buffer = array.reshape(-1, order="A").view(np.uint8)  # the array's own memory, as bytes
        filled = 0
        while filled < nbytes:
            n = f.readinto(buffer[filled:].data)
            if not n:
                raise ValueError(f"entry {name!r} is shorter than its header says")
            filled += n
        if f.read(1):  # reading to the end also makes zipfile check the member's CRC
            raise ValueError(f"entry {name!r} is longer than its header says")
    return array
