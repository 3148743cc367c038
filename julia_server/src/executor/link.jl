# An executor's one connection to its server: a DEALER on the server's private executor socket
# (docs/architecture.md, "Server and executors"). The executor's main task waits for messages
# inside libzmq, never in Julia's scheduler: on Julia 1.5 a SIGINT that finds the main task
# waiting in the scheduler is thrown where no handler can catch it and ends the process, and
# SIGINT is how the server interrupts a call. A wait lasts at most `LINK_WAIT_MS` at a time, then
# passes a safepoint, so a pending interrupt is thrown where the executor expects it and a user's
# threads never wait longer than that for a garbage collection.

const LINK_WAIT_MS = 100

"""
    Link(address)

A DEALER connected to the server's executor socket at `address`, and the messages that arrived
while an `ask!` waited for its answer.
"""
struct Link
    context::Context
    socket::Socket
    posted::Vector{Dict{String,Any}}
end

function Link(address::AbstractString)
    context = Context()
    socket = Socket(context, ZMQ_DEALER)
    setsockopt(socket, ZMQ_RCVTIMEO, Cint(LINK_WAIT_MS))
    connect(socket, address)
    return Link(context, socket, Dict{String,Any}[])
end

"""
    send!(link, message)

Send a map to the server, waiting for room if need be.
"""
function send!(link::Link, message::Dict{String,Any})
    frame = pack(message)
    while !try_send(link.socket, frame; wait = true)
        GC.safepoint()   # a signal interrupted the wait; an interrupt it brought is thrown here
    end
    return nothing
end

"""
    receive!(link) -> Dict{String,Any}

The next message from the server: one kept by `ask!` first, else the next to arrive.
"""
receive!(link::Link) = isempty(link.posted) ? next_message!(link) : popfirst!(link.posted)

function next_message!(link::Link)
    while true
        frames = try_recv(link.socket; wait = true)
        if frames === nothing
            GC.safepoint()
            continue
        end
        message = length(frames) == 1 ? unpack(frames[1]) : nothing
        message isa Dict{String,Any} && return message
        throw(ProtocolError("the server sent a message that is not one msgpack map"))
    end
end

"""
    ask!(link, job, what, fields) -> Dict{String,Any}

Ask the server for `what` (`"alloc"`, `"relend"`) while running job `job`, and wait for its
answer. Messages that arrive meanwhile are kept for `receive!`.
"""
function ask!(link::Link, job::Int, what::String, fields::Pair{String}...)
    send!(link, Dict{String,Any}("op" => "ask", "job" => job, "what" => what, fields...))
    while true
        message = next_message!(link)
        get(message, "op", nothing) == "answer" && get(message, "job", nothing) == job && return message
        push!(link.posted, message)
    end
end
