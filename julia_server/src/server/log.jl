# The server's log: one timestamped line per event on stderr. Only the socket loop's thread
# writes it (Julia 1.5's stream I/O is not safe from other threads); workers hand their lines to
# the loop with their replies.

"""
    log_event(message)

Write `message` to stderr with a timestamp.
"""
function log_event(message::AbstractString)
    stamp = Dates.format(Dates.now(), "yyyy-mm-dd HH:MM:SS.sss")
    println(stderr, stamp, " awkward-bridge[", getpid(), "] ", message)
    flush(stderr)   # a redirected stderr is buffered, and a log must survive a crash
    return nothing
end

"""
    first_line(text; limit=200) -> String

The first line of `text`, cut to `limit` characters, for one-line log entries.
"""
function first_line(text::AbstractString; limit::Int = 200)
    line = first(split(text, '\n'; limit = 2))
    return length(line) > limit ? first(line, limit) * "…" : String(line)
end

"""
    error_summary(type, message, values) -> String

An error for the log: its type, and, with `values` (`serve --log-values`), the first line of its
message. Messages carry users' values (`KeyError: key "…"`), which the log keeps out by default.
"""
function error_summary(type::AbstractString, message::AbstractString, values::Bool)
    values || return type
    line = first_line(message)
    return startswith(line, type) ? line : "$type: $line"
end

"""
    short_id(id) -> String

The first 8 characters of a client id, as the log shows it: enough to tell clients apart, too
few to act as one (docs/security.md).
"""
short_id(id) = id isa AbstractString ? escape_string(first(id, 8)) : "?"   # a refused id may hold a newline
