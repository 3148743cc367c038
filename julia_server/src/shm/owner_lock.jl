# Owner locks, as bridge/shm/owner_lock.py describes them: every process that owns segments holds a
# shared `flock` on `/dev/shm/akb-{pid}.lock` while it lives, so that whether a segment's owner
# is gone can be decided from any pid namespace. The server holds its own from start-up, and asks
# a reclaimed client's lock before it removes that client's segments.

const LOCK_SH = Cint(1)
const LOCK_EX = Cint(2)
const LOCK_NB = Cint(4)
const EWOULDBLOCK = Cint(11)

lock_path(pid::Integer) = "/dev/shm/akb-$pid.lock"

"""
    hold_owner_lock() -> Cint

Take this process's owner lock and return its descriptor, held until `release_owner_lock`; -1
when the lock file is another user's (`/dev/shm` is writable by all), which is left alone: the
server then has no owner lock, and a gc judges its chunks by its pid.
"""
function hold_owner_lock()
    path = lock_path(getpid())
    # close-on-exec: executors must not inherit it, or it would outlive the server
    flags = Base.Filesystem.JL_O_CREAT | Base.Filesystem.JL_O_RDWR | O_CLOEXEC | O_NOFOLLOW
    deadline = time() + TAKE_OVER_AFTER
    while true
        fd = ccall(:open, Cint, (Cstring, Cint, Base.Cmode_t), path, flags, 0o600)
        fd < 0 && return Cint(-1)   # not a file this user may lock: a symlink, a directory, …
        if !is_own_file(fd)
            ccall(:close, Cint, (Cint,), fd)
            return Cint(-1)
        end
        if ccall(:flock, Cint, (Cint, Cint), fd, LOCK_SH | LOCK_NB) != 0
            Libc.errno() == EWOULDBLOCK || throw(SystemError("flock($path)", Libc.errno()))
            ccall(:close, Cint, (Cint,), fd)
            # a gc removing a dead namesake's segments holds it a moment; longer, it is not a
            # gc's, and a new file of our own replaces it
            time() < deadline ? Libc.systemsleep(0.01) : rm(path; force = true)
            continue
        end
        same_file(fd, path) && return fd
        ccall(:close, Cint, (Cint,), fd)   # that gc removed the file meanwhile: take a new one
    end
end

"""How long (seconds) an owner lock file held exclusively is waited for before it is replaced."""
const TAKE_OVER_AFTER = 2.0

effective_uid() = ccall(:geteuid, Cuint, ())

is_own_file(fd::Cint) = (s = stat(RawFD(fd)); isfile(s) && s.uid == effective_uid())

# Whether `path` is still the file `fd` has open (not gone, not replaced, not a link to it).
same_file(fd::Cint, path::String) = (s = lstat(path); ispath(s) && s.inode == stat(RawFD(fd)).inode)

"""
    release_owner_lock(fd)

Remove this process's lock file and let go of the lock (a normal stop).
"""
function release_owner_lock(fd::Cint)
    fd < 0 && return nothing
    rm(lock_path(getpid()); force = true)
    ccall(:close, Cint, (Cint,), fd)
    return nothing
end

"""
    dead_owner(f, pid)

Call `f(gone)` with whether the owner of `pid`'s segments is gone: `true` when nobody holds its
lock, `false` when a live process does, `nothing` when the caller must judge by the pid: there
is no lock file (an owner from before owner locks), or nobody holds one that is another user's,
which proves nothing, since anyone may make it. When it is gone, `f` runs holding the lock file exclusively, so that a new process
with the same pid cannot take it and make segments meanwhile, and the file is removed after `f`.
"""
function dead_owner(f, pid::Int)
    path = lock_path(pid)
    fd = ccall(:open, Cint, (Cstring, Cint), path, Base.Filesystem.JL_O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
    fd < 0 && return f(nothing)   # none, or not a file this user may lock (a symlink, a directory, …)
    try
        if ccall(:flock, Cint, (Cint, Cint), fd, LOCK_EX | LOCK_NB) != 0
            return f(Libc.errno() == EWOULDBLOCK ? false : nothing)
        end
        is_own_file(fd) || return f(nothing)
        result = f(true)
        # unless a process of this pid replaced it meanwhile (it waits at most TAKE_OVER_AFTER)
        same_file(fd, path) && rm(path; force = true)
        return result
    finally
        ccall(:close, Cint, (Cint,), fd)
    end
end
