"""Writing a file so that a crash, a kill or a full disk never leaves a partial one: :func:`atomic_write`.

Checkpoints (:mod:`minigrad.checkpoint`), the lab's results and plots
(:mod:`minigrad.lab`) and the dataset cache (:mod:`minigrad.data`) are all
written through it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable
from typing import BinaryIO


def atomic_write(path: str, write: Callable[[BinaryIO], None], *, durable: bool = True) -> None:
    """Write the file ``path`` through a temporary file beside it: the old file stays whole until the new one is.

    ``write(f)`` writes the contents into ``f``, a binary file open on the
    temporary file (created in ``path``'s folder with a name of its own, so
    that two writers never share one). Then the file is flushed and fsynced,
    given the permission bits of the file it replaces (a new one gets 0666
    minus the umask, as ``open`` gives), moved over ``path`` with
    ``os.replace``, and the folder is fsynced so that the rename itself
    survives a crash. ``durable=False`` leaves out both fsyncs (for a cache,
    whose loss costs only time). On any error the temporary file is removed
    and the exception propagates: the caller names ``path`` in its message.

    A symbolic link at ``path`` is followed, as ``open(path, "w")`` follows it:
    the file it points to is replaced and the link stays a link (``latest.npz``
    pointing at a run's checkpoint keeps pointing there). A named pipe, a
    device or a socket at ``path`` raises OSError (EINVAL), since moving a
    file over it would replace it with a regular file (``/dev/null`` too);
    a file this user may not write raises PermissionError, as ``open`` would;
    a folder raises IsADirectoryError.

    Leftovers. A writer killed mid-write (``kill -9``, a power cut) cannot
    remove its temporary file, whose name holds a short hash of the machine
    (its host name and pid namespace) and the writer's process id. Each
    process's first write into a folder removes the temporary files there
    that a process of this machine wrote, that is no longer running, and that
    have not changed for a day by the file system's clock (on POSIX systems,
    where a process can be asked about without harm). Another machine's files
    are never touched, nor this process's own files in progress; a file of
    this process's id that it is not writing is an earlier process's (a
    container's pid 1, restarted). The day covers what a process id cannot
    tell. A file lock would tell live writers exactly, but on a network file
    system without a lock manager the lock call itself can hang.
    """
    if os.path.islink(path):  # write where a link points, beside its target, rather than over the link
        path = os.path.realpath(path)
    # The folder as the path names it, not normalised: through a linked folder, "link/.." is the parent of
    # the folder the link points to, as os.replace and open() read it, not the folder holding the link.
    folder = os.path.dirname(path) or os.curdir
    try:
        info = os.stat(path)
    except FileNotFoundError:
        mode = None
    else:
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "it is a folder; give the path of a file in it", path)
        if not stat.S_ISREG(info.st_mode):
            what = "a named pipe" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
            raise OSError(errno.EINVAL, f"it is {what}, not a regular file, which a write would replace; give "
                                        "the path of a file", path)
        if not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, f"the file is write-protected (mode {stat.S_IMODE(info.st_mode):o}) "
                                                "and is kept; make it writable (chmod u+w) or write elsewhere", path)
        mode = stat.S_IMODE(info.st_mode)
    # The temporary file's name: the target's, cut so that the whole name stays within a folder entry's 255 bytes
    # (bytes, as the file system counts them), then (on POSIX) this machine's hash, this process's id and a random
    # part. Where that is too long (a path near PATH_MAX, a name near eCryptfs's 143 bytes), the name without
    # machine and pid, as before they were added: a file that cannot be told a leftover, rather than a failed write.
    base = os.fsdecode(os.fsencode(os.path.basename(path))[:200])
    token = secrets.token_hex(6)
    plain = f".{base}.{token}.tmp"
    name = f".{base}.{_HOST}-{os.getpid()}-{token}.tmp" if os.name == "posix" else plain
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(os.path.join(folder, name), flags, 0o666)  # the umask applies, as for any new file
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
        name = plain
        fd = os.open(os.path.join(folder, name), flags, 0o666)
    tmp = os.path.join(folder, name)
    try:
        _WRITING.add(name)
        with os.fdopen(fd, "wb") as f:
            # A leftover's age is read on the file system's clock, as ours is. The cleanup is a courtesy: nothing
            # that goes wrong in it fails the write (an interrupt still does, and our file is removed below).
            with contextlib.suppress(Exception):
                _remove_leftovers(folder, os.fstat(f.fileno()).st_mtime)
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        _WRITING.discard(name)
    if durable and os.name == "posix":  # the new directory entry is on disk only once the folder is synced
        try:
            folder_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(folder_fd)
            finally:
                os.close(folder_fd)
        except OSError as e:
            raise OSError(e.errno, f"{e.strerror}: the new file is in place, but syncing its folder failed, so "
                                   "a crash now could undo the write", path) from None


def _machine() -> str:
    """This machine and pid namespace, as 8 hex digits: its host name and (on Linux) its pid namespace, hashed.

    The namespace tells apart two containers with one host name (a Kubernetes pod, ``--network host``), whose
    process ids mean different processes.
    """
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return hashlib.sha1(f"{socket.gethostname()} {namespace}".encode("utf-8", "surrogateescape")).hexdigest()[:8]


#: This machine, in the names of temporary files (see _machine).
_HOST = _machine()
#: A temporary file of this machine, as atomic_write names them; the group is the writer's process id.
_LEFTOVER = re.compile(r"\..+\." + _HOST + r"-([0-9]{1,10})-[0-9a-f]{12}\.tmp", re.ASCII | re.DOTALL)
#: How long a temporary file of a process that is not running must have been left unchanged to be removed (s).
_LEFTOVER_AGE = 24 * 3600.0
#: The folders this process has cleaned of leftovers, once each (listing a folder of 100,000 files takes 35 ms),
#: as (device, inode). (No lock: two threads cleaning one folder at once do no harm, and a lock held at a fork
#: would hang the child.)
_CLEANED: set[tuple[int, int]] = set()
#: The temporary files this process is writing now (by name): a file of this pid not among them is another
#: process's, one that had the same pid before (a container's pid 1, restarted after a kill).
_WRITING: set[str] = set()


def _remove_leftovers(folder: str, now: float) -> None:
    """Remove the temporary files in ``folder`` that dead writers of this machine left a day before ``now``, once."""
    if os.name != "posix":  # (elsewhere os.kill(pid, 0) is not a harmless question)
        return
    folder = os.fsdecode(folder)
    info = os.stat(folder)
    key = (info.st_dev, info.st_ino)
    if key in _CLEANED:
        return
    names = os.listdir(folder)
    _CLEANED.add(key)  # (only once listed: a listing that failed, say for want of file descriptors, is tried again)
    for name in names:
        match = _LEFTOVER.fullmatch(name)
        if match is None or name in _WRITING or _running(int(match.group(1))):
            continue
        path = os.path.join(folder, name)
        with contextlib.suppress(OSError):  # (removed by another cleaner first, or not ours to remove)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > _LEFTOVER_AGE:
                os.unlink(path)  # (names are never reused: no new writer can have this one open)


def _running(pid: int) -> bool:
    """Whether a process ``pid`` other than this one exists on this machine (another user's counts too)."""
    if pid == os.getpid():  # (this process's own files in progress are in _WRITING)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):
        return True  # another user's process (EPERM), or a number the system cannot take: leave the file
    return True
