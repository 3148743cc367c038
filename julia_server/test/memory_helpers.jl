# Julia-memory stand-ins for shared memory in the data-layer tests: segments are plain
# `Vector{UInt8}`s, and `resolve`/`allocate` behave like the server's (names checked, buffers
# kept inside their segment, one fresh segment per allocation).

using AwkwardBridge: BufferRef, ArrayRef, InvalidArray, open_array, place_array

struct TestMemory
    segments::Dict{String,Vector{UInt8}}
end

TestMemory() = TestMemory(Dict{String,Vector{UInt8}}())

function resolver(mem::TestMemory)
    return function (b::BufferRef)
        haskey(mem.segments, b.segment) || throw(InvalidArray("unknown segment $(b.segment)"))
        segment = mem.segments[b.segment]
        0 <= b.offset && 0 <= b.nbytes && b.offset + b.nbytes <= length(segment) ||
            throw(InvalidArray("buffer outside segment $(b.segment)"))
        return pointer(segment) + b.offset
    end
end

function allocator(mem::TestMemory; calls::Vector{Int}=Int[])
    return function (nbytes::Int)
        push!(calls, nbytes)
        name = "seg$(length(mem.segments))"
        mem.segments[name] = zeros(UInt8, nbytes)
        return (name, 0, pointer(mem.segments[name]))
    end
end

"""An ArrayRef whose buffers (key => typed vector) are copied into one new segment."""
function array_ref(mem::TestMemory, form::AbstractString, len::Int, buffers::Pair...)
    name = "in$(length(mem.segments))"
    bytes = UInt8[]
    refs = Dict{String,BufferRef}()
    for (key, values) in buffers
        append!(bytes, zeros(UInt8, cld(length(bytes), 64) * 64 - length(bytes)))
        refs[key] = BufferRef(name, length(bytes), sizeof(values))
        append!(bytes, reinterpret(UInt8, values))
    end
    mem.segments[name] = bytes
    return ArrayRef(form, len, refs)
end

open_ref(mem::TestMemory, ref::ArrayRef) = open_array(ref, resolver(mem))

"""The buffer `key` of `ref` as a mutable `Vector{T}` over the segment (to change it later)."""
buffer_words(mem::TestMemory, ref::ArrayRef, key::String, ::Type{T}) where {T} =
    reinterpret(T, view(mem.segments[ref.buffers[key].segment],
                        ref.buffers[key].offset+1:ref.buffers[key].offset+ref.buffers[key].nbytes))

"""Write `x` with `place_array`, then open what was written."""
roundtrip(mem::TestMemory, x) = open_ref(mem, place_array(x, allocator(mem)))

# Form JSON for the tests, in the shape awkward writes it.
numpy_json(primitive, key; inner_shape="[]", parameters="{}") =
    """{"class": "NumpyArray", "primitive": "$primitive", "inner_shape": $inner_shape, "parameters": $parameters, "form_key": "$key"}"""
