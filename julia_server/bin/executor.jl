# Runs one awkward-bridge executor; the server starts it (julia_server/src/server/executors.jl).
using AwkwardBridge
AwkwardBridge.executor_main(ARGS)
