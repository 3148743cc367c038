# A job's output (executor/job_output.jl): what user code prints, Julia's and C's, and logs is
# caught for the job's `done`, and the executor's own streams are back afterwards.

using AwkwardBridge: OutputFiles, capture_output, take_output, output_path, OUTPUT_CAP
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

    # bytes that are not UTF-8 arrive as U+FFFD; more than the cap is cut, saying so
    out = capture_output(() -> write(stdout, UInt8[0x61, 0xff, 0x62]), files)
    @test out["stdout"] == "a\ufffdb"
    out = capture_output(() -> print("x"^(OUTPUT_CAP + 10)), files)
    @test startswith(out["stdout"], "x"^100) && occursin("10 more bytes of this call's output were cut", out["stdout"])

    # an interrupted job still gives the streams back
    @test_throws InterruptException capture_output(() -> (println("then"); throw(InterruptException())), files)
    @test stdout === before_stdout

    # what a dead executor's last job wrote is read back, and its files removed
    capture_output(() -> print("last words"), files)
    @test take_output(dir, getpid()) == Dict{String,Any}("stdout" => "last words")
    @test !isfile(output_path(dir, getpid(), "stdout")) && !isfile(output_path(dir, getpid(), "stderr"))
    @test take_output(dir, 999_999_999) === nothing
    close(files.stdout); close(files.stderr)
end
