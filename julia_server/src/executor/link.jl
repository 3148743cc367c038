# An executor's one connection to its server: a DEALER on the server's private executor socket
# (docs/architecture.md, "Server and executors"). The executor's main task waits for messages
# inside libzmq, never in Julia's scheduler: on Julia 1.5 a SIGINT that finds the main task
# waiting in the scheduler is thrown where no handler can catch it and ends the process, and
# SIGINT is how the server interrupts a call. A wait lasts at most `LINK_WAIT_MS` at a time, so
# a user's threads never wait longer than that for a garbage collection. Frames are taken off
# the socket with interrupts deferred, so an interrupt that arrives meanwhile is thrown only once
# the message is safe in the inbox.

const LINK_WAIT_MS = 100

"""
    Link(address)

A DEALER connected to the server's executor socket at `address`, the messages received and
not yet handled (`inbox`), and the lock that lets user code on several threads ask the server
one at a time (`ask!`).
"""
struct Link
    context::Context
    socket::Socket
    inbox::Vector{Dict{String,Any}}
    asking::Threads.SpinLock
end

function Link(address::AbstractString)
    context = Context()
    socket = Socket(context, ZMQ_DEALER)
    setsockopt(socket, ZMQ_RCVTIMEO, Cint(LINK_WAIT_MS))
    connect(socket, address)
    return Link(context, socket, Dict{String,Any}[], Threads.SpinLock())
end

"""
    send!(link, message)
    send!(link, frame)

Send a map (or its packed frame) to the server, waiting for room if need be.
"""
send!(link::Link, message::Dict{String,Any}) = send!(link, pack(message))

function send!(link::Link, frame::Vector{UInt8})
    while !try_send(link.socket, frame; wait = true)
        GC.safepoint()   # a signal interrupted the wait; an interrupt it brought is thrown here
    end
    return nothing
end

"""
    receive!(link) -> Dict{String,Any}

The next message from the server, waiting for one.
"""
function receive!(link::Link)
    isempty(link.inbox) && fetch!(link)
    return popfirst!(link.inbox)
end

# Wait until one more message is in the inbox.
function fetch!(link::Link)
    count = length(link.inbox)
    while length(link.inbox) == count
        disable_sigint() do
            frames = try_recv(link.socket; wait = true)
            frames === nothing || push!(link.inbox, message_of(frames))
        end
        GC.safepoint()
    end
    return nothing
end

function message_of(frames::Vector{Vector{UInt8}})
    # the server checked what its clients sent; what it adds (a handle's array) may pass the caps
    message = length(frames) == 1 ?
        unpack(frames[1]; max_bytes = typemax(Int), max_values = typemax(Int), max_containers = typemax(Int)) : nothing
    message isa Dict{String,Any} && return message
    throw(ProtocolError("the server sent a message that is not one msgpack map"))
end

"""
    ask!(link, job, what, fields) -> Dict{String,Any}

Ask the server for `what` (`"alloc"`, `"growing"`, `"commit"`, `"relend"`) while running job
`job`, and wait for its answer. Messages that arrive meanwhile stay in the inbox for
`receive!`. Threads of user code (builders filled under `Threads.@threads`) ask one at a time:
the socket and the inbox are not thread-safe, and an answer names only its job. The lock spins
(with GC safepoints) rather than waiting in Julia's scheduler, where an interrupt would end the
executor on Julia 1.5 (see above).
"""
function ask!(link::Link, job::Int, what::String, fields::Pair{String}...)
    lock(link.asking)
    try
        send!(link, Dict{String,Any}("op" => "ask", "job" => job, "what" => what, fields...))
        is_answer(m) = get(m, "op", nothing) == "answer" && get(m, "job", nothing) == job
        while true
            i = findfirst(is_answer, link.inbox)
            i === nothing || return popat!(link.inbox, i)
            fetch!(link)
        end
    finally
        unlock(link.asking)
    end
end
