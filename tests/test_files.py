"""minigrad._files.atomic_write, which checkpoints, the lab and the dataset cache write through."""

import os
import stat
import threading

import pytest

from minigrad._files import atomic_write


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(str(path), fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_the_mode_of_the_replaced_file_is_kept_and_a_new_file_follows_the_umask(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(str(path), lambda f: f.write(b"1"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o600)
    atomic_write(str(path), lambda f: f.write(b"2"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"2"


def test_two_threads_writing_one_file_never_share_a_temporary_file(tmp_path):
    path = str(tmp_path / "out.bin")
    errors = []

    def writer(byte):
        try:
            for _ in range(50):
                atomic_write(path, lambda f: f.write(byte * 10_000), durable=False)
        except Exception as e:  # pragma: no cover - what the test looks for
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(b,)) for b in (b"a", b"b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    content = open(path, "rb").read()
    assert not errors and content in (b"a" * 10_000, b"b" * 10_000)  # one writer's whole file, never a mix
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_symlink_is_followed_its_target_replaced_and_the_link_kept(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    target = runs / "step100.bin"
    target.write_bytes(b"old")
    link = tmp_path / "latest.bin"
    link.symlink_to(target)
    atomic_write(str(link), lambda f: f.write(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["latest.bin", "runs"] and os.listdir(runs) == ["step100.bin"]


def test_a_dangling_symlink_gets_its_target_written(tmp_path):
    link = tmp_path / "latest.bin"
    link.symlink_to(tmp_path / "new.bin")
    atomic_write(str(link), lambda f: f.write(b"1"))
    assert link.is_symlink() and (tmp_path / "new.bin").read_bytes() == b"1"
