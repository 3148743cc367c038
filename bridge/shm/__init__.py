"""The shared-memory layer: segments, the client's argument arena, owner locks, and the removal
of what dead owners left (julia_server/src/shm/)."""

from .arena import ALIGNMENT, DEFAULT_LINGER, DEFAULT_RESERVE, Arena, Block
from .gc import collect_dead_segments, collect_dead_socket_dirs, owner_is_alive
from .owner_lock import dead_owner, hold_owner_lock, lock_path, parse_lock_pid
from .segment import SHM_DIR, Segment, locate, unlink_segment

__all__ = [
    "ALIGNMENT",
    "DEFAULT_LINGER",
    "DEFAULT_RESERVE",
    "SHM_DIR",
    "Arena",
    "Block",
    "Segment",
    "collect_dead_segments",
    "collect_dead_socket_dirs",
    "dead_owner",
    "hold_owner_lock",
    "locate",
    "lock_path",
    "owner_is_alive",
    "parse_lock_pid",
    "unlink_segment",
]
