# A streamed job's output as the server reads it (server/streamed_output.jl): from the files it
# holds, each byte and record once, in order, and at a pace that never fills a client's queue.

using AwkwardBridge: OutputFiles, capture_output, output_path
const SP = AwkwardBridge.ServerProcess

mktempdir() do dir
    files = OutputFiles(dir)                     # the executor's, in this process
    held = SP.open_output_files(dir, getpid())   # the server's
    @test length(held) == 3
    streamed = SP.StreamedOutput()
    SP.empty_output_files!(held)
    part = nothing
    capture_output(files; streamed = true) do
        print("half a line, ")
        @info "first"
        flush(stdout)
        part = SP.read_output!(streamed, held; whole = false)   # as the job runs
        println("then the rest")
        print(stderr, "err")
        @warn "second"
    end
    @test part["stdout"] == "half a line, " && [r["message"] for r in part["logs"]] == ["first"]
    @test !haskey(part, "stderr")
    rest = SP.read_output!(streamed, held; whole = true)
    @test rest["stdout"] == "then the rest\n" && rest["stderr"] == "err"
    @test [r["message"] for r in rest["logs"]] == ["second"]
    @test all(io -> filesize(io) == 0, held)   # emptied for the next job
    @test streamed.records == 2
    # the next streamed job starts at 0 in files the executor appends to
    streamed = SP.StreamedOutput()
    capture_output(() -> print("next"), files; streamed = true)
    @test SP.read_output!(streamed, held; whole = true) == Dict{String,Any}("stdout" => "next")
    # a stream the job empties itself (a shell's `> /dev/stderr`) is read again from its start
    streamed = SP.StreamedOutput()
    capture_output(files; streamed = true) do
        print(stderr, "first, ")
        part = SP.read_output!(streamed, held; whole = false)
        truncate(files.stderr, 0)
        print(stderr, "second")
    end
    @test part == Dict{String,Any}("stderr" => "first, ")
    @test SP.read_output!(streamed, held; whole = true) == Dict{String,Any}("stderr" => "second")
    # a path user code replaces is not what the server reads
    mv(output_path(dir, getpid(), "stdout"), joinpath(dir, "moved"))
    write(output_path(dir, getpid(), "stdout"), "forged")
    streamed = SP.StreamedOutput()
    capture_output(() -> print("real"), files; streamed = true)
    @test SP.read_output!(streamed, held; whole = true) == Dict{String,Any}("stdout" => "real")
    foreach(close, held)
    close(files.stdout); close(files.stderr); close(files.logs)
end

# The pace of output messages: 0.1 s apart for the first 100, then twice as long for each next
# 100, and none after 900.
let s = SP.StreamedOutput(), t = UInt64(10^12)
    @test SP.may_send(s, t)
    SP.message_sent!(s, t)
    @test !SP.may_send(s, t + UInt64(5 * 10^7)) && SP.may_send(s, t + UInt64(10^8))
    for _ in 1:99
        t += UInt64(10^8)
        SP.message_sent!(s, t)
    end
    @test s.messages == 100
    @test !SP.may_send(s, t + UInt64(10^8)) && SP.may_send(s, t + UInt64(2 * 10^8))
    s.messages = SP.OUTPUT_MESSAGES_CAP
    @test !SP.may_send(s, t + UInt64(10^15))
end
