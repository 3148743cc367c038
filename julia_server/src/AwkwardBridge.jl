"""
    AwkwardBridge

The Julia half of awkward-bridge: a long-running multithreaded server that Python clients reach
over ZeroMQ (docs/protocol.md), sharing Awkward Array buffers zero-copy through POSIX shared
memory under leases (docs/ownership.md), and the executor processes it starts to run each
client's code (docs/architecture.md). Start it with [`serve`](@ref) or `bin/serve.jl`.
"""
module AwkwardBridge

# The layers, each a folder and a submodule, in order: each uses only the ones before it
# (docs/architecture.md, "Layers"), as PythonCall.jl does.
include("base/Basics.jl")              # the exceptions every layer raises, and the OS's numbers
include("wire/Wire.jl")                # msgpack, JSON, buffer references, envelopes (pure)
include("zmq/ZMQ.jl")                  # libzmq: the ccall layer and the Julian socket
include("shm/SharedMemory.jl")         # segments, the books of a result arena, owner locks
include("forms/Forms.jl")              # Awkward's forms
include("views/Views.jl")              # the Julia views over their buffers
include("codec/Codec.jl")              # buffers validated into views, Julia values written as buffers
include("executor/ExecutorProcess.jl") # runs one client's code in a process of its own
include("server/ServerProcess.jl")     # clients, leases, result arenas, and the executors it supervises

using .Basics, .Wire, .ZMQ, .SharedMemory, .Forms, .Views, .Codec, .ExecutorProcess, .ServerProcess

export serve
# What user code evaluated on the server may name: the views it receives and their helpers.
export open_array, place_array, is_placeable, BufferRef, ArrayRef, BridgeView, ListVector,
       RegularVector, StringVector, RecordVector, Record, BoolVector, ParameterizedVector,
       IndexedOptionVector, ByteMaskedVector, BitMaskedVector, UnmaskedVector, IndexedVector,
       UnionVector, Datetime64, parameters, column, project_field, flatten,
       shared_array, shared_lists, shared_records, growing_array, growing_lists, growing_records,
       end_list!, GrowingVector, GrowingRecords, ListBuilder


end
