# Runs the awkward-bridge server:
#   julia --startup-file=no --threads=2 --project=julia_server julia_server/bin/serve.jl --address ADDRESS ...
# (--threads=1,1 from Julia 1.9 on: docs/architecture.md, "Julia versions")
using AwkwardBridge
AwkwardBridge.main(ARGS)
