# The queue from the socket loop to the workers (server/job_queue.jl): jobs in order, a worker on
# its own thread woken from its kernel wait, every waiting worker let go by `close`.

using AwkwardBridge: JobQueue, Job, Request, Client, put_job!, take_job!, take_all_jobs!, spawn_on,
                     total_threads

job(id) = Job(UInt8[], Request(UInt64(id), "queue-test", :call, Dict{String,Any}()),
              Client("queue-test", Int(getpid()), "", 1.0, Module()))

@testset "job queue" begin
    q = JobQueue()
    put_job!(q, job(1)); put_job!(q, job(2)); put_job!(q, job(3))
    @test take_job!(q; own_thread = false).request.id == 1           # first in, first out
    @test [j.request.id for j in take_all_jobs!(q)] == [2, 3]
    @test isempty(take_all_jobs!(q))

    if total_threads() >= 2
        # a worker pinned to thread 2 sleeps in the kernel between jobs, and wakes for each one
        taken = Channel{UInt64}(10)
        worker = spawn_on(2) do
            while (j = take_job!(q; own_thread = true)) !== nothing
                put!(taken, j.request.id)
            end
            put!(taken, 0)   # the queue closed
        end
        for id in 4:6
            sleep(0.01)      # past the worker's watch: it waits on the doorbell
            put_job!(q, job(id))
            @test take!(taken) == id
        end
        sleep(0.01)
        close(q)
        @test take!(taken) == 0
        wait(worker)
    else
        close(q)
    end
    @test take_job!(q; own_thread = false) === nothing               # closed and empty
    @test_throws InvalidStateException put_job!(q, job(7))
end
