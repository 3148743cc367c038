"""POSIX shared-memory segments named ``akb-{pid}-{hex}`` (docs/protocol.md section 5).

Segments are opened with CPython's ``_posixshmem`` rather than ``multiprocessing.shared_memory``,
whose resource tracker unlinks segments that other processes still use (CPython gh-82300), and
mapped with libc ``mmap`` through ctypes rather than the ``mmap`` module, which keeps a dup'd file
descriptor per mapping: thousands of live results would exhaust the process's descriptors.

A mapping is owned by a private ``_Mapping`` object. Every numpy view made by
``Segment.array()`` has it at the end of its ``.base`` chain, and a ``weakref.finalize`` on it
calls ``munmap``, so the memory stays mapped exactly as long as some view (or ``ak.Array``) uses
it, whatever happens to the ``Segment`` object.

The module also keeps a process-wide registry of live mappings (address range → segment name) so
that ``bridge.codec.place_array`` can pass a buffer that already lies in shared memory by reference.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import weakref

import _posixshmem
import numpy as np

from bridge.base import BridgeError, SharedMemoryFull
from bridge.wire import is_segment_name, segment_name

from .owner_lock import hold_owner_lock

SHM_DIR = "/dev/shm"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.mmap.restype = ctypes.c_void_p
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.munmap.restype = ctypes.c_int
_MAP_FAILED = ctypes.c_void_p(-1).value
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only; elsewhere pages fault in one by one

# start address → (end address, segment name). Updated only with single dict operations, which are
# atomic under the GIL, because removal happens in finalizers that may run in any thread at any
# allocation, including while another thread is in the middle of ``locate``.
_live_mappings: dict[int, tuple[int, str]] = {}


def unlink_segment(name: str) -> bool:
    """Remove the segment's name; existing mappings stay valid. False if it was already gone."""
    _check_name(name)
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        return False
    return True


def locate(address: int, nbytes: int) -> tuple[str, int] | None:
    """``(segment name, offset)`` of ``nbytes`` at ``address`` if they lie in one live mapping."""
    for start, (end, name) in _live_mappings.copy().items():
        if start <= address and address + nbytes <= end:
            return name, address - start
    return None


def _check_name(name: str) -> None:
    if not is_segment_name(name):
        raise BridgeError(f"{name!r} is not a bridge shared-memory segment name (akb-{{pid}}-{{32 hex}})")


def _unmap(address: int, size: int) -> None:
    # Forget the range before unmapping it, so a new mapping at the same address is never dropped.
    _live_mappings.pop(address, None)
    if size:
        _libc.munmap(address, size)


class _Mapping:
    """Owns one mmap; numpy views reach it through ``.base``; its finalizer unmaps it."""

    __slots__ = ("address", "size", "readonly", "__weakref__")

    def __init__(self, fd: int, size: int, name: str, readonly: bool, populate: bool = False) -> None:
        self.size = size
        self.readonly = readonly
        self.address = 0
        if size:
            prot = mmap.PROT_READ if readonly else mmap.PROT_READ | mmap.PROT_WRITE
            flags = mmap.MAP_SHARED | (_MAP_POPULATE if populate else 0)
            address = _libc.mmap(None, size, prot, flags, fd, 0)
            if address is None or address == _MAP_FAILED:
                code = ctypes.get_errno()
                raise OSError(code, f"mmap of {size} bytes of segment {name} failed: {os.strerror(code)}")
            self.address = address
            _live_mappings[address] = (address + size, name)
        finalizer = weakref.finalize(self, _unmap, self.address, size)
        # At exit the OS unmaps everything; unmapping earlier could pull memory from under
        # arrays that later exit handlers still read.
        finalizer.atexit = False

    @property
    def __array_interface__(self) -> dict:
        return {"shape": (self.size,), "typestr": "|u1", "data": (self.address, self.readonly), "version": 3}


class Segment:
    """One POSIX shared-memory segment mapped into this process.

    ``owned`` segments were created here and are writable; attached ones are usually read-only.
    """

    def __init__(self, name: str, mapping: _Mapping, owned: bool) -> None:
        self.name = name
        self.size = mapping.size
        self.address = mapping.address
        self.owned = owned
        self._mapping: _Mapping | None = mapping
        self._mapping_ref = weakref.ref(mapping)

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, size={self.size}, owned={self.owned})"

    @classmethod
    def create(cls, nbytes: int, *, populate: bool = False) -> Segment:
        """Create, reserve (``posix_fallocate``) and map a new writable segment of ``nbytes``.

        ``populate`` maps every page at once, for a segment about to be written whole: one
        ``MAP_POPULATE`` costs less than a page fault per page (docs/performance.md). A full
        ``/dev/shm`` raises ``SharedMemoryFull`` naming the size needed and the space free, and
        leaves no half-made segment behind.
        """
        if nbytes < 1:
            raise ValueError(f"a segment needs at least 1 byte, not {nbytes}")
        hold_owner_lock()  # before the first segment: gc must see its owner alive (owner_lock.py)
        name = segment_name()
        fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, nbytes)
            except OSError as error:
                if error.errno in (errno.ENOSPC, errno.EFBIG):
                    raise SharedMemoryFull(_full_message(nbytes)) from error
                raise
            mapping = _Mapping(fd, nbytes, name, readonly=False, populate=populate)
        except BaseException:
            _posixshmem.shm_unlink("/" + name)
            raise
        finally:
            os.close(fd)
        return cls(name, mapping, owned=True)

    @classmethod
    def attach(cls, name: str, *, readonly: bool = True) -> Segment:
        """Map an existing segment (its whole size, from ``fstat``); read-only unless told."""
        _check_name(name)
        try:
            fd = _posixshmem.shm_open("/" + name, os.O_RDONLY if readonly else os.O_RDWR, 0)
        except FileNotFoundError:
            raise BridgeError(f"shared-memory segment {name} does not exist") from None
        try:
            mapping = _Mapping(fd, os.fstat(fd).st_size, name, readonly)
        finally:
            os.close(fd)
        return cls(name, mapping, owned=False)

    def array(self) -> np.ndarray:
        """A uint8 view of the whole mapping; it (and every view of it) keeps the mapping alive."""
        return np.asarray(self._live_mapping())

    def window(self, keep: object) -> np.ndarray:
        """Like ``array()``, and its views also keep ``keep`` alive, but not the mapping's other views.

        Results sharing one mapped chunk each hold their lease token this way, so a result's
        lease ends when its own views die, not when the whole mapping does.
        """
        return np.asarray(_Window(self._live_mapping(), keep))

    def unlink(self) -> None:
        """Remove the segment's name (owner only); idempotent. Mappings stay valid until released."""
        if not self.owned:
            raise BridgeError(f"segment {self.name} belongs to another process; only its owner unlinks it")
        mapping = self._mapping_ref()
        if mapping is not None and mapping.size:
            # An unlinked segment can no longer be named in a message, so stop offering its range
            # (views may keep it mapped long after).
            _live_mappings.pop(mapping.address, None)
        unlink_segment(self.name)

    def close(self) -> None:
        """Drop this Segment's hold on the mapping; idempotent.

        The mapping is unmapped at once if no view of it is alive, otherwise when the last one
        dies: unmapping under a live view would turn its next read into a segfault.
        """
        self._mapping = None

    def _live_mapping(self) -> _Mapping:
        if self._mapping is None:
            raise BridgeError(f"segment {self.name} is closed")
        return self._mapping


class _Window:
    """The base object of ``Segment.window`` arrays: the mapping, and one more object to keep."""

    __slots__ = ("mapping", "keep")

    def __init__(self, mapping: _Mapping, keep: object) -> None:
        self.mapping = mapping
        self.keep = keep

    @property
    def __array_interface__(self) -> dict:
        return self.mapping.__array_interface__


def _full_message(nbytes: int) -> str:
    stats = os.statvfs(SHM_DIR)
    free = stats.f_bavail * stats.f_frsize
    limit = stats.f_blocks * stats.f_frsize
    return (
        f"cannot reserve {nbytes} bytes of shared memory in {SHM_DIR}: {free} bytes free of a "
        f"{limit}-byte limit (raise the size of {SHM_DIR}, or free memory held by other arrays)"
    )
