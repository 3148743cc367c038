# The CURVE keys of a tcp server (docs/security.md). Every tcp connection is authenticated and
# encrypted with ZeroMQ's CURVE: a client must know the server's public key, and the server lets
# in only the client key pair of its key file. The file holds both key pairs, in Z85, and is
# readable by its owner only (0600): whoever can read it may run code as the server's user, as
# with Jupyter's connection files.

"""
    CurveKeys(server_public, server_secret, client_public, client_secret)

A server's key pair and the one client key pair it admits, each key 40 characters of Z85.
"""
struct CurveKeys
    server_public::String
    server_secret::String
    client_public::String
    client_secret::String
end

const KEY_FIELDS = ("server_public", "server_secret", "client_public", "client_secret")

"""
    load_or_create_keys(path) -> CurveKeys

The keys in the key file `path`, creating it (mode 0600, with new key pairs) when it does not
exist. A file that another user owns or that others may read, or one that is not a key file, is
refused with an `ArgumentError` naming it.
"""
function load_or_create_keys(path::String)
    ispath(path) || return create_key_file(path)
    info = stat(path)
    # another user's file would give that user the keys to this server's tcp clients
    info.uid == ccall(:geteuid, Cuint, ()) ||
        throw(ArgumentError("key file $path belongs to uid $(info.uid), not to the server's user"))
    mode = info.mode & 0o777
    mode & 0o077 == 0 ||
        throw(ArgumentError("key file $path may be read by other users (mode $(string(mode, base = 8))); chmod 600 it"))
    fields = try
        parse_json(read(path, String))
    catch e
        e isa JSONError || rethrow()
        nothing
    end
    ok = fields isa Dict{String,Any} &&
         all(k -> get(fields, k, nothing) isa String && length(fields[k]) == 40, KEY_FIELDS)
    ok || throw(ArgumentError("$path is not an awkward-bridge key file (a JSON map of $(join(KEY_FIELDS, ", ")))"))
    return CurveKeys((fields[k] for k in KEY_FIELDS)...)
end

function create_key_file(path::String)
    dir = dirname(path)
    isempty(dir) || isdir(dir) || mkpath(dir; mode = 0o700)
    keys = CurveKeys(zmq_curve_keypair()..., zmq_curve_keypair()...)
    text = "{" * join(("\"$k\": \"$(getfield(keys, Symbol(k)))\"" for k in KEY_FIELDS), ", ") * "}\n"
    # O_EXCL and 0600 from the start: the secrets are never readable by anyone else
    flags = Base.Filesystem.JL_O_CREAT | Base.Filesystem.JL_O_EXCL | Base.Filesystem.JL_O_WRONLY
    fd = ccall(:open, Cint, (Cstring, Cint, Base.Cmode_t), path, flags, 0o600)
    fd < 0 && throw(SystemError("creating key file $path", Libc.errno()))
    try
        ccall(:write, Cssize_t, (Cint, Ptr{UInt8}, Csize_t), fd, text, sizeof(text)) == sizeof(text) ||
            throw(SystemError("writing key file $path", Libc.errno()))
    finally
        ccall(:close, Cint, (Cint,), fd)
    end
    log_event("wrote new CURVE keys to $path (mode 0600); clients read it to connect")
    return keys
end

"""
    use_curve!(socket, keys)

Make `socket` a CURVE server with the server's secret key: every connection is then encrypted,
and admitted only by the ZAP handler (`Authenticator`).
"""
function use_curve!(socket::Socket, keys::CurveKeys)
    setsockopt(socket, ZMQ_CURVE_SERVER, Cint(1))
    setsockopt(socket, ZMQ_CURVE_SECRETKEY, keys.server_secret)
    setsockopt(socket, ZMQ_ZAP_DOMAIN, "awkward-bridge")
    return nothing
end
