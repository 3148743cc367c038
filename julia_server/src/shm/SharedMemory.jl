"""
    AwkwardBridge.SharedMemory

POSIX shared memory: segments (create, reserve, map, unlink), the books of a client's result
arena, and the owner locks that show a segment's owner is alive.
"""
module SharedMemory

using Libdl
using ..Basics, ..Wire, ..ZMQ

include("segment.jl")
include("arena.jl")
include("owner_lock.jl")

__init__() = init_shm_symbols()

export ARENA_LINGER_NS, ARENA_MAX_CHUNK, ARENA_MIN_CHUNK, ARENA_RESERVE, Arena, MAX_GROWING_BUFFERS, MAX_GROWING_PER_CALL, PAGE_SIZE,
       Segment, add_chunk!, add_sparse_chunk!, block_holding, block_size, chunk_bytes, chunk_size!,
       commit_range, create_segment, dead_owner, decommit_range, end_lingering!, format_bytes, free_block!,
       free_chunk_bytes, has_chunk, hold_owner_lock, init_shm_symbols, is_held, leased_bytes, linger_if_spare!, lock_path,
       map_segment, release_owner_lock, reserve_segment, round_up, set_committed!, share_block!, shm_space,
       shared_memory_full, sparse_segment, sparse_span, take_block!, take_chunks!, take_sparse_chunk!, unlink, unmap

end
