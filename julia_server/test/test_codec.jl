module TestCodec

using Test, Dates
import AwkwardBridge
using AwkwardBridge: is_placeable, parse_form, parse_json, form_key, ResultTypeError,
                     ListVector, RegularVector, StringVector, RecordVector, Record,
                     IndexedOptionVector, ByteMaskedVector, BitMaskedVector, UnmaskedVector,
                     IndexedVector, UnionVector, Datetime64, parameters

include("memory_helpers.jl")

"""The InvalidArray message opening `ref` raises (fails the test if it raises none)."""
function invalid(mem, ref; resolve=resolver(mem))
    try
        open_array(ref, resolve)
    catch err
        err isa InvalidArray && return err.msg
        rethrow()
    end
    error("no InvalidArray for $(ref.form)")
end

list_json(content; offsets="i64") =
    """{"class": "ListOffsetArray", "offsets": "$offsets", "content": $content, "form_key": "node0"}"""
indexed_json(class, index="i64") =
    """{"class": "$class", "index": "$index", "content": $(numpy_json("int64", "node1")), "form_key": "node0"}"""
union_json = """{"class": "UnionArray", "tags": "i8", "index": "i64", "contents": [$(numpy_json("int64", "node1")), $(numpy_json("float64", "node2"))], "form_key": "node0"}"""
list_array_json = """{"class": "ListArray", "starts": "i64", "stops": "i64", "content": $(numpy_json("int64", "node1")), "form_key": "node0"}"""

"""A record type of the tests' own (a struct result becomes a record named after it)."""
struct Hit
    x::Float32
    n::Int8
end

"""Views and Julia values as plain nested Vectors, NamedTuples and tuples, for comparing."""
materialize(x::AbstractVector) = [materialize(e) for e in x]
materialize(r::Record) = map(materialize, NamedTuple(r))
materialize(x::Union{Tuple,NamedTuple}) = map(materialize, x)
materialize(h::Hit) = (x = h.x, n = h.n)
materialize(x) = x

"""
A vector of lists that gains `extra` lists when its second iteration starts (the fill pass's), as
one that another thread grows while the result is written would.
"""
mutable struct GrowsWhileFilled{L} <: AbstractVector{L}
    lists::Vector{L}
    extra::Vector{L}
    iterations::Int
end
GrowsWhileFilled(lists, extra) = GrowsWhileFilled(lists, extra, 0)
Base.size(g::GrowsWhileFilled) = size(g.lists)
Base.getindex(g::GrowsWhileFilled, i::Int) = g.lists[i]
function Base.iterate(g::GrowsWhileFilled, i = 1)
    i == 1 && (g.iterations += 1) == 2 && append!(g.lists, g.extra)
    return i <= length(g.lists) ? (g.lists[i], i + 1) : nothing
end

"""A vector of 2 elements whose size changes by `step` after it is first asked."""
mutable struct Shifty <: AbstractVector{Int}
    calls::Int
    step::Int
end
Base.size(s::Shifty) = (s.calls += 1; (2 + s.step * (s.calls > 1),))
Base.getindex(s::Shifty, i::Int) = i

"""The form of a placed array as parsed JSON, for comparing structure."""
placed_form(ref) = parse_json(ref.form)

@testset "codec" begin
    mem = TestMemory()
    ints = numpy_json("int64", "node1")

    @testset "validation: buffer list, sizes, alignment" begin
        @test invalid(mem, array_ref(mem, list_json(ints), 1, "node0-offsets" => Int64[0, 1])) ==
              "node1 (NumpyArray) buffer node1-data: missing"
        @test invalid(mem, array_ref(mem, numpy_json("int64", "node0"), 1, "node0-data" => [1], "node9-data" => [1])) ==
              "buffer node9-data is not part of the form"
        @test invalid(mem, array_ref(mem, numpy_json("int64", "node0"), 2, "node0-data" => [1])) ==
              "node0 (NumpyArray) buffer node0-data: holds 1 items but the array needs 2"
        @test invalid(mem, array_ref(mem, numpy_json("int64", "node0"), -1, "node0-data" => [1])) ==
              "array length -1 is negative"
        ref = array_ref(mem, numpy_json("int32", "node0"), 1, "node0-data" => Int8[1, 2, 3, 4, 5])
        @test occursin("nbytes 5 is not a multiple of the item size 4", invalid(mem, ref))
        ref = array_ref(mem, numpy_json("int32", "node0"), 1, "node0-data" => Int32[1, 2])
        moved = ArrayRef(ref.form, 1, Dict("node0-data" => BufferRef(ref.buffers["node0-data"].segment, 2, 4)))
        @test occursin("offset 2 is not a multiple of the item size 4", invalid(mem, moved))
        negative = ArrayRef(ref.form, 1, Dict("node0-data" => BufferRef(ref.buffers["node0-data"].segment, 0, -4)))
        @test occursin("nbytes -4 is negative", invalid(mem, negative))
        misaligned = b -> resolver(mem)(b) + 1
        @test occursin("mapped address is not aligned to 4 bytes", invalid(mem, ref; resolve=misaligned))
        outside = ArrayRef(ref.form, 1, Dict("node0-data" => BufferRef(ref.buffers["node0-data"].segment, 0, 4096)))
        @test invalid(mem, outside) ==
              "node0 (NumpyArray) buffer node0-data: buffer outside segment $(ref.buffers["node0-data"].segment)"
        @test occursin("needs buffers but has no form_key",
                       invalid(mem, ArrayRef("""{"class": "NumpyArray", "primitive": "int8"}""", 0, Dict{String,BufferRef}())))
        @test occursin("unknown class", invalid(mem, ArrayRef("""{"class": "Nope"}""", 0, Dict{String,BufferRef}())))
    end

    @testset "validation: offsets, starts and stops" begin
        @test invalid(mem, array_ref(mem, list_json(ints), 3, "node0-offsets" => Int64[0, 2, 1, 3], "node1-data" => [1, 2, 3])) ==
              "node0 (ListOffsetArray) buffer node0-offsets: offsets decrease at position 2"
        @test occursin("offset -1 at position 0 is negative",
                       invalid(mem, array_ref(mem, list_json(ints), 1, "node0-offsets" => Int64[-1, 0], "node1-data" => Int64[])))
        @test invalid(mem, array_ref(mem, list_json(ints; offsets="i32"), 1, "node0-offsets" => Int32[0, 4], "node1-data" => [1, 2])) ==
              "node1 (NumpyArray) buffer node1-data: holds 2 items but the array needs 4"
        @test occursin("holds 1 items but the array needs 2",
                       invalid(mem, array_ref(mem, list_json(ints), 1, "node0-offsets" => Int64[0], "node1-data" => Int64[])))
        @test occursin("overflows", invalid(mem, array_ref(mem, list_json(ints), typemax(Int), "node0-offsets" => Int64[0], "node1-data" => Int64[])))

        starts_stops(starts, stops, data=[1, 2, 3]) =
            array_ref(mem, list_array_json, length(starts), "node0-starts" => starts, "node0-stops" => stops, "node1-data" => data)
        @test invalid(mem, starts_stops([0, -1], [1, 2])) ==
              "node0 (ListArray) buffer node0-starts: start -1 at position 1 is negative"
        @test invalid(mem, starts_stops([2, 0], [1, 1])) ==
              "node0 (ListArray) buffer node0-stops: stop 1 at position 0 is below its start 2"
        @test occursin("holds 3 items but the array needs 9", invalid(mem, starts_stops([0], [9])))
        # an empty list may point anywhere, as in awkward
        @test collect.(open_ref(mem, starts_stops([-5, 1], [-5, 3]))) == [Int[], [2, 3]]
    end

    @testset "validation: indexes, masks, tags" begin
        indexed(class, index, data) = array_ref(mem, indexed_json(class), length(index), "node0-index" => index, "node1-data" => data)
        @test invalid(mem, indexed("IndexedArray", [0, -1], [1])) ==
              "node0 (IndexedArray) buffer node0-index: index -1 at position 1 is negative"
        @test occursin("holds 1 items but the array needs 3", invalid(mem, indexed("IndexedArray", [2, 0], [1])))
        @test isequal(collect(open_ref(mem, indexed("IndexedOptionArray", [-1, 0], [4]))), [missing, 4])
        @test occursin("holds 1 items but the array needs 2", invalid(mem, indexed("IndexedOptionArray", [-1, 1], [4])))
        @test occursin("overflows", invalid(mem, indexed("IndexedArray", [typemax(Int64)], [1])))

        bytemasked = """{"class": "ByteMaskedArray", "mask": "i8", "valid_when": true, "content": $ints, "form_key": "node0"}"""
        @test occursin("node0-mask: holds 1 items but the array needs 2",
                       invalid(mem, array_ref(mem, bytemasked, 2, "node0-mask" => Int8[1], "node1-data" => [1, 2])))
        bitmasked = """{"class": "BitMaskedArray", "mask": "u8", "valid_when": true, "lsb_order": true, "content": $ints, "form_key": "node0"}"""
        @test occursin("node0-mask: holds 1 items but the array needs 2",
                       invalid(mem, array_ref(mem, bitmasked, 9, "node0-mask" => UInt8[1], "node1-data" => collect(1:9))))
        @test length(open_ref(mem, array_ref(mem, bitmasked, 8, "node0-mask" => UInt8[1], "node1-data" => collect(1:8)))) == 8

        union(tags, index) = array_ref(mem, union_json, length(tags), "node0-tags" => Int8.(tags), "node0-index" => index,
                                       "node1-data" => [1], "node2-data" => [2.0])
        @test invalid(mem, union([0, 2], [0, 0])) ==
              "node0 (UnionArray) buffer node0-tags: tag 2 at position 1 is not below the 2 contents"
        @test occursin("tag -1 at position 0", invalid(mem, union([-1], [0])))
        @test invalid(mem, union([0, 1], [0, -3])) ==
              "node0 (UnionArray) buffer node0-index: index -3 at position 1 is negative"
        @test occursin("node2 (NumpyArray) buffer node2-data: holds 1 items but the array needs 2", invalid(mem, union([1, 1], [0, 1])))
        @test collect(open_ref(mem, union([1, 0], [0, 0]))) == Any[2.0, 1]
    end

    @testset "validation: lengths" begin
        regular = """{"class": "RegularArray", "size": 4, "content": $ints, "form_key": "node0"}"""
        @test occursin("node0 (RegularArray): length $(typemax(Int) ÷ 2) × 4 overflows",
                       invalid(mem, array_ref(mem, regular, typemax(Int) ÷ 2, "node1-data" => Int64[])))
        @test occursin("overflows", invalid(mem, array_ref(mem, numpy_json("int8", "node0"; inner_shape="[$(typemax(Int)), 2]"), 1, "node0-data" => Int8[])))
        @test occursin("holds 0 items but the array needs 6",
                       invalid(mem, array_ref(mem, numpy_json("int8", "node0"; inner_shape="[2, 3]"), 1, "node0-data" => Int8[])))
        @test invalid(mem, ArrayRef("""{"class": "EmptyArray", "form_key": "node0"}""", 3, Dict{String,BufferRef}())) ==
              "node0 (EmptyArray): length is 3 but an EmptyArray has no elements"
        record = """{"class": "RecordArray", "fields": ["a"], "contents": [$ints], "form_key": "node0"}"""
        @test occursin("holds 1 items but the array needs 2", invalid(mem, array_ref(mem, record, 2, "node1-data" => [1])))
    end

    @testset "place_array allocates once and aligns buffers" begin
        calls = Int[]
        ref = place_array([(a = [1, 2], b = "xyz"), (a = Int[], b = "")], allocator(mem; calls=calls))
        @test length(calls) == 1
        @test calls[1] > 0 && calls[1] % 64 == 0
        @test ref.length == 2
        @test sort(collect(keys(ref.buffers))) == ["node1-offsets", "node2-data", "node3-offsets", "node4-data"]
        @test all(b -> b.offset % 64 == 0 && b.offset + b.nbytes <= calls[1], values(ref.buffers))
        @test ref.buffers["node1-offsets"].nbytes == 3 * 8
        @test ref.buffers["node2-data"].nbytes == 2 * 8
        @test ref.buffers["node4-data"].nbytes == 3
        form = parse_form(ref.form)
        @test [form_key(form), form_key(form.contents[1]), form_key(form.contents[1].content),
               form_key(form.contents[2]), form_key(form.contents[2].content)] == ["node0", "node1", "node2", "node3", "node4"]
        @test buffer_words(mem, ref, "node1-offsets", Int64) == [0, 2, 2]
        @test String(buffer_words(mem, ref, "node4-data", UInt8)) == "xyz"
        calls = Int[]
        empty = place_array(Any[], allocator(mem; calls=calls))
        @test calls == [64]
        @test placed_form(empty)["class"] == "EmptyArray" && isempty(empty.buffers)
    end

    @testset "Julia values round-trip through buffers" begin
        for x in Any[Int8[1, -2], UInt64[typemax(UInt64)], Float16[0.5], Float32[1.5, NaN32], [1.0, -Inf],
                     ComplexF64[1 + 2im], [true, false, true], BitVector([true, false]), 1:5,
                     [[1, 2], Int[], [3]], [[[1.0], Float64[]], [[2.0, 3.0]]], ["", "ab", "é😀"],
                     [(x = 1, y = [0.5]), (x = 2, y = Float64[])], [(1, "a"), (2, "b")],
                     [Nanosecond(5), Nanosecond(-6)]]
            @test isequal(materialize(roundtrip(mem, x)), materialize(x))
        end
        @test roundtrip(mem, [(x = 1, y = [0.5])])[1] isa Record
        @test NamedTuple(roundtrip(mem, [(x = 1, y = [0.5])])[1]).y == [0.5]
        @test roundtrip(mem, [(1, "a")])[1] === (1, "a")
        @test roundtrip(mem, Float32[])::Vector{Float32} == Float32[]
        @test DateTime.(roundtrip(mem, [DateTime(2020, 1, 2, 3, 4, 5, 6)])) == [DateTime(2020, 1, 2, 3, 4, 5, 6)]
        @test roundtrip(mem, [Date(1969, 12, 31)]) == [Datetime64{Day}(-1)]
    end

    @testset "missing values become IndexedOptionArray" begin
        ref = place_array([1, missing, 3], allocator(mem))
        @test placed_form(ref)["class"] == "IndexedOptionArray"
        @test buffer_words(mem, ref, "node0-index", Int64) == [0, -1, 1]
        @test buffer_words(mem, ref, "node1-data", Int64) == [1, 3]
        @test isequal(collect(roundtrip(mem, Union{Missing,String}["a", missing])), ["a", missing])
        @test isequal(collect.(roundtrip(mem, [[missing, 1], [2]])), [[missing, 1], [2]])
        @test isequal(collect(roundtrip(mem, Any[missing, missing])), [missing, missing])
        lists = place_array([[missing, 1], [2, missing, 3]], allocator(mem))   # one content across the lists
        @test buffer_words(mem, lists, "node1-index", Int64) == [-1, 0, 1, -1, 2]
        @test buffer_words(mem, lists, "node2-data", Int64) == [1, 2, 3]
        @test isequal(collect(roundtrip(mem, Union{Missing,Float64}[missing, missing])), [missing, missing])
        nested = roundtrip(mem, [[1, 2], missing])
        @test nested isa IndexedOptionVector && collect(nested[1]) == [1, 2] && ismissing(nested[2])
    end

    @testset "mixed values: promoted numbers, unions" begin
        promoted = place_array(Any[1, 2.5, Int8(3)], allocator(mem))
        @test placed_form(promoted)["primitive"] == "float64"
        @test roundtrip(mem, Any[1, 2.5]) == [1.0, 2.5]
        u = roundtrip(mem, Any[1, "a", [2.0]])
        @test u isa UnionVector
        @test u[1] === 1 && u[2] == "a" && collect(u[3]) == [2.0]
        ref = place_array(Any[1, "a", missing], allocator(mem))
        form = placed_form(ref)
        @test form["class"] == "UnionArray"
        @test [c["class"] for c in form["contents"]] == ["IndexedOptionArray", "IndexedOptionArray"]
        @test isequal(collect(open_ref(mem, ref)), [1, "a", missing])
        @test [c["primitive"] for c in placed_form(place_array(Any[1, true], allocator(mem)))["contents"]] == ["int64", "bool"]
        records = roundtrip(mem, Any[(a = 1,), (b = "x",), (a = 2.5,)])
        @test records[1].a == 1.0 && records[2].b == "x" && records[3].a == 2.5
    end

    @testset "views written back keep their form's parameters" begin
        point = """{"class": "RecordArray", "fields": ["x"], "contents": [$ints], "parameters": {"__record__": "Point", "user": [1, "u"]}, "form_key": "node0"}"""
        rv = open_ref(mem, array_ref(mem, point, 3, "node1-data" => [1, 2, 3]))
        back = place_array(rv, allocator(mem))
        @test placed_form(back)["parameters"] == Dict{String,Any}("__record__" => "Point", "user" => Any[1, "u"])
        filtered = [r for r in rv if r.x != 2]                 # a Vector{Record} keeps its record name
        @test placed_form(place_array(filtered, allocator(mem)))["parameters"]["__record__"] == "Point"
        @test open_ref(mem, place_array(filtered, allocator(mem))).x == [1, 3]
        @test placed_form(place_array(view(rv, 2:3), allocator(mem)))["parameters"]["__record__"] == "Point"

        listed = """{"class": "ListOffsetArray", "offsets": "i32", "content": $ints, "parameters": {"__list__": "Track"}, "form_key": "node0"}"""
        lv = open_ref(mem, array_ref(mem, listed, 2, "node0-offsets" => Int32[0, 1, 3], "node1-data" => [1, 2, 3]))
        back = place_array(lv, allocator(mem))
        @test placed_form(back)["parameters"] == Dict{String,Any}("__list__" => "Track")
        @test placed_form(back)["offsets"] == "i64"
        @test collect.(open_ref(mem, back)) == [[1], [2, 3]]

        strings = roundtrip(mem, roundtrip(mem, ["ab", "c"]))
        @test strings isa StringVector && strings == ["ab", "c"]

        regular = """{"class": "RegularArray", "size": 2, "content": $ints, "form_key": "node0"}"""
        rg = open_ref(mem, array_ref(mem, regular, 2, "node1-data" => [1, 2, 3, 4]))
        back = place_array(rg, allocator(mem))
        @test placed_form(back)["class"] == "RegularArray" && placed_form(back)["size"] == 2
        @test open_ref(mem, back) isa RegularVector
        shaped = open_ref(mem, array_ref(mem, numpy_json("int16", "node0"; inner_shape="[2, 0]"), 3, "node0-data" => Int16[]))
        back = placed_form(place_array(shaped, allocator(mem)))
        @test (back["class"], back["size"], back["content"]["class"], back["content"]["size"]) == ("RegularArray", 2, "RegularArray", 0)

        masked = """{"class": "ByteMaskedArray", "mask": "i8", "valid_when": true, "content": $ints, "parameters": {"p": 1}, "form_key": "node0"}"""
        mv = open_ref(mem, array_ref(mem, masked, 2, "node0-mask" => Int8[0, 1], "node1-data" => [5, 6]))
        back = place_array(mv, allocator(mem))
        @test placed_form(back)["parameters"] == Dict{String,Any}("p" => 1)
        @test isequal(collect(open_ref(mem, back)), [missing, 6])

        categorical = """{"class": "IndexedArray", "index": "i64", "content": $(numpy_json("float64", "node1")), "parameters": {"__array__": "categorical"}, "form_key": "node0"}"""
        cv = open_ref(mem, array_ref(mem, categorical, 4, "node0-index" => [1, 0, 1, 1], "node1-data" => [1.5, 2.5]))
        back = place_array(cv, allocator(mem))
        @test placed_form(back)["parameters"]["__array__"] == "categorical"
        @test buffer_words(mem, back, "node0-index", Int64) == [0, 1, 0, 0]     # each category written once
        @test buffer_words(mem, back, "node1-data", Float64) == [2.5, 1.5]
        @test open_ref(mem, back) isa IndexedVector && open_ref(mem, back) == cv

        unioned = """{"class": "UnionArray", "tags": "i8", "index": "i64", "contents": [$ints, $(numpy_json("bool", "node2"))], "parameters": {"u": true}, "form_key": "node0"}"""
        uv = open_ref(mem, array_ref(mem, unioned, 3, "node0-tags" => Int8[1, 0, 1], "node0-index" => [0, 0, 1],
                                     "node1-data" => [7], "node2-data" => UInt8[0, 1]))
        back = place_array(uv, allocator(mem))
        @test placed_form(back)["parameters"] == Dict{String,Any}("u" => true)
        @test collect(open_ref(mem, back)) == Any[false, 7, true]
    end

    @testset "masked and unmasked views keep their option class" begin
        bytemasked(valid_when, content=ints) =
            """{"class": "ByteMaskedArray", "mask": "i8", "valid_when": $valid_when, "content": $content, "parameters": {"p": 1}, "form_key": "node0"}"""
        bitmasked(lsb_order) =
            """{"class": "BitMaskedArray", "mask": "u8", "valid_when": false, "lsb_order": $lsb_order, "content": $ints, "form_key": "node0"}"""

        # a content longer than the array is written only as far as the array reaches
        mv = open_ref(mem, array_ref(mem, bytemasked(false), 3, "node0-mask" => Int8[0, 2, 0], "node1-data" => [5, 6, 7, 8]))
        back = place_array(mv, allocator(mem))
        form = placed_form(back)
        @test (form["class"], form["mask"], form["valid_when"], form["parameters"]) ==
              ("ByteMaskedArray", "i8", false, Dict{String,Any}("p" => 1))
        @test buffer_words(mem, back, "node0-mask", Int8) == [0, 1, 0]
        @test buffer_words(mem, back, "node1-data", Int64) == [5, 6, 7]
        @test open_ref(mem, back) isa ByteMaskedVector && isequal(collect(open_ref(mem, back)), [5, missing, 7])

        # ten elements, valid where the bit is clear: 1, 3, 4 and 10
        for (lsb_order, mask) in ((true, UInt8[0b11110010, 0b00000001]), (false, UInt8[0b01001111, 0b10000000]))
            bv = open_ref(mem, array_ref(mem, bitmasked(lsb_order), 10, "node0-mask" => mask, "node1-data" => collect(1:10)))
            expected = [1, missing, 3, 4, missing, missing, missing, missing, missing, 10]
            @test isequal(collect(bv), expected)
            back = place_array(bv, allocator(mem))
            form = placed_form(back)
            @test (form["class"], form["valid_when"], form["lsb_order"]) == ("BitMaskedArray", false, lsb_order)
            @test back.buffers["node0-mask"].nbytes == 2 && buffer_words(mem, back, "node0-mask", UInt8) == mask
            @test isequal(collect(open_ref(mem, back)), expected)
            # a contiguous part starts at another bit: its mask is packed again from bit 0
            part = place_array(view(bv, 2:10), allocator(mem))
            @test part.buffers["node0-mask"].nbytes == 2 && isequal(collect(open_ref(mem, part)), expected[2:10])
        end

        unmasked = """{"class": "UnmaskedArray", "content": $ints, "form_key": "node0"}"""
        back = place_array(open_ref(mem, array_ref(mem, unmasked, 2, "node1-data" => [3, 4])), allocator(mem))
        @test placed_form(back)["class"] == "UnmaskedArray" && collect(keys(back.buffers)) == ["node1-data"]
        @test open_ref(mem, back) isa UnmaskedVector && collect(open_ref(mem, back)) == [3, 4]

        listed = """{"class": "ListOffsetArray", "offsets": "i64", "content": {"class": "ByteMaskedArray", "mask": "i8", "valid_when": true, "content": $(numpy_json("float64", "node2")), "form_key": "node1"}, "form_key": "node0"}"""
        lv = open_ref(mem, array_ref(mem, listed, 2, "node0-offsets" => Int64[0, 3, 4],
                                     "node1-mask" => Int8[1, 0, 1, 1], "node2-data" => [1.5, 2.5, 3.5, 4.5]))
        back = place_array(lv, allocator(mem))
        @test placed_form(back)["content"]["class"] == "ByteMaskedArray"
        @test isequal(collect.(open_ref(mem, back)), [[1.5, missing, 3.5], [4.5]])
        @test buffer_words(mem, back, "node1-mask", Int8) == [1, 0, 1, 1]
    end

    @testset "masked options written element by element fill missing slots with placeholders" begin
        chars = numpy_json("uint8", "node5"; parameters="""{"__array__": "char"}""")
        string = """{"class": "ListOffsetArray", "offsets": "i64", "content": $chars, "parameters": {"__array__": "string"}, "form_key": "node4"}"""
        record = """{"class": "RecordArray", "fields": ["x", "t", "s"], "contents": [$(numpy_json("int64", "node2")), $(numpy_json("datetime64[s]", "node3")), $string], "form_key": "node1"}"""
        masked = """{"class": "ByteMaskedArray", "mask": "i8", "valid_when": true, "content": $record, "form_key": "node0"}"""
        mv = open_ref(mem, array_ref(mem, masked, 3, "node0-mask" => Int8[1, 0, 1], "node2-data" => [7, 8, 9],
                                     "node3-data" => [10, 20, 30], "node4-offsets" => Int64[0, 1, 1, 3], "node5-data" => UInt8[0x61, 0x62, 0x63]))
        picked = view(mv, [3, 2, 1])    # not contiguous: written value by value
        back = place_array(picked, allocator(mem))
        form = placed_form(back)
        @test form["class"] == "ByteMaskedArray" && form["content"]["class"] == "RecordArray"
        @test buffer_words(mem, back, "node0-mask", Int8) == [1, 0, 1]
        @test buffer_words(mem, back, "node2-data", Int64) == [9, 0, 7]          # 0 stands in for the missing x
        @test buffer_words(mem, back, "node3-data", Int64) == [30, 0, 10]
        @test buffer_words(mem, back, "node4-offsets", Int64) == [0, 2, 2, 3]    # and "" for the missing string
        @test isequal(materialize(open_ref(mem, back)), materialize(collect(picked)))
    end

    @testset "options built in Julia, merged, or over an option become IndexedOptionArray" begin
        mv = open_ref(mem, array_ref(mem, """{"class": "ByteMaskedArray", "mask": "i8", "valid_when": true, "content": $ints, "form_key": "node0"}""",
                                     2, "node0-mask" => Int8[1, 0], "node1-data" => [5, 6]))
        @test placed_form(place_array([mv], allocator(mem)))["content"]["class"] == "ByteMaskedArray"
        merged = place_array([mv, mv], allocator(mem))          # two plans merged: values, not one view
        @test placed_form(merged)["content"]["class"] == "IndexedOptionArray"
        @test isequal(collect.(open_ref(mem, merged)), [[5, missing], [5, missing]])
        @test placed_form(place_array(collect(mv), allocator(mem)))["class"] == "IndexedOptionArray"
        # awkward lets no ByteMasked, BitMasked or Unmasked array hold an option directly
        nested = UnmaskedVector(IndexedOptionVector([1, 2], [1, -1], Dict{String,Any}()), Dict{String,Any}("u" => 1))
        back = place_array(nested, allocator(mem))
        @test placed_form(back)["class"] == "IndexedOptionArray" && placed_form(back)["content"]["class"] == "NumpyArray"
        @test isequal(collect(open_ref(mem, back)), [2, missing])
    end

    @testset "unsupported results raise ResultTypeError naming the type" begin
        for (x, name) in ((Dict(1 => 2), "Dict{$Int,$Int}"), ([Dict("a" => 1)], "Dict{String,$Int}"),
                          ([nothing], "Nothing"), (Int128[1], "Int128"), (Any[1, big(2)], "BigInt"),
                          (3, "$Int"), ([1 // 2], "Rational{$Int}"))
            err = try place_array(x, allocator(mem)); nothing catch e; e end
            @test err isa ResultTypeError
            @test occursin(name, err.msg)
        end
    end

    # Strings and `Vector`s of numbers go through their own loop (`fill_dense_lists!`): short lists
    # item by item, long ones (16 items or more) by memmove; other lists by the general one.
    @testset "strings and vectors of numbers, each length on both sides of 16" begin
        lengths = [0, 1, 2, 15, 16, 17, 40, 0, 3]
        cases = Any[[rand(Float32, n) for n in lengths], [rand(Int8, n) for n in lengths],
                    [rand(Bool, n) for n in lengths], [collect(1.0:n) for n in lengths],
                    [String(rand('a':'z', n)) for n in lengths], ["", "é", "naïve ☃", "x"^40, "\0"],
                    Vector{Float64}[], String[], [Vector{Float32}[] for _ in 1:2], [["a"], Union{}[]],
                    [(pt = 1.0f0, jets = Float32[1, 2]), (pt = 2.0f0, jets = Float32[])],
                    [(name = "e", n = 1), (name = "μ", n = 2)]]
        for x in cases
            back = place_array(x, allocator(mem))
            @test isequal(materialize(open_ref(mem, back)), x)
        end
        @test placed_form(place_array(["ab"], allocator(mem)))["parameters"]["__array__"] == "string"
        Codec = AwkwardBridge.Codec
        generic = which(Codec.fill_lists!, Tuple{Codec.ListPlan,Codec.Plan,Any})
        for L in (Vector{Float32}, Vector{Bool}, String)
            plan = Codec.plan_for_array(L[])
            @test which(Codec.fill_lists!, Tuple{Codec.ListPlan,typeof(plan.content),Vector{L}}) !== generic
        end
    end

    # Lists of one record type with number fields are written row by row (`fill_record_rows!`);
    # with another field, or records of mixed types, column by column.
    @testset "a user's struct is a record; Julia's own structs are not" begin
        is_struct_record = AwkwardBridge.Codec.is_struct_record
        @test is_struct_record(Hit)
        for T in (typeof(enumerate([1])), typeof(zip([1], [2])), typeof(1 => 2), typeof(Iterators.reverse([1])),
                  Rational{Int}, Dict{String,Int}, typeof(x -> x))
            @test !is_struct_record(T)
        end
        @test_throws ResultTypeError place_array([enumerate([1])], allocator(mem))
    end

    @testset "lists of records, row by row or column by column" begin
        lengths = [0, 1, 3, 0, 17, 2]
        cases = Any[[[(x = Float32(j), y = j) for j in 1:n] for n in lengths],
                    [[Hit(j, -j) for j in 1:n] for n in lengths],
                    [[(j, j > 1) for j in 1:n] for n in lengths],
                    [[(x = j, s = "s$j") for j in 1:n] for n in lengths],
                    [Any[(x = 1, y = 2.0), (x = 3, y = 4)], Any[]],
                    [[[(x = j,)] for j in 1:n] for n in lengths],
                    [[NamedTuple()], NamedTuple{(),Tuple{}}[]],
                    [(pt = 1.0f0, jets = [(x = 1, y = 2.0)]), (pt = 2.0f0, jets = NamedTuple{(:x, :y),Tuple{Int,Float64}}[])]]
        for x in cases
            @test isequal(materialize(open_ref(mem, place_array(x, allocator(mem)))), materialize(x))
        end
        back = open_ref(mem, place_array([[Hit(1, 2)]], allocator(mem)))
        @test parameters(back[1])["__record__"] == "Hit" && back[1][1].n === Int8(2)
        row_columns = AwkwardBridge.Codec.row_columns
        for (x, by_rows) in (([[Hit(1, 2)]], true), ([[(x = 1, y = 2.0)]], true), ([[(1, true)]], true),
                             ([[(x = 1, s = "a")]], false), ([Any[(x = 1, y = 2.0)]], false))
            plan = AwkwardBridge.Codec.plan_for_array(x)
            @test (row_columns(plan.content, x) !== nothing) == by_rows
        end
    end

    @testset "results made of views: planned once per origin, written column by column" begin
        P = AwkwardBridge.Parameters
        codec = AwkwardBridge.Codec
        named = RecordVector((x = [1, 2, 3], y = Float32[4, 5, 6]), 3, P("__record__" => "Point"))
        plain = RecordVector((x = [7, 8], y = Float32[9, 10]), 2, P())
        for x in Any[[named[1:2], named[2:3], named[Int[]]],          # views of one record array
                     [named[1:2], plain[2:2], named[[3, 1]]],         # of two, of the same type
                     [collect(named[1:2]), eltype(named)[], collect(plain)],
                     [named[1], plain[2], named[3]],
                     [RecordVector((x = [i], y = Float32[i]), 1, P("__record__" => "P$i")) for i in 1:12]]
            @test isequal(materialize(open_ref(mem, place_array(x, allocator(mem)))), materialize(x))
        end
        @test placed_form(place_array([named[1:2], named[3:3]], allocator(mem)))["content"]["parameters"] ==
              Dict{String,Any}("__record__" => "Point")
        # one origin for every view of one array, whichever rows; another for another array
        @test codec.plan_origin(named[1:2]) === codec.plan_origin(named[[3]])
        @test codec.plan_origin(named[1:2]) !== codec.plan_origin(plain[1:2])
        @test codec.plan_origin(named[1]) === codec.plan_origin(named[2]) !== codec.plan_origin(plain[1])
        @test codec.plan_origin([named[1], named[3]]) === codec.plan_origin([named[2]]) !== codec.plan_origin([named[1], plain[1]])
        # records of views are written a column at a time
        plan = codec.plan_for_array([named[1], named[2]])
        @test codec.record_columns_of(plan, [named[1], named[2]]) !== nothing
        # lists of a few types (some `Vector{Missing}`) are planned by type
        mixed = [isodd(i) ? Float64[i, i] : Missing[] for i in 1:5]
        @test isequal(materialize(open_ref(mem, place_array(mixed, allocator(mem)))), materialize(mixed))
        @test codec.origin_decides(Vector{Float64}) && !codec.origin_decides(Vector{Any})
    end

    @testset "is_placeable" begin
        @test is_placeable([1, 2]) && is_placeable(Any[]) && is_placeable(1:3) && is_placeable(["a"])
        @test !is_placeable(1) && !is_placeable("abc") && !is_placeable((1, 2)) && !is_placeable(Dict("a" => 1))
    end

    # A source whose size changes between the measure and fill passes must not write outside
    # the block it was measured for.
    @testset "a result that changes while written raises" begin
        @test_throws BoundsError place_array(Shifty(0, 5), allocator(mem))
        @test_throws BoundsError place_array([Shifty(0, 5)], allocator(mem))
        err = try place_array([Shifty(0, -1)], allocator(mem)); nothing catch e; e end
        @test err isa ArgumentError && occursin("changed while it was written", err.msg)
        # a list of a vector of lists that grows, or shrinks, once measured (while allocating)
        changing(change!) = nbytes -> (change!(); allocator(mem)(nbytes))
        lists = [Float32[1, 2], Float32[3]]
        @test_throws BoundsError place_array(lists, changing(() -> push!(lists[1], 9)))
        lists = [Float32[1, 2], Float32[3]]
        err = try place_array(lists, changing(() -> pop!(lists[1]))); nothing catch e; e end
        @test err isa ArgumentError && occursin("changed while it was written", err.msg)
        # lists that another thread appends while the lists are written: an error, and not a
        # byte written after the block
        XY = NamedTuple{(:x, :y),Tuple{Int,Float64}}
        for (lists, extra) in (([Float32[1], Float32[]], [Float32[] for _ in 1:50]), (["a", ""], fill("", 50)),
                               ([[(x = 1, y = 2.0)], XY[]], [XY[] for _ in 1:50]))
            block = UInt8[]
            guarded(nbytes) = (append!(block, zeros(UInt8, nbytes)); append!(block, fill(0xaa, 4096)); ("guarded", 0, pointer(block)))
            growing = GrowsWhileFilled(collect(lists), extra)
            @test_throws BoundsError place_array(growing, guarded)
            @test growing.iterations == 2 && all(==(0xaa), block[end-4095:end])
        end
        records = [[(x = 1, y = 2.0)], [(x = 3, y = 4.0)]]
        @test_throws BoundsError place_array(records, changing(() -> push!(records[2], (x = 5, y = 6.0))))
        records = [[(x = 1, y = 2.0)], [(x = 3, y = 4.0)]]
        err = try place_array(records, changing(() -> empty!(records[1]))); nothing catch e; e end
        @test err isa ArgumentError && occursin("changed while it was written", err.msg)
    end
end

end
