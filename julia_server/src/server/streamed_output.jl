# A job whose request asked for `stream_output` has its stdout, stderr and log records sent to
# the client while it runs, in output messages (docs/protocol.md, "Output"), so that a notebook
# cell shows a long loop's progress as it prints. The server reads the executor's output files
# itself: a reader inside the executor would share the process with user code, and with Julia
# 1.5's garbage collector it would stall whenever a loop that does not allocate runs.

"""Seconds between two looks at a streamed job's output files."""
const OUTPUT_PERIOD = 0.1

"""Output messages a job sends at each pace: after each such run the wait between two doubles,
and after `OUTPUT_MESSAGES_CAP` the rest comes with the reply. A client that does not read (its
stdout blocked) would otherwise see ZeroMQ drop its reply with the messages past its queue's
1000 (the high-water mark): a job that prints all the time sends 100 messages at 0.1 s, then 100
at 0.2 s, …, 900 in 85 minutes."""
const OUTPUT_MESSAGES_PER_PACE = 100
const OUTPUT_MESSAGES_CAP = 900

"""
    StreamedOutput()

A streamed job's output so far: the bytes of its executor's stdout, stderr and log files that
the client has been sent, the log records among them, and the timer that looks for more while
the job runs.
"""
mutable struct StreamedOutput
    sent::NTuple{3,Int}
    records::Int
    messages::Int
    last_message::UInt64
    timer::Union{Nothing,Timer}
end

StreamedOutput() = StreamedOutput((0, 0, 0), 0, 0, 0, nothing)

"""
    may_send(streamed, now) -> Bool

Whether an output message may go at time `now` (`time_ns`), at the pace `OUTPUT_MESSAGES_PER_PACE`
sets.
"""
function may_send(streamed::StreamedOutput, now::UInt64)
    streamed.messages < OUTPUT_MESSAGES_CAP || return false
    pace = OUTPUT_PERIOD * 2.0^(streamed.messages ÷ OUTPUT_MESSAGES_PER_PACE)
    # a tick may come a little early: a tenth of the period is slack
    return now - streamed.last_message >= (pace - OUTPUT_PERIOD / 10) * 1e9
end

"""
    message_sent!(streamed, now)

Count an output message sent at `now`; at `OUTPUT_MESSAGES_CAP`, stop looking.
"""
function message_sent!(streamed::StreamedOutput, now::UInt64)
    streamed.messages += 1
    streamed.last_message = now
    streamed.messages < OUTPUT_MESSAGES_CAP || stop_looking!(streamed)
    return nothing
end

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

The stdout, stderr and log files of executor `pid` (in the executor directory `dir`), which it
made before it said `ready`, before any client's code ran; none when they are not all regular
files. Held open, they stay the executor's files even if user code later renames or replaces
them, and a job's output costs no `open` per call.
"""
function open_output_files(dir::AbstractString, pid::Integer)
    files = IOStream[]
    for stream in OUTPUT_STREAMS
        io = open_regular_file(output_path(dir, pid, stream); write = true)
        io === nothing && (foreach(close, files); return IOStream[])
        push!(files, io)
    end
    return files
end

"""
    empty_output_files!(files)

Empty an executor's output files before a streamed job's `run`: what a process an earlier job
started wrote since is not this job's, and the job's offsets start at 0.
"""
empty_output_files!(files::Vector{IOStream}) = foreach(empty_output_file!, files)

function empty_output_file!(io::IOStream)
    try
        filesize(io) > 0 && truncate(io, 0)
    catch e
        e isa InterruptException && rethrow()
    end
end

"""
    read_output!(streamed, files; whole) -> Dict{String,Any}

What the job wrote to its executor's output `files` beyond what was sent, as `output` fields:
`stdout`, `stderr` and `logs`; the `whole` rest, once the job is done, after which the files
are emptied, so that nothing of the job is read again as the next one's. A file that cannot be
read shows nothing more. A file that has shrunk below what was sent was emptied by the job
itself (a shell's `echo x > /dev/stderr` in a child process): it is read again from its start.
"""
function read_output!(streamed::StreamedOutput, files::Vector{IOStream}; whole::Bool)
    output = Dict{String,Any}()
    sent = collect(streamed.sent)
    for (i, (stream, io)) in enumerate(zip(OUTPUT_STREAMS, files))
        try
            n = filesize(io)
            n < sent[i] && sent[i] != LOG_END && (sent[i] = 0)
            if stream == "logs"
                records, sent[i] = read_log_records(io, n; from = sent[i], most = LOG_RECORDS_CAP - streamed.records)
                streamed.records += length(records)
                isempty(records) || (output[stream] = records)
            elseif n > sent[i]
                text, sent[i] = output_text(io, n; from = sent[i], whole = whole)
                isempty(text) || (output[stream] = text)
            end
        catch e
            e isa InterruptException && rethrow()
            # what user code did to the file; anything else is the server's own bug, which must show
            e isa Union{SystemError,Base.IOError,EOFError} ||
                log_event("internal error reading a job's $stream: $(first_line(sprint(showerror, e)))")
        finally
            whole && empty_output_file!(io)
        end
    end
    streamed.sent = Tuple(sent)
    return output
end
