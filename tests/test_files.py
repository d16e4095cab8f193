"""minigrad._files.atomic_write, which checkpoints, the lab and the dataset cache write through."""

import errno
import os
import re
import stat
import subprocess
import sys
import threading
import time

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


def test_a_named_pipe_a_folder_and_a_write_protected_file_are_not_replaced(tmp_path):
    """os.replace put a regular file over a FIFO (a device too: /dev/null, as root) and over a read-only file."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"it is a named pipe, not a regular file") as info:
        atomic_write(str(fifo), lambda f: f.write(b"x"))
    assert info.value.errno == 22 and stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        atomic_write(str(tmp_path), lambda f: f.write(b"x"))
    if os.geteuid() != 0:  # (root may write any file, as open() would)
        kept = tmp_path / "kept.bin"
        kept.write_bytes(b"good")
        kept.chmod(0o444)
        with pytest.raises(PermissionError, match=r"write-protected \(mode 444\) and is kept"):
            atomic_write(str(kept), lambda f: f.write(b"bad"))
        assert kept.read_bytes() == b"good"
    assert sorted(os.listdir(tmp_path)) == sorted(["pipe", *(["kept.bin"] if os.geteuid() != 0 else [])])


def test_a_name_of_255_bytes_can_be_written(tmp_path):
    """The temporary name added 18 bytes to the target's: a valid long name failed with ENAMETOOLONG."""
    path = tmp_path / ("é" * 125 + ".bin")  # 254 bytes
    atomic_write(str(path), lambda f: f.write(b"1"))
    assert path.read_bytes() == b"1" and os.listdir(tmp_path) == [path.name]


def test_a_failed_sync_of_the_folder_says_the_new_file_is_in_place(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # the folder's, after the file's
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match=r"Input/output error: the new file is in place, but syncing its folder"):
        atomic_write(str(path), lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"


def test_a_name_that_is_not_utf8_is_written_and_a_missing_folder_in_the_path_still_fails(tmp_path):
    """basename.encode() raised UnicodeEncodeError for a name holding bytes that are not UTF-8 (h44)."""
    odd = os.path.join(os.fsencode(tmp_path), b"ck\xff.bin")
    atomic_write(os.fsdecode(odd), lambda f: f.write(b"1"))
    assert open(odd, "rb").read() == b"1"
    with pytest.raises(FileNotFoundError):  # as open() fails: realpath would have resolved missing/.. away
        atomic_write(str(tmp_path / "missing" / ".." / "x.bin"), lambda f: f.write(b"1"))


def test_a_path_through_a_linked_folder_and_dotdot_lands_where_open_would_put_it(tmp_path):
    """The temporary file went beside the link's parent, os.replace to the target's (EXDEV across devices; h47)."""
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "lnk").symlink_to(tmp_path / "real" / "sub")
    atomic_write(str(tmp_path / "lnk" / ".." / "x.bin"), lambda f: f.write(b"1"))
    assert (tmp_path / "real" / "x.bin").read_bytes() == b"1" and not (tmp_path / "x.bin").exists()


DAY = 24 * 3600


def _leftover(folder, name: str, age: float = 2 * DAY):
    """A temporary file as a killed writer leaves it: ``age`` seconds old."""
    path = folder / name
    path.write_bytes(b"half a checkpoint")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def _finished_pid() -> int:
    """The id of a process that has run and ended (so no process of that number is running, for now)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.skipif(os.name != "posix", reason="leftovers are removed on POSIX systems only")
def test_the_first_write_into_a_folder_removes_dead_writers_day_old_leftovers_and_keeps_everything_else(tmp_path):
    """A save killed mid-write (kill -9) left its hidden temporary file forever, one per kill.

    Removed: this host's temporary files, of any target in the folder, whose process is not running and
    that have not changed for a day. Kept: a live process's, a younger one (a writer in another pid namespace
    looks dead), another host's (a shared folder), and files of other names.
    """
    from minigrad._files import _HOST

    dead = _finished_pid()
    gone = [_leftover(tmp_path, f".model.npz.{_HOST}-{dead}-0123456789ab.tmp"),
            _leftover(tmp_path, f".optim.npz.{_HOST}-{dead}-aaaaaaaaaaaa.tmp")]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        other_host = "f" * 8 if _HOST != "f" * 8 else "0" * 8
        kept = [
            _leftover(tmp_path, f".model.npz.{_HOST}-{sleeper.pid}-bbbbbbbbbbbb.tmp"),
            _leftover(tmp_path, f".model.npz.{_HOST}-{dead}-cccccccccccc.tmp", age=DAY - 600),
            _leftover(tmp_path, f".model.npz.{other_host}-{dead}-dddddddddddd.tmp"),
            *(_leftover(tmp_path, name) for name in (".model.npz.tmp", "model.npz.bak", f".model.npz.{dead}.tmp",
                                                       f".model.npz.{_HOST}-{dead}-0123456789ab.tmp.keep")),
        ]
        atomic_write(str(tmp_path / "model.npz"), lambda f: f.write(b"whole"))
        assert sorted(os.listdir(tmp_path)) == sorted(["model.npz", *(p.name for p in kept)])
        assert not any(p.exists() for p in gone)
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.skipif(os.name != "posix", reason="leftovers are removed on POSIX systems only")
def test_a_folder_is_cleaned_once_per_process(tmp_path, monkeypatch):
    """Every save listed its whole folder: 48 ms a save among 100,000 files, quadratic for a checkpoint per step."""
    from minigrad import _files

    listed: list[str] = []
    real = os.listdir
    monkeypatch.setattr(_files.os, "listdir", lambda folder: listed.append(folder) or real(folder))
    for i in range(3):
        atomic_write(str(tmp_path / f"step{i}.npz"), lambda f: f.write(b"1"))
    assert listed == [str(tmp_path)]


def test_the_temporary_file_is_named_after_the_target_the_machine_and_the_process(tmp_path):
    from minigrad import _files

    seen: list[str] = []
    atomic_write(str(tmp_path / "out.bin"), lambda f: seen.extend(os.listdir(tmp_path)))
    expected = rf"\.out\.bin\.{_files._HOST}-{os.getpid()}-[0-9a-f]{{12}}\.tmp"
    assert len(seen) == 1 and re.fullmatch(expected, seen[0]), seen


@pytest.mark.skipif(os.name != "posix", reason="leftovers are removed on POSIX systems only")
def test_after_kill_9_in_the_middle_of_a_write_a_later_process_removes_the_leftover(tmp_path):
    path = tmp_path / "model.npz"
    script = (
        "import sys, time\n"
        "from minigrad._files import atomic_write\n"
        "def write(f):\n"
        "    f.write(b'half'); f.flush(); time.sleep(60)\n"
        f"atomic_write({str(path)!r}, write)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(500):  # until the child's temporary file is there (at most 10 s)
            if os.listdir(tmp_path):
                break
            time.sleep(0.02)
        (leftover,) = os.listdir(tmp_path)
        assert not path.exists()
    finally:
        child.kill()  # SIGKILL: no handler, no cleanup
        child.wait()
    then = time.time() - 2 * DAY  # (as it is two days later)
    os.utime(tmp_path / leftover, (then, then))
    save = f"from minigrad._files import atomic_write; atomic_write({str(path)!r}, lambda f: f.write(b'whole'))"
    subprocess.run([sys.executable, "-c", save], check=True)
    assert os.listdir(tmp_path) == ["model.npz"] and path.read_bytes() == b"whole"


@pytest.mark.skipif(os.name != "posix", reason="leftovers are removed on POSIX systems only")
def test_a_leftover_of_this_pid_is_an_earlier_processs_unless_this_one_is_writing_it(tmp_path, monkeypatch):
    """A container's python is pid 1 again after an OOM kill: its leftover of pid 1 was kept for ever, as live."""
    from minigrad import _files

    earlier = _leftover(tmp_path, f".model.npz.{_files._HOST}-{os.getpid()}-0123456789ab.tmp")
    started, release = threading.Event(), threading.Event()

    def slow(f):
        started.set()
        release.wait(10)
        f.write(b"whole")

    writer = threading.Thread(target=atomic_write, args=(str(tmp_path / "other.npz"), slow))
    writer.start()
    try:
        assert started.wait(10)  # this process's own write in progress, made to look a day old
        (mine,) = [n for n in os.listdir(tmp_path) if n.startswith(".other.npz.")]
        then = time.time() - 2 * DAY
        os.utime(tmp_path / mine, (then, then))
        monkeypatch.setattr(_files, "_CLEANED", set())  # (the folder was cleaned at the writer's start)
        atomic_write(str(tmp_path / "model.npz"), lambda f: f.write(b"1"))
        assert not earlier.exists() and (tmp_path / mine).exists()
    finally:
        release.set()
        writer.join()
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "other.npz"]


@pytest.mark.skipif(os.name != "posix", reason="leftovers are removed on POSIX systems only")
def test_a_leftovers_age_is_read_on_the_file_systems_clock_and_a_failed_listing_is_tried_again(tmp_path, monkeypatch):
    """now came from time.time(), mtimes from the file system (an NFS server's clock): a day of skew removed a
    live writer's fresh file; a folder whose listing failed once (EMFILE) was never cleaned (h59)."""
    from minigrad import _files

    fresh = _leftover(tmp_path, f".model.npz.{_files._HOST}-{_finished_pid()}-0123456789ab.tmp", age=0.0)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3 * DAY)  # this machine's clock three days ahead
    calls = []
    real_listdir = os.listdir

    def listdir(folder):
        calls.append(folder)
        if len(calls) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_listdir(folder)

    monkeypatch.setattr(_files.os, "listdir", listdir)
    atomic_write(str(tmp_path / "a.npz"), lambda f: f.write(b"1"))  # the listing fails: the write does not
    atomic_write(str(tmp_path / "b.npz"), lambda f: f.write(b"1"))  # listed again
    assert len(calls) == 2 and fresh.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["a.npz", "b.npz", fresh.name])


def test_a_name_too_long_with_machine_and_pid_is_written_under_the_plain_temporary_name(tmp_path, monkeypatch):
    """The machine and pid add about 15 bytes: a target near PATH_MAX or eCryptfs's 143-byte names failed (h59)."""
    from minigrad import _files

    real_open = os.open

    def short_names_only(path, flags, mode=0o777):
        if _files._HOST in os.path.basename(path):
            raise OSError(errno.ENAMETOOLONG, "File name too long", path)
        return real_open(path, flags, mode)

    monkeypatch.setattr(_files.os, "open", short_names_only)
    atomic_write(str(tmp_path / "model.npz"), lambda f: f.write(b"whole"))
    assert os.listdir(tmp_path) == ["model.npz"] and (tmp_path / "model.npz").read_bytes() == b"whole"


def test_the_machine_hash_covers_the_host_name_and_the_pid_namespace():
    """Two containers of one Kubernetes pod share a host name, not a pid namespace: their pids must not mix."""
    import hashlib
    import socket

    from minigrad import _files

    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    expected = hashlib.sha1(f"{socket.gethostname()} {namespace}".encode("utf-8", "surrogateescape")).hexdigest()
    assert _files._HOST == expected[:8]


def test_an_interrupt_while_cleaning_leftovers_leaves_no_temporary_file(tmp_path, monkeypatch):
    """The cleanup ran between creating the temporary file and the try that removes it on any error."""
    from minigrad import _files

    def interrupted(folder, now):
        raise KeyboardInterrupt

    monkeypatch.setattr(_files, "_remove_leftovers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(tmp_path / "model.npz"), lambda f: f.write(b"whole"))
    assert os.listdir(tmp_path) == [] and not _files._WRITING


def test_an_error_in_the_leftover_cleanup_never_fails_the_write(tmp_path, monkeypatch):
    from minigrad import _files

    def broken(folder, now):
        raise ValueError("a bug in the cleanup")

    monkeypatch.setattr(_files, "_remove_leftovers", broken)
    atomic_write(str(tmp_path / "model.npz"), lambda f: f.write(b"whole"))
    assert os.listdir(tmp_path) == ["model.npz"] and not _files._WRITING
