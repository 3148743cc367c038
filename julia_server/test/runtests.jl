# The Julia package's test suite: every test/test_*.jl file, in sorted order.
#   julia --startup-file=no --threads=2 --project=julia_server julia_server/test/runtests.jl

using Test, Libdl, Random
using AwkwardBridge

include("zmq_client.jl")

@testset "AwkwardBridge" begin
    for file in sort(filter(f -> startswith(f, "test_") && endswith(f, ".jl"), readdir(@__DIR__)))
        @testset "$file" begin
            include(joinpath(@__DIR__, file))
        end
    end
end
