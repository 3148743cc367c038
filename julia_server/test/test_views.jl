module TestViews

using Test, Dates
using AwkwardBridge: ListVector, RegularVector, StringVector, RecordVector, Record, BoolVector,
                     ParameterizedVector, IndexedOptionVector, ByteMaskedVector, BitMaskedVector,
                     UnmaskedVector, IndexedVector, UnionVector, Datetime64, parameters, column

include("memory_helpers.jl")

list_json(offsets, content; parameters="{}") =
    """{"class": "ListOffsetArray", "offsets": "$offsets", "content": $content, "parameters": $parameters, "form_key": "node0"}"""

option_content = numpy_json("int64", "node1")

@testset "views" begin
    mem = TestMemory()

    @testset "NumpyArray is a plain Vector over the buffer" begin
        for T in (Int8, UInt16, Int32, UInt64, Float16, Float32, Float64, ComplexF32, ComplexF64)
            values = T[1, 2, 3]
            primitive = Dict(Int8 => "int8", UInt16 => "uint16", Int32 => "int32", UInt64 => "uint64",
                             Float16 => "float16", Float32 => "float32", Float64 => "float64",
                             ComplexF32 => "complex64", ComplexF64 => "complex128")[T]
            v = open_ref(mem, array_ref(mem, numpy_json(primitive, "node0"), 3, "node0-data" => values))
            @test v isa Vector{T}
            @test v == values
        end
        ref = array_ref(mem, numpy_json("float64", "node0"), 2, "node0-data" => [1.0, 2.0])
        v = open_ref(mem, ref)
        buffer_words(mem, ref, "node0-data", Float64)[2] = 42.0
        @test v[2] == 42.0   # zero-copy: the view sees the buffer
        @test length(open_ref(mem, array_ref(mem, numpy_json("int64", "node0"), 1, "node0-data" => [5, 6]))) == 1
    end

    @testset "bool tests bytes, never reinterprets them" begin
        v = open_ref(mem, array_ref(mem, numpy_json("bool", "node0"), 4, "node0-data" => UInt8[0, 1, 2, 255]))
        @test v isa BoolVector
        @test eltype(v) === Bool
        @test v == [false, true, true, true]
        @test all(x -> x === true || x === false, v)
    end

    @testset "datetime64 and timedelta64 keep their unit" begin
        stamps = open_ref(mem, array_ref(mem, numpy_json("datetime64[ms]", "node0"), 2, "node0-data" => Int64[1500, -86400000]))
        @test stamps isa Vector{Datetime64{Millisecond}}
        @test DateTime(stamps[1]) == DateTime(1970, 1, 1, 0, 0, 1, 500)
        @test DateTime(stamps[2]) == DateTime(1969, 12, 31)
        @test Dates.value(stamps[1]) == 1500
        @test stamps[2] < stamps[1]
        nanos = open_ref(mem, array_ref(mem, numpy_json("datetime64[ns]", "node0"), 1, "node0-data" => Int64[1_999_999]))
        @test DateTime(nanos[1]) == DateTime(1970, 1, 1, 0, 0, 0, 1)   # rounded down to ms
        spans = open_ref(mem, array_ref(mem, numpy_json("timedelta64[ns]", "node0"), 2, "node0-data" => Int64[5, -6]))
        @test spans == [Nanosecond(5), Nanosecond(-6)]
    end

    @testset "inner_shape is an array of that shape over the buffer" begin
        data = Int16.(0:23)
        ref = array_ref(mem, numpy_json("int16", "node0"; inner_shape="[3, 4]"), 2, "node0-data" => data)
        v = open_ref(mem, ref)
        @test v isa AbstractArray{Int16,3} && size(v) == (2, 3, 4)
        @test v[2, 3, :] == Int16[20, 21, 22, 23]                  # NumPy's a[1, 2, :]
        @test v[1, :, :] == Int16[0 1 2 3; 4 5 6 7; 8 9 10 11]
        @test [v[i, j, k] for i in 1:2, j in 1:3, k in 1:4] == permutedims(reshape(data, 4, 3, 2), (3, 2, 1))
        buffer_words(mem, ref, "node0-data", Int16)[24] = 99    # a view over the buffer, not a copy
        @test v[2, 3, 4] == 99
        @test sum(v; dims=1)[1, 1, 2] == 1 + 13
        matrix = open_ref(mem, array_ref(mem, numpy_json("float64", "node0"; inner_shape="[2]"), 3, "node0-data" => collect(1.0:6.0)))
        @test matrix == [1.0 2.0; 3.0 4.0; 5.0 6.0] && matrix * [1.0, 1.0] == [3.0, 7.0, 11.0]
        @test [collect(r) for r in eachrow(matrix)] == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
        empty_rows = open_ref(mem, array_ref(mem, numpy_json("int16", "node0"; inner_shape="[2, 0]"), 3, "node0-data" => Int16[]))
        @test size(empty_rows) == (3, 2, 0)
        # written back as rows: a RegularArray per inner dimension, the same Awkward type
        back = roundtrip(mem, v)
        @test back isa RegularVector && [collect(r) for r in back[2]] == [collect(v[2, j, :]) for j in 1:3]
        # inside a list or a record, an element or a field is a view of those rows
        lists = """{"class": "ListOffsetArray", "offsets": "i64", "content": $(numpy_json("float32", "node1"; inner_shape="[3]")), "form_key": "node0"}"""
        l = open_ref(mem, array_ref(mem, lists, 2, "node0-offsets" => Int64[0, 2, 3], "node1-data" => Float32.(1:9)))
        @test l[1] == Float32[1 2 3; 4 5 6] && l[2] == Float32[7 8 9]
        @test [collect(r) for r in roundtrip(mem, l)[1]] == [Float32[1, 2, 3], Float32[4, 5, 6]]
        records = """{"class": "RecordArray", "fields": ["p", "q"], "contents": [$(numpy_json("float32", "node1"; inner_shape="[2]")), $(numpy_json("int64", "node2"))], "form_key": "node0"}"""
        rv = open_ref(mem, array_ref(mem, records, 2, "node1-data" => Float32[1, 2, 3, 4], "node2-data" => Int64[7, 8]))
        @test rv[2].p == Float32[3, 4] && rv.p == Float32[1 2; 3 4] && rv[1:1].p == Float32[1 2]
        @test NamedTuple(rv[1]) == (p = Float32[1, 2], q = 7)
        @test [collect(r) for r in roundtrip(mem, rv).p] == [Float32[1, 2], Float32[3, 4]]
        # with parameters to keep, nested RegularVectors as before
        tagged = open_ref(mem, array_ref(mem, numpy_json("int16", "node0"; inner_shape="[2]", parameters="{\"unit\": \"mm\"}"), 2, "node0-data" => Int16[1, 2, 3, 4]))
        @test tagged isa RegularVector && tagged[2] == Int16[3, 4]
    end

    @testset "ListOffsetArray behaves like Vector{Vector{T}}" begin
        for (name, I) in ("i32" => Int32, "u32" => UInt32, "i64" => Int64)
            ref = array_ref(mem, list_json(name, numpy_json("float32", "node1")), 3,
                            "node0-offsets" => I[0, 2, 2, 5], "node1-data" => Float32[1, 2, 3, 4, 5])
            v = open_ref(mem, ref)
            @test v isa ListVector
            @test length(v) == 3
            @test v[1] isa SubArray{Float32}
            @test eltype(v) == typeof(v[1])
            @test collect.(v) == [Float32[1, 2], Float32[], Float32[3, 4, 5]]
            @test sum(sum, v) == 15
            @test [length(x) for x in v] == [2, 0, 3]
            @test v[3][2] == 4
        end
        # offsets need not start at 0
        v = open_ref(mem, array_ref(mem, list_json("i64", numpy_json("int64", "node1")), 2,
                                    "node0-offsets" => Int64[1, 2, 4], "node1-data" => Int64[9, 1, 2, 3]))
        @test collect.(v) == [[1], [2, 3]]
    end

    @testset "ListArray" begin
        json = """{"class": "ListArray", "starts": "i64", "stops": "i64", "content": $(numpy_json("int64", "node1")), "form_key": "node0"}"""
        v = open_ref(mem, array_ref(mem, json, 3, "node0-starts" => Int64[2, 7, 0],
                                    "node0-stops" => Int64[3, 7, 2], "node1-data" => Int64[10, 11, 12]))
        @test v isa ListVector
        @test collect.(v) == [[12], Int[], [10, 11]]
    end

    @testset "RegularArray, including size 0" begin
        json(size) = """{"class": "RegularArray", "size": $size, "content": $(numpy_json("int64", "node1")), "form_key": "node0"}"""
        v = open_ref(mem, array_ref(mem, json(2), 2, "node1-data" => Int64[1, 2, 3, 4]))
        @test v isa RegularVector
        @test collect.(v) == [[1, 2], [3, 4]]
        zero = open_ref(mem, array_ref(mem, json(0), 5, "node1-data" => Int64[]))
        @test length(zero) == 5
        @test all(isempty, zero)
    end

    @testset "strings and bytestrings" begin
        chars(kind) = numpy_json("uint8", "node1"; parameters="""{"__array__": "$kind"}""")
        bytes = Vector{UInt8}("abcé")
        strings = open_ref(mem, array_ref(mem, list_json("i64", chars("char"); parameters="""{"__array__": "string"}"""), 3,
                                          "node0-offsets" => Int64[0, 2, 2, 5], "node1-data" => bytes))
        @test strings isa StringVector
        @test eltype(strings) === String
        @test strings == ["ab", "", "cé"]
        @test strings[3] isa String
        blobs = open_ref(mem, array_ref(mem, list_json("i64", chars("byte"); parameters="""{"__array__": "bytestring"}"""), 2,
                                        "node0-offsets" => Int64[0, 1, 3], "node1-data" => UInt8[0x00, 0xff, 0x61]))
        @test blobs isa ListVector
        @test eltype(blobs[1]) === UInt8
        @test collect(blobs[2]) == UInt8[0xff, 0x61]
        @test parameters(blobs) == Dict{String,Any}("__array__" => "bytestring")
        @test parameters(blobs[1].parent) == Dict{String,Any}("__array__" => "byte")
    end

    @testset "records and tuples" begin
        json = """{"class": "RecordArray", "fields": ["x", "y"], "contents": [$(numpy_json("int64", "node1")), $(list_json("i64", numpy_json("float64", "node3")))], "parameters": {"__record__": "Point"}, "form_key": "node0"}"""
        json = replace(json, "\"form_key\": \"node0\"}], " => "\"form_key\": \"node2\"}], ")
        rv = open_ref(mem, array_ref(mem, json, 2, "node1-data" => Int64[1, 2],
                                     "node2-offsets" => Int64[0, 1, 1], "node3-data" => [0.5]))
        @test rv isa RecordVector
        r = rv[1]
        @test r isa Record
        @test r.x == 1
        @test r[:y] == [0.5]
        @test r[1] == 1
        @test propertynames(r) == (:x, :y)
        @test keys(r) == (:x, :y)
        @test length(r) == 2
        @test NamedTuple(rv[2]) == (x = 2, y = Float64[])
        # a selection's length, empty ones included (counted without Base's overflow check)
        @test length(rv[1:2]) == 2 && length(rv[2:2]) == 1 && isempty(rv[2:1]) && length(rv[[2, 2, 1]]) == 3
        @test collect(eachindex(rv[2:1])) == Int[] && [r.x for r in rv[2:2]] == [2]
        @test rv.x == [1, 2]
        @test rv.y isa ListVector
        @test column(rv, 2) === rv.y
        @test propertynames(rv) == (:x, :y)
        @test parameters(rv) == Dict{String,Any}("__record__" => "Point")
        @test sprint(show, r) == "Record(x = 1, y = [0.5])"
        @test [p.x for p in rv if isempty(p.y)] == [2]

        tuples = """{"class": "RecordArray", "fields": null, "contents": [$(numpy_json("int64", "node1")), $(numpy_json("float64", "node2"))], "form_key": "node0"}"""
        tv = open_ref(mem, array_ref(mem, tuples, 2, "node1-data" => Int64[1, 3], "node2-data" => [2.0, 4.0]))
        @test tv[1] === (1, 2.0)
        @test eltype(tv) == Tuple{Int64,Float64}
        @test column(tv, 2) == [2.0, 4.0]
        empty_record = """{"class": "RecordArray", "fields": [], "contents": [], "form_key": "node0"}"""
        @test length(open_ref(mem, array_ref(mem, empty_record, 4))) == 4
    end

    @testset "option types give missing" begin
        indexed = """{"class": "IndexedOptionArray", "index": "i32", "content": $option_content, "form_key": "node0"}"""
        v = open_ref(mem, array_ref(mem, indexed, 4, "node0-index" => Int32[1, -1, 0, -7], "node1-data" => Int64[10, 20]))
        @test v isa IndexedOptionVector
        @test eltype(v) == Union{Missing,Int64}
        @test isequal(collect(v), [20, missing, 10, missing])
        @test collect(skipmissing(v)) == [20, 10]

        for (valid_when, expected) in ((true, [1, missing, 3]), (false, [missing, 2, missing]))
            bytemasked = """{"class": "ByteMaskedArray", "mask": "i8", "valid_when": $valid_when, "content": $option_content, "form_key": "node0"}"""
            v = open_ref(mem, array_ref(mem, bytemasked, 3, "node0-mask" => Int8[1, 0, 5], "node1-data" => Int64[1, 2, 3]))
            @test v isa ByteMaskedVector
            @test isequal(collect(v), expected)
        end

        bitmasked(valid_when, lsb) = """{"class": "BitMaskedArray", "mask": "u8", "valid_when": $valid_when, "lsb_order": $lsb, "content": $option_content, "form_key": "node0"}"""
        data = "node1-data" => collect(Int64, 1:9)
        v = open_ref(mem, array_ref(mem, bitmasked(true, true), 9, "node0-mask" => UInt8[0b00000101, 0b1], data))
        @test v isa BitMaskedVector
        @test isequal(collect(v), [1, missing, 3, missing, missing, missing, missing, missing, 9])
        v = open_ref(mem, array_ref(mem, bitmasked(false, false), 9, "node0-mask" => UInt8[0b10100000, 0b10000000], data))
        @test isequal(collect(v), [missing, 2, missing, 4, 5, 6, 7, 8, missing])

        unmasked = """{"class": "UnmaskedArray", "content": $option_content, "form_key": "node0"}"""
        v = open_ref(mem, array_ref(mem, unmasked, 2, "node1-data" => Int64[4, 5]))
        @test v isa UnmaskedVector
        @test eltype(v) == Union{Missing,Int64}
        @test v == [4, 5]
    end

    @testset "IndexedArray and categoricals give their values" begin
        json = """{"class": "IndexedArray", "index": "u32", "content": $(numpy_json("float64", "node1")), "parameters": {"__array__": "categorical"}, "form_key": "node0"}"""
        v = open_ref(mem, array_ref(mem, json, 4, "node0-index" => UInt32[1, 0, 1, 1], "node1-data" => [1.5, 2.5]))
        @test v isa IndexedVector
        @test v == [2.5, 1.5, 2.5, 2.5]
        @test parameters(v)["__array__"] == "categorical"
    end

    @testset "UnionArray elements of either type" begin
        json = """{"class": "UnionArray", "tags": "i8", "index": "i64", "contents": [$(numpy_json("int64", "node1")), $(list_json("i64", numpy_json("uint8", "node3"; parameters="{\"__array__\": \"char\"}"); parameters="{\"__array__\": \"string\"}"))], "form_key": "node0"}"""
        json = replace(json, "\"form_key\": \"node0\"}], " => "\"form_key\": \"node2\"}], ")
        v = open_ref(mem, array_ref(mem, json, 3, "node0-tags" => Int8[1, 0, 1], "node0-index" => Int64[1, 0, 0],
                                    "node1-data" => Int64[7], "node2-offsets" => Int64[0, 1, 3], "node3-data" => Vector{UInt8}("xyz")))
        @test v isa UnionVector
        @test collect(v) == Any["yz", 7, "x"]
        @test eltype(v) == Union{Int64,String}
    end

    @testset "EmptyArray" begin
        v = open_ref(mem, array_ref(mem, """{"class": "EmptyArray", "form_key": "node0"}""", 0))
        @test v isa AbstractVector && isempty(v)
    end

    @testset "user parameters stay on the view" begin
        ref = array_ref(mem, list_json("i64", numpy_json("int64", "node1"); parameters="""{"foo": {"a": [1, 2]}}"""), 1,
                        "node0-offsets" => Int64[0, 1], "node1-data" => Int64[3])
        @test parameters(open_ref(mem, ref)) == Dict{String,Any}("foo" => Dict{String,Any}("a" => Any[1, 2]))
        leaf = open_ref(mem, array_ref(mem, numpy_json("int64", "node0"; parameters="""{"unit": "GeV"}"""), 1, "node0-data" => Int64[3]))
        @test leaf isa ParameterizedVector
        @test leaf == [3]
        @test parameters(leaf) == Dict{String,Any}("unit" => "GeV")
    end

    @testset "copy is the same view over Julia's own memory" begin
        muon = """{"class": "RecordArray", "fields": ["pt", "ok"], "contents": [$(numpy_json("float32", "node3")), $(numpy_json("bool", "node4"))], "parameters": {"__record__": "Muon"}, "form_key": "node2"}"""
        option = """{"class": "IndexedOptionArray", "index": "i64", "content": $muon, "form_key": "node1"}"""
        ref = array_ref(mem, list_json("i32", option), 2, "node0-offsets" => Int32[0, 3, 3], "node1-index" => Int64[1, -1, 0],
                        "node3-data" => Float32[5, 7], "node4-data" => UInt8[1, 0])
        v = open_ref(mem, ref)
        c = copy(v)
        plain(list) = [m === missing ? missing : NamedTuple(m) for m in list]
        @test typeof(c) === typeof(v)
        @test isequal(plain(c[1]), plain(v[1])) && isequal(plain(c[1]), [(pt = 7f0, ok = false), missing, (pt = 5f0, ok = true)])
        @test isempty(c[2])
        @test getfield(c, :stops) == getfield(v, :stops) && pointer(getfield(c, :stops)) != pointer(getfield(v, :stops))
        # a builder's lists (views of one offsets vector) are copied over one copy of it
        offsets = [0, 2, 3]
        built = ListVector(Float32[1, 2, 3], view(offsets, 1:2), view(offsets, 2:3), Dict{String,Any}())
        copied_bounds = getfield.(Ref(copy(built)), (:starts, :stops))
        @test parent(copied_bounds[1]) === parent(copied_bounds[2]) !== offsets && collect.(copy(built)) == collect.(built)
        @test parameters(getfield(getfield(c, :content), :content)) == Dict{String,Any}("__record__" => "Muon")
        @test isequal(c.pt, [[7f0, missing, 5f0], Float32[]])           # projected through list and option
        @test isequal(v.ok[1], [false, missing, true])
        buffer_words(mem, ref, "node3-data", Float32)[2] = 99f0
        @test v[1][1].pt == 99f0 && c[1][1].pt == 7f0                  # the copy no longer sees the segment
        placed_view, placed_copy = place_array(v, allocator(mem)), place_array(c, allocator(mem))
        @test placed_copy.form == placed_view.form

        union = """{"class": "UnionArray", "tags": "i8", "index": "i64", "contents": [$(numpy_json("int64", "node1")), $(list_json("i64", numpy_json("uint8", "node3"; parameters="{\"__array__\": \"char\"}"); parameters="{\"__array__\": \"string\"}"))], "form_key": "node0"}"""
        union = replace(union, "\"form_key\": \"node0\"}], " => "\"form_key\": \"node2\"}], ")
        u = open_ref(mem, array_ref(mem, union, 2, "node0-tags" => Int8[1, 0], "node0-index" => Int64[0, 0],
                                    "node1-data" => Int64[7], "node2-offsets" => Int64[0, 2], "node3-data" => Vector{UInt8}("xy")))
        @test typeof(copy(u)) === typeof(u) && collect(copy(u)) == Any["xy", 7]
        masked = """{"class": "BitMaskedArray", "mask": "u8", "valid_when": false, "lsb_order": true, "content": $(numpy_json("int64", "node1")), "form_key": "node0"}"""
        b = open_ref(mem, array_ref(mem, masked, 3, "node0-mask" => UInt8[0b010], "node1-data" => Int64[1, 2, 3]))
        @test typeof(copy(b)) === typeof(b) && isequal(collect(copy(b)), [1, missing, 3])
    end

    # Buffers may change after validation: a bad position must be a BoundsError, even in
    # @inbounds code, never a read outside the buffers.
    @testset "an index out of range is a BoundsError, positions from buffers are trusted once validated" begin
        # docs/ownership.md, "Limits": a buffer changed after validation can only hurt its owner's
        # executor (tests/test_executors.py::test_a_buffer_changed_after_validation_hurts_only_its_owner)
        lists = open_ref(mem, array_ref(mem, list_json("i64", numpy_json("float64", "node1")), 2,
                                        "node0-offsets" => Int64[0, 1, 2], "node1-data" => [1.0, 2.0]))
        indexed = """{"class": "IndexedArray", "index": "i64", "content": $option_content, "form_key": "node0"}"""
        optional = replace(indexed, "IndexedArray" => "IndexedOptionArray")
        union = """{"class": "UnionArray", "tags": "i8", "index": "i64", "contents": [$option_content, $(numpy_json("bool", "node2"))], "form_key": "node0"}"""
        views = [lists,
                 open_ref(mem, array_ref(mem, indexed, 2, "node0-index" => Int64[0, 0], "node1-data" => Int64[1])),
                 open_ref(mem, array_ref(mem, optional, 2, "node0-index" => Int64[0, -1], "node1-data" => Int64[1])),
                 open_ref(mem, array_ref(mem, union, 2, "node0-tags" => Int8[0, 1], "node0-index" => Int64[0, 0],
                                          "node1-data" => Int64[1], "node2-data" => UInt8[1])),
                 roundtrip(mem, [(x = 1,), (x = 2,)]), roundtrip(mem, [[1 2], [3 4]]), roundtrip(mem, ["a", "b"])]
        for v in views
            @test length(v) == 2
            @test_throws BoundsError v[0]
            @test_throws BoundsError v[3]
        end
        @test_throws BoundsError lists[2][2]                     # and within a list
        @test_throws BoundsError roundtrip(mem, [(x = 1,)])[1:2]  # and a selection
    end
end

end
