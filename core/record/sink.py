"""The log file descriptor: opened safely, written a whole line at a time, and only while it is ours.

Three promises, each with its reason:

- **Created private, never through a link.** A new log is created ``0600`` with
  ``O_EXCL | O_NOFOLLOW``; an existing one is appended to with ``O_NOFOLLOW``. A
  symbolic link is followed only to something that is not a regular file
  (``/dev/stdout``, a FIFO): a planted link can never make rtrace create or
  append to someone's ``.bashrc``.
- **Never a descriptor number rtrace no longer owns.** A program may close every
  inherited descriptor (``os.closerange``) and open its own files, which then get
  our number. Before each write the descriptor's device and inode are compared
  with the ones rtrace opened; on a mismatch the log is reopened by its absolute
  path, or, for a descriptor rtrace was handed, writing stops. On Linux the check is
  cheaper than an ``fstat``: rtrace marks its open file description with
  ``F_SETSIG`` (inert without ``O_ASYNC``) and reads the mark back with ``F_GETSIG``;
  a number the program reused names another description, which lacks the mark, and
  only then is ``fstat`` asked.
- **A line is written whole or not at all.** A short write to a regular file
  (disk full, a file size limit) is cut back off with ``ftruncate`` when nothing
  was appended after it; otherwise the next line starts with a newline, so at
  most the torn line is lost. A line longer than ``PIPE_BUF`` going to a pipe or
  terminal is written through a ``BufferedWriter`` sized to hold it: if a signal
  handler raises in the middle (Ctrl-C while the reader is slow), the C loop
  keeps the exact unwritten rest, and the rest goes out before the next line.

And one promise to readers: **a log that is being written says so.** Every writer holds a
shared ``flock`` on its open file description of a regular log for as long as the
description lives. The kernel drops it when the last descriptor sharing it closes, so
it survives ``fork`` (the child shares the description), ends with a ``kill -9``, and
names no pid that could be reused; a child started with ``exec`` (the descriptor is
close-on-exec) opens the log itself and holds its own. ``being_written`` asks whether
any writer is left; ``rtrace ls --prune`` and ``--follow`` decide on it. A program that
closes every descriptor it inherited (``os.closerange``, a daemon) drops that lock with
them: for the process that opened the log, readers then ask whether its pid is alive; a
forked child, which may outlive it and has no pid on record, inherits a one-byte mapping of
the log that the parent made before its first fork (``pin``): a mapping keeps its open file
description, and the description's lock, alive without a descriptor, and is gone at ``exec``
and exit, as the descriptor would be.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import stat
from time import sleep as _sleep  # bound now: a program that patches time.sleep never sees our waits

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_APPEND = os.O_WRONLY | os.O_APPEND | _CLOEXEC
_PROBE = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)  # a reader asking about a writer's lock
PIPE_BUF = 4096  # POSIX minimum 512; Linux and macOS: 4096 (select.PIPE_BUF)
# rtrace's descriptors (logs, the pump's pipes, the exporter's stderr) are moved at least
# this high when the descriptor limit allows (else to half the limit), so the traced
# program's own files get the numbers they get under plain python.
HIGH_FD = 900
# Bound once, at import: rtrace's own append is not the program's I/O, so a blocking-call
# detector the program patches into os.write (blockbuster, in LangChain's test suite) must
# neither see it nor make rtrace drop the event.
_os_write = os.write
_os_fstat = os.fstat
_fcntl = fcntl.fcntl
_F_GETSIG, _F_SETSIG = getattr(fcntl, "F_GETSIG", None), getattr(fcntl, "F_SETSIG", None)
# The mark on rtrace's open file description: a real-time signal number no program is
# expected to ask a log file for; it is never sent, since rtrace never sets O_ASYNC.
MARK = 59


def _marked(fd: int) -> bool:
    """Mark ``fd``'s open file description as rtrace's log; False where that is not possible."""
    if _F_SETSIG is None:
        return False
    try:
        _fcntl(fd, _F_SETSIG, MARK)
        return _fcntl(fd, _F_GETSIG) == MARK
    except OSError:
        return False


def hold(fd: int) -> None:
    """Say, for as long as ``fd``'s open file description lives, that a writer is at work on it."""
    for _ in range(50):  # a reader holds its test lock for microseconds: never wait long for it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            _sleep(0.001)
        except OSError:  # no locks here (some network file systems): the log is still written
            return


def pid_alive(pid: object, since: float | None = None) -> bool:
    """Is there a process ``pid`` that may be the one there at ``since`` (seconds since the epoch)?

    A writer whose lock is gone (it closed every descriptor) is alive while its process is. A pid
    taken since by another process (a container's pid 1 after a restart, any pid after a reboot)
    is not that writer where the system says when the process started (Linux); elsewhere a
    reused pid only makes a reader wait, or keep a file.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists, owned by someone else
    return since is None or not _started_after(pid, since)


_STARTED_SLACK = 5.0  # seconds: the boot time is whole seconds, a process's start in clock ticks; a small clock step
_boot: list[float] = []  # the boot time, read once


def _started_after(pid: int, since: float) -> bool:
    """Did process ``pid`` start after ``since``? False when that cannot be told."""
    try:
        if not _boot:
            with open("/proc/stat", "rb") as f:
                _boot.append(float(next(line for line in f if line.startswith(b"btime ")).split()[1]))
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read()
        ticks = int(fields[fields.rindex(b")") + 2:].split()[19])  # field 22, starttime; after the name, which may hold spaces
        started = _boot[0] + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return started > since + _STARTED_SLACK


def being_written(path: str) -> bool:
    """Does a writer still hold the log at ``path`` open? (False when it cannot be told.)

    Not a regular file (a FIFO, a device): True, never opened; only a file has a writer's lock.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return True
        fd = os.open(path, _PROBE)
    except OSError:
        return False
    try:
        return _test_lock(fd)
    finally:
        os.close(fd)


def unlink_unless_written(path: str) -> bool:
    """Remove the log at ``path`` unless a writer holds it; True if it was removed.

    The test lock is held across the unlink: a writer that opens the log meanwhile waits for it.
    """
    fd = os.open(path, _PROBE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # no locks here: nothing can be told, remove as before
            pass
        os.unlink(path)
        return True
    finally:
        os.close(fd)


def _test_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


_mapper: list[tuple[object, object, int]] = []  # the C library's mmap, munmap and MAP_FAILED, bound on first use


def pin(path: str, dev: int, ino: int) -> int | None:
    """Hold a shared lock on the log at ``path`` (if it is still file ``dev``/``ino``) for as long
    as a one-byte mapping of it lives: the address to ``unpin``, or None where that cannot be had.

    Its own read-only description (a mapping needs one open for reading), locked, mapped, and
    its descriptor closed at once: nothing of it is left in the program's descriptor table.
    The byte is never read (the log may be empty: touching it would fault).
    """
    try:
        if not _mapper:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            mmap, munmap = libc.mmap, libc.munmap
            mmap.restype, munmap.restype = ctypes.c_void_p, ctypes.c_int
            mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
            munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            _mapper.append((mmap, munmap, ctypes.c_void_p(-1).value))  # type: ignore[arg-type]
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except Exception:  # no C library to ask (not CPython on a POSIX system), a log we cannot read
        return None
    try:
        st = os.fstat(fd)
        if st.st_dev != dev or st.st_ino != ino:
            return None
        hold(fd)
        import mmap as constants

        mmap, _, failed = _mapper[0]
        address = mmap(None, 1, constants.PROT_READ, constants.MAP_SHARED, fd, 0)  # type: ignore[operator]
        return None if address is None or address == failed else int(address)
    except Exception:
        return None
    finally:
        os.close(fd)


def unpin(address: int | None) -> None:
    """Let go of a ``pin`` (this process's mapping). Returns None, the pin that is left."""
    if address is not None and _mapper:
        try:
            _mapper[0][1](address, 1)  # type: ignore[operator]
        except Exception:
            pass
    return None


LINK_REFUSED = "it is a symbolic link (refusing to follow it)"


class SymlinkRefused(OSError):
    """A symbolic link where rtrace would create or append to a regular file."""


def open_log(path: str) -> int:
    """Open ``path`` for appending, creating it ``0600`` if missing; refuse links to regular files.

    Raises ``OSError`` (``SymlinkRefused`` for a planted link) with a reason fit for one line.
    """
    try:
        fd = os.open(path, _APPEND | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        try:
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        except OSError:
            pass
        return move_high(fd)
    try:
        fd = os.open(path, _APPEND | _NOFOLLOW)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        fd = open_special(path, _APPEND)
    return move_high(fd)


def open_special(path: str, flags: int) -> int:
    """``path`` opened with ``flags``, following a link, only where it ends at a device or a pipe.

    The one rule for what rtrace writes to through a link (``run -o``, ``report -o``, ``export -o``):
    following it is harmless only to a device or a pipe, and never creates anything. A file or a
    directory (a planted link, or one swapped in since the caller looked): ``SymlinkRefused``.
    """
    fd = os.open(path, flags)
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        os.close(fd)
        raise SymlinkRefused(errno.ELOOP, LINK_REFUSED, path) from None
    return fd


def move_high(fd: int) -> int:
    """``fd`` duplicated to a high number (close-on-exec), the low one closed; ``fd`` itself if that fails.

    The one owner of where rtrace's descriptors live, in the parent and in every traced child.
    """
    try:
        limit = os.sysconf("SC_OPEN_MAX")  # the soft RLIMIT_NOFILE, without importing resource
    except (OSError, ValueError):
        limit = -1
    floor = HIGH_FD if limit < 0 or limit >= 1024 else max(3, limit // 2)
    if fd >= floor:  # already there (opened by open_log, then handed on)
        return fd
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    except (OSError, AttributeError):
        return fd
    os.close(fd)
    return high


class Sink:
    """Writes whole lines to one log descriptor while that descriptor is still the log.

    ``path``: where to reopen the log if the descriptor is lost (``None``: writing stops).
    ``owned``: close the descriptor in ``close()`` (only if it is still ours).
    """

    __slots__ = ("fd", "path", "owned", "dev", "ino", "regular", "marked", "_pending", "_torn", "lost_reason", "pinned",
                 "__weakref__")

    def __init__(self, fd: int, path: str | None = None, owned: bool = False) -> None:
        self.fd: int | None = fd
        self.path = os.path.abspath(path) if path is not None else None  # the program may chdir
        self.owned = owned
        st = os.fstat(fd)
        self.dev, self.ino = st.st_dev, st.st_ino
        self.regular = stat.S_ISREG(st.st_mode)
        self.marked = _marked(fd)
        self.pinned: int | None = None  # the pin forked children inherit (``_before_fork``)
        if self.regular and self.path is not None:  # a log rtrace knows by name (not a bare fd of the
            hold(fd)  # program's, whose own flock on that description a shared lock would downgrade)
            from rtrace.core.process import forks

            forks.track(self)
        self._pending: io.BufferedWriter | None = None  # the unwritten rest of an interrupted line
        self._torn = False  # a partial line could not be removed: start the next one on a fresh line
        self.lost_reason: str | None = None

    def write(self, line: bytes) -> None:
        """Write ``line`` whole; ``OSError`` when it cannot be (nothing of it is left behind).

        Exceptions raised by the program's own signal handlers pass through.
        """
        fd = self.fd
        try:
            ours = self.marked and _fcntl(fd, _F_GETSIG) == MARK  # type: ignore[arg-type]
        except (OSError, TypeError):
            ours = False
        if not ours:  # not marked (or not markable here): the file's identity decides
            try:
                st = _os_fstat(fd)  # type: ignore[arg-type]
                ours = st.st_ino == self.ino and st.st_dev == self.dev
            except (OSError, TypeError):
                ours = False
            if not ours:
                fd = self._recover()
        if self._pending is None and not self._torn and (self.regular or len(line) <= PIPE_BUF):
            n = _os_write(fd, line)  # the common case: one write of the whole line
            if n != len(line):
                self._finish(fd, line, n)
            return
        if self._pending is not None:
            self._flush_pending()
        if self._torn:
            line = b"\n" + line
        if not self.regular and len(line) > PIPE_BUF:
            self._write_interruptible(fd, line)
            self._torn = False
            return
        n = _os_write(fd, line)
        if n != len(line):
            self._finish(fd, line, n)
        self._torn = False

    def _finish(self, fd: int, line: bytes, written: int) -> None:
        view = memoryview(line)
        try:
            while written < len(line):
                written += _os_write(fd, view[written:])
        except OSError:
            self._cut(fd, written)
            raise
        except BaseException:  # a signal handler raised between two writes: finish on a fresh line
            self._torn = True
            raise

    def _cut(self, fd: int, written: int) -> None:
        """Remove the ``written`` bytes of a line that could not be finished, or mark it torn."""
        if self.regular:
            try:
                end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: just after our bytes
                if os.fstat(fd).st_size == end:  # nobody appended after them
                    os.ftruncate(fd, end - written)
                    return
            except OSError:
                pass
        self._torn = written > 0

    def _write_interruptible(self, fd: int, line: bytes) -> None:
        # The BufferedWriter's C flush loop records every partial write before it runs
        # signal handlers, so an exception from one leaves the exact rest in its buffer.
        # It writes to a duplicate of the descriptor: whatever happens to our number,
        # the rest can only ever reach our own log.
        raw = io.FileIO(os.dup(fd), "wb", closefd=True)
        writer = io.BufferedWriter(raw, buffer_size=len(line) + 1)
        writer.write(line)  # fits the buffer: copied, not written yet
        self._pending = writer
        self._flush_pending()

    def _flush_pending(self) -> None:
        writer = self._pending
        assert writer is not None
        try:
            writer.flush()
        except BlockingIOError:  # a non-blocking pipe that is full: the rest stays pending
            raise
        except OSError:
            self._pending = None  # the reader is gone (EPIPE) or the device failed
            self._torn = True
            _discard(writer)
            raise
        self._pending = None
        writer.close()

    def _recover(self) -> int:
        """The descriptor was closed or now names another file: reopen by path, never reuse it."""
        self.fd = None
        if self._pending is not None:  # the rest of a line goes to our own duplicate, or nowhere
            try:
                self._flush_pending()
            except OSError:
                pass
        path = self.path
        if path is None:
            self.lost_reason = "the log's file descriptor was closed by the program"
            raise OSError(errno.EBADF, self.lost_reason)
        fd = open_log(path)
        st = os.fstat(fd)
        self.fd, self.dev, self.ino = fd, st.st_dev, st.st_ino
        self.regular = stat.S_ISREG(st.st_mode)
        self.marked = _marked(fd)
        was_pinned, self.pinned = self.pinned is not None, unpin(self.pinned)
        if self.regular:
            hold(fd)
            if was_pinned:  # for forked children, who may live on and close everything: the new file
                self.pinned = pin(path, self.dev, self.ino)
        self.owned = True
        self._torn = False
        return fd

    def _before_fork(self) -> None:
        # A forked child is a writer the run may not know of, living on after it: closing every
        # descriptor it inherited must not let a reader think the log is no one's. The pin is made
        # here, once, in the parent, and every child (and grandchild) inherits the mapping, so a
        # fork costs nothing more; made in each child, it cost ~3.5 ms a fork (ctypes, mmap).
        if self.pinned is None and self.fd is not None and self.path is not None and self.regular:
            self.pinned = pin(self.path, self.dev, self.ino)

    def _after_fork(self) -> None:
        pass  # the child's copy of the pin is its own: its close() lets go of it, not of the parent's

    def close(self) -> None:
        """Close the descriptor if it is ours and still the log; let go of the log's pin."""
        self.pinned = unpin(self.pinned)
        fd, self.fd = self.fd, None
        if fd is None or not self.owned:
            return
        close_if_same(fd, self.dev, self.ino)

    def __repr__(self) -> str:
        return f"Sink(fd={self.fd}, path={self.path!r})"


def close_if_same(fd: int, dev: int, ino: int) -> None:
    """Close ``fd`` only if it still names the file (dev, ino): never a number reused by the program."""
    try:
        st = os.fstat(fd)
        if st.st_dev == dev and st.st_ino == ino:
            os.close(fd)
    except OSError:
        pass


def _discard(writer: io.BufferedWriter) -> None:
    try:
        writer.close()  # closes the duplicate even when the final flush fails
    except OSError:
        pass
