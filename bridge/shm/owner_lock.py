"""Owner locks: how a process shows, from any pid namespace, that its segments are alive.

A segment's name carries its owner's pid, but a pid means nothing across pid namespaces (a
container's processes have other pids than the host sees). So every process that owns segments
holds a shared ``flock`` on ``/dev/shm/akb-{pid}.lock`` from before its first segment until it
exits, and ``gc`` removes a pid's segments only when it can take that lock exclusively: when no
live process, in any namespace, holds it. The kernel drops the lock when its holder dies, however
it dies. The Julia server does the same (julia_server/src/shm/owner_lock.jl).
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
import stat
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional

_SUFFIX = ".lock"
_held: Optional[tuple[int, int]] = None  # (pid, descriptor) of this process's lock; -1: none
_lock = threading.Lock()


def lock_path(pid: int, shm_dir: str = "/dev/shm") -> str:
    """The owner lock file of process ``pid``."""
    return os.path.join(shm_dir, f"akb-{pid}{_SUFFIX}")


def parse_lock_pid(name: str) -> Optional[int]:
    """The pid of an owner lock file's name, or None when ``name`` is not one."""
    if not (name.startswith("akb-") and name.endswith(_SUFFIX)):
        return None
    digits = name[len("akb-"):-len(_SUFFIX)]
    return int(digits) if digits.isdigit() and not digits.startswith("0") else None


# A gc holds a dead namesake's lock file only while it removes that pid's segments; a file held
# exclusively for longer is not a gc's, and this process replaces it rather than wait for it.
TAKE_OVER_AFTER = 2.0  # seconds


def hold_owner_lock(shm_dir: str = "/dev/shm") -> None:
    """Take this process's owner lock, once (again in a forked child, whose pid differs); it is
    held until the process exits, and its file removed at a normal exit. A lock file another
    user made for this pid (``/dev/shm`` is writable by all) is left alone, with a warning: this
    process then has no owner lock, and ``gc`` judges its segments by its pid."""
    global _held
    with _lock:
        pid = os.getpid()
        if _held is not None and _held[0] == pid:
            return
        path = lock_path(pid, shm_dir)
        fd = _take_shared(path)
        if fd is None:
            warnings.warn(f"{path} is another user's, or not a file: this process runs without an owner "
                          f"lock, and gc judges its segments by its pid", stacklevel=3)
            _held = (pid, -1)
            return
        _held = (pid, fd)
        atexit.register(_release, pid, fd, path)


def _take_shared(path: str) -> Optional[int]:
    """A descriptor of ``path`` holding a shared lock on it, or None when it is not a file of ours
    (another user's, a symlink, a directory, a socket: anyone may make one in ``/dev/shm``)."""
    deadline = time.monotonic() + TAKE_OVER_AFTER
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            return None
        if not _is_own_file(fd):
            os.close(fd)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.01)   # a gc removing a dead namesake's segments
            else:
                remove_file(path)      # held for longer: not a gc's; a new file of our own
            continue
        if _same_file(fd, path):
            return fd
        os.close(fd)  # that gc removed the file meanwhile: take a new one


def _is_own_file(fd: int) -> bool:
    info = os.fstat(fd)
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()


def remove_file(path: str) -> bool:
    """Unlink ``path`` if it exists and this user may; whether it did (shared with gc.py)."""
    try:
        os.unlink(path)
    except OSError:   # gone, another user's, or not a file (a directory made by anyone)
        return False
    return True


def _release(pid: int, fd: int, path: str) -> None:
    if os.getpid() != pid:
        return  # a forked child inherited the handler, not the lock
    remove_file(path)
    os.close(fd)


@contextmanager
def dead_owner(pid: int, shm_dir: str = "/dev/shm") -> Iterator[Optional[bool]]:
    """Whether the owner of ``pid``'s segments is gone, holding its lock file exclusively while the
    caller removes them: True (gone; the lock file is removed on leaving), False (a live process
    holds it), None (the caller judges by the pid: there is no lock file, as for an owner that
    predates owner locks, or nobody holds one that is another user's, which proves nothing,
    since anyone may make it)."""
    path = lock_path(pid, shm_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:   # none, or not a file this user may lock (a symlink, a directory, a socket)
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            yield False if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN) else None
            return
        if not _is_own_file(fd):
            yield None
            return
        yield True
        # unless a process of this pid replaced it meanwhile (it waits at most TAKE_OVER_AFTER)
        if _same_file(fd, path):
            remove_file(path)
    finally:
        os.close(fd)


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
    except FileNotFoundError:
        return False
