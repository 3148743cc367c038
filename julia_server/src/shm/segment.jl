# POSIX shared-memory segments (docs/protocol.md, section 5), through libc directly: Julia's
# Mmap works on files it opens itself and unmaps in finalizers, while the bridge needs exact
# control of when a mapping ends and when a name disappears.

const PROT_READ = Cint(1)
const PROT_WRITE = Cint(2)
const MAP_SHARED = Cint(1)
const MAP_POPULATE = Sys.islinux() ? Cint(0x8000) : Cint(0)   # elsewhere pages fault in one by one
const MAP_FAILED = reinterpret(Ptr{Cvoid}, typemax(UInt))
const SEEK_END = Cint(2)
# The unit in which a sparse segment's memory is committed (x86-64's and most Arm Linux's page).
const PAGE_SIZE = 4096


# shm_open and shm_unlink live in libc from glibc 2.34 on and in librt before; `__init__` looks
# them up once (see `init_shm_symbols`).
const SHM_OPEN = Ref{Ptr{Cvoid}}(C_NULL)
const SHM_UNLINK = Ref{Ptr{Cvoid}}(C_NULL)

"""
    init_shm_symbols()

Find `shm_open` and `shm_unlink` in libc, or in librt on glibc older than 2.34.
"""
function init_shm_symbols()
    libc = Libdl.dlopen("libc.so.6")
    if Libdl.dlsym_e(libc, :shm_open) != C_NULL
        SHM_OPEN[] = Libdl.dlsym(libc, :shm_open)
        SHM_UNLINK[] = Libdl.dlsym(libc, :shm_unlink)
    else
        librt = Libdl.dlopen("librt.so.1")
        SHM_OPEN[] = Libdl.dlsym(librt, :shm_open)
        SHM_UNLINK[] = Libdl.dlsym(librt, :shm_unlink)
    end
    return nothing
end

"""
    Segment(name, ptr, nbytes, writable)

A mapped shared-memory segment: its name (without the leading `/`), where it is mapped, the
mapped length and whether the mapping is writable.
"""
struct Segment
    name::String
    ptr::Ptr{UInt8}
    nbytes::Int
    writable::Bool
end

shm_open(name::AbstractString, flags::Integer, mode::Integer) =
    ccall(SHM_OPEN[], Cint, (Cstring, Cint, Base.Cmode_t), "/" * name, flags, mode)

function close_fd(fd::Cint)
    ccall(:close, Cint, (Cint,), fd)
    return nothing
end

function mmap_fd(fd::Cint, nbytes::Int, writable::Bool, name::AbstractString; populate::Bool = false)
    prot = writable ? PROT_READ | PROT_WRITE : PROT_READ
    flags = populate ? MAP_SHARED | MAP_POPULATE : MAP_SHARED
    ptr = ccall(:mmap, Ptr{Cvoid}, (Ptr{Cvoid}, Csize_t, Cint, Cint, Cint, Int64),
                C_NULL, nbytes, prot, flags, fd, 0)
    # every SystemError here is given its errno: Julia 1.5 cannot print one made without it
    ptr == MAP_FAILED && throw(SystemError("mmap of shared-memory segment $name ($nbytes bytes)", Libc.errno()))
    return Ptr{UInt8}(ptr)
end

"""
    shm_space(path="/dev/shm") -> (free, total)

Bytes available to an unprivileged process, and the size, of the filesystem at `path`.
"""
function shm_space(path::AbstractString = "/dev/shm")
    # struct statvfs on 64-bit Linux: f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, … as
    # 64-bit words; the buffer is larger than the struct.
    words = zeros(UInt64, 32)
    rc = ccall(:statvfs, Cint, (Cstring, Ptr{UInt64}), path, words)
    rc == 0 || throw(SystemError("statvfs($path)", Libc.errno()))
    frsize = words[2]
    return Int(words[5] * frsize), Int(words[3] * frsize)
end

"""
    format_bytes(n) -> String

`n` bytes for a human: `"1.5 GiB (1610612736 bytes)"`.
"""
function format_bytes(n::Integer)
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
    x, i = float(n), 1
    while x >= 1024 && i < length(units)
        x /= 1024
        i += 1
    end
    return i == 1 ? "$n bytes" : "$(round(x, digits = 1)) $(units[i]) ($n bytes)"
end

function shared_memory_full(nbytes::Int)
    free, total = shm_space()
    return SharedMemoryFull("cannot reserve $(format_bytes(nbytes)) of shared memory: /dev/shm " *
                            "has $(format_bytes(free)) free of $(format_bytes(total))")
end

"""
    reserve_segment(nbytes) -> String

Create and size a new segment of at least `nbytes` bytes (at least one: `mmap` refuses empty
mappings) without mapping it, and return its name, `akb-{getpid()}-{32 random hex}`, readable
only by this user. The space is reserved with `posix_fallocate`, so a full `/dev/shm` fails here
with `SharedMemoryFull` (naming the size and what is free) rather than with SIGBUS later in
whichever process writes it. Nothing is left behind when creation fails. The server makes its
result chunks this way and its executors map them (`map_segment`).
"""
reserve_segment(nbytes::Integer) = with_new_segment((fd, name, size) -> name, nbytes)

"""
    sparse_segment(nbytes) -> String

Create a segment of `nbytes` bytes whose memory is not reserved: a sparse file, which holds no
page until a range of it is committed (`commit_range`). A growing result lives in one, its
buffers far apart, so that none ever moves (docs/ownership.md). Returns its name.
"""
sparse_segment(nbytes::Integer) = with_new_segment((fd, name, size) -> name, nbytes; sparse = true)

"""
    commit_range(name, offset, nbytes)

Reserve the pages of `nbytes` bytes at `offset` in segment `name` (`posix_fallocate`), so that
writing them cannot fail later; a full `/dev/shm` is `SharedMemoryFull` here.
"""
commit_range(name::AbstractString, offset::Integer, nbytes::Integer) =
    with_open_segment(fd -> reserve(fd, Int(offset), Int(nbytes), name), name)

"""
    decommit_range(name, offset, nbytes)

Give back the pages of `nbytes` bytes at `offset` in segment `name` (the segment keeps its
size; the range reads as zeros).
"""
function decommit_range(name::AbstractString, offset::Integer, nbytes::Integer)
    (nbytes > 0 && Sys.islinux()) || return nothing   # elsewhere the pages stay until the segment goes
    with_open_segment(name) do fd
        ccall(:fallocate, Cint, (Cint, Cint, Int64, Int64), fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              offset, nbytes) == 0 || throw(SystemError("fallocate(PUNCH_HOLE) of shared-memory segment $name", Libc.errno()))
    end
    return nothing
end

const FALLOC_FL_KEEP_SIZE = Cint(1)
const FALLOC_FL_PUNCH_HOLE = Cint(2)

function with_open_segment(f, name::AbstractString)
    fd = shm_open(name, Base.Filesystem.JL_O_RDWR, 0)
    fd < 0 && throw(SystemError("shm_open($name)", Libc.errno()))
    try
        return f(fd)
    finally
        close_fd(fd)
    end
end

"""
    create_segment(nbytes; populate=false) -> Segment

Like `reserve_segment`, and map the new segment read-write. `populate` maps every page at once
(`MAP_POPULATE`), which costs less than faulting them in one by one when the whole segment is
about to be written.
"""
create_segment(nbytes::Integer; populate::Bool = false) =
    with_new_segment(nbytes) do fd, name, size
        Segment(name, mmap_fd(fd, size, true, name; populate = populate), size, true)
    end

# `f(fd, name, size)` on a new, sized segment's descriptor (its memory reserved, or a sparse
# file of that size); the segment is unlinked if `f` fails.
function with_new_segment(f, nbytes::Integer; sparse::Bool = false)
    nbytes >= 0 || throw(ArgumentError("segment size must be ≥ 0, got $nbytes"))
    size = max(Int(nbytes), 1)
    flags = Base.Filesystem.JL_O_CREAT | Base.Filesystem.JL_O_EXCL | Base.Filesystem.JL_O_RDWR
    while true
        name = segment_name()
        fd = shm_open(name, flags, 0o600)
        if fd < 0
            errno = Libc.errno()
            errno == EEXIST && continue   # a random name collided: draw another
            throw(SystemError("shm_open($name)", errno))
        end
        try
            if sparse
                ccall(:ftruncate, Cint, (Cint, Int64), fd, size) == 0 ||
                    throw(SystemError("ftruncate of shared-memory segment $name to $size bytes", Libc.errno()))
            else
                reserve(fd, 0, size, name)
            end
            return f(fd, name, size)
        catch
            unlink(name)
            rethrow()
        finally
            close_fd(fd)
        end
    end
end

function reserve(fd::Cint, offset::Int, size::Int, name::AbstractString)
    while true
        err = ccall(:posix_fallocate, Cint, (Cint, Int64, Int64), fd, offset, size)
        err == 0 && return nothing
        err == EINTR && continue
        (err == ENOSPC || err == EFBIG) && throw(shared_memory_full(size))
        throw(SystemError("posix_fallocate of shared-memory segment $name ($size bytes)", err))
    end
end

"""
    map_segment(name; readonly=true, populate=false) -> Segment

Map all of an existing segment (`populate`: every page at once, see `create_segment`). `name`
comes from another process, so it is checked against `akb-{pid}-{32 hex}` before anything is
opened; a bad name, a missing or empty segment is an `InvalidArray`.
"""
function map_segment(name::AbstractString; readonly::Bool = true, populate::Bool = false)
    is_segment_name(name) ||
        throw(InvalidArray("segment name $(repr(name)) is not of the form akb-{pid}-{32 hex digits}"))
    flags = readonly ? Base.Filesystem.JL_O_RDONLY : Base.Filesystem.JL_O_RDWR
    fd = shm_open(name, flags, 0)
    if fd < 0
        errno = Libc.errno()
        errno == ENOENT && throw(InvalidArray("shared-memory segment $name does not exist"))
        throw(InvalidArray("cannot open shared-memory segment $name: $(Libc.strerror(errno))"))
    end
    try
        size = ccall(:lseek, Int64, (Cint, Int64, Cint), fd, 0, SEEK_END)
        size < 0 && throw(SystemError("lseek on shared-memory segment $name", Libc.errno()))
        size == 0 && throw(InvalidArray("shared-memory segment $name is empty"))
        return Segment(String(name), mmap_fd(fd, Int(size), !readonly, name; populate = populate), Int(size), !readonly)
    finally
        close_fd(fd)
    end
end

"""
    unmap(seg::Segment)

Remove the mapping; the segment's memory must not be touched afterwards.
"""
function unmap(seg::Segment)
    ccall(:munmap, Cint, (Ptr{Cvoid}, Csize_t), seg.ptr, seg.nbytes) == 0 ||
        throw(SystemError("munmap of shared-memory segment $(seg.name)", Libc.errno()))
    return nothing
end

"""
    unlink(name) -> Bool

Remove segment `name` from `/dev/shm` (existing mappings stay valid until unmapped). `false`
when it was already gone.
"""
function unlink(name::AbstractString)
    ccall(SHM_UNLINK[], Cint, (Cstring,), "/" * name) == 0 && return true
    errno = Libc.errno()
    errno == ENOENT && return false
    throw(SystemError("shm_unlink($name)", errno))
end
