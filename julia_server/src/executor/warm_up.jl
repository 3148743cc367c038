# A new executor compiles the codec for each layout it meets: the first jagged array costs about
# 1.3 s here, a record array 0.7 s more, later ones of the same layout nothing. A server that
# keeps spare executors has each one write and read back a few common layouts in its own memory
# right after it says `ready` (`--warm-up`, 2.7–2.9 s here), long before a client needs it. It
# stops at the first job that arrives meanwhile, so a job waits at most for one layout (1.3 s at
# worst, for the first, which most jobs need anyway). A private server, whose one client is
# waiting for its executor, does not warm up: its first call compiles only the layout it uses.

"""Layouts every executor compiles before its first job: numbers, jagged numbers, records."""
const WARM_UP_ARRAYS = ([1.0, 2.0], [1, 2], [[1.0, 2.0], Float64[]], [[1.0f0], Float32[]],
                        [[1], Int[]], [(x = 1.0, y = [2.0])], ["ab", "c"], [true, false])

"""
    warm_up(link)

Write each of `WARM_UP_ARRAYS` as Awkward buffers into a local buffer, open the views over them,
and write those views again, so that the codec's paths for these layouts are compiled; stop as
soon as a message from the server is waiting on `link`.
"""
function warm_up(link::Link)
    buffer = Vector{UInt8}(undef, 1 << 16)
    GC.@preserve buffer for x in WARM_UP_ARRAYS
        readable(link.socket) && return nothing
        allocate = nbytes -> ("warm-up", 0, pointer(buffer))
        view = open_array(place_array(x, allocate), b -> pointer(buffer) + b.offset)
        place_array(view, allocate)
    end
    return nothing
end
