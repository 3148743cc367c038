# The POSIX error numbers and signals the bridge checks for (Linux values).

const ENOENT = Cint(2)
const ESRCH = Cint(3)
const EINTR = Cint(4)
const EEXIST = Cint(17)
const EFBIG = Cint(27)
const ENOSPC = Cint(28)

const O_CLOEXEC = Cint(0o2000000)   # not in Julia 1.5's Base.Filesystem
const O_NONBLOCK = Cint(0o4000)
# Linux's generic value; Arm and PowerPC have their own (0o400000 is O_LARGEFILE there)
const O_NOFOLLOW = Sys.ARCH in (:aarch64, :arm, :armv7l, :powerpc64le, :ppc64le) ? Cint(0o100000) : Cint(0o400000)

const SIGINT = Cint(2)
const SIGKILL = Cint(9)

"""Names of the signals that end processes, for messages."""
const SIGNAL_NAMES = Dict(1 => "SIGHUP", 2 => "SIGINT", 3 => "SIGQUIT", 4 => "SIGILL",
                          6 => "SIGABRT", 7 => "SIGBUS", 8 => "SIGFPE", 9 => "SIGKILL",
                          11 => "SIGSEGV", 13 => "SIGPIPE", 15 => "SIGTERM")
