"""
    AwkwardBridge.ZMQ

libzmq, one concept per file as ZMQ.jl has it: the ccall layer (`libzmq.jl`) and the Julian
socket over it (`socket.jl`).
"""
module ZMQ

using FileWatching, Libdl
using ..Basics, ..Wire

include("libzmq.jl")
include("socket.jl")

export Context, Socket, ZMQError, ZMQ_CURVE_SECRETKEY, ZMQ_CURVE_SERVER, ZMQ_DEALER,
       ZMQ_MAXMSGSIZE, ZMQ_RCVTIMEO, ZMQ_REP, ZMQ_ROUTER, ZMQ_ROUTER_MANDATORY, ZMQ_ZAP_DOMAIN,
       connect, events, last_endpoint, libzmq, load_libzmq, readable, setsockopt, try_recv,
       try_send, wait_fd, zmq_curve_keypair, zmq_z85_encode

end
