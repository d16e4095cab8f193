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
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl: Any = None  # type: ignore[no-redef]


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
    remove its temporary file. Each writer holds an exclusive ``flock`` on its
    temporary file until the file is in place, and the kernel drops the lock
    of a process that dies; so the first write into a folder in each process
    removes the temporary files there that no process holds and that have not
    changed for a minute (where ``flock`` exists: on POSIX systems). The name
    holds a short hash of the host name, and only this host's files are
    removed, in case another machine writes into a shared folder whose locks
    this one cannot see.
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
    _remove_leftovers(folder)
    # The temporary file's name: the target's, cut so that the whole name stays within a folder entry's 255 bytes
    # (bytes, as the file system counts them), then this host's hash and a random part of its own.
    base = os.fsdecode(os.fsencode(os.path.basename(path))[:200])
    tmp = os.path.join(folder, f".{base}.{_HOST}-{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    f = os.fdopen(fd, "wb")
    try:
        try:
            if fcntl is not None:  # held until the file is in place: no other writer's cleanup removes it meanwhile
                with contextlib.suppress(OSError):  # (a file system without locks: the minute's wait protects it)
                    fcntl.flock(fd, fcntl.LOCK_EX)
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            if fcntl is None:  # (no lock to hold, and Windows does not rename a file that is open)
                f.close()
            os.replace(tmp, path)
        finally:
            f.close()
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
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


#: This machine, in the names of temporary files: the first 8 hex digits of its host name's SHA-1.
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]
#: A temporary file of this machine, as atomic_write names them.
_LEFTOVER = re.compile(r"\..+\." + _HOST + r"-[0-9a-f]{12}\.tmp", re.ASCII | re.DOTALL)
#: How long a temporary file must have been left unchanged before it counts as a leftover, in seconds: more than
#: the moment between a writer creating its file and locking it.
_LEFTOVER_AGE = 60.0
#: The folders this process has cleaned of leftovers (once each: listing a folder of 100,000 files takes 35 ms).
_CLEANED: set[str] = set()
_CLEANED_LOCK = threading.Lock()


def _remove_leftovers(folder: str) -> None:
    """Remove the temporary files in ``folder`` that dead writers of this machine left, the first time it is asked."""
    if fcntl is None:
        return
    folder = os.fsdecode(folder)
    key = os.path.realpath(folder)
    with _CLEANED_LOCK:
        if key in _CLEANED:
            return
        _CLEANED.add(key)
    try:
        names = os.listdir(folder)
    except OSError:
        return  # (the write itself reports a missing or unreadable folder)
    for name in names:
        if _LEFTOVER.fullmatch(name):
            with contextlib.suppress(OSError):  # (removed by another cleaner first, or not ours to open)
                _remove_if_unheld(os.path.join(folder, name))


def _remove_if_unheld(path: str) -> None:
    """Remove the temporary file ``path`` if it is a regular file, no process holds its lock, and it is a minute old."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or time.time() - info.st_mtime < _LEFTOVER_AGE:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its writer is alive (or the file system cannot say, and it is kept)
            return
        os.unlink(path)  # (names are never reused: no new writer can have opened this one meanwhile)
    finally:
        os.close(fd)
