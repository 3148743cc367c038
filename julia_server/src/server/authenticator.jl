# ZeroMQ's authentication protocol (ZAP, RFC 27): libzmq asks a REP socket bound at
# `inproc://zeromq.zap.01`, in the server's context, whether to admit each CURVE connection,
# passing the client's public key. The server admits the one client key of its key file and
# refuses every other, so that knowing the server's public key is not enough. The loop answers
# ZAP requests like any other message (server/loop.jl).

const ZAP_ENDPOINT = "inproc://zeromq.zap.01"

"""
    Authenticator(context, client_public)

The ZAP handler: a REP socket on `ZAP_ENDPOINT`, admitting CURVE clients whose public key (Z85)
is `client_public`.
"""
struct Authenticator
    socket::Socket
    client_public::String
end

function Authenticator(context::Context, client_public::String)
    socket = Socket(context, ZMQ_REP)
    bind(socket, ZAP_ENDPOINT)
    return Authenticator(socket, client_public)
end

"""
    answer_zap!(auth, frames) -> Bool

Answer one ZAP request (`frames`: version, request id, domain, address, routing id, mechanism,
credentials): 200 for the admitted client key, 400 otherwise. Returns whether it admitted.
"""
function answer_zap!(auth::Authenticator, frames::Vector{Vector{UInt8}})
    length(frames) >= 6 || return false   # not a ZAP request: libzmq sends none such
    version, id, mechanism = frames[1], frames[2], String(copy(frames[6]))
    admitted = mechanism == "CURVE" && length(frames) == 7 && length(frames[7]) == 32 &&
               zmq_z85_encode(frames[7]) == auth.client_public
    status, text = admitted ? ("200", "OK") : ("400", "unknown client key")
    try_send(auth.socket, version, id, Vector{UInt8}(status), Vector{UInt8}(text), UInt8[], UInt8[])
    return admitted
end
