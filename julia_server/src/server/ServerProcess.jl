"""
    AwkwardBridge.ServerProcess

The server: sockets, clients, leases, result arenas, and the executors it starts and
supervises. It runs no user code and maps no client memory.
"""
module ServerProcess

using Dates, Random
import Logging
using ..Basics, ..Wire, ..ZMQ, ..SharedMemory, ..Forms, ..Views, ..Codec, ..ExecutorProcess
import ..SharedMemory: add_chunk!, end_lingering!
import ..ExecutorProcess: forget!, relend!

include("log.jl")
include("clients.jl")
include("state.jl")
include("workers.jl")
include("address.jl")
include("keys.jl")
include("authenticator.jl")
include("streamed_output.jl")
include("jobs.jl")
include("executors.jl")
include("server.jl")
include("supervisor.jl")
include("loop.jl")
include("main.jl")

export Client, Job, LEASE_MARGIN, ServerState, add_chunk!, check_token, close!, drop_handles!,
       commit_sparse!, end_lingering!, expire!, forget!, known_client, lease_block!, lease_sparse_block!,
       main, parse_arguments, pid,
       prepare!, register!, release_results!, relend!, result_leases, serve, stats

end
