"""Tests of checkpoints: ``mg.save`` and ``mg.load``.

A checkpoint is a ``.npz`` file written atomically (temporary file in the
same folder, fsync, ``os.replace``) and read with ``allow_pickle=False``. The
tests compare arrays bit for bit (raw bytes, shape and dtype), craft hostile
files by hand (pickle payloads whose ``__reduce__`` would create a marker
directory), and simulate a crash by making ``os.replace`` raise.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import threading
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minigrad as mg
from minigrad import checkpoint, nn

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def assert_same_tree(got: Any, want: Any, where: str = "state") -> None:
    """Nested mappings with the same keys and arrays equal bit for bit."""
    if isinstance(want, Mapping):
        assert isinstance(got, Mapping), f"{where} is a {type(got).__name__}, expected a mapping"
        assert set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for key in want:
            assert_same_tree(got[key], want[key], f"{where}.{key}")
        return
    want_array = np.asarray(want)
    got_array = np.asarray(got)
    assert got_array.shape == want_array.shape, f"{where}: shape {got_array.shape} != {want_array.shape}"
    assert got_array.dtype == want_array.dtype, f"{where}: dtype {got_array.dtype} != {want_array.dtype}"
    assert got_array.tobytes() == want_array.tobytes(), f"{where}: values differ"


def special_values(dtype: type) -> np.ndarray:
    """NaN, ±inf, -0.0, the smallest subnormal and ordinary numbers, as a (2, 4) array."""
    tiny = np.finfo(dtype).smallest_subnormal
    return np.array([[np.nan, np.inf, -np.inf, -0.0], [tiny, 1 / 3, -2.5e30, 7.0]], dtype=dtype)


def make_state(dtype: type) -> dict[str, Any]:
    """A model's state dict and an optimizer-like nested state, in ``dtype``."""
    mg.manual_seed(0)
    model = nn.MLP([4, 5, 3], dtype=dtype)
    return {
        "model": model.state_dict(),
        "optim": {
            "state": {"0": {"v": np.arange(20, dtype=dtype).reshape(4, 5) / 7}, "2": {"v": special_values(dtype)}},
            "step_count": 3,
            "hyperparameters": {"lr": 0.1, "betas": np.array([0.9, 0.999])},
        },
        "epoch": np.int64(12),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 3), dtype=dtype),
    }


class MakeDir:
    """A pickle payload: unpickling it calls ``os.mkdir(marker)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def manifest_for(*keys: str) -> np.ndarray:
    """A minigrad manifest (as ``save`` writes it) listing top-level ``keys``."""
    text = json.dumps({"format": "minigrad-checkpoint", "version": 1, "paths": {k: [k] for k in keys}})
    return np.array(text)


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_for_bit_and_nested(tmp_path: Path, dtype: type) -> None:
    """A nested state comes back with the same structure, shapes, dtypes and bytes."""
    state = make_state(dtype)
    path = tmp_path / "ckpt.npz"
    mg.save(state, path)
    loaded = mg.load(path)
    assert_same_tree(loaded, state)
    assert isinstance(loaded["optim"]["state"]["0"], Mapping)
    assert int(np.asarray(loaded["optim"]["step_count"])) == 3
    assert np.asarray(loaded["optim"]["step_count"]).dtype.kind in "iu"
    assert loaded["model"]["layers.0.W"].dtype == dtype
    # the path may also be a str
    mg.save(state, str(tmp_path / "again.npz"))
    assert_same_tree(mg.load(str(tmp_path / "again.npz")), state)


def test_round_trip_restores_a_model(tmp_path: Path) -> None:
    """Saving a model's state and loading it into a fresh model reproduces its outputs exactly."""
    mg.manual_seed(0)
    model = nn.MLP([4, 8, 3])
    path = tmp_path / "model.npz"
    mg.save({"model": model.state_dict()}, path)
    mg.manual_seed(1)
    fresh = nn.MLP([4, 8, 3])
    fresh.load_state_dict(mg.load(path)["model"])
    x = mg.Tensor(np.random.default_rng(0).normal(size=(5, 4)), dtype=np.float32)
    assert fresh(x).data.tobytes() == model(x).data.tobytes()


def test_tensors_are_saved_as_their_arrays(tmp_path: Path) -> None:
    """A Tensor or Parameter in the state is stored as its data."""
    p = nn.Parameter(np.arange(6.0).reshape(2, 3), dtype=np.float64)
    mg.save({"p": p, "t": mg.Tensor([1.0, 2.0])}, tmp_path / "t.npz")
    loaded = mg.load(tmp_path / "t.npz")
    assert_same_tree(loaded, {"p": p.data, "t": np.array([1.0, 2.0], dtype=np.float32)})


def test_empty_nested_mapping_survives_the_round_trip(tmp_path: Path) -> None:
    """A fresh optimizer's ``"state": {}`` must come back, or its load_state_dict fails."""
    state = {"model": {"W": np.ones(2)}, "optim": {"state": {}, "step_count": 0}}
    mg.save(state, tmp_path / "fresh.npz")
    assert_same_tree(mg.load(tmp_path / "fresh.npz"), state)


def test_fresh_optimizer_checkpoint_round_trips(tmp_path: Path) -> None:
    """An optimizer saved before its first step can be restored from the file."""
    mg.manual_seed(0)
    model = nn.MLP([3, 2])
    optim = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mg.save({"optim": optim.state_dict()}, tmp_path / "o.npz")
    mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).load_state_dict(mg.load(tmp_path / "o.npz")["optim"])


@pytest.mark.parametrize("key", ["file", "allow_pickle", "args", "kwds"])
def test_any_string_key_round_trips(tmp_path: Path, key: str) -> None:
    """Keys that happen to be np.savez's parameter names are stored like any other."""
    state = {key: np.arange(3.0), "other": np.ones(2)}
    mg.save(state, tmp_path / "k.npz")
    assert_same_tree(mg.load(tmp_path / "k.npz"), state)


def test_dotted_keys_and_colliding_keys(tmp_path: Path) -> None:
    """A key with dots keeps its shape; two entries that flatten to one key are refused."""
    state = {"layers.0.W": np.ones((2, 2)), "optim": {"state.0": {"v": np.zeros(2)}}}
    mg.save(state, tmp_path / "d.npz")
    assert_same_tree(mg.load(tmp_path / "d.npz"), state)
    with pytest.raises(ValueError):
        mg.save({"a.b": np.ones(1), "a": {"b": np.zeros(1)}}, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_save_refuses_what_would_need_pickle(tmp_path: Path) -> None:
    """Object arrays, arrays of text and non-mapping states are refused, and nothing is written."""
    with pytest.raises(TypeError, match="w"):
        mg.save({"w": np.array([{"a": 1}], dtype=object)}, tmp_path / "o.npz")
    with pytest.raises(TypeError, match=r"'names' is not numeric \(dtype <U3\); save arrays, numbers or text"):
        mg.save({"names": np.array(["mlp", "cnn"])}, tmp_path / "o.npz")
    with pytest.raises(TypeError, match=r"save: entry 'w' is not an array \(.*\); save arrays, numbers or text"):
        mg.save({"w": [[1.0], [1.0, 2.0]]}, tmp_path / "o.npz")
    with pytest.raises(TypeError, match=r"got Linear; save its state_dict\(\), mg\.save\(model\.state_dict\(\)"):
        mg.save(mg.nn.Linear(2, 2), tmp_path / "o.npz")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        mg.save([np.ones(2)], tmp_path / "o.npz")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_a_plain_npz_at_exactly_the_given_path(tmp_path: Path) -> None:
    """The file is a zip of .npy members that numpy reads without pickle; no suffix is added."""
    state = make_state(np.float32)
    path = tmp_path / "model.ckpt"
    mg.save(state, path)
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt"]
    assert zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    assert all(a.dtype != object for a in arrays.values())
    assert_same_tree(arrays["model.layers.0.W"], state["model"]["layers.0.W"])
    assert_same_tree(arrays["optim.state.0.v"], state["optim"]["state"]["0"]["v"])
    assert_same_tree(mg.load(path), state)


# ---------------------------------------------------------------------------
# Hostile files: pickle payloads never run
# ---------------------------------------------------------------------------


def test_the_payload_is_live(tmp_path: Path) -> None:
    """Sanity check of the other tests: unpickling MakeDir really creates its marker."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(MakeDir(marker)))
    assert marker.is_dir()


def test_npz_with_a_pickled_object_member_is_refused_and_never_runs(tmp_path: Path) -> None:
    """A minigrad-looking .npz whose member is a pickled object array raises; the payload stays inert."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.npz"
    np.savez(path, __minigrad__=manifest_for("w"), w=np.array([MakeDir(marker)], dtype=object))
    with pytest.raises(ValueError) as info:
        mg.load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    # the same payload does run if numpy is allowed to unpickle: the file really is hostile
    live = tmp_path / "live"
    np.savez(tmp_path / "live.npz", w=np.array([MakeDir(live)], dtype=object))
    with np.load(tmp_path / "live.npz", allow_pickle=True) as npz:
        npz["w"]
    assert live.is_dir()


def test_npz_with_a_pickled_manifest_is_refused_and_never_runs(tmp_path: Path) -> None:
    """The manifest itself as a pickled object array raises; the payload stays inert."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.npz"
    np.savez(path, __minigrad__=np.array([MakeDir(marker)], dtype=object), w=np.ones(2))
    with pytest.raises(ValueError) as info:
        mg.load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["evil.npz", "evil.pkl"])
def test_raw_pickle_file_is_refused_and_never_runs(tmp_path: Path, name: str) -> None:
    """A plain pickle file (whatever its suffix) raises ValueError; the payload stays inert."""
    marker = tmp_path / "payload-ran"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"model": MakeDir(marker)}))
    with pytest.raises(ValueError) as info:
        mg.load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


# ---------------------------------------------------------------------------
# Corrupt and foreign files
# ---------------------------------------------------------------------------


def good_bytes(tmp_path: Path) -> bytes:
    """The bytes of a valid checkpoint."""
    mg.save(make_state(np.float64), tmp_path / "good.npz")
    return (tmp_path / "good.npz").read_bytes()


def write_truncated(tmp_path: Path, path: Path) -> None:
    """The first half of a valid checkpoint."""
    raw = good_bytes(tmp_path)
    path.write_bytes(raw[: len(raw) // 2])


def write_tail_cut(tmp_path: Path, path: Path) -> None:
    """A valid checkpoint missing its last 10 bytes (the end of the zip directory)."""
    path.write_bytes(good_bytes(tmp_path)[:-10])


def write_random(tmp_path: Path, path: Path) -> None:
    """Random bytes."""
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def write_empty(tmp_path: Path, path: Path) -> None:
    """An empty file."""
    path.write_bytes(b"")


def write_foreign_npz(tmp_path: Path, path: Path) -> None:
    """A plain np.savez file with no minigrad manifest."""
    with open(path, "wb") as f:
        np.savez(f, W=np.ones((2, 2)), b=np.zeros(2))


def write_npy(tmp_path: Path, path: Path) -> None:
    """A single .npy array."""
    with open(path, "wb") as f:
        np.save(f, np.ones(3))


def write_text(tmp_path: Path, path: Path) -> None:
    """A text file."""
    path.write_text("W,b\n1,2\n")


def write_wrong_manifest(tmp_path: Path, path: Path) -> None:
    """An .npz whose __minigrad__ entry is not a minigrad manifest."""
    with open(path, "wb") as f:
        np.savez(f, __minigrad__=np.array('{"format": "something-else"}'), w=np.ones(2))


def write_manifest_not_json(tmp_path: Path, path: Path) -> None:
    """An .npz whose manifest is not JSON."""
    with open(path, "wb") as f:
        np.savez(f, __minigrad__=np.array("not json {"), w=np.ones(2))


def write_manifest_missing_entry(tmp_path: Path, path: Path) -> None:
    """A manifest listing an entry that the file does not hold."""
    with open(path, "wb") as f:
        np.savez(f, __minigrad__=manifest_for("w", "gone"), w=np.ones(2))


def write_manifest_conflicting_paths(tmp_path: Path, path: Path) -> None:
    """A manifest in which entry "a" is both an array and a folder holding "b"."""
    text = json.dumps({"format": "minigrad-checkpoint", "version": 1, "paths": {"a": ["a"], "b": ["a", "b"]}})
    with open(path, "wb") as f:
        np.savez(f, __minigrad__=np.array(text), a=np.ones(2), b=np.zeros(2))


def write_manifest_empty_path(tmp_path: Path, path: Path) -> None:
    """A manifest giving an entry an empty path."""
    text = json.dumps({"format": "minigrad-checkpoint", "version": 1, "paths": {"a": [], "b": ["b"]}})
    with open(path, "wb") as f:
        np.savez(f, __minigrad__=np.array(text), a=np.ones(2), b=np.zeros(2))


def write_flipped_data_byte(tmp_path: Path, path: Path) -> None:
    """A valid checkpoint with one byte of array data flipped (the zip CRC no longer matches)."""
    raw = bytearray(good_bytes(tmp_path))
    marker = special_values(np.float64).tobytes()
    where = raw.index(marker[8:16])  # inside the stored +inf
    raw[where + 3] ^= 0xFF
    path.write_bytes(bytes(raw))


def write_unknown_compression(tmp_path: Path, path: Path) -> None:
    """A valid checkpoint whose zip directory names an unknown compression method."""
    raw = bytearray(good_bytes(tmp_path))
    central = raw.index(b"PK\x01\x02")
    raw[central + 10 : central + 12] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(raw))


CORRUPT: dict[str, Callable[[Path, Path], None]] = {
    "truncated to half": write_truncated,
    "last bytes cut": write_tail_cut,
    "random bytes": write_random,
    "empty file": write_empty,
    "foreign npz": write_foreign_npz,
    "npy file": write_npy,
    "text file": write_text,
    "wrong manifest": write_wrong_manifest,
    "manifest not json": write_manifest_not_json,
    "manifest lists a missing entry": write_manifest_missing_entry,
    "manifest with conflicting paths": write_manifest_conflicting_paths,
    "manifest with an empty path": write_manifest_empty_path,
    "flipped data byte": write_flipped_data_byte,
    "unknown compression method": write_unknown_compression,
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_or_foreign_file_raises_value_error_naming_it(tmp_path: Path, case: str) -> None:
    """Every unreadable file raises ValueError (not another error) and the message names the path."""
    path = tmp_path / "bad.npz"
    CORRUPT[case](tmp_path, path)
    with pytest.raises(ValueError) as info:
        mg.load(path)
    assert str(path) in str(info.value)


def test_every_truncation_raises_value_error(tmp_path: Path) -> None:
    """Cutting a checkpoint at 40 lengths spread over the file gives ValueError naming the file."""
    raw = good_bytes(tmp_path)
    path = tmp_path / "cut.npz"
    for n in sorted(set(np.linspace(0, len(raw) - 1, 40).astype(int).tolist()) | {1, len(raw) - 1}):
        path.write_bytes(raw[:n])
        with pytest.raises(ValueError) as info:
            mg.load(path)
        assert str(path) in str(info.value), f"cut at {n}"


def _npz(path, manifest, members):
    """A zip of .npy members with the given manifest (a dict, stored as JSON text) and raw member bytes."""
    with zipfile.ZipFile(path, "w") as zf:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.array(json.dumps(manifest)))
        zf.writestr("__minigrad__.npy", buffer.getvalue())
        for name, payload in members.items():
            zf.writestr(name + ".npy", payload)


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def test_load_refuses_a_dtype_save_never_writes_and_save_refuses_complex(tmp_path):
    """Only bool, integer, float and text entries exist: a complex member is a foreign file."""
    manifest = {"format": "minigrad-checkpoint", "version": 1, "tree": {"z": "z"}}
    _npz(tmp_path / "c.npz", manifest, {"z": _npy(np.array([1 + 2j]))})
    with pytest.raises(ValueError, match=r"entry 'z' has dtype complex128, which save never writes"):
        checkpoint.load(tmp_path / "c.npz")
    with pytest.raises(TypeError, match=r"entry 'z' is not numeric \(dtype complex128\)"):
        checkpoint.save({"z": np.array([1 + 2j])}, tmp_path / "d.npz")
    assert not (tmp_path / "d.npz").exists()


def test_load_refuses_a_manifest_without_a_version(tmp_path):
    """A manifest that names no format version is not one of versions 1 and 2."""
    _npz(tmp_path / "v.npz", {"format": "minigrad-checkpoint", "tree": {"w": "w"}}, {"w": _npy(np.zeros(2))})
    with pytest.raises(ValueError, match="format version None"):
        checkpoint.load(tmp_path / "v.npz")


def test_load_refuses_a_member_longer_than_its_header_and_one_the_manifest_does_not_name(tmp_path):
    """Trailing data after an array, or a member outside the manifest, is a damaged or foreign file."""
    manifest = {"format": "minigrad-checkpoint", "version": 1, "tree": {"w": "w"}}
    _npz(tmp_path / "long.npz", manifest, {"w": _npy(np.zeros(2)) + b"\0" * 8})
    with pytest.raises(ValueError, match="entry 'w' is longer than its header says"):
        checkpoint.load(tmp_path / "long.npz")
    _npz(tmp_path / "extra.npz", manifest, {"w": _npy(np.zeros(2)), "extra": _npy(np.ones(1))})
    with pytest.raises(ValueError, match=r"members its manifest does not name: \['extra.npy'\]"):
        checkpoint.load(tmp_path / "extra.npz")
    _npz(tmp_path / "ok.npz", manifest, {"w": _npy(np.arange(2.0))})
    np.testing.assert_array_equal(checkpoint.load(tmp_path / "ok.npz")["w"], [0.0, 1.0])


def test_a_npy_header_numpy_refuses_is_one_line_that_does_not_advise_pickle(tmp_path: Path) -> None:
    """numpy's refusal of a huge header ended in "... using allow_pickle=True", advice no load here can take (h63)."""
    manifest = {"format": "minigrad-checkpoint", "version": 1, "tree": {"w": "w"}}
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1,) * 10000})
    _npz(tmp_path / "huge.npz", manifest, {"w": header.getvalue() + b"\0" * 4})
    with pytest.raises(ValueError) as info:
        checkpoint.load(tmp_path / "huge.npz")
    message = str(info.value)
    assert message.startswith(f"load: cannot read checkpoint {str(tmp_path / 'huge.npz')!r}: entry 'w' has a .npy "
                              "header that save never writes (Header info length")
    assert message.endswith("the file is damaged or was not written by minigrad's save")
    assert "pickle" not in message and "\n" not in message


def test_save_into_a_missing_folder_or_to_an_empty_path_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"save: the folder '.*nowhere' does not exist; create it first "
                                                r"\(os.makedirs\(folder, exist_ok=True\)\)"):
        mg.save({"w": np.zeros(1)}, tmp_path / "nowhere" / "x.npz")
    with pytest.raises(ValueError, match=r"save: the path is empty; give the checkpoint's file name"):
        mg.save({"w": np.zeros(1)}, "")
    assert os.listdir(tmp_path) == []


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    """A path that does not exist raises FileNotFoundError naming it."""
    path = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError) as info:
        mg.load(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", [OSError("disk unplugged"), KeyboardInterrupt()])
def test_crash_before_replace_leaves_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """If os.replace never happens, the old file is intact and no temporary file is left."""
    old = {"model": {"W": np.arange(6.0).reshape(2, 3)}, "step": 1}
    path = tmp_path / "ckpt.npz"
    mg.save(old, path)
    old_bytes = path.read_bytes()

    def crash(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        raise error

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(type(error)):
        mg.save({"model": {"W": np.zeros((2, 3))}, "step": 2}, path)
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert path.read_bytes() == old_bytes
    assert_same_tree(mg.load(path), old)


def test_crash_while_writing_leaves_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing the temporary file fails midway, the old file is intact and no temporary file is left."""
    path = tmp_path / "ckpt.npz"
    old = {"W": np.ones(4)}
    mg.save(old, path)
    old_bytes = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", crash)
    with pytest.raises(OSError):
        mg.save({"W": np.zeros(4)}, path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert path.read_bytes() == old_bytes


def test_save_writes_a_temporary_file_in_the_same_folder_fsyncs_then_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new file is fsynced, then moved over the target from the target's own folder."""
    calls: list[tuple[str, Any]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", fd))
        real_fsync(fd)

    def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        calls.append(("replace", (os.fspath(src), os.fspath(dst))))
        assert Path(src).stat().st_size > 0
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    path = tmp_path / "ckpt.npz"
    mg.save({"W": np.ones(3)}, path)
    kinds = [kind for kind, _ in calls]
    assert kinds == ["fsync", "replace", "fsync"]  # the file, the rename, then the folder (tested below)
    src, dst = calls[1][1]
    assert Path(src).parent.resolve() == tmp_path.resolve()
    assert Path(dst).resolve() == path.resolve()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_saving_over_a_checkpoint_replaces_it_atomically(tmp_path: Path) -> None:
    """A second save to the same path swaps in a new file (new inode); readers of the old one are unaffected."""
    path = tmp_path / "ckpt.npz"
    first = {"W": np.full((3, 3), 1.0)}
    second = {"W": np.full((3, 3), 2.0), "b": np.zeros(3)}
    mg.save(first, path)
    keep = tmp_path / "old-link.npz"
    os.link(path, keep)  # a second name for the first file
    inode = path.stat().st_ino
    with open(path, "rb") as reader:
        mg.save(second, path)
        old_content = reader.read()
    assert path.stat().st_ino != inode
    assert_same_tree(mg.load(path), second)
    assert_same_tree(mg.load(keep), first)  # the old file was replaced, not rewritten in place
    assert_same_tree(np.load(io.BytesIO(old_content), allow_pickle=False)["W"], first["W"])
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz", "old-link.npz"]


def test_save_fsyncs_the_folder_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last thing save does is fsync the target's folder, so the rename itself is on disk."""
    calls: list[tuple[str, int | None]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        calls.append(("fsync folder" if stat.S_ISDIR(info.st_mode) else "fsync file", info.st_ino))
        real_fsync(fd)

    def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        calls.append(("replace", None))
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    mg.save({"W": np.ones(3)}, tmp_path / "ckpt.npz")
    assert [kind for kind, _ in calls] == ["fsync file", "replace", "fsync folder"]
    assert calls[-1][1] == tmp_path.stat().st_ino


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_saving_over_a_checkpoint_keeps_its_file_mode(tmp_path: Path, mode: int) -> None:
    """A checkpoint made private (or read-only) stays so when it is saved over."""
    path = tmp_path / "ckpt.npz"
    mg.save({"W": np.ones(3)}, path)
    path.chmod(mode)
    mg.save({"W": np.zeros(3)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert_same_tree(mg.load(path), {"W": np.zeros(3)})


def test_a_new_checkpoint_gets_0666_minus_the_umask(tmp_path: Path) -> None:
    """A new file has the mode open() would give it, not mkstemp's 0600."""
    umask = os.umask(0o027)
    try:
        mg.save({"W": np.ones(3)}, tmp_path / "new.npz")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o640


def test_a_failed_save_names_the_users_path_not_the_temporary_file(tmp_path: Path) -> None:
    """A missing folder or a folder in the way raise the usual OSError, naming the path given to save."""
    for path, error in (
        (tmp_path / "no-such-folder" / "ckpt.npz", FileNotFoundError),
        (tmp_path / "a-folder", IsADirectoryError),
    ):
        if error is IsADirectoryError:
            path.mkdir()
        with pytest.raises(error) as info:
            mg.save({"W": np.ones(3)}, path)
        assert info.value.filename == str(path)
        assert str(path) in str(info.value) and ".tmp" not in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["a-folder"]  # and no temporary file is left


# ---------------------------------------------------------------------------
# Keys: every key round-trips or is refused before anything is written
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        {"a": np.ones(2), "a.npy": np.zeros(3)},
        {"a.npy": np.zeros(3), "a": np.ones(2)},
        {"w.npy": np.arange(4.0)},
        {"m": {"W": np.ones(2), "W.npy": np.full(2, 7.0)}, "m.W.npy.npy": np.zeros(1)},
        {"é": np.ones(1), "a/b": np.zeros(2), " ": np.full(3, 2.0)},
    ],
)
def test_keys_ending_in_npy_or_unusual_keys_come_back_as_they_were(tmp_path: Path, state: dict) -> None:
    """Member "a.npy" holds key "a" and "a.npy.npy" key "a.npy": load reads each by its exact name."""
    mg.save(state, tmp_path / "k.npz")
    assert_same_tree(mg.load(tmp_path / "k.npz"), state)


@pytest.mark.parametrize(
    "state, named",
    [
        ({"a\x00b": np.ones(2)}, "a\\x00b"),
        ({"model": {"W\x00": np.ones(2)}}, "model.W\\x00"),
        ({"\udc80": np.ones(2)}, "\\udc80"),
        ({"a\\b": np.ones(2)}, "a\\\\b"),
        ({"x" * 70_000: np.ones(2)}, "xxxx"),
        ({"": np.ones(2)}, "''"),
        ({"ok": np.ones(2), 3: np.ones(2)}, "3"),
        ({"__minigrad__": np.ones(2)}, "reserved"),
    ],
)
def test_a_key_that_cannot_round_trip_is_refused_before_anything_is_written(
    tmp_path: Path, state: dict, named: str
) -> None:
    """A NUL byte, a lone surrogate, a backslash, an over-long or empty key: ValueError, the old file kept."""
    path = tmp_path / "ckpt.npz"
    mg.save({"W": np.arange(3.0)}, path)
    old_bytes = path.read_bytes()
    with pytest.raises(ValueError) as info:
        mg.save({"first": np.zeros(2), **state}, path)
    assert named in str(info.value) and "save" in str(info.value)
    assert path.read_bytes() == old_bytes
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


# ---------------------------------------------------------------------------
# Sizes: a member's declared size is checked before its data is read
# ---------------------------------------------------------------------------


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """The magic string and .npy version 1.0 header declaring an array of ``shape`` and ``dtype``."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue()


def write_declared(path: Path, members: dict[str, bytes]) -> None:
    """A deflate-compressed checkpoint whose manifest names ``members`` (name -> raw .npy bytes)."""
    manifest = io.BytesIO()
    tree = {name: name for name in members}
    np.lib.format.write_array(manifest, np.array(json.dumps({"format": "minigrad-checkpoint", "version": 1,
                                                             "tree": tree})))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__minigrad__.npy", manifest.getvalue())
        for name, raw in members.items():
            zf.writestr(name + ".npy", raw)


def test_a_small_file_declaring_a_huge_array_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 2 GiB array declared in a file of a few hundred bytes: ValueError naming max_bytes; nothing allocated."""
    import tracemalloc

    path = tmp_path / "bomb.npz"
    write_declared(path, {"w": npy_header((2**28,)) + b"\x00" * 64})
    assert path.stat().st_size < 2_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            mg.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "max_bytes" in str(info.value) and str(2**31) in str(info.value) and str(path) in str(info.value)
    assert peak < 2**24  # not the 2 GiB array numpy would have made


def test_max_bytes_bounds_the_data_a_compressed_file_expands_to(tmp_path: Path) -> None:
    """16 MiB of zeros compressed to kilobytes: refused under max_bytes=1 MiB, read under the default."""
    path = tmp_path / "zeros.npz"
    n = 2**21  # float64: 16 MiB
    write_declared(path, {"w": npy_header((n,)) + bytes(8 * n)})
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match="max_bytes"):
        mg.load(path, max_bytes=2**20)
    assert_same_tree(mg.load(path), {"w": np.zeros(n)})
    assert checkpoint.DEFAULT_MAX_BYTES == 2**30


def test_max_bytes_counts_the_whole_file(tmp_path: Path) -> None:
    """Two entries each under the limit but together over it are refused; exactly at the limit is fine."""
    path = tmp_path / "two.npz"
    mg.save({"a": np.zeros(100), "b": np.ones(100)}, path)
    manifest_bytes = 4 * len(json.dumps({"format": "minigrad-checkpoint", "version": 1,
                                         "tree": {"a": "a", "b": "b"}}))
    limit = manifest_bytes + 1600
    assert_same_tree(mg.load(path, max_bytes=limit), {"a": np.zeros(100), "b": np.ones(100)})
    with pytest.raises(ValueError, match="max_bytes"):
        mg.load(path, max_bytes=limit - 1)
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="max_bytes"):
            mg.load(path, max_bytes=bad)  # type: ignore[arg-type]


def test_load_refuses_a_negative_max_bytes():
    """max_bytes must be a non-negative integer: -1 is refused as such, before the file is opened."""
    with pytest.raises(ValueError, match=r"load: max_bytes must be a non-negative integer, got -1"):
        checkpoint.load("no-such-file.npz", max_bytes=-1)


def test_a_file_with_two_members_of_one_name_is_refused(tmp_path: Path) -> None:
    """A zip may hold one name twice; load refuses it rather than pick one."""
    path = tmp_path / "dup.npz"
    mg.save({"w": np.ones(2)}, tmp_path / "good.npz")
    with zipfile.ZipFile(tmp_path / "good.npz") as good, zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        for name in good.namelist():
            zf.writestr(name, good.read(name))
        zf.writestr("w.npy", good.read("w.npy"))
    with pytest.raises(ValueError, match="two members"):
        mg.load(path)


# ---------------------------------------------------------------------------
# Files that are not regular files
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_load_refuses_a_named_pipe_without_blocking(tmp_path: Path) -> None:
    """Opening a pipe with no writer would wait forever; load refuses it at once."""
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            mg.load(fifo)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the reader, so the suite goes on
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail("mg.load blocked on a named pipe")
    assert isinstance(outcome[0], ValueError)
    assert "named pipe" in str(outcome[0]) and str(fifo) in str(outcome[0])


@pytest.mark.parametrize("where", ["folder", "/dev/zero", "/dev/null"])
def test_load_refuses_folders_and_devices(tmp_path: Path, where: str) -> None:
    """A folder or a device is not a checkpoint: ValueError naming it (and /dev/zero is never read)."""
    path = tmp_path if where == "folder" else Path(where)
    if not path.exists():
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(ValueError) as info:
        mg.load(path, max_bytes=2**62)
    assert "not a regular file" in str(info.value) and str(path) in str(info.value)


def test_load_follows_a_symlink_to_a_checkpoint(tmp_path: Path) -> None:
    """A symbolic link to a regular file is fine: the check is on the file opened."""
    mg.save({"w": np.ones(2)}, tmp_path / "real.npz")
    (tmp_path / "link.npz").symlink_to(tmp_path / "real.npz")
    assert_same_tree(mg.load(tmp_path / "link.npz"), {"w": np.ones(2)})


def test_fortran_ordered_and_non_contiguous_arrays_round_trip(tmp_path: Path) -> None:
    """A column-major array, a strided view and a big-endian array come back with their values and shapes."""
    base = np.arange(24.0).reshape(4, 6)
    state = {"f": np.asfortranarray(base), "view": base[::2, 1::2], "big": base.astype(">f8")}
    mg.save(state, tmp_path / "f.npz")
    loaded = mg.load(tmp_path / "f.npz")
    for key, array in state.items():
        assert loaded[key].shape == array.shape and loaded[key].dtype == array.dtype
        assert np.array_equal(loaded[key], array), key
    assert loaded["f"].flags.f_contiguous


def test_a_member_declaring_a_negative_shape_is_refused(tmp_path: Path) -> None:
    """A header with a negative dimension is refused with ValueError, before any allocation."""
    path = tmp_path / "neg.npz"
    write_declared(path, {"w": npy_header((-4, 2))})
    with pytest.raises(ValueError, match="impossible shape"):
        mg.load(path)


def test_a_truncated_checkpoint_says_it_is_incomplete(tmp_path):
    path = tmp_path / "model.npz"
    mg.save({"W": np.ones((3, 3))}, path)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"load: cannot read checkpoint .*model.npz.*not a complete checkpoint"
                                             r".*cut short"):
            mg.load(path)


def test_a_checkpoint_with_a_flipped_data_byte_says_it_is_damaged_not_cut_short(tmp_path: Path) -> None:
    """A bad CRC was reported as a file that "may have been cut short", which a whole, damaged file is not (h53)."""
    path = tmp_path / "model.npz"
    model = mg.nn.Linear(3, 2)
    mg.save(model.state_dict(), path)
    data = bytearray(path.read_bytes())
    at = data.find(model.W.data.tobytes())  # (stored uncompressed: the weights' bytes lie in the file as they are)
    assert at > 0
    data[at + 5] ^= 0x10
    path.write_bytes(bytes(data))
    before = model.W.data.copy()
    damaged = r"model\.npz.*its data is damaged \(Bad CRC-32 for file 'W\.npy'.*load a copy"
    with pytest.raises(ValueError, match=damaged):
        model.load_state_dict(mg.load(path))
    np.testing.assert_array_equal(model.W.data, before)
    mg.save(model.state_dict(), path)  # a flipped byte in a member's own header instead (h57)
    data = bytearray(path.read_bytes())
    data[data.find(b"PK\x03\x04", 1)] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"its data is damaged \(Bad magic number for file header"):
        mg.load(path)


def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    mg.save({"w": np.arange(3.0)}, tmp_path / "real.npz")
    (tmp_path / "latest.npz").symlink_to(tmp_path / "real.npz")
    mg.save({"w": np.arange(4.0)}, tmp_path / "latest.npz")
    assert (tmp_path / "latest.npz").is_symlink()
    np.testing.assert_array_equal(mg.load(tmp_path / "real.npz")["w"], np.arange(4.0))


def test_a_string_is_saved_as_text_and_loaded_as_the_same_str(tmp_path: Path) -> None:
    """A state's text (the class an optimizer state belongs to) round-trips as a str, beside arrays."""
    mg.save({"class": "Adam", "nested": {"name": "lé ☃", "w": np.arange(2.0)}, "empty": ""}, tmp_path / "s.npz")
    loaded = mg.load(tmp_path / "s.npz")
    assert loaded["class"] == "Adam" and type(loaded["class"]) is str and loaded["empty"] == ""
    assert loaded["nested"]["name"] == "lé ☃"
    np.testing.assert_array_equal(loaded["nested"]["w"], [0.0, 1.0])


def test_a_text_entry_of_several_strings_is_refused_on_load(tmp_path: Path) -> None:
    """save writes text only as one str; a file holding an array of strings is not one save wrote."""
    mg.save({"name": "x"}, tmp_path / "s.npz")
    with zipfile.ZipFile(tmp_path / "s.npz") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array(["a", "b"]))
    members["name.npy"] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "s.npz", "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(ValueError, match=r"entry 'name' is text of shape \(2,\), which save never writes"):
        mg.load(tmp_path / "s.npz")


def test_a_checkpoint_of_another_format_version_is_refused_by_name(tmp_path: Path) -> None:
    """A file marked version 99 loaded as if it were version 1."""
    mg.save({"w": np.ones(2)}, tmp_path / "s.npz")
    with zipfile.ZipFile(tmp_path / "s.npz") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = [n for n in members if n != "w.npy"][0]
    text = np.lib.format.read_array(io.BytesIO(members[manifest]))
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array(str(text[()]).replace('"version": 1', '"version": 99')))
    members[manifest] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "s.npz", "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    with pytest.raises(ValueError, match=r"format version 99, and this minigrad reads versions 1 and 2"):
        mg.load(tmp_path / "s.npz")


def _train(model: Any, opt: Any, X: np.ndarray, y: np.ndarray, epochs: int) -> None:
    for _ in range(epochs):
        for xb, yb in mg.data.batches(X, y, 16):  # shuffled by mg's generator; Dropout draws from it too
            opt.zero_grad()
            mg.nn.cross_entropy(model(xb), yb).backward()
            opt.step()


def test_a_run_with_dropout_and_shuffles_resumes_bit_identically_with_the_rng_state(tmp_path: Path) -> None:
    """The generator's state could not be saved (text and 128-bit integers): such a run resumed otherwise."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 3, 64)

    def fresh() -> tuple[Any, Any]:
        mg.manual_seed(1)
        model = mg.nn.MLP([4, 8, 3], dropout=0.5)
        return model, mg.optim.Adam(model.parameters(), lr=0.01)

    model, opt = fresh()
    _train(model, opt, X, y, 4)
    unbroken = model.state_dict()
    model, opt = fresh()
    _train(model, opt, X, y, 2)
    mg.save({"model": model.state_dict(), "optim": opt.state_dict(), "rng": mg.get_rng_state()}, tmp_path / "c.npz")
    model, opt = fresh()
    mg.get_generator().random(5)  # the generator has moved on since: the checkpoint's state must win
    checkpoint = mg.load(tmp_path / "c.npz")
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optim"])
    mg.set_rng_state(checkpoint["rng"])
    _train(model, opt, X, y, 2)
    for name, value in model.state_dict().items():
        assert value.tobytes() == unbroken[name].tobytes(), name


def test_set_rng_state_refuses_what_get_rng_state_did_not_return_and_keeps_the_generator() -> None:
    mg.manual_seed(0)
    state = mg.get_rng_state()
    expected = mg.get_generator().random(3)
    mg.set_rng_state(state)
    with pytest.raises(ValueError, match=r"^set_rng_state: expected the state of a PCG64 generator.*'MT19937'"):
        mg.set_rng_state({**state, "bit_generator": "MT19937"})
    with pytest.raises(ValueError, match=r"^set_rng_state: the state is not one get_rng_state\(\) returned"):
        mg.set_rng_state({**state, "state": {}})
    np.testing.assert_array_equal(mg.get_generator().random(3), expected)


def test_a_bytes_path_saves_and_loads(tmp_path: Path) -> None:
    """It raised "Can't mix strings and bytes" from deep inside the write."""
    path = os.fsencode(tmp_path / "b.npz")
    mg.save({"w": np.arange(2.0)}, path)
    np.testing.assert_array_equal(mg.load(path)["w"], [0.0, 1.0])


def test_text_makes_the_format_version_2_and_a_nul_in_text_is_refused(tmp_path: Path) -> None:
    """'abc\\x00' loaded back as 'abc'; a file with text was marked version 1, which older readers refuse anyway."""
    def version(path: Path) -> int:
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n != "w.npy" and n != "name.npy")
            return json.loads(str(np.lib.format.read_array(io.BytesIO(zf.read(name)))[()]))["version"]

    mg.save({"w": np.ones(2)}, tmp_path / "a.npz")
    mg.save({"w": np.ones(2), "name": "Adam"}, tmp_path / "b.npz")
    assert version(tmp_path / "a.npz") == 1 and version(tmp_path / "b.npz") == 2
    with pytest.raises(ValueError, match=r"entry 'name' is text holding a NUL character"):
        mg.save({"name": "abc\x00"}, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_a_str_enum_is_saved_as_its_text() -> None:
    """numpy read (str, Enum) members its own way: E.X with value 'xval' was saved as 'E.X' cut to 4 characters."""
    import enum
    import tempfile

    class Kind(str, enum.Enum):
        X = "xval"

    with tempfile.TemporaryDirectory() as folder:
        mg.save({"k": Kind.X}, os.path.join(folder, "e.npz"))
        assert mg.load(os.path.join(folder, "e.npz"))["k"] == "xval"
