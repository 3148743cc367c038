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
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

_SUFFIX = ".lock"
_held: Optional[tuple[int, int]] = None  # (pid, descriptor) of this process's lock
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


def hold_owner_lock(shm_dir: str = "/dev/shm") -> None:
    """Take this process's owner lock, once (again in a forked child, whose pid differs); it is
    held until the process exits, and its file removed at a normal exit."""
    global _held
    with _lock:
        pid = os.getpid()
        if _held is not None and _held[0] == pid:
            return
        path = lock_path(pid, shm_dir)
        while True:
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a gc holds the file of a dead namesake
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # that gc removed the file meanwhile: take a new one
        _held = (pid, fd)
        atexit.register(_release, pid, fd, path)


def _release(pid: int, fd: int, path: str) -> None:
    if os.getpid() != pid:
        return  # a forked child inherited the handler, not the lock
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.close(fd)


@contextmanager
def dead_owner(pid: int, shm_dir: str = "/dev/shm") -> Iterator[Optional[bool]]:
    """Whether the owner of ``pid``'s segments is gone, holding its lock file exclusively while the
    caller removes them: True (gone; the lock file is removed on leaving), False (a live process
    holds it, or it belongs to another user), None (there is no lock file: an owner that predates
    owner locks, which the caller judges by its pid)."""
    path = lock_path(pid, shm_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        yield None
        return
    except PermissionError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield False
            return
        yield True
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    finally:
        os.close(fd)
