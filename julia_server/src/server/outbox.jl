# Replies leave from the thread that made them. A worker that hands its reply to the socket
# loop wakes the loop's thread for every call; on two busy cores that hand-over cost ~20 µs a
# call and, now and then, a stall of one or two 4 ms scheduler ticks (docs/performance.md).
# libzmq sockets are not thread-safe: every operation on the socket, the loop's receives
# included, holds one lock, whose acquire and release give the memory barrier libzmq asks for
# when a socket changes threads. None of those operations blocks, so the lock is a spin lock.

"""
    Outbox(socket, events)

The server's socket, shared by the loop and the workers, with what senders keep up to date for
the loop: requests handed to workers and not yet answered (`inflight`), when the last reply
left (`last_sent`, from `time_ns()`), and the loop's event channel for waking it.
"""
struct Outbox
    socket::Socket
    lock::Threads.SpinLock
    events::Channel{Any}
    inflight::Threads.Atomic{Int}
    last_sent::Threads.Atomic{UInt64}
end

Outbox(socket::Socket, events::Channel{Any}) =
    Outbox(socket, Threads.SpinLock(), events, Threads.Atomic{Int}(0), Threads.Atomic{UInt64}(0))

"""
    with_socket(f, outbox)

`f(socket)`, holding the socket lock. `f` must neither block nor yield.
"""
with_socket(f, outbox::Outbox) = lock(() -> f(outbox.socket), outbox.lock)

"""
    send_reply!(outbox, routing, frame)

Send a worker's reply from the worker's thread and count its request done. A dropped reply (the
socket closed by a shutdown that abandoned the call) is counted done too.
"""
function send_reply!(outbox::Outbox, routing::Vector{UInt8}, frame::Vector{UInt8})
    waiting = with_socket(outbox) do socket
        isopen(socket) || return false
        try_send(socket, routing, frame)
        # The send may have consumed the `ZMQ_FD` signal of a request that arrived meanwhile;
        # the loop, waiting on that descriptor, would not hear of the request.
        return readable(socket)
    end
    outbox.last_sent[] = time_ns()
    Threads.atomic_sub!(outbox.inflight, 1)
    waiting && put!(outbox.events, :readable)
    return nothing
end
