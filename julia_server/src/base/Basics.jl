"""
    AwkwardBridge.Basics

The exceptions every layer raises, by the names the wire gives them, and the numbers of
the OS (errno, signals).
"""
module Basics


include("errors.jl")
include("posix.jl")

export AuthenticationFailed, CallInterrupted, CallTimedOut, EACCES, EEXIST, EFBIG, EINTR, ELOOP,
       ENOENT, ENOSPC, EPERM, ESRCH, ExecutorDied, FunctionNotFound, InvalidArray, O_CLOEXEC,
       O_NOFOLLOW, ProtocolError,
       ResultTypeError, SIGINT, SIGKILL, SIGNAL_NAMES, SharedMemoryFull, ShuttingDown,
       UnknownClient

end
