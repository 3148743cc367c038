# Shared-memory segments: naming rules, creation, sharing between two mappings, refusal of bad
# names, a /dev/shm too small, and segments the server reserves for its executors to map.

using AwkwardBridge: create_segment, reserve_segment, map_segment, unmap, unlink, is_segment_name,
                     segment_pid, shm_space, InvalidArray, SharedMemoryFull

own_segments() = Set(filter(n -> startswith(n, "akb-$(getpid())-"), readdir("/dev/shm")))

@testset "names" begin
    hex = repeat("0123456789abcdef", 2)
    # the grammar's test vectors, which the Python suite reads too (tests/test_shm.py)
    vectors = AwkwardBridge.parse_json(read(joinpath(@__DIR__, "..", "..", "tests", "segment_names.json"), String))
    for (name, pid) in vectors["valid"]
        @test is_segment_name(name)
        @test segment_pid(name) == pid
    end
    for bad in vectors["invalid"]
        @test !is_segment_name(bad)
        @test segment_pid(bad) === nothing
        @test_throws InvalidArray map_segment(bad)
    end
    @test_throws InvalidArray map_segment("akb-$(getpid())-$hex")   # well formed, absent
end

@testset "create, share, unlink" begin
    before = own_segments()
    seg = create_segment(1000)
    @test is_segment_name(seg.name) && segment_pid(seg.name) == getpid()
    path = "/dev/shm/$(seg.name)"
    @test isfile(path)
    @test filemode(path) & 0o777 == 0o600
    @test filesize(path) == seg.nbytes >= 1000
    data = rand(UInt8, 1000)
    unsafe_copyto!(seg.ptr, pointer(data), 1000)
    view = map_segment(seg.name)
    @test !view.writable && view.nbytes == seg.nbytes && view.ptr != seg.ptr
    @test unsafe_wrap(Array, view.ptr, 1000) == data
    unsafe_store!(seg.ptr, 0x5a, 7)             # the writer's change shows through the reader
    @test unsafe_load(view.ptr, 7) == 0x5a
    unmap(view)
    unmap(seg)
    @test unlink(seg.name)
    @test !isfile(path)
    @test !unlink(seg.name)
    @test own_segments() == before
end

@testset "empty requests and empty segments" begin
    seg = create_segment(0)
    @test seg.nbytes == 1          # mmap refuses empty mappings
    unmap(seg)
    unlink(seg.name)
    name = "akb-$(getpid())-$(repeat("ab", 16))"
    touch("/dev/shm/$name")        # a zero-byte segment some other process made
    try
        @test_throws InvalidArray map_segment(name)
    finally
        rm("/dev/shm/$name")
    end
end

@testset "a full /dev/shm is SharedMemoryFull, and leaves nothing behind" begin
    before = own_segments()
    free, total = shm_space()
    @test 0 <= free <= total
    too_big = 4 * total + 12345
    err = try
        create_segment(too_big)
        nothing
    catch e
        e
    end
    @test err isa SharedMemoryFull
    @test occursin("$too_big bytes", err.msg)
    @test occursin("/dev/shm", err.msg) && occursin("free", err.msg)
    @test own_segments() == before
end

@testset "a reserved segment has its size and no mapping" begin
    name = reserve_segment(5000)
    try
        @test is_segment_name(name) && segment_pid(name) == getpid()
        @test filesize("/dev/shm/$name") == 5000
        @test count(line -> endswith(line, name), eachline("/proc/$(getpid())/maps")) == 0
        seg = map_segment(name; readonly = false, populate = true)   # as an executor maps it
        @test seg.writable && seg.nbytes == 5000
        unmap(seg)
    finally
        unlink(name)
    end
end

const SHM = AwkwardBridge.SharedMemory

@testset "an owner lock file held exclusively is replaced, not waited for" begin
    # a squatter holding this pid's lock file (a gc would hold it only for a moment)
    path = SHM.lock_path(getpid())
    rm(path; force = true)
    squatter = open(path, "w")
    @test ccall(:flock, Cint, (Cint, Cint), fd(squatter), SHM.LOCK_EX) == 0
    planted = stat(path).inode
    took = @elapsed lock = SHM.hold_owner_lock()
    try
        @test lock >= 0 && stat(path).inode == stat(RawFD(lock)).inode != planted
        @test SHM.TAKE_OVER_AFTER <= took < SHM.TAKE_OVER_AFTER + 5
        # the new file is the live owner's: a gc sees it held
        @test SHM.dead_owner(identity, Int(getpid())) === false
    finally
        SHM.release_owner_lock(lock)
        close(squatter)
    end
    @test !ispath(path)
    # a directory (anyone may make one in /dev/shm) is no lock file: no lock, and the pid decides
    mkdir(path)
    try
        @test SHM.hold_owner_lock() == -1
        @test SHM.dead_owner(identity, Int(getpid())) === nothing
    finally
        rm(path; force = true, recursive = true)
    end
    # a lock file of another user does not speak for the pid: the pid decides
    ccall(:geteuid, Cuint, ()) == 0 || @info "skipped: another user's lock file needs root to make"
    if ccall(:geteuid, Cuint, ()) == 0
        touch(path)
        chown(path, 65534)
        try
            @test SHM.hold_owner_lock() == -1
            @test SHM.dead_owner(identity, Int(getpid())) === nothing
        finally
            rm(path; force = true)
        end
    end
end
