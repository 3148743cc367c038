# A job whose request asked for `stream_output` has its stdout and stderr sent to the client
# while it runs, in output messages (docs/protocol.md, "Output"), so that a notebook cell shows
# a long loop's progress as it prints. The server reads the executor's output files itself: a
# reader inside the executor would share the process with user code, and with Julia 1.5's
# garbage collector it would stall whenever a loop that does not allocate runs.

"""Seconds between two looks at a streamed job's output files."""
const OUTPUT_PERIOD = 0.1

"""
    StreamedOutput()

A streamed job's output so far: the bytes of its executor's stdout and stderr files that the
client has been sent, and the timer that looks for more while the job runs.
"""
mutable struct StreamedOutput
    sent::NTuple{2,Int}
    timer::Union{Nothing,Timer}
end

StreamedOutput() = StreamedOutput((0, 0), nothing)

"""
    start_looking!(streamed, events, number)

Put `(:output, number)` on `events` every `OUTPUT_PERIOD` seconds until `stop_looking!`.
"""
function start_looking!(streamed::StreamedOutput, events::Channel{Any}, number::Int)
    streamed.timer = Timer(_ -> put!(events, (:output, number)), OUTPUT_PERIOD; interval = OUTPUT_PERIOD)
    return nothing
end

stop_looking!(streamed::StreamedOutput) = streamed.timer === nothing || close(streamed.timer)

"""
    open_output_files(dir, pid) -> Vector{IOStream}

The stdout and stderr files of executor `pid` (in the executor directory `dir`), which it made
before it said `ready`, before any client's code ran; none when they are not both regular files.
Held open, they stay the executor's files even if user code later renames or replaces them,
and a job's output costs no `open` per call.
"""
function open_output_files(dir::AbstractString, pid::Integer)
    files = IOStream[]
    for stream in ("stdout", "stderr")
        io = open_regular_file(output_path(dir, pid, stream); write = true)
        io === nothing && (foreach(close, files); return IOStream[])
        push!(files, io)
    end
    return files
end

"""
    read_output!(streamed, files; whole) -> Dict{String,Any}

What the job wrote to its executor's stdout and stderr `files` beyond what was sent, as `output`
fields; the `whole` rest, once the job is done, after which the files are emptied, so that
nothing of the job is read again as the next one's. A file that cannot be read shows nothing
more.
"""
function read_output!(streamed::StreamedOutput, files::Vector{IOStream}; whole::Bool)
    output = Dict{String,Any}()
    sent = collect(streamed.sent)
    for (i, (stream, io)) in enumerate(zip(("stdout", "stderr"), files))
        try
            n = filesize(io)
            if n > sent[i] || whole && n > OUTPUT_CAP
                text, sent[i] = output_text(io, n; from = sent[i], whole = whole)
                isempty(text) || (output[stream] = text)
            end
            whole && n > 0 && truncate(io, 0)
        catch e
            e isa InterruptException && rethrow()
        end
    end
    streamed.sent = (sent[1], sent[2])
    return output
end
