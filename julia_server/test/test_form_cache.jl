module TestFormCache

using Test
using AwkwardBridge: FormCache, cached_form, parse_form, form_json, parameters, FORM_CACHE,
                     FORM_CACHE_MAX_JSON

include("memory_helpers.jl")

numpy_json(key; parameters = "{}") =
    """{"class": "NumpyArray", "primitive": "float64", "inner_shape": [], "parameters": $parameters, "form_key": "$key"}"""
list_json(; parameters = "{}") =
    """{"class": "ListOffsetArray", "offsets": "i64", "content": $(numpy_json("node1")), "parameters": $parameters, "form_key": "node0"}"""

"""The InvalidArray message of `f()` (fails the test if it raises none)."""
function invalid_message(f)
    try
        f()
    catch err
        err isa InvalidArray && return err.msg
        rethrow()
    end
    error("no InvalidArray")
end

@testset "form cache" begin
    @testset "a hit returns the form parsed the first time" begin
        cache = FormCache(4)
        json = list_json()
        first = cached_form(cache, json)
        @test cached_form(cache, json) === first
        @test form_json(first) == form_json(parse_form(json))
        @test length(cache) == 1
    end

    @testset "malformed JSON is refused every time and never kept" begin
        cache = FormCache(4)
        for _ in 1:2
            @test occursin("not valid JSON", invalid_message(() -> cached_form(cache, "{\"class\": ")))
            @test occursin("unknown class", invalid_message(() -> cached_form(cache, """{"class": "Nope"}""")))
        end
        @test length(cache) == 0
    end

    @testset "bounded: the oldest form goes first" begin
        cache = FormCache(3)
        jsons = [numpy_json("node$i") for i in 1:5]
        forms = [cached_form(cache, j) for j in jsons]
        @test length(cache) == 3
        @test all(cached_form(cache, jsons[i]) === forms[i] for i in 3:5)   # kept
        again = cached_form(cache, jsons[1])                                 # dropped: parsed anew
        @test again !== forms[1] && form_json(again) == form_json(forms[1])
        @test length(cache) == 3
        @test cached_form(cache, jsons[3]) !== forms[3]   # the oldest when jsons[1] came back
    end

    @testset "forms longer than FORM_CACHE_MAX_JSON are parsed but not kept" begin
        cache = FormCache(4)
        long = list_json(parameters = """{"note": "$("x" ^ FORM_CACHE_MAX_JSON)"}""")
        @test parameters(cached_form(cache, long))["note"] == "x"^FORM_CACHE_MAX_JSON
        @test length(cache) == 0
    end

    @testset "open_array still validates every array of a cached form" begin
        mem = TestMemory()
        json = list_json()
        good = array_ref(mem, json, 2, "node0-offsets" => Int64[0, 2, 3], "node1-data" => [1.0, 2.0, 3.0])
        @test collect.(open_ref(mem, good)) == [[1.0, 2.0], [3.0]]
        @test cached_form(FORM_CACHE, json) === cached_form(FORM_CACHE, json)   # now a hit
        decreasing = array_ref(mem, json, 2, "node0-offsets" => Int64[0, 2, 1], "node1-data" => [1.0, 2.0, 3.0])
        @test occursin("offsets decrease at position 2", invalid_message(() -> open_ref(mem, decreasing)))
        short = array_ref(mem, json, 2, "node0-offsets" => Int64[0, 2, 4], "node1-data" => [1.0, 2.0, 3.0])
        @test occursin("holds 3 items but the array needs 4", invalid_message(() -> open_ref(mem, short)))
        missing_buffer = array_ref(mem, json, 2, "node0-offsets" => Int64[0, 2, 3])
        @test occursin("node1-data: missing", invalid_message(() -> open_ref(mem, missing_buffer)))
        @test collect.(open_ref(mem, good)) == [[1.0, 2.0], [3.0]]
    end

    @testset "a view's parameters are its own, not the cached form's" begin
        mem = TestMemory()
        json = list_json(parameters = """{"__list__": "Track", "tags": ["a"]}""")
        ref = array_ref(mem, json, 1, "node0-offsets" => Int64[0, 1], "node1-data" => [1.0])
        first = open_ref(mem, ref)
        parameters(first)["__list__"] = "changed"
        push!(parameters(first)["tags"], "b")
        second = open_ref(mem, ref)
        @test parameters(second) == Dict("__list__" => "Track", "tags" => Any["a"])
        @test parameters(cached_form(FORM_CACHE, json))["__list__"] == "Track"
    end

    @testset "concurrent use from several threads" begin
        cache = FormCache(8)
        jsons = [numpy_json("node$i") for i in 1:20]
        expected = [form_json(parse_form(j)) for j in jsons]
        tasks = [Threads.@spawn begin
                     ok = true
                     for k in 1:2000
                         i = mod1(k * t + k ÷ 7, length(jsons))
                         ok &= form_json(cached_form(cache, jsons[i])) == expected[i]
                     end
                     ok
                 end for t in 1:4]
        @test all(fetch.(tasks))
        @test length(cache) == 8
        @test length(cache.order) == 8 && Set(cache.order) == Set(keys(cache.forms))
    end
end

end
