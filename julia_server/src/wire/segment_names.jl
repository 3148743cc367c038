# The names of shared-memory segments (docs/protocol.md section 5). Every process that names a
# segment on the wire, or opens one a message named, follows this one grammar.

# The pid in decimal without a leading zero, at most 10 digits, and `\z`, not `$`, which would
# also match before a final newline.
const SEGMENT_NAME = r"^akb-([1-9][0-9]{0,9})-[0-9a-f]{32}\z"

"""
    segment_name(pid = getpid()) -> String

A fresh segment name, `akb-{pid}-{32 random hex}`, drawn from the operating system's random
source, not the task's generator, which user code may have seeded.
"""
segment_name(pid::Integer = getpid()) =
    "akb-$(pid)-$(string(rand(RandomDevice(), UInt128), base = 16, pad = 32))"

"""
    is_segment_name(name) -> Bool

Whether `name` has the form `akb-{pid}-{32 lowercase hex}`; no other name is ever opened.
"""
is_segment_name(name::AbstractString) = segment_pid(name) !== nothing

"""
    segment_pid(name) -> Union{Int,Nothing}

The pid of the process that created segment `name`, or `nothing` for a malformed name.
"""
function segment_pid(name::AbstractString)
    m = match(SEGMENT_NAME, name)
    m === nothing && return nothing
    pid = parse(Int, m.captures[1])
    return pid <= typemax(Int32) ? pid : nothing    # a pid_t
end
