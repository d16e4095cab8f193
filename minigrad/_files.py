"""Writing a file so that a crash, a kill or a full disk never leaves a partial one: :func:`atomic_write`.

Checkpoints (:mod:`minigrad.checkpoint`), the lab's results and plots
(:mod:`minigrad.lab`) and the dataset cache (:mod:`minigrad.data`) are all
written through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
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
    # The temporary file's name: the target's, cut so that the whole name stays within a folder entry's 255 bytes.
    base = os.fsdecode(os.fsencode(os.path.basename(path))[:200])  # (bytes, as the file system counts them)
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as f:
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
