# A job is one `eval`, `call` or `send` from a client, from its arrival to its reply. The server
# checks it on arrival (what the client may name, its quota) and turns it into the `run` message
# its client's executor gets: arrays keep their buffer locations, with the result block named
# when an array is an earlier result sent back, and handles by id, their arrays going once, only to
# an executor that has not opened them (a fresh one, after a restart): a wide array's form and
# buffer list would otherwise cost every call milliseconds.

"""Operations that run in the client's executor."""
const JOB_OPS = (:eval, :call, :send)

"""
    Job(number, routing, request, client)

A job: its server-wide `number` (`stats`, `cancel`), the ROUTER routing id its reply goes to,
its request and client, the `run` message for the executor, the shared memory its arguments
hold, the result leases made for it, when it arrived and started (0 while queued), its timeout
timer, and, once something asked it to stop, the error it then gets; `named_handles` are the
handles its arguments name, by id, whose arrays `dispatch!` sends to an executor that has not
opened them (`handle_arrays`); `streamed`, for a request that asked for `stream_output`, the
output sent so far.
"""
mutable struct Job
    number::Int
    routing::Vector{UInt8}
    request::Request
    client::Client
    run::Dict{String,Any}
    nbytes::Int
    handle::Union{Nothing,Handle}     # `send`: the handle it makes
    leases::Vector{Int}
    arrived::UInt64
    started::UInt64
    timer::Union{Nothing,Timer}
    stopping::Union{Nothing,Exception}
    stopped::Bool                     # its executor said the interrupted code stopped
    growing::Int                      # sparse chunks leased to it (`growing`)
    named_handles::Vector{Pair{Int,Handle}}
    arrays::Int                       # array and handle values among its arguments
    making_chunk::Bool                # a chunk is being made for its `alloc`
    request_bytes::Int                # its request's frame, while it waits in the queue
    streamed::Union{Nothing,StreamedOutput}
end

Job(number::Int, routing::Vector{UInt8}, request::Request, client::Client, request_bytes::Int = 0) =
    Job(number, routing, request, client, Dict{String,Any}("op" => "run", "job" => number), 0,
        nothing, Int[], time_ns(), 0, nothing, nothing, false, 0, Pair{Int,Handle}[], 0, false,
        request_bytes, nothing)

"""
    describe_job(job) -> String

`call "fn"`, `eval` or `send`, for the log and `stats`.
"""
function describe_job(job::Job)
    job.request.op === :call || return string(job.request.op)
    return get(job.run, "fn", nothing) isa String ? "call $(repr(callee_label(job)))" : "call $(callee_label(job))"
end

"""
    callee_label(job) -> String

What a call calls, for people: the name, or `function 123` for a function value.
"""
function callee_label(job::Job)
    fn = get(job.run, "fn", nothing)
    return fn isa String ? fn : fn isa Dict{String,Any} ? "function $(fn["id"])" : "?"
end

"""
    prepare!(job, state)

Check the job's request and fill in its `run` message; `ProtocolError`, `InvalidArray` (a
segment the client may not name, a handle it does not have) or `SharedMemoryFull` (its quota).
"""
function prepare!(job::Job, state::ServerState, running_bytes::Int)
    fields, run, client = job.request.fields, job.run, job.client
    op = job.request.op
    if op === :call
        run["kind"] = "call"
        fn = field(fields, "fn", "call")
        run["fn"] = fn isa String ? fn : forward_function(fn)
        run["args"] = Any[forward_value(arg, job, state) for arg in list_field(fields, "args", "call")]
        if haskey(fields, "kwargs")
            kwargs = map_field(fields, "kwargs", "call")
            get(kwargs, "\$", nothing) === nothing ||
                throw(ProtocolError("call: field \"kwargs\" must be a plain map of names to values"))
            run["kwargs"] = Dict{String,Any}(k => forward_value(v, job, state) for (k, v) in kwargs)
        end
    elseif op === :eval
        run["kind"] = "eval"
        run["code"] = str_field(fields, "code", "eval")
        run["filename"] = str_field(fields, "filename", "eval"; default = "eval")
        run["show"] = bool_field(fields, "show", "eval"; default = false)
    else
        array = map_field(fields, "array", "send")
        get(array, "\$", nothing) == "array" ||
            throw(ProtocolError("send: field \"array\" must be an array value {\"\$\": \"array\", …}"))
        run["kind"] = "send"
        run["array"] = forward_array(array, job, state)
        ref = array_ref(array)
        # a handle holds no lease on a result block, which is reused once its result is released
        any(b -> haskey(state.owned, b.segment), values(ref.buffers)) &&
            throw(InvalidArray("send: the array lies in this client's result arena; send a copy in its own " *
                               "memory (an earlier result passed to call goes by reference already)"))
        run["handle"] = new_id!(client)
        job.handle = Handle(ref, job.nbytes)
    end
    bool_field(fields, "stream_output", String(op); default = false) && (job.streamed = StreamedOutput())
    check_quota(state, client, job.nbytes, op === :send ? "this send" : "this $(op)'s arguments", running_bytes)
    return nothing
end

"""
    timeout_of(job) -> Float64

The job's `timeout` field in seconds (0: none); a `ProtocolError` unless it is positive and at
most `MAX_TIMEOUT`.
"""
function timeout_of(job::Job)
    haskey(job.request.fields, "timeout") || return 0.0
    timeout = float_field(job.request.fields, "timeout", string(job.request.op))
    0 < timeout <= MAX_TIMEOUT ||
        throw(ProtocolError("$(job.request.op): timeout must be positive and at most $MAX_TIMEOUT s, not $timeout"))
    return timeout
end

"""The longest `timeout` (a year, in seconds): a `Timer` cannot count beyond a few hundred million years."""
const MAX_TIMEOUT = 365.0 * 24 * 3600

# An argument for the executor: values as they came, arrays checked, handles noted in the job.
function forward_value(x, job::Job, state::ServerState)
    (x === nothing || x isa Union{Bool,Int64,UInt64,Float32,Float64,String}) && return x
    x isa Vector{Any} && return Any[forward_value(item, job, state) for item in x]
    x isa Dict{String,Any} || throw(ProtocolError("a $(wire_type(x)) is not a value; arrays travel in shared memory"))
    tag = get(x, "\$", nothing)
    tag === nothing && return Dict{String,Any}(k => forward_value(v, job, state) for (k, v) in x)
    if tag == "tuple"
        items = Any[forward_value(item, job, state) for item in list_field(x, "items", "tuple value")]
        return Dict{String,Any}("\$" => "tuple", "items" => items)
    end
    tag == "handle" && return forward_handle(int_field(x, "id", "handle value"), job)
    tag == "array" && return forward_array(x, job, state)
    tag == "function" && return forward_function(x)
    throw(ProtocolError("unknown tagged value \"\$\": $(repr(tag))"))
end

# A function the client holds (its executor checks that it still has it): the id alone.
function forward_function(x)
    x isa Dict{String,Any} && get(x, "\$", nothing) == "function" ||
        throw(ProtocolError("call: field \"fn\" must be a name (str) or a function value {\"\$\": \"function\", \"id\": …}, not $(wire_type(x))"))
    return Dict{String,Any}("\$" => "function", "id" => int_field(x, "id", "function value"))
end

function forward_handle(id::Int, job::Job)
    h = get(job.client.handles, id, nothing)
    h === nothing &&
        throw(InvalidArray("handle $id does not exist (dropped, expired, or not sent by this client)"))
    push!(job.named_handles, id => h)
    job.arrays += 1
    return Dict{String,Any}("\$" => "handle", "id" => id)
end

"""
    handle_arrays(job, held) -> Vector{Any}

The arrays of the job's handles that the executor running it has not opened (`held` lists those
it has), each once, as `[id, array]` pairs for the `run` message's `handle_arrays`: a call may
name a handle many times, and its array can be megabytes of form. `InvalidArray` when they would
not fit in a message the executor takes.
"""
function handle_arrays(job::Job, held::Set{Int})
    pairs, sent, nbytes = Any[], Set{Int}(), 0
    for (id, h) in job.named_handles
        (id in held || id in sent) && continue
        push!(sent, id)
        # the packed array: its form, and a segment name and two numbers per buffer
        nbytes += sizeof(h.ref.form) + 128 * length(h.ref.buffers)
        nbytes <= MAX_HANDLE_ARRAYS_BYTES ||
            throw(InvalidArray("this $(job.request.op) names handles whose arrays (forms and buffer lists) come to " *
                               "more than $(format_bytes(MAX_HANDLE_ARRAYS_BYTES)) for an executor to open at once"))
        push!(pairs, Any[id, wire_array(h.ref, nothing)])
    end
    return pairs
end

"""What the arrays of a job's handles may add to its `run` message: the rest of the executor's
message limit is the request's."""
const MAX_HANDLE_ARRAYS_BYTES = MAX_EXECUTOR_MESSAGE_BYTES - MSGPACK_MAX_BYTES

# An array argument, after checking the client may name every segment it uses: its own (by pid)
# or a chunk of its result arena. One that lies in a single result block is marked with it.
function forward_array(x::Dict{String,Any}, job::Job, state::ServerState)
    ref = array_ref(x)
    client = job.client
    job.arrays += 1
    for (key, b) in ref.buffers
        try
            may_name(state, client, b.segment)
        catch e
            e isa InvalidArray && throw(InvalidArray("buffer $key: $(e.msg)"))
            rethrow()
        end
        job.nbytes += b.nbytes
    end
    forwarded = wire_array(ref, nothing)
    block = result_block(client, ref)
    block === nothing || (forwarded["block"] = Any[block...])
    return forwarded
end

"""
    may_name(state, client, name)

`InvalidArray` unless `name` is the client's own segment (its pid) or a chunk of its result
arena. Another client's result chunk is refused even when the two share a pid with the server.
"""
function may_name(state::ServerState, client::Client, name::String)
    if haskey(state.owned, name)
        has_chunk(client.arena, name) && return nothing
        throw(InvalidArray("segment $name belongs to the server and holds no results of this client"))
    end
    is_segment_name(name) ||
        throw(InvalidArray("segment name $(repr(name)) is not of the form akb-{pid}-{32 hex digits}"))
    segment_pid(name) == client.pid ||
        throw(InvalidArray("segment $name is not owned by this client (pid $(client.pid)) nor one of its result chunks"))
    name in client.own_segments && return nothing
    # The executor maps it with the server's rights: only a segment of the server's own user may
    # be named, whatever pid a client claims. Names are never reused, so once is enough.
    owner = segment_owner(name)
    owner === nothing && throw(InvalidArray("shared-memory segment $name does not exist"))
    owner == ccall(:getuid, UInt32, ()) ||
        throw(InvalidArray("segment $name belongs to another user (uid $owner); the server maps its own user's segments only"))
    push!(client.own_segments, name)
    return nothing
end

# The uid that owns segment `name` in /dev/shm; `nothing` when there is no such segment.
function segment_owner(name::String)
    path = "/dev/shm/$name"
    ispath(path) || return nothing
    return UInt32(stat(path).uid)
end

"""
    result_block(client, ref) -> Union{Nothing,Tuple{String,Int}}

The block of the client's result arena that holds every buffer of `ref` (an earlier result sent
back): its chunk and offset; `nothing` when there is none.
"""
function result_block(client::Client, ref::ArrayRef)
    span = byte_span(ref)
    span === nothing && return nothing
    has_chunk(client.arena, span[1]) || return nothing
    offset = block_holding(client.arena, span...)
    return offset === nothing ? nothing : (span[1], offset)
end

# The one segment all of `ref`'s buffers lie in, and the bytes they span; `nothing` when they
# lie in several (or there are none).
function byte_span(ref::ArrayRef)
    isempty(ref.buffers) && return nothing
    name = first(values(ref.buffers)).segment
    all(b -> b.segment == name, values(ref.buffers)) || return nothing
    lo = minimum(b.offset for b in values(ref.buffers))
    hi = maximum(b.offset + b.nbytes for b in values(ref.buffers))
    return name, lo:max(hi, lo + 1)-1
end

# A result lease on block (chunk, offset) of the client's arena, made for the job: the job's end
# ends it unless the reply names it.
function lease_for_job!(job::Job, chunk::String, offset::Int)
    lease = add_result!(job.client, chunk, offset)
    push!(job.leases, lease)
    return lease
end

"""
    relend!(state, job, ref) -> Dict{String,Any}

The answer to an executor's `relend` for an argument its call returns unchanged: a new lease
when all of `ref`'s buffers lie in one block of the client's result arena (the result goes back
by reference, not copied), `by_reference` when they all lie in the client's own segments (the
client answers with the array it passed), else neither (the executor copies it).
"""
function relend!(state::ServerState, job::Job, ref::ArrayRef)
    client = job.client
    check_open(state, client)
    span = byte_span(ref)
    if span !== nothing && has_chunk(client.arena, span[1])
        offset = share_block!(client.arena, span...)
        if offset !== nothing
            return Dict{String,Any}("lease" => lease_for_job!(job, span[1], offset))
        end
    end
    own = !isempty(ref.buffers) && all(b -> !has_chunk(client.arena, b.segment) && segment_pid(b.segment) == client.pid,
                                       values(ref.buffers))
    return Dict{String,Any}("by_reference" => own)
end

"""
    lease_block!(state, job, nbytes) -> Union{Dict{String,Any},Int}

The answer to an executor's `alloc`: a block of the client's result arena leased to the client,
or, when no chunk has room, the size of the chunk to create (`add_chunk!`, then ask again).
"""
function lease_block!(state::ServerState, job::Job, nbytes::Int, running_bytes::Int)
    client = job.client
    check_open(state, client)
    nbytes > 0 || throw(ProtocolError("alloc: nbytes must be positive, not $nbytes"))
    # more than /dev/shm holds can never be had (and rounding it up must not overflow)
    nbytes <= last(shm_space()) || throw(shared_memory_full(nbytes))
    size = block_size(nbytes)
    check_quota(state, client, size, "this result", running_bytes)
    client.last_result_bytes = size
    block = take_block!(client.arena, size)
    block === nothing && return chunk_size!(client.arena, size)
    chunk, offset = block
    lease = lease_for_job!(job, chunk, offset)
    # a chunk made for this one result is written whole: its pages are best mapped in one go
    return Dict{String,Any}("segment" => chunk, "offset" => offset, "lease" => lease,
                            "populate" => offset == 0 && state.owned[chunk] == size)
end

"""
    lease_sparse_block!(state, job, buffers) -> Dict{String,Any}

The answer to an executor's `growing` for a result that grows (`growing_lists`, …): a sparse
chunk of the client's arena with room for `buffers` buffers, each `span` bytes apart, leased to
the client whole. It is a freed one of the same shape when one lingers and the client has no
quota (`reused`), else a new one that holds no memory until the executor commits some
(`commit_sparse!`). `span` is what one buffer may reach (`sparse_span`); `quota` says whether
the executor must ask before each growth, or only says what the result holds once returned.
"""
function lease_sparse_block!(state::ServerState, job::Job, buffers::Int)
    client = job.client
    check_open(state, client)
    1 <= buffers <= MAX_GROWING_BUFFERS ||
        throw(ProtocolError("growing: buffers must be 1 to $MAX_GROWING_BUFFERS, not $buffers"))
    # the executor checks this too, but its client's code can ask the server directly
    job.growing < MAX_GROWING_PER_CALL ||
        throw(ProtocolError("growing: a call grows at most $MAX_GROWING_PER_CALL results"))
    job.growing += 1
    quota = state.client_shm_quota
    span = sparse_span(buffers, quota > 0 ? min(quota, last(shm_space())) : last(shm_space()))
    # With a quota, every page a result holds is counted, and a reused chunk would bring all the
    # pages its last result kept: a client with a quota always gets a new chunk.
    reused = quota > 0 ? nothing : take_sparse_chunk!(client.arena, span * buffers)
    if reused !== nothing
        lease = lease_for_job!(job, reused, 0)
        return Dict{String,Any}("segment" => reused, "lease" => lease, "span" => span, "quota" => false,
                                "reused" => true)
    end
    name = try
        sparse_segment(span * buffers)
    catch e
        e isa SystemError || rethrow()
        throw(SharedMemoryFull("cannot make a growing result's chunk: $(sprint(showerror, e))"))
    end
    state.owned[name] = span * buffers
    add_sparse_chunk!(client.arena, name, span * buffers)
    lease = lease_for_job!(job, name, 0)
    return Dict{String,Any}("segment" => name, "lease" => lease, "span" => span, "quota" => quota > 0)
end

"""
    commit_sparse!(state, job, lease, nbytes, running_bytes) -> Dict{String,Any}

The answer to an executor's `commit`: the sparse block of the job's lease `lease` now holds
`nbytes` bytes in all, counted against the client's quota (`SharedMemoryFull` past it). The
executor reserves the pages itself once this answers.
"""
function commit_sparse!(state::ServerState, job::Job, lease::Int, nbytes::Int, running_bytes::Int)
    client = job.client
    check_open(state, client)
    block = lease in job.leases ? get(client.results, lease, nothing) : nothing
    chunk = block === nothing ? nothing : findfirst(c -> c.name == block[1] && c.sparse, client.arena.chunks)
    chunk === nothing && throw(ProtocolError("commit: lease $lease is not a growing result of job $(job.number)"))
    held = client.arena.used[block]
    0 <= nbytes <= held.span || throw(ProtocolError("commit: nbytes must be 0 to $(held.span), not $nbytes"))
    nbytes > held.size && check_quota(state, client, nbytes - held.size, "this growing result", running_bytes)
    set_committed!(client.arena, block[1], nbytes)
    return Dict{String,Any}()
end

"""
    result_leases(value) -> Vector{Int}

The leases an executor's result names (its arrays' `lease` keys, nested values included).
"""
function result_leases(value, found::Vector{Int} = Int[])
    if value isa Vector{Any}
        foreach(item -> result_leases(item, found), value)
    elseif value isa Dict{String,Any}
        if get(value, "\$", nothing) == "array"
            lease = get(value, "lease", nothing)
            lease isa Int64 && push!(found, lease)
        else
            foreach(item -> result_leases(item, found), values(value))
        end
    end
    return found
end

"""
    offer_block!(state, job, running_bytes)

Lease a block of the client's result arena to an `eval` or `call` before it runs, as large as
the block its last result asked for, and name it in the job's `run` message (`block`): an
executor whose result fits it writes it there without an `alloc` round trip. Only room in the
client's chunks is offered, within its quota, and never a new chunk; the job's end ends the
lease when the result does not use the block (`job_done!`).
"""
function offer_block!(state::ServerState, job::Job, running_bytes::Int)
    client, size = job.client, job.client.last_result_bytes
    (size > 0 && job.request.op !== :send && !state.closing && is_registered(state, client)) || return nothing
    within_quota(state, client, size, running_bytes) || return nothing
    block = take_block!(client.arena, size)
    block === nothing && return nothing
    chunk, offset = block
    lease = lease_for_job!(job, chunk, offset)
    job.run["block"] = Dict{String,Any}("segment" => chunk, "offset" => offset, "nbytes" => size, "lease" => lease)
    return nothing
end

"""
    decline_offer!(state, job, lease)

The executor will not use the block offered with its job (its result does not fit): end that
lease now, before the `alloc` that follows counts the client's quota. Only the offered lease can
be declined; any other is a `ProtocolError`.
"""
function decline_offer!(state::ServerState, job::Job, lease::Int)
    offered = get(job.run, "block", nothing)
    (offered !== nothing && offered["lease"] == lease && lease in job.leases) ||
        throw(ProtocolError("alloc: lease $lease is not the block offered with job $(job.number)"))
    filter!(!=(lease), job.leases)
    release_results!(state, job.client, [lease])
    return nothing
end

"""
    settle_offer!(job, named)

At a job's end, with the leases its result names: a block offered with the job (`offer_block!`)
that the result left unused and that no `alloc` of the job replaced means the client's results
changed; offer none until a result asks for a block again, so that a client whose calls return
no arrays does not keep a block, and with it a chunk, in use.
"""
function settle_offer!(job::Job, named::Vector{Int})
    offered = get(job.run, "block", nothing)
    offered === nothing && return nothing
    client = job.client
    !(offered["lease"] in named) && client.last_result_bytes == offered["nbytes"] && (client.last_result_bytes = 0)
    return nothing
end
