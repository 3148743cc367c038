"""
    AwkwardBridge

The Julia half of awkward-bridge: a long-running multithreaded server that Python clients reach
over ZeroMQ (docs/protocol.md), sharing Awkward Array buffers zero-copy through POSIX shared
memory under leases (docs/ownership.md), and the executor processes it starts to run each
client's code (docs/architecture.md). Start it with [`serve`](@ref) or `bin/serve.jl`.
"""
module AwkwardBridge

using Dates, FileWatching, Libdl, Random
import Logging

# The layers, each a folder, in order: each uses only the ones included before it
# (docs/architecture.md, "Layers"; julia_server/test/test_layers.jl checks it).

# base: the exceptions every layer raises, and the OS's numbers
include("base/errors.jl")
include("base/posix.jl")

# wire: msgpack, JSON, the references to buffers, and the envelopes (pure: no server state)
include("wire/msgpack.jl")
include("wire/json.jl")
include("wire/refs.jl")
include("wire/protocol.jl")

# ZeroMQ: the ccall layer and the Julian socket
include("zmq/libzmq.jl")
include("zmq/socket.jl")

# shared memory: segments, the books of a result arena, owner locks
include("shm/segment.jl")
include("shm/arena.jl")
include("shm/owner_lock.jl")

# forms and views: Awkward's forms, and the Julia views over their buffers
include("forms/form.jl")
include("forms/primitives.jl")
include("forms/numpy_form.jl")
include("forms/empty_form.jl")
include("forms/list_forms.jl")
include("forms/regular_form.jl")
include("forms/indexed_form.jl")
include("forms/option_forms.jl")
include("forms/record_form.jl")
include("forms/union_form.jl")
include("forms/parse_form.jl")
include("views/bridge_view.jl")
include("views/parameterized_vector.jl")
include("views/bool_vector.jl")
include("views/list_vector.jl")
include("views/string_vector.jl")
include("views/regular_vector.jl")
include("views/indexed_vector.jl")
include("views/option_vectors.jl")
include("views/wide_columns.jl")
include("views/record_vector.jl")
include("views/union_vector.jl")
include("views/select_rows.jl")
include("views/project_field.jl")
include("views/flatten.jl")
include("views/copy.jl")

# codec: validating buffers into views, and writing Julia values as buffers
include("codec/validate.jl")
include("codec/form_cache.jl")
include("codec/open_array.jl")
include("codec/plans.jl")
include("codec/plan_for.jl")
include("codec/place_array.jl")
include("codec/open_buffers.jl")

# executor: runs one client's code in a process of its own
include("executor/describe_error.jl")
include("executor/mappings.jl")
include("executor/link.jl")
include("executor/job_output.jl")
include("executor/executor_state.jl")
include("executor/scope.jl")
include("executor/buffers.jl")
include("executor/shared_results.jl")
include("executor/values.jl")
include("executor/functions.jl")
include("executor/run_job.jl")
include("executor/warm_up.jl")
include("executor/main.jl")

# server: clients, leases, result arenas, and the executors it supervises
include("server/log.jl")
include("server/clients.jl")
include("server/state.jl")
include("server/workers.jl")
include("server/address.jl")
include("server/keys.jl")
include("server/authenticator.jl")
include("server/jobs.jl")
include("server/executors.jl")
include("server/server.jl")
include("server/supervisor.jl")
include("server/loop.jl")
include("server/main.jl")

export serve
# What user code evaluated on the server may name: the views it receives and their helpers.
export open_array, place_array, is_placeable, BufferRef, ArrayRef, BridgeView, ListVector,
       RegularVector, StringVector, RecordVector, Record, BoolVector, ParameterizedVector,
       IndexedOptionVector, ByteMaskedVector, BitMaskedVector, UnmaskedVector, IndexedVector,
       UnionVector, Datetime64, parameters, column, project_field, flatten,
       shared_array, shared_lists, shared_records

__init__() = init_shm_symbols()

end
