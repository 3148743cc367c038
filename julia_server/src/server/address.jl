# One server per address. An ipc socket is a file: a second `serve` on the same path would
# replace the first one's file and take its new clients, leaving the first running, orphaned.
# So before binding, a live file is refused and a stale one (its server died) removed; the
# directory is made private if the server makes it, the socket file is made readable by its
# user only, and the server removes its own file when it stops. A tcp port is the kernel's to
# guard: a second bind fails with "Address already in use".

const AF_UNIX = Cint(1)
const SOCK_STREAM = Cint(1)
const ECONNREFUSED = Cint(111)
const SUN_PATH_MAX = 108

"""
    ipc_path(address) -> Union{Nothing,String}

The socket file of an `ipc://` address; `nothing` for other transports.
"""
ipc_path(address::AbstractString) = startswith(address, "ipc://") ? String(address[7:end]) : nothing

"""
    claim_ipc_path(path)

Make `path` free for this server's socket: refuse when a server answers there, remove a stale
socket file, and make its directory (0700) when it does not exist.
"""
function claim_ipc_path(path::String)
    dir = dirname(path)
    isempty(dir) || isdir(dir) || mkpath(dir; mode = 0o700)
    ispath(path) || return nothing
    if accepts_connections(path)
        throw(ArgumentError("a server already listens at ipc://$path; stop it first, or choose another address"))
    end
    rm(path)
    log_event("removed the stale socket file $path, left by a server that is gone")
    return nothing
end

# Whether a process accepts Unix-socket connections at `path`.
function accepts_connections(path::String)
    sizeof(path) < SUN_PATH_MAX || throw(ArgumentError("ipc path $path is longer than $(SUN_PATH_MAX - 1) bytes"))
    fd = ccall(:socket, Cint, (Cint, Cint, Cint), AF_UNIX, SOCK_STREAM, 0)
    fd < 0 && throw(SystemError("socket(AF_UNIX)", Libc.errno()))
    try
        address = zeros(UInt8, 2 + SUN_PATH_MAX)   # struct sockaddr_un: sa_family_t, then the path
        address[1:2] = reinterpret(UInt8, [UInt16(AF_UNIX)])
        address[3:2+sizeof(path)] = codeunits(path)
        rc = ccall(:connect, Cint, (Cint, Ptr{UInt8}, UInt32), fd, address, length(address))
        rc == 0 && return true
        errno = Libc.errno()
        errno == ECONNREFUSED && return false
        throw(SystemError("connect to $path", errno))
    finally
        ccall(:close, Cint, (Cint,), fd)
    end
end

"""
    bind_private(socket, address)

Bind `socket` with a umask that leaves an ipc socket file readable and writable by this user
only.
"""
function bind_private(socket::Socket, address::AbstractString)
    old = ccall(:umask, Base.Cmode_t, (Base.Cmode_t,), 0o077)
    try
        bind(socket, address)
    finally
        ccall(:umask, Base.Cmode_t, (Base.Cmode_t,), old)
    end
    return nothing
end

"""
    release_ipc_path(path, inode)

Remove the socket file this server bound (`inode`), unless another file has taken its place.
"""
function release_ipc_path(path::String, inode::UInt64)
    isfile_socket = ispath(path) && stat(path).inode == inode
    isfile_socket && rm(path)
    return nothing
end
