module TestForms

using Test
using AwkwardBridge: parse_form, form_json, parse_json, form_key, parameters, element_type,
                     buffer_roles, form_contents, InvalidArray, Datetime64, NumpyForm, EmptyForm,
                     ListOffsetForm, ListForm, RegularForm, RecordForm, IndexedForm,
                     IndexedOptionForm, ByteMaskedForm, BitMaskedForm, UnmaskedForm, UnionForm
using Dates

numpy(primitive, key) = """{"class": "NumpyArray", "primitive": "$primitive", "inner_shape": [], "parameters": {}, "form_key": "$key"}"""

"""The InvalidArray message `parse_form(json)` raises (fails the test if it raises none)."""
function form_error(json)
    try
        parse_form(json)
    catch err
        err isa InvalidArray && return err.msg
        rethrow()
    end
    error("no InvalidArray for $json")
end

# One form per class, as awkward 2 writes them (ak.forms.Form.to_json).
const EXAMPLES = [
    NumpyForm => numpy("float32", "node0"),
    EmptyForm => """{"class": "EmptyArray", "parameters": {}, "form_key": "node0"}""",
    ListOffsetForm => """{"class": "ListOffsetArray", "offsets": "i64", "content": $(numpy("int64", "node1")), "parameters": {}, "form_key": "node0"}""",
    ListForm => """{"class": "ListArray", "starts": "u32", "stops": "u32", "content": $(numpy("bool", "node1")), "parameters": {}, "form_key": "node0"}""",
    RegularForm => """{"class": "RegularArray", "size": 3, "content": $(numpy("int8", "node1")), "parameters": {}, "form_key": "node0"}""",
    RecordForm => """{"class": "RecordArray", "fields": ["x", "y"], "contents": [$(numpy("int64", "node1")), $(numpy("float64", "node2"))], "parameters": {"__record__": "Point"}, "form_key": "node0"}""",
    RecordForm => """{"class": "RecordArray", "fields": null, "contents": [$(numpy("int64", "node1"))], "parameters": {}, "form_key": "node0"}""",
    IndexedForm => """{"class": "IndexedArray", "index": "i32", "content": $(numpy("float64", "node1")), "parameters": {"__array__": "categorical"}, "form_key": "node0"}""",
    IndexedOptionForm => """{"class": "IndexedOptionArray", "index": "i64", "content": $(numpy("int64", "node1")), "parameters": {}, "form_key": "node0"}""",
    ByteMaskedForm => """{"class": "ByteMaskedArray", "mask": "i8", "valid_when": false, "content": $(numpy("int64", "node1")), "parameters": {}, "form_key": "node0"}""",
    BitMaskedForm => """{"class": "BitMaskedArray", "mask": "u8", "valid_when": true, "lsb_order": false, "content": $(numpy("int64", "node1")), "parameters": {}, "form_key": "node0"}""",
    UnmaskedForm => """{"class": "UnmaskedArray", "content": $(numpy("int64", "node1")), "parameters": {}, "form_key": "node0"}""",
    UnionForm => """{"class": "UnionArray", "tags": "i8", "index": "i64", "contents": [$(numpy("int64", "node1")), $(numpy("bool", "node2"))], "parameters": {}, "form_key": "node0"}""",
]

@testset "forms" begin
    @testset "every class parses and writes back the same JSON" begin
        for (T, json) in EXAMPLES
            f = parse_form(json)
            @test f isa T
            @test form_key(f) == "node0"
            @test parse_json(form_json(f)) == parse_json(json)
        end
    end

    @testset "node contents" begin
        list = parse_form(EXAMPLES[3][2])
        @test list.offsets == "i64"
        @test element_type(list.content) === Int64
        @test buffer_roles(list) == ("offsets",)
        @test form_contents(list) == (list.content,)
        record = parse_form(EXAMPLES[6][2])
        @test record.fields == ["x", "y"]
        @test parameters(record) == Dict{String,Any}("__record__" => "Point")
        @test [form_key(c) for c in form_contents(record)] == ["node1", "node2"]
        @test parse_form(EXAMPLES[7][2]).fields === nothing
        bits = parse_form(EXAMPLES[11][2])
        @test (bits.valid_when, bits.lsb_order) == (true, false)
        @test parse_form(EXAMPLES[5][2]).size == 3
        @test buffer_roles(parse_form(EXAMPLES[13][2])) == ("tags", "index")
    end

    @testset "primitives" begin
        for (primitive, T) in ["bool" => Bool, "uint16" => UInt16, "float16" => Float16,
                               "complex64" => ComplexF32, "complex128" => ComplexF64,
                               "datetime64[ns]" => Datetime64{Nanosecond},
                               "datetime64[D]" => Datetime64{Day}, "timedelta64[us]" => Microsecond,
                               "timedelta64[Y]" => Year]
            @test element_type(parse_form(numpy(primitive, "k"))) === T
        end
        shaped = parse_form("""{"class": "NumpyArray", "primitive": "int16", "inner_shape": [3, 0]}""")
        @test shaped.inner_shape == [3, 0]
    end

    @testset "optional keys take awkward's defaults" begin
        f = parse_form("""{"class": "ListOffsetArray", "offsets": "i32", "content": {"class": "NumpyArray", "primitive": "uint8"}}""")
        @test form_key(f) === nothing
        @test parameters(f) == Dict{String,Any}()
        @test f.content.inner_shape == Int[]
        @test parameters(parse_form("""{"class": "EmptyArray", "parameters": null}""")) == Dict{String,Any}()
    end

    @testset "user parameters round-trip" begin
        json = """{"class": "NumpyArray", "primitive": "int64", "inner_shape": [], "parameters": {"foo": {"a": [1, 2.5, null, true, "é\\n"]}, "n": NaN}, "form_key": "x"}"""
        f = parse_form(json)
        @test f.parameters["foo"] == Dict{String,Any}("a" => Any[1, 2.5, nothing, true, "é\n"])
        @test isnan(parse_json(form_json(f))["parameters"]["n"])
    end

    @testset "malformed forms name the node" begin
        content = numpy("int64", "node1")
        @test occursin("not valid JSON", form_error("{\"class\": "))
        @test occursin("expected an object", form_error("[1]"))
        @test occursin("missing \"class\"", form_error("""{"form_key": "a"}"""))
        @test form_error("""{"class": "Foo", "form_key": "a"}""") == "form at root: unknown class \"Foo\""
        @test form_error("""{"class": "ListOffsetArray", "offsets": "i64", "form_key": "node3"}""") ==
              "form node node3 (ListOffsetArray): missing \"content\""
        @test form_error("""{"class": "ListOffsetArray", "offsets": "i64", "content": {"class": "NumpyArray", "primitive": "int128"}}""") ==
              "form node at root.content (NumpyArray): unsupported primitive \"int128\""
        @test occursin("\"offsets\" must be one of i32, u32, i64, not \"i16\"",
                       form_error("""{"class": "ListOffsetArray", "offsets": "i16", "content": $content}"""))
        @test occursin("\"index\" must be one of i32, i64",
                       form_error("""{"class": "IndexedOptionArray", "index": "u32", "content": $content}"""))
        @test occursin("\"starts\" (i32) and \"stops\" (i64) differ",
                       form_error("""{"class": "ListArray", "starts": "i32", "stops": "i64", "content": $content}"""))
        @test occursin("\"size\" must be non-negative",
                       form_error("""{"class": "RegularArray", "size": -1, "content": $content}"""))
        @test occursin("\"size\" must be an integer, not a string",
                       form_error("""{"class": "RegularArray", "size": "3", "content": $content}"""))
        @test occursin("1 fields but 2 contents",
                       form_error("""{"class": "RecordArray", "fields": ["x"], "contents": [$content, $(numpy("int8", "n2"))]}"""))
        @test occursin("field names repeat",
                       form_error("""{"class": "RecordArray", "fields": ["x", "x"], "contents": [$content, $(numpy("int8", "n2"))]}"""))
        @test occursin("\"fields\" must be an array of strings or null",
                       form_error("""{"class": "RecordArray", "fields": [1], "contents": [$content]}"""))
        @test occursin("\"contents\" must be an array",
                       form_error("""{"class": "RecordArray", "fields": null, "contents": {"x": $content}}"""))
        @test occursin("missing \"valid_when\"",
                       form_error("""{"class": "ByteMaskedArray", "mask": "i8", "content": $content}"""))
        @test occursin("\"mask\" must be one of i8",
                       form_error("""{"class": "ByteMaskedArray", "mask": "u8", "valid_when": true, "content": $content}"""))
        @test occursin("\"lsb_order\" must be a boolean",
                       form_error("""{"class": "BitMaskedArray", "mask": "u8", "valid_when": true, "lsb_order": 1, "content": $content}"""))
        @test occursin("\"contents\" is empty",
                       form_error("""{"class": "UnionArray", "tags": "i8", "index": "i64", "contents": []}"""))
        @test occursin("\"tags\" must be one of i8",
                       form_error("""{"class": "UnionArray", "tags": "i64", "index": "i64", "contents": [$content]}"""))
        @test occursin("\"inner_shape\" must be an array of non-negative integers",
                       form_error("""{"class": "NumpyArray", "primitive": "int8", "inner_shape": [-1]}"""))
        @test occursin("\"inner_shape\" must be an array of non-negative integers",
                       form_error("""{"class": "NumpyArray", "primitive": "int8", "inner_shape": [null]}"""))
        @test occursin("\"parameters\" must be an object",
                       form_error("""{"class": "NumpyArray", "primitive": "int8", "parameters": []}"""))
        @test occursin("\"form_key\" must be a string or null",
                       form_error("""{"class": "NumpyArray", "primitive": "int8", "form_key": 3}"""))
        @test occursin("form at root.content: expected an object, not a number",
                       form_error("""{"class": "UnmaskedArray", "content": 5}"""))
        @test occursin("form at root.contents[1]: unknown class",
                       form_error("""{"class": "RecordArray", "fields": null, "contents": [$content, {"class": "X"}]}"""))
        @test occursin("form_key \"node1\" is used by more than one node",
                       form_error("""{"class": "RecordArray", "fields": null, "contents": [$content, $content]}"""))
    end

    @testset "nesting limit" begin
        nest(depth) = depth == 1 ? numpy("int8", "leaf") :
                      """{"class": "UnmaskedArray", "content": $(nest(depth - 1))}"""
        @test parse_form(nest(32)) isa UnmaskedForm
        @test occursin("nested deeper than 32 nodes", form_error(nest(33)))
    end
end

end
