# An exception as a reply's `error` (describe_error.jl): the type once, and long type parameter
# lists shortened in the message and the backtrace.

using AwkwardBridge: describe, shorten_types, short_type_name, TYPE_PARAMETERS_MAX

long = "SubArray{Record{NamedTuple{(:pt, :eta),Tuple{Array{Float32,1},Array{Float32,1}}}},1}"
@test shorten_types("f(::$long, ::Array{Float64,1})") == "f(::SubArray{…}, ::Array{Float64,1})"
@test shorten_types("no braces here") == "no braces here"
@test shorten_types("an unclosed {brace") == "an unclosed {brace"
@test shorten_types("a}b") == "a}b"
@test length(shorten_types("x{" * "a"^(TYPE_PARAMETERS_MAX) * "}")) < 10
@test short_type_name([1.0]) == "Array{…}" && short_type_name(1) == "Int64"

nested_view(x) = g_does_not_exist_for(x)
g_does_not_exist_for(x::Int) = x
type, message, backtrace = try
    nested_view([[1.0f0], Float32[]])
catch e
    describe(e, catch_backtrace())
end
@test type == "MethodError"
@test startswith(message, "no method matching g_does_not_exist_for(")   # not "MethodError: …"
@test all(line -> length(line) < 400, split(backtrace, '\n'))

# Errors that code written for plain vectors meets on views say what to do instead.
only_vectors(x::Vector{Float32}) = sum(x)
type, message, _ = try
    only_vectors(view(Float32[1, 2, 3], 1:2))
catch e
    describe(e, catch_backtrace())
end
@test type == "MethodError" && occursin("annotate them ::AbstractVector", message)
type, message, _ = try
    only_vectors(1)
catch e
    describe(e, catch_backtrace())
end
@test type == "MethodError" && !occursin("Hint", message)      # no view among the arguments
type, message, _ = describe(ReadOnlyMemoryError(), Ptr{Cvoid}[])
@test type == "ReadOnlyMemoryError" && startswith(message, "code wrote into read-only memory") && occursin("copy(x)", message)
type, message, _ = try
    view(Float32[1, 2], 1:2)[1] = 0     # a SubArray can be written; a view that cannot:
    setindex!(AwkwardBridge.StringVector(AwkwardBridge.ListVector(UInt8[], Int[], Int[], AwkwardBridge.Parameters())), "x", 1)
catch e
    describe(e, catch_backtrace())
end
@test type == "ErrorException" && occursin("views cannot be written", message)
type, message, _ = try
    push!(AwkwardBridge.ListVector(Int[], Int[], Int[], AwkwardBridge.Parameters()), [1])
catch e
    describe(e, catch_backtrace())
end
@test type == "MethodError" && occursin("views cannot be written", message)
# A MethodError that a view among the arguments does not explain gets no hint about views...
type, message, _ = try
    view(Float32[1, 2], 1:2) + 1          # what `.+` is for: Julia's own message says so
catch e
    describe(e, catch_backtrace())
end
@test type == "MethodError" && !occursin("Hint", message)
two_vectors(x::Vector{Float32}, y::Vector{Float32}) = x .* y
type, message, _ = try
    two_vectors(view(Float32[1, 2], 1:2), "not a vector")   # a Vector would not help either
catch e
    describe(e, catch_backtrace())
end
@test type == "MethodError" && !occursin("Hint", message)
# ...and one it does explain, with several views, does
type, message, _ = try
    two_vectors(view(Float32[1, 2], 1:2), view(Float32[3, 4], 1:2))
catch e
    describe(e, catch_backtrace())
end
@test type == "MethodError" && occursin("annotate them ::AbstractVector", message)
# Views of views stand for Vectors of Vectors, and records for NamedTuples; a call with keywords
# gets the hint only where the keywords would be taken.
jagged = AwkwardBridge.ListVector(Float32[1, 2, 3], [0, 2], [2, 3], AwkwardBridge.Parameters())
records = AwkwardBridge.RecordVector((pt = Float32[1, 2], n = Int32[3, 4]), 2, AwkwardBridge.Parameters())
per_event(x::Vector{Vector{Float32}}) = length(x)
one_record(r::NamedTuple{(:pt, :n),Tuple{Float32,Int32}}) = r.pt
with_cut(x::Vector{Float32}; cut = 30) = count(>(cut), x)
hinted(f) = try f(); false catch e; occursin("annotate them ::AbstractVector", describe(e, catch_backtrace())[2]) end
@test hinted(() -> per_event(jagged))
@test hinted(() -> one_record(records[1]))
@test hinted(() -> with_cut(jagged[1]; cut = 2))
@test !hinted(() -> with_cut(jagged[1]; bad = 2))        # no Vector method takes `bad`
@test !hinted(() -> per_event(Float32))                   # a type is no view
# Records do not compare (NamedTuples do, so the annotation hint would mislead), and Python's
# numbers are Int64s and Float64s
message_of(f) = try f(); "" catch e; describe(e, catch_backtrace())[2] end
for sorting in (() -> sort(records), () -> maximum(records), () -> records[1] < records[2])
    @test occursin("records do not compare", message_of(sorting)) && !occursin("annotate them", message_of(sorting))
end
cut_typed(x, cut::Float32) = count(>(cut), x)
@test occursin("arrives as an Int64 or a Float64", message_of(() -> cut_typed(jagged[1], 30.0)))
@test occursin("arrives as an Int64 or a Float64", message_of(() -> cut_typed(jagged[1], 30)))
@test !occursin("Hint", message_of(() -> cut_typed(jagged[1], "30")))
@test !occursin("Hint", message_of(() -> cut_typed(jagged[1], 30.0, 1)))     # no method of three arguments
@test !occursin("Hint", message_of(() -> cut_typed(jagged[1], 30.0; bad = 1)))  # nor one taking `bad`
@test !occursin("Hint", message_of(() -> isodd(2.0)))   # a Base method: the Float64 came from Julia
vector_cut(x::Vector{Float32}, cut::Float32) = count(>(cut), x)
@test occursin("arrives as an Int64 or a Float64", message_of(() -> vector_cut(jagged[1], 30.0)))   # a view too

# `push!` on a Vector over memory Julia does not own (a numpy argument)
shared = Float64[1, 2, 3]
type, message, _ = GC.@preserve shared try
    push!(unsafe_wrap(Array, pointer(shared), 3), 4.0)
catch e
    describe(e, catch_backtrace())
end
@test type == "ErrorException" && occursin("arguments cannot grow", message) && occursin("copy(x)", message)

# A recursion that overflowed the stack: its thousands of frames read as one, and a count
runaway(n) = runaway(n + 1) + 1
type, message, backtrace = try
    runaway(1)
catch e
    describe(e, catch_backtrace())
end
@test type == "StackOverflowError"
@test occursin(r"runaway\(::Int64\) at .*\n    … the frame above, \d+ more times", backtrace)
@test length(backtrace) < 4000

# A type whose message puts its name on a line of its own says it once too
type, message, _ = try
    fetch(@async error("boom in a task"))
catch e
    describe(e, catch_backtrace())
end
@test type == "TaskFailedException" && !occursin("TaskFailedException", message) && occursin("boom in a task", message)

# A per-event reduction over an event without particles says how to go on
for empty_reduction in (() -> maximum(Float32[]), () -> argmax(Float32[]))
    local type, message
    type, message, _ = try
        empty_reduction()
    catch e
        describe(e, catch_backtrace())
    end
    @test type == "ArgumentError" && occursin("can have no particles", message) && occursin("isempty(x)", message)
end
