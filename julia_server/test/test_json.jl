module TestJSON

using Test
using AwkwardBridge: parse_json, json_string, JSONError

@testset "json" begin
    @testset "reads every JSON type" begin
        doc = parse_json(""" {"a": [1, -2.5, "x", true, false, null], "b": {}, "c": []} """)
        @test doc == Dict{String,Any}("a" => Any[1, -2.5, "x", true, false, nothing],
                                      "b" => Dict{String,Any}(), "c" => Any[])
        @test doc isa Dict{String,Any}
        @test parse_json("7") isa Int64
        @test parse_json("-0") === 0
        @test parse_json("7.0") isa Float64
        @test parse_json("1e3") === 1000.0
        @test parse_json("2.5E-1") === 0.25
        @test parse_json("9223372036854775807") === typemax(Int64)
    end

    @testset "string escapes and UTF-8" begin
        # JSON text: "q\"b\\s\/n\nt\tu\u00e9"
        @test parse_json("\"q\\\"b\\\\s\\/n\\nt\\tu\\u00e9\"") == "q\"b\\s/n\nt\tué"
        @test parse_json(raw""" "\ud83d\ude00" """) == "😀"
        @test parse_json(" \"déjà\" ") == "déjà"
    end

    @testset "non-finite floats as Python writes them" begin
        @test isnan(parse_json("NaN"))
        @test parse_json("[Infinity, -Infinity]") == [Inf, -Inf]
    end

    @testset "malformed input is a JSONError" begin
        for bad in ["", "{", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\": 1,}", "{1: 2}", "01", "1.",
                    "-", "1e", "\"abc", raw"\"\x\"", raw"\"\ud800\"", raw"\"\udc00\"",
                    raw"\"\ud800\u0041\"", raw"\"\u12\"", "tru", "nul", "1 2", "\"a\nb\"",
                    "{\"a\": 1, \"a\": 2}", "99999999999999999999", String(UInt8[0x22, 0xff, 0x22])]
            @test_throws JSONError parse_json(bad)
        end
        err = try parse_json("[1, }") catch e; e end
        @test occursin("at byte 4", err.msg)
    end

    @testset "nesting limit" begin
        @test parse_json("["^64 * "]"^64) isa Vector{Any}
        @test_throws JSONError parse_json("["^65 * "]"^65)
        @test_throws JSONError parse_json("""{"a": {"b": 1}}"""; max_depth=1)
        @test parse_json("""{"a": 1}"""; max_depth=1) == Dict{String,Any}("a" => 1)
    end

    @testset "writer" begin
        @test json_string(Dict("b" => 1, "a" => Any[1.5, nothing, true, "x\"\\\n"])) ==
              """{"a": [1.5, null, true, "x\\"\\\\\\u000a"], "b": 1}"""
        @test json_string(Any[NaN, Inf, -Inf, 0.5f0, :sym, (1, 2)]) ==
              """[NaN, Infinity, -Infinity, 0.5, "sym", [1, 2]]"""
        value = Dict{String,Any}("k" => Any[1, 2.25, "é😀", nothing, Dict{String,Any}("z" => false)])
        @test parse_json(json_string(value)) == value
        @test_throws JSONError json_string(Any[1 + 2im])
    end
end

end
