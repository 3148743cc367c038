# msgpack: round trips at every width boundary, the exact encodings the spec prescribes, and
# malformed input (truncation, lies about lengths, nesting, random bytes) always refused with a
# ProtocolError.

using AwkwardBridge: pack, unpack, top_level_scalars, top_level_value_bytes, FieldMap, PackedValue, ProtocolError,
                     MSGPACK_MAX_DEPTH, MSGPACK_MAX_VALUES, MSGPACK_MAX_CONTAINERS

@testset "round trips" begin
    ints = Any[0, 1, 127, 128, 255, 256, 65535, 65536, 2^32 - 1, 2^32, typemax(Int64),
               -1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1, typemin(Int64)]
    for x in ints
        y = unpack(pack(x))
        @test y === Int64(x)
    end
    @test unpack(pack(typemax(UInt64))) === typemax(UInt64)
    @test unpack(pack(UInt64(typemax(Int64)) + 1)) === UInt64(typemax(Int64)) + 1
    @test unpack(pack(UInt8(200))) === Int64(200)
    for x in (0.0, -1.5, 1e300, Inf, -Inf)
        @test unpack(pack(x)) === x
    end
    @test isnan(unpack(pack(NaN)))
    @test unpack(pack(1.25f0)) === 1.25f0
    @test unpack(pack(nothing)) === nothing
    @test unpack(pack(true)) === true
    @test unpack(pack(false)) === false
    for n in (0, 1, 31, 32, 255, 256, 65535, 65536)
        s = repeat("é", n ÷ 2) * repeat("a", n % 2)
        @test unpack(pack(s)) == s
        b = rand(UInt8, n)
        @test unpack(pack(b)) == b
        v = collect(1:n)
        @test unpack(pack(v)) == v
    end
    for n in (0, 15, 16, 70000)
        d = Dict{String,Any}(string(i) => i for i in 1:n)
        @test unpack(pack(d)) == d
    end
    nested = Dict{String,Any}("a" => Any[1, "two", Any[3.0, nothing], Dict{String,Any}("b" => true)],
                              "c" => UInt8[1, 2, 3])
    @test unpack(pack(nested)) == nested
    @test unpack(pack((1, "x"))) == Any[1, "x"]
end

@testset "encodings from the spec" begin
    @test pack(5) == [0x05]
    @test pack(-1) == [0xff]
    @test pack(-33) == [0xd0, 0xdf]
    @test pack(200) == [0xcc, 0xc8]
    @test pack(1000) == [0xcd, 0x03, 0xe8]
    @test pack(1.0f0) == [0xca, 0x3f, 0x80, 0x00, 0x00]
    @test pack(1.0) == [0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]
    @test pack("a") == [0xa1, 0x61]
    @test pack(repeat("a", 32))[1:2] == [0xd9, 0x20]
    @test pack(UInt8[7]) == [0xc4, 0x01, 0x07]
    @test pack(Any[]) == [0x90]
    @test pack(Dict{String,Any}()) == [0x80]
    @test_throws ArgumentError pack(:symbol)
    @test_throws ArgumentError pack(Dict(1 => 2))
end

@testset "malformed input" begin
    valid = pack(Dict{String,Any}("v" => 1, "list" => Any[1, 2.5, "three", UInt8[4, 5]],
                                  "big" => typemax(Int64), "neg" => -40000))
    for n in 0:length(valid)-1   # every truncation
        @test_throws ProtocolError unpack(valid[1:n])
    end
    @test_throws ProtocolError unpack([valid; 0x00])                    # trailing byte
    @test_throws ProtocolError unpack([0xc1])                           # never-used type byte
    @test_throws ProtocolError unpack([0xd4, 0x01, 0x02])               # fixext 1
    @test_throws ProtocolError unpack([0xc7, 0x00, 0x01])               # ext 8
    @test_throws ProtocolError unpack([0x81, 0x01, 0x02])               # int map key
    @test_throws ProtocolError unpack([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02])  # duplicate key
    @test_throws ProtocolError unpack([0xa2, 0xff, 0xfe])               # invalid UTF-8
    # lengths far beyond the input are refused before anything is allocated
    @test_throws ProtocolError unpack([0xdd, 0xff, 0xff, 0xff, 0xff])
    @test_throws ProtocolError unpack([0xdf, 0xff, 0xff, 0xff, 0xff])
    @test_throws ProtocolError unpack([0xc6, 0xff, 0xff, 0xff, 0xff, 0x00])
    @test_throws ProtocolError unpack([0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61])
    @test unpack(fill(0x91, MSGPACK_MAX_DEPTH - 1) |> v -> [v; 0x01]) isa Vector{Any}
    @test_throws ProtocolError unpack([fill(0x91, MSGPACK_MAX_DEPTH); 0x01])
    @test_throws ProtocolError unpack(UInt8[])
end

@testset "random bytes never escape as anything but ProtocolError" begin
    rng = MersenneTwister(1234)
    others = 0
    for _ in 1:20000
        bytes = rand(rng, UInt8, rand(rng, 1:24))
        try
            unpack(bytes)
        catch e
            e isa ProtocolError || (others += 1)
        end
    end
    @test others == 0
end

@testset "top_level_scalars reads what comes before a fault" begin
    every_kind = pack(Any[nothing, true, -1, 300, -40000, 2^40, 1.5f0, 2.5, "s", "x"^40, UInt8[1, 2],
                          Dict("k" => Any[1, Dict("deep" => "v")])])
    ext_values = UInt8[0x93, 0xd4, 0x01, 0x00, 0xd8, 0x01, zeros(UInt8, 16)..., 0xc7, 0x02, 0x05, 0x00, 0x00]
    id_after(values...) = vcat(0x82, pack("skip"), values..., pack("id"), pack(7))
    # containers of every kind, ext types and deep nesting are passed over, not decoded
    @test top_level_scalars(id_after(every_kind)) == Dict{String,Any}("id" => 7)
    @test top_level_scalars(id_after(ext_values)) == Dict{String,Any}("id" => 7)
    @test top_level_scalars(id_after([fill(0x91, 1000); 0xc0])) == Dict{String,Any}("id" => 7)
    # scalars under string keys, up to the first fault; a non-string key's value is left out
    @test top_level_scalars(vcat(0x83, pack("a"), pack("b"), pack(1), pack(2), pack("id"), UInt8[0x92, 0x01])) ==
          Dict{String,Any}("a" => "b")
    @test top_level_scalars(vcat(0x82, UInt8[0xc1], pack("id"), pack(7))) == Dict{String,Any}()
    @test top_level_scalars(pack(Any[1, 2])) === nothing     # not a map
    @test top_level_scalars(UInt8[]) === nothing
    # a container count far beyond the input ends at its end, not after 2^32 steps
    @test top_level_scalars(id_after(UInt8[0xdd, 0xff, 0xff, 0xff, 0xff])) == Dict{String,Any}()
end

@testset "a record's fields keep their order, also forwarded in their own bytes" begin
    fields = pack(FieldMap(["z", "a", "m"], Any[1, "two", Any[3.0]]))
    @test fields == vcat(0x83, pack("z"), pack(1), pack("a"), pack("two"), pack("m"), pack(Any[3.0]))
    @test unpack(fields) == Dict{String,Any}("z" => 1, "a" => "two", "m" => Any[3.0])
    message = vcat(0x83, pack("op"), pack("done"), pack("result"), fields, pack("ok"), pack(true))
    @test top_level_value_bytes(message, "result") == fields
    @test top_level_value_bytes(message, "op") == pack("done")
    @test top_level_value_bytes(message, "error") === nothing
    @test top_level_value_bytes(pack(Any[1]), "result") === nothing   # not a map
    @test pack(Any[PackedValue(fields), 4]) == vcat(0x92, fields, pack(4))
end

@testset "what one message decodes into is capped by count" begin
    @test length(unpack([0xdd; reinterpret(UInt8, [hton(UInt32(MSGPACK_MAX_VALUES - 1))]); zeros(UInt8, MSGPACK_MAX_VALUES - 1)])) == MSGPACK_MAX_VALUES - 1
    too_many = [0xdd; reinterpret(UInt8, [hton(UInt32(MSGPACK_MAX_VALUES))]); zeros(UInt8, MSGPACK_MAX_VALUES)]
    @test_throws ProtocolError unpack(too_many)
    maps(n) = [0xdd; reinterpret(UInt8, [hton(UInt32(n))]); fill(0x80, n)]
    @test length(unpack(maps(MSGPACK_MAX_CONTAINERS - 1))) == MSGPACK_MAX_CONTAINERS - 1
    err = try unpack(maps(MSGPACK_MAX_CONTAINERS)); nothing catch e; e end
    @test err isa ProtocolError && occursin("lists and maps", err.msg)
    @test length(unpack(maps(MSGPACK_MAX_CONTAINERS); max_containers = typemax(Int))) == MSGPACK_MAX_CONTAINERS
    @test length(unpack(too_many; max_values = typemax(Int))) == MSGPACK_MAX_VALUES
    # a refused key is quoted and cut in the message, which the server logs
    err = try unpack([0x82; pack("a\nb"^20); 0x01; pack("a\nb"^20); 0x02]); nothing catch e; e end
    @test err isa ProtocolError && !occursin('\n', err.msg) && length(err.msg) < 100
end
