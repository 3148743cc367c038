# A job's output (executor/job_output.jl): what user code prints, Julia's and C's, and logs is
# caught for the job's `done`, and the executor's own streams are back afterwards.

using AwkwardBridge: OutputFiles, capture_output, take_output, output_path, output_text, read_log_records,
                     LOG_RECORDS_CAP, OUTPUT_CAP
import Logging

mktempdir() do dir
    files = OutputFiles(dir)
    before_stdout, before_logger = stdout, Logging.global_logger()
    out = capture_output(files) do
        println("from Julia")
        ccall(:puts, Cint, (Cstring,), "from C")
        print(stderr, "to stderr")
        @info "an info" n = 3
        @warn "a warning"
        @debug "not enabled"
    end
    @test out["stdout"] == "from Julia\nfrom C\n"
    @test out["stderr"] == "to stderr"
    @test [(r["level"], r["message"]) for r in out["logs"]] == [(0, "an info\n  n = 3"), (1000, "a warning")]
    @test out["logs"][1]["line"] > 0 && endswith(out["logs"][1]["file"], "test_job_output.jl")
    @test stdout === before_stdout && Logging.global_logger() === before_logger

    # the next job starts from empty files, and a job that prints nothing sends nothing
    @test capture_output(() -> nothing, files) == Dict{String,Any}()

    # a child process and C code alone (no Julia printing first) are caught too
    @test capture_output(() -> run(`echo from a child`), files) == Dict{String,Any}("stdout" => "from a child\n")
    @test capture_output(() -> ccall(:puts, Cint, (Cstring,), "only C"), files)["stdout"] == "only C\n"

    # maxlog is honoured, and records from several threads all arrive
    out = capture_output(files) do
        for i in 1:5
            @warn "once" maxlog = 1
        end
        Threads.@threads for i in 1:200
            @info "from a thread" i
        end
    end
    @test count(r -> r["message"] == "once", out["logs"]) == 1
    @test count(r -> startswith(r["message"], "from a thread"), out["logs"]) == 200

    # bytes that are not UTF-8 arrive as U+FFFD; more than the cap is cut, saying so
    out = capture_output(() -> write(stdout, UInt8[0x61, 0xff, 0x62]), files)
    @test out["stdout"] == "a\ufffdb"
    out = capture_output(() -> print("x"^(OUTPUT_CAP + 10)), files)
    @test startswith(out["stdout"], "x"^100) && occursin("10 more bytes of this call's output were cut", out["stdout"])

    # an interrupted job still gives the streams back
    @test_throws InterruptException capture_output(() -> (println("then"); throw(InterruptException())), files)
    @test stdout === before_stdout

    # a finished job leaves its files empty; what a job that died wrote is read back, and the
    # files removed
    capture_output(() -> print("said"), files)
    @test filesize(output_path(dir, getpid(), "stdout")) == 0
    write(files.stdout, "last words")   # as a job does, before its executor dies
    flush(files.stdout)
    @test take_output(dir, getpid()) == Dict{String,Any}("stdout" => "last words")
    @test !isfile(output_path(dir, getpid(), "stdout")) && !isfile(output_path(dir, getpid(), "stderr"))
    @test take_output(dir, 999_999_999) === nothing
    # what user code may leave in a file's place is neither followed nor waited on
    ccall(:mkfifo, Cint, (Cstring, Cushort), output_path(dir, getpid(), "stdout"), 0o600) == 0 || error("mkfifo")
    write(joinpath(dir, "elsewhere"), "not the job's")
    symlink(joinpath(dir, "elsewhere"), output_path(dir, getpid(), "stderr"))
    @test take_output(dir, getpid()) === nothing   # returns at once: a FIFO opened to read would block
    @test !ispath(output_path(dir, getpid(), "stdout")) && !islink(output_path(dir, getpid(), "stderr"))
    close(files.stdout); close(files.stderr); close(files.logs)
end

# A streamed job (`stream_output`): its stdout, stderr and log records stay in the files for the
# server, and nothing comes back; the next job starts from empty files all the same.
mktempdir() do dir
    files = OutputFiles(dir)
    out = capture_output(files; streamed = true) do
        println("for the server")
        print(stderr, "also")
        @info "a record" n = 1
        Threads.@threads for i in 1:50
            @warn "from a thread"
        end
    end
    @test isempty(out)
    @test read(output_path(dir, getpid(), "stdout"), String) == "for the server\n"
    @test read(output_path(dir, getpid(), "stderr"), String) == "also"
    records, upto = open(io -> read_log_records(io, filesize(io)), output_path(dir, getpid(), "logs"))
    @test upto == filesize(output_path(dir, getpid(), "logs"))
    @test [r["message"] for r in records] == ["a record\n  n = 1"; fill("from a thread", 50)]
    # the server empties the files (`read_output!`): writers go on from the new end, no hole
    foreach(io -> truncate(io, 0), (files.stdout, files.stderr, files.logs))
    @test capture_output(() -> print("next"), files) == Dict{String,Any}("stdout" => "next")
    # more records than the cap: the rest are counted, in a last record
    truncate(files.logs, 0)
    capture_output(() -> foreach(i -> @info("r"), 1:LOG_RECORDS_CAP + 5), files; streamed = true)
    records, _ = open(io -> read_log_records(io, filesize(io)), output_path(dir, getpid(), "logs"))
    @test length(records) == LOG_RECORDS_CAP && records[end]["message"] == "6 more log records of this call were dropped"
    close(files.stdout); close(files.stderr); close(files.logs)
end

# A log file as user code may write it: a frame not yet whole waits, one that is not a map is
# skipped, and one too long for the logger, or too many records, ends the reading for good.
let frame(bytes) = vcat(reinterpret(UInt8, [htol(UInt32(length(bytes)))]), bytes)
    record = AwkwardBridge.Wire.pack(Dict{String,Any}("level" => 0, "message" => "m"))
    whole = vcat(frame(record), frame(AwkwardBridge.Wire.pack(Any[1, 2])), frame(record))
    records, upto = read_log_records(IOBuffer(whole), length(whole))
    @test length(records) == 2 && upto == length(whole)
    cut = whole[1:end - 2]
    records, upto = read_log_records(IOBuffer(cut), length(cut))
    @test length(records) == 1 && upto == length(whole) - length(frame(record))
    forged = vcat(frame(record), reinterpret(UInt8, [htol(typemax(UInt32))]), zeros(UInt8, 8), frame(record))
    records, upto = read_log_records(IOBuffer(forged), length(forged))
    @test upto == typemax(Int) && records[1]["message"] == "m" && occursin("dropped", records[2]["message"])
    @test read_log_records(IOBuffer(forged), length(forged); from = upto) == (Any[], typemax(Int))
    records, upto = read_log_records(IOBuffer(whole), length(whole); most = 1)
    @test length(records) == 2 && upto == typemax(Int) && occursin("dropped", records[2]["message"])
    # frames that are not maps count too: many tiny ones end the reading at once
    tiny = reduce(vcat, fill(frame(AwkwardBridge.Wire.pack(nothing)), 100_000))
    records, upto = read_log_records(IOBuffer(tiny), length(tiny))
    @test upto == typemax(Int) && length(records) == 1 && occursin("more than $LOG_RECORDS_CAP", records[1]["message"])
end

# A record's module and file are cut like its message: any record fits a log frame.
mktempdir() do dir
    files = OutputFiles(dir)
    out = capture_output(() -> @info("x", _file = "f"^100_000, _module = "m"^100_000), files)
    @test length(out["logs"][1]["file"]) == 1024 && length(out["logs"][1]["module"]) == 1024
    close(files.stdout); close(files.stderr); close(files.logs)
end

# A log file that cannot be written to costs the job's records, not the executor.
mktempdir() do dir
    files = OutputFiles(dir)
    close(files.logs)
    out = capture_output(() -> foreach(i -> @info("r"), 1:LOG_RECORDS_CAP + 1), files; streamed = true)
    @test isempty(out)
    close(files.stdout); close(files.stderr)
end

# Reading output while the job still writes: a character whose bytes have not all come waits
# for the next read; the whole output, read at the end, shows a cut one as U+FFFD.
let
    alpha = collect(codeunits("α"))            # 0xce 0xb1
    euro = collect(codeunits("€"))             # three bytes
    io = IOBuffer(vcat(codeunits("ab"), alpha[1:1]))
    @test output_text(io, 3; whole = false) == ("ab", 2)
    io = IOBuffer(vcat(codeunits("ab"), alpha))
    @test output_text(io, 4; from = 2, whole = false) == ("α", 4)
    io = IOBuffer(vcat(euro[1:2]))
    @test output_text(io, 2; whole = false) == ("", 0)
    @test output_text(io, 2; whole = true) == ("\ufffd", 2)
    io = IOBuffer(vcat(codeunits("x"), euro))
    @test output_text(io, 4; whole = false) == ("x€", 4)
    io = IOBuffer(UInt8[0x61, 0xff])            # not UTF-8 at all: nothing to wait for
    @test output_text(io, 2; whole = false) == ("a\ufffd", 2)
    # the cap holds across reads, and the whole output says how much was cut
    io = IOBuffer(fill(UInt8('x'), OUTPUT_CAP + 5))
    text, upto = output_text(io, OUTPUT_CAP + 5; whole = false)
    @test upto == OUTPUT_CAP && length(text) == OUTPUT_CAP && !occursin("cut", text)
    @test output_text(io, OUTPUT_CAP + 5; from = upto) ==
          ("\n[awkward-bridge: 5 more bytes of this call's output were cut]\n", OUTPUT_CAP)
end
