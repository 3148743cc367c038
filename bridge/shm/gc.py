"""Removal of what dead processes left behind (``awkward-bridge gc``, ``Bridge`` start-up): their
segments, and the directories of their ipc sockets.

Whether a segment's owner is alive is decided by its owner lock (bridge/shm/owner_lock.py), which
holds from any pid namespace: a ``gc`` in a container that cannot see the owner's pid still sees
its lock held. Only for an owner without a lock file (a bridge older than owner locks) does the
pid decide, in this namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections import defaultdict
from typing import Iterator, Optional

from bridge.wire import segment_pid

from .owner_lock import dead_owner, lock_path, parse_lock_pid, remove_file
from .segment import SHM_DIR


def collect_dead_segments(shm_dir: str = SHM_DIR) -> list[str]:
    """Unlink every ``akb-{pid}-*`` segment whose owner is gone, and the owner lock files of dead
    owners; returns the segment names removed.

    Files that are not segment names, and segments of live owners, are never touched. A pid
    reused by an unrelated process keeps its segments until that process exits too.
    """
    by_owner: dict[int, list[str]] = defaultdict(list)
    for name in sorted(os.listdir(shm_dir)):
        pid = segment_pid(name)
        if pid is not None:
            by_owner[pid].append(name)
        elif parse_lock_pid(name) is not None:
            by_owner.setdefault(parse_lock_pid(name), [])  # a lock file alone: removed if dead
    removed = []
    for pid, names in by_owner.items():
        with _owner_gone(pid, shm_dir) as gone:
            if not gone:
                continue
            for name in names:
                # another collector may get there first, and another user's segment stays
                if remove_file(os.path.join(shm_dir, name)):
                    removed.append(name)
    return removed


# A private server's socket directory (bridge/client/launcher.py) and a server's executor socket
# directory (julia_server/src/server/server.jl), each named after the process that made it.
SOCKET_DIR = re.compile(r"^akb-(?:server|executors)-([1-9][0-9]*)-")


def collect_dead_socket_dirs(tmp_dir: Optional[str] = None, shm_dir: str = SHM_DIR) -> list[str]:
    """Remove the socket directories (``akb-server-{pid}-*``, ``akb-executors-{pid}-*``) that
    processes killed before they could clean up left in the temporary directory; returns their
    paths. Only this user's own directories (not symlinks) of dead owners are touched; the owner
    is judged as for segments."""
    tmp_dir = tmp_dir or tempfile.gettempdir()
    removed = []
    for name in sorted(os.listdir(tmp_dir)):
        match = SOCKET_DIR.match(name)
        if match is None:
            continue
        path = os.path.join(tmp_dir, name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        with _owner_gone(int(match[1]), shm_dir) as gone:
            if gone:
                shutil.rmtree(path, ignore_errors=True)
                if not os.path.lexists(path):
                    removed.append(path)
    return removed


@contextlib.contextmanager
def _owner_gone(pid: int, shm_dir: str) -> Iterator[bool]:
    """Whether ``pid``'s owner is gone, by its owner lock, held while the caller removes what it
    left, or by its pid where no lock file decides."""
    with dead_owner(pid, shm_dir) as gone:
        if gone is None:
            gone = not owner_is_alive(pid)
            if gone:   # with any lock file, another user's that nobody holds
                remove_file(lock_path(pid, shm_dir))
        yield gone


def owner_is_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (as any user) and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    # A killed process its parent has not reaped yet still answers kill(pid, 0), but runs no
    # code and will never use its segments again.
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so split at the last ")"
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False  # no /proc (not Linux) or the process just went: kill(pid, 0) decided
