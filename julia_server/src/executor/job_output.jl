# What a job's user code prints and logs goes back to its client with the job's `done`, or, for
# a streamed job, from the server as it comes (docs/protocol.md, "Output"), so that in a
# notebook it appears in the cell that made the call, and in a farm each client sees its own.
# The executor's stdout and stderr point, during a job only, at files of its own in the server's
# private executor directory: a pipe would need a reader running beside user code, and C code
# that filled it would block. Output of a job that crashes the executor stays in its files,
# where the server reads it with the crash report. Julia buffers an `IOStream` by blocks, so
# what a crashing job printed would die in the process's buffer: these files are buffered as C
# buffers a terminal, stdout by lines and stderr not at all (`buffered_as_a_terminal`).

"""Bytes of each stream a job sends back; beyond, the output is cut, saying so."""
const OUTPUT_CAP = 1 << 20

"""Log records a job sends back; later ones are counted, not sent."""
const LOG_CAP = 1000

"""Bytes of one log record in a streamed job's log file; a longer frame is not the executor's."""
const LOG_RECORD_MAX_BYTES = 256 * 1024

"""
    OutputFiles(dir)

The files `dir/{pid}.stdout` and `dir/{pid}.stderr` that this executor's jobs write to, the
file `dir/{pid}.logs` a streamed job writes its log records to (`write_log_record`), and the
display over the first that `display(x)` uses during a job (Julia's own is over the stdout it
had at start-up).
"""
struct OutputFiles
    stdout::IOStream
    stderr::IOStream
    logs::IOStream
    display::TextDisplay
end

function OutputFiles(dir::AbstractString)
    stdout = buffered_as_a_terminal(open_for_output(output_path(dir, getpid(), "stdout")), IOS_LINE_BUFFERED)
    stderr = buffered_as_a_terminal(open_for_output(output_path(dir, getpid(), "stderr")), IOS_UNBUFFERED)
    logs = open_for_output(output_path(dir, getpid(), "logs"))
    return OutputFiles(stdout, stderr, logs, TextDisplay(stdout))
end

"""
    open_for_output(path) -> IOStream

`path` made empty and opened to append, for a job's output.
"""
# `O_APPEND` (Julia's `open(…; append = true)` only seeks to the end once): once the server
# empties a file (a streamed job's, `read_output!`), every writer, this process's streams, C
# code and child processes alike, goes on from its new end, not from where it was, which would
# leave a hole the server would read as output.
function open_for_output(path::AbstractString)
    flags = Base.Filesystem.JL_O_RDWR | Base.Filesystem.JL_O_CREAT | Base.Filesystem.JL_O_TRUNC |
            Base.Filesystem.JL_O_APPEND | O_CLOEXEC
    fd = ccall(:open, Cint, (Cstring, Cint, Base.Cmode_t), path, flags, 0o600)
    fd < 0 && throw(SystemError("open $path", Libc.errno()))
    return fdio(path, fd, true)
end

# `Base` has no setting for an `IOStream`'s buffering; `ios_bufmode` is the exported C call that
# `IOStream` is built on, and its modes follow libuv's handle types (ios.h: `bm_none`, `bm_line`).
const IOS_UNBUFFERED = Cint(Base.UV_HANDLE_TYPE_MAX + 1)
const IOS_LINE_BUFFERED = IOS_UNBUFFERED + Cint(1)

function buffered_as_a_terminal(io::IOStream, mode::Cint)
    ccall(:ios_bufmode, Cint, (Ptr{Cvoid}, Cint), io.ios, mode) == 0 ||
        @warn "a call's output stays block-buffered: what a crashing call printed last may be lost" maxlog = 1
    return io
end

"""The files an executor's jobs write their output to: `output_path(dir, pid, stream)`."""
const OUTPUT_STREAMS = ("stdout", "stderr", "logs")

"""
    output_path(dir, pid, stream) -> String

Where executor `pid` writes a job's `stream` (one of `OUTPUT_STREAMS`), in the executor directory
`dir`.
"""
output_path(dir::AbstractString, pid::Integer, stream::AbstractString) = joinpath(dir, "$pid.$stream")

"""
    JobLogger(file = nothing)

The logger of a running job: it keeps each record (`@info`, `@warn`, …) for the job's `done`,
or, given the `file` of a streamed job, writes it there for the server at once; from any of the
job's threads, honouring `maxlog`.
"""
struct JobLogger <: Logging.AbstractLogger
    lock::ReentrantLock                # `@info` in `Threads.@threads` logs from several threads
    records::Vector{Any}
    file::Union{Nothing,IOStream}
    kept::Base.RefValue{Int}
    dropped::Base.RefValue{Int}
    counts::Dict{Any,Int}              # records per message id, for `maxlog`
end

JobLogger(file::Union{Nothing,IOStream} = nothing) = JobLogger(ReentrantLock(), Any[], file, Ref(0), Ref(0), Dict{Any,Int}())

"""
    keep!(logger, record)

Keep `record` for the job's `done`, or write it to the streamed job's log file.
"""
function keep!(logger::JobLogger, record::Dict{String,Any})
    logger.file === nothing ? push!(logger.records, record) : write_log_record(logger.file, record)
    return nothing
end

"""
    write_log_record(io, record)

Append `record` to a streamed job's log file as a frame: its length (4 bytes, little-endian),
then the record in msgpack, in one write, flushed, so that the server reads whole frames as they
come.
"""
function write_log_record(io::IOStream, record::Dict{String,Any})
    bytes = pack(record)
    write(io, vcat(reinterpret(UInt8, [htol(UInt32(length(bytes)))]), bytes))
    flush(io)
    return nothing
end

"""Bytes of a streamed job's log file read: past them, the log file was not written by the
executor's `JobLogger` alone (at most `LOG_RECORDS_CAP` frames of `LOG_RECORD_MAX_BYTES`)."""
const LOG_FILE_CAP = 16 * 1024 * 1024

"""Frames of a streamed job's log file read: the logger's `LOG_CAP` records and the one that
counts those dropped."""
const LOG_RECORDS_CAP = LOG_CAP + 1

"""Where reading a log file stops for good (`read_log_records`), and the record that says so."""
const LOG_END = typemax(Int)
const REST_DROPPED = "the rest of this call's log records were dropped"

"""
    read_log_records(io, n; from = 0, most = LOG_RECORDS_CAP) -> (records, upto)

The log records framed by `write_log_record` in `io` from byte `from` to `n` (the file's size),
from at most `most` frames, and the byte after the last whole frame read. User code can write
that file too, so the bytes are read at once (never past `LOG_FILE_CAP`) and parsed in memory; a
frame longer than `LOG_RECORD_MAX_BYTES`, a file past `LOG_FILE_CAP` or more than `most` frames
end the reading for good (`upto` is then `LOG_END`, and a last record says that the rest was
dropped), and a frame that is not a map is skipped.
"""
function read_log_records(io::IO, n::Integer; from::Integer = 0, most::Integer = LOG_RECORDS_CAP)
    records = Any[]
    n - from >= 4 || return records, Int(from)
    seek(io, from)
    bytes = read(io, max(min(n, LOG_FILE_CAP) - from, 0))
    at, frames = 1, 0
    while length(bytes) - at + 1 >= 4
        frames < most || return push!(records, dropped_record("$REST_DROPPED: more than $LOG_RECORDS_CAP")), LOG_END
        len = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        len <= LOG_RECORD_MAX_BYTES ||
            return push!(records, dropped_record("$REST_DROPPED: a frame the logger did not write")), LOG_END
        length(bytes) - at + 1 - 4 >= len || break     # the rest of the frame is yet to come
        frame = bytes[at + 4:at + 3 + len]
        at += 4 + len
        frames += 1
        record = try
            unpack(frame; max_values = 1024, max_containers = 64)
        catch e
            e isa ProtocolError || rethrow()
            nothing
        end
        record isa Dict{String,Any} && push!(records, record)
    end
    n > LOG_FILE_CAP && return push!(records, dropped_record("$REST_DROPPED: over $(format_bytes(LOG_FILE_CAP))")), LOG_END
    return records, from + at - 1
end

"""
    dropped_record(message) -> Dict{String,Any}

The bridge's own warning record that log records of the call were dropped (`message` says how
many, or why).
"""
dropped_record(message::String) = Dict{String,Any}("level" => Int(Logging.Warn.level), "message" => message,
                                                   "module" => "AwkwardBridge", "file" => "", "line" => 0)

"""Characters of one log record's text a job sends back, and of its module and file."""
const LOG_MESSAGE_CAP = 16 * 1024
const LOG_NAME_CAP = 1024

Logging.min_enabled_level(::JobLogger) = Logging.Info
Logging.shouldlog(::JobLogger, args...) = true
Logging.catch_exceptions(::JobLogger) = true

function Logging.handle_message(logger::JobLogger, level, message, _module, group, id, file, line;
                                maxlog = nothing, kwargs...)
    text = sprint(print, message)
    for (key, value) in kwargs
        shown = value isa Exception ? sprint(showerror, value) :
                value isa Tuple{Exception,Any} ? sprint(showerror, value[1]) :
                sprint(show, value; context = :limit => true)
        text *= "\n  $key = $shown"
    end
    length(text) > LOG_MESSAGE_CAP && (text = first(text, LOG_MESSAGE_CAP) * " […]")
    # `_file` and `_module` can be any value: cut, a record stays well within a log frame
    record = Dict{String,Any}("level" => Int(Logging.LogLevel(level).level), "message" => text,
                              "module" => first(string(_module), LOG_NAME_CAP),
                              "file" => first(string(something(file, "")), LOG_NAME_CAP),
                              "line" => something(tryparse(Int, string(line)), 0))
    lock(logger.lock) do
        if maxlog isa Integer
            seen = get(logger.counts, id, 0)
            seen >= maxlog && return
            logger.counts[id] = seen + 1
        end
        logger.kept[] < LOG_CAP || return (logger.dropped[] += 1)
        logger.kept[] += 1
        keep!(logger, record)
    end
    return nothing
end

"""
    capture_output(f, files; streamed = false) -> Dict{String,Any}

Run `f()` with stdout, stderr (Julia's and C's), `display` and the global logger caught, and
return what it printed and logged as the `done` fields `stdout`, `stderr` and `logs` (each only when there
is some). The streams and the logger are the executor's own again afterwards, whatever `f`
does, and the files are emptied, so that a crash before the next job shows nothing of this one.

A `streamed` job's stdout, stderr and log records are the server's to read (it sends them to
the client as they come, `stream_output` in docs/protocol.md): they stay in the files, flushed,
nothing is returned, and the server empties the files.
"""
function capture_output(f, files::OutputFiles; streamed::Bool = false)
    logger = JobLogger(streamed ? files.logs : nothing)
    old_stdout, old_stderr, old_logger = stdout, stderr, Logging.global_logger()
    # an interrupt must not land between a redirect and the `try` that undoes it
    disable_sigint() do
        Libc.flush_cstdio()
        redirect_stdout(files.stdout)
        redirect_stderr(files.stderr)
        Logging.global_logger(logger)
        pushdisplay(files.display)
    end
    try
        f()
    finally
        disable_sigint() do
            # each step on its own: user code may have closed a stream, and the rest must still run
            for step in (() -> flush(files.stdout), () -> flush(files.stderr), Libc.flush_cstdio,
                         () -> redirect_stdout(old_stdout), () -> redirect_stderr(old_stderr),
                         () -> Logging.global_logger(old_logger), () -> popdisplay(files.display))
                try
                    step()
                catch
                end
            end
        end
    end
    captured = Dict{String,Any}()
    if !streamed
        for (name, io) in (("stdout", files.stdout), ("stderr", files.stderr))
            text = written(io)
            isempty(text) || (captured[name] = text)
        end
    end
    if logger.dropped[] > 0
        try
            keep!(logger, dropped_record("$(logger.dropped[]) more log records of this call were dropped"))
        catch e
            # a log file that cannot be written to (its disk full) costs this record, not the executor
            e isa InterruptException && rethrow()
        end
    end
    isempty(logger.records) || (captured["logs"] = logger.records)
    return captured
end

# What the job wrote to `io`, then emptied. The size is the file's: C code and child processes
# write through the descriptor, past the stream's own idea of its position.
function written(io::IOStream)
    flush(io)
    n = stat(RawFD(fd(io))).size
    text = n == 0 ? "" : first(output_text(io, n))
    truncate(io, 0)
    seekstart(io)
    return text
end

"""
    output_text(io, n; from = 0, whole = true) -> (text, upto)

The output in `io` from byte `from` to `n` (the file's size), as UTF-8 text (bytes that are not,
from binary output or a cut character, show as �), and the byte it reaches. Output beyond
`OUTPUT_CAP` bytes is cut, and the `whole` output says so; output read while the job still
writes (not `whole`) leaves a character whose bytes have not all come for the next read.
"""
function output_text(io::IO, n::Integer; from::Integer = 0, whole::Bool = true)
    upto = max(min(n, OUTPUT_CAP), from)
    seek(io, from)
    bytes = read(io, upto - from)
    whole || resize!(bytes, complete_prefix_length(bytes))
    upto = from + length(bytes)
    text = String(bytes)
    isvalid(text) || (text = map(c -> isvalid(c) ? c : '\ufffd', text))
    whole && n > OUTPUT_CAP && (text *= "\n[awkward-bridge: $(n - OUTPUT_CAP) more bytes of this call's output were cut]\n")
    return text, upto
end

# The bytes of `bytes` up to a last UTF-8 character that is cut short (its lead byte asks for
# more continuation bytes than follow it); all of them when none is.
function complete_prefix_length(bytes::Vector{UInt8})
    n = length(bytes)
    for back in 1:min(3, n)
        b = bytes[n - back + 1]
        b & 0xc0 == 0x80 && continue          # a continuation byte: look further back
        wanted = b >= 0xf8 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1   # 0xf8 on: never a lead byte
        return back < wanted ? n - back : n
    end
    return n
end

"""
    take_output(dir, pid) -> Union{Nothing,Dict{String,Any}}

What the unfinished job of the exited executor `pid` printed before it died (Julia's crash
report included), from its output files in `dir`, as the `output` of a reply; the files are
removed. Only regular files are read (`open_regular_file`): the executor ran user code, which
could have put something else there. The server reads the files it holds open instead, when
it has them (server/supervisor.jl `output_of_exited`).
"""
function take_output(dir::AbstractString, pid::Integer)
    output = Dict{String,Any}()
    for stream in ("stdout", "stderr")
        text = try
            io = open_regular_file(output_path(dir, pid, stream))
            io === nothing ? "" : try first(output_text(io, filesize(io))) finally close(io) end
        catch e
            e isa InterruptException && rethrow()
            ""
        end
        isempty(text) || (output[stream] = text)
    end
    remove_output_files(dir, pid)
    return isempty(output) ? nothing : output
end

"""
    remove_output_files(dir, pid)

Remove the output files of the exited executor `pid`, and whatever user code put in their place.
"""
function remove_output_files(dir::AbstractString, pid::Integer)
    for stream in OUTPUT_STREAMS
        path = output_path(dir, pid, stream)
        try
            (islink(path) || (ispath(path) && !isdir(path))) && rm(path)   # a FIFO put there too
        catch e
            e isa InterruptException && rethrow()
        end
    end
end

"""
    open_regular_file(path; write = false) -> Union{Nothing,IOStream}

The regular file at `path`, for reading (and writing), or `nothing` for anything else. Opened
without following a link and without waiting on a FIFO, then checked, so that a file swapped in
after a check (by a process the executor left behind) can neither redirect nor stall the server.
"""
function open_regular_file(path::AbstractString; write::Bool = false)
    mode = write ? Base.Filesystem.JL_O_RDWR : Base.Filesystem.JL_O_RDONLY
    fd = ccall(:open, Cint, (Cstring, Cint), path, mode | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
    fd < 0 && return nothing
    isfile(stat(RawFD(fd))) && return fdio(fd, true)
    ccall(:close, Cint, (Cint,), fd)
    return nothing
end
