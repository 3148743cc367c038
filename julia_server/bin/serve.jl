# Runs the awkward-bridge server:
#   julia --startup-file=no --threads=N --project=julia_server julia_server/bin/serve.jl --address ADDRESS ...
using AwkwardBridge
AwkwardBridge.main(ARGS)
