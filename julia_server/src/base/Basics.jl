"""
    AwkwardBridge.Basics

The exceptions every layer raises, by the names the wire gives them, and the numbers of
the OS (errno, signals).
"""
module Basics


include("errors.jl")
include("posix.jl")

export AuthenticationFailed, CallInterrupted, CallTimedOut, EEXIST, EFBIG, EINTR, ENOENT, ENOSPC,
       ESRCH, ExecutorDied, FunctionNotFound, InvalidArray, O_CLOEXEC,
       O_NOFOLLOW, O_NONBLOCK, ProtocolError,
       ResultTypeError, SIGINT, SIGKILL, SIGNAL_NAMES, SharedMemoryFull, ShuttingDown,
       UnknownClient

end
