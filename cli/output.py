"""Files a command writes for the user (``report -o``, ``export -o``): private, never through a planted link.

The rule ``rtrace run -o`` follows (``sink.open_log``): a symbolic link is followed only to a
device or a pipe (``/dev/stdout``, ``/dev/null``), never to a file or a directory. A regular file
is created ``0600`` whatever the umask, as the log it comes from. ``whole``: written under a
name no one can plant a link at (``mkstemp``: ``O_EXCL``) beside its final name, then renamed
over it, so a reader never sees half a report and a failed write leaves what was there; else
(a stream that grows while it is followed) opened in place with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rtrace.core.errors import OutputError
from rtrace.core.record.sink import LINK_REFUSED, open_special


@contextmanager
def output_file(path: str, whole: bool = True) -> Iterator[IO[bytes]]:
    """``path`` opened for writing bytes, by the rule above; ``OutputError`` in one line when it cannot be."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        with _said(path), _open_special(path, st) as f:
            yield f
        return
    if not whole:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            reason = LINK_REFUSED if e.errno == errno.ELOOP else e.strerror or e
            raise OutputError(f"cannot write {path}: {reason}") from None
        with _said(path), os.fdopen(fd, "wb") as f:
            yield f
        return
    directory, name = os.path.split(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):  # a full disk, a file system gone read-only
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        raise


@contextmanager
def _said(path: str) -> Iterator[None]:
    """A failed write (a full disk, ``/dev/full``) said in one line."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


@contextmanager
def _open_special(path: str, st: os.stat_result) -> Iterator[IO[bytes]]:
    """A directory (refused), a link (followed only to a device or a pipe), a device or a pipe."""
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {path}: it is a directory")
    try:
        fd = open_special(path, os.O_WRONLY | os.O_CLOEXEC)  # no O_TRUNC: nothing is changed before the check
    except OSError as e:  # a link to a file (planted, or swapped in since lstat) says so, as a dangling one does
        reason = LINK_REFUSED if stat.S_ISLNK(st.st_mode) else e.strerror or e
        raise OutputError(f"cannot write {path}: {reason}") from None
    with os.fdopen(fd, "wb") as f:
        yield f
