# What a job's user code prints and logs goes back to its client with the job's `done`
# (docs/protocol.md, "Output"), so that in a notebook it appears in the cell that made the call,
# and in a farm each client sees its own. The executor's stdout and stderr point, during a job
# only, at files of its own in the server's private executor directory: a pipe would need a
# reader running beside user code, and C code that filled it would block. Output of a job that
# crashes the executor stays in the stderr file, where the server reads the crash report.

"""Bytes of each stream a job sends back; beyond, the output is cut, saying so."""
const OUTPUT_CAP = 1 << 20

"""Log records a job sends back; later ones are counted, not sent."""
const LOG_CAP = 1000

"""
    OutputFiles(dir)

The files `dir/{pid}.stdout` and `dir/{pid}.stderr` that this executor's jobs write to.
"""
struct OutputFiles
    stdout::IOStream
    stderr::IOStream
end

OutputFiles(dir::AbstractString) = OutputFiles(open(output_path(dir, getpid(), "stdout"), "w+"),
                                               open(output_path(dir, getpid(), "stderr"), "w+"))

"""
    output_path(dir, pid, stream) -> String

Where executor `pid` writes a job's `stream` (`"stdout"`, `"stderr"`), in the executor directory
`dir`.
"""
output_path(dir::AbstractString, pid::Integer, stream::AbstractString) = joinpath(dir, "$pid.$stream")

"""
    JobLogger()

The logger of a running job: it keeps each record (`@info`, `@warn`, …) for the job's `done`.
"""
struct JobLogger <: Logging.AbstractLogger
    records::Vector{Any}
    dropped::Base.RefValue{Int}
end

JobLogger() = JobLogger(Any[], Ref(0))

Logging.min_enabled_level(::JobLogger) = Logging.Info
Logging.shouldlog(::JobLogger, args...) = true
Logging.catch_exceptions(::JobLogger) = true

function Logging.handle_message(logger::JobLogger, level, message, _module, group, id, file, line; kwargs...)
    if length(logger.records) >= LOG_CAP
        logger.dropped[] += 1
        return nothing
    end
    text = sprint(print, message)
    for (key, value) in kwargs
        key === :maxlog && continue
        shown = value isa Exception ? sprint(showerror, value) :
                value isa Tuple{Exception,Any} ? sprint(showerror, value[1]) :
                sprint(show, value; context = :limit => true)
        text *= "\n  $key = $shown"
    end
    push!(logger.records, Dict{String,Any}("level" => Int(Logging.LogLevel(level).level), "message" => text,
                                           "module" => string(_module), "file" => string(something(file, "")),
                                           "line" => something(tryparse(Int, string(line)), 0)))
    return nothing
end

"""
    capture_output(f, files) -> Dict{String,Any}

Run `f()` with stdout, stderr (Julia's and C's) and the global logger caught, and return what
it printed and logged as the `done` fields `stdout`, `stderr` and `logs` (each only when there
is some).
"""
function capture_output(f, files::OutputFiles)
    foreach(rewind!, (files.stdout, files.stderr))
    logger = JobLogger()
    old_stdout, old_stderr, old_logger = stdout, stderr, Logging.global_logger()
    Libc.flush_cstdio()
    redirect_stdout(files.stdout)
    redirect_stderr(files.stderr)
    Logging.global_logger(logger)
    try
        f()
    finally
        disable_sigint() do   # an interrupt must not leave the streams pointing at the files
            flush(files.stdout)   # Julia's buffered output first: it is most of it
            flush(files.stderr)
            Libc.flush_cstdio()
            redirect_stdout(old_stdout)
            redirect_stderr(old_stderr)
            Logging.global_logger(old_logger)
        end
    end
    captured = Dict{String,Any}()
    for (name, io) in (("stdout", files.stdout), ("stderr", files.stderr))
        text = written(io)
        isempty(text) || (captured[name] = text)
    end
    logger.dropped[] > 0 && push!(logger.records, Dict{String,Any}(
        "level" => Int(Logging.Warn.level), "message" => "$(logger.dropped[]) more log records of this call were dropped",
        "module" => "AwkwardBridge", "file" => "", "line" => 0))
    isempty(logger.records) || (captured["logs"] = logger.records)
    return captured
end

function rewind!(io::IOStream)
    truncate(io, 0)
    seekstart(io)
    return nothing
end

# What the job wrote to `io`.
function written(io::IOStream)
    flush(io)
    n = position(io)
    n == 0 && return ""
    seekstart(io)
    return output_text(io, n)
end

"""
    output_text(io, n) -> String

The `n` bytes of output in `io`, from its position, as UTF-8 text (bytes that are not, from
binary output or a cut character, show as �), cut at `OUTPUT_CAP` bytes, saying so.
"""
function output_text(io::IO, n::Integer)
    text = String(read(io, min(n, OUTPUT_CAP)))
    isvalid(text) || (text = map(c -> isvalid(c) ? c : '\ufffd', text))
    n > OUTPUT_CAP && (text *= "\n[awkward-bridge: $(n - OUTPUT_CAP) more bytes of this call's output were cut]\n")
    return text
end

"""
    take_output(dir, pid) -> Union{Nothing,Dict{String,Any}}

What the last job of the exited executor `pid` printed, from its output files in `dir` (for a
job it did not finish: up to its crash, with the crash report), as the `output` of a reply;
the files are removed.
"""
function take_output(dir::AbstractString, pid::Integer)
    output = Dict{String,Any}()
    for stream in ("stdout", "stderr")
        path = output_path(dir, pid, stream)
        text = try
            open(io -> output_text(io, filesize(path)), path)
        catch e
            e isa SystemError || e isa Base.IOError || rethrow()
            ""   # never made: the executor died before it started serving
        end
        rm(path; force = true)
        isempty(text) || (output[stream] = text)
    end
    return isempty(output) ? nothing : output
end
