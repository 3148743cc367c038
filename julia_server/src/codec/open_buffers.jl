"""
    open_buffers(form::AbstractString, length::Integer, containers::AbstractDict) -> (view, kept)

The validated view of an Awkward Array given as the triple `ak.to_buffers` and AwkwardArray.jl's
`to_buffers` make: form JSON, length, and the bytes of each buffer by key
(`"node0-offsets"`, …; any `AbstractVector{UInt8}`). Invalid buffers raise `InvalidArray` as
for an argument. Buffers that are not a `Vector{UInt8}` are copied into one; the view is valid
while `kept` (every buffer, as a `Vector{UInt8}`) lives: `GC.@preserve kept` around its use.
"""
function open_buffers(form::AbstractString, length::Integer, containers::AbstractDict)
    bytes = Dict{String,Vector{UInt8}}()
    for (key, buffer) in containers
        key isa AbstractString && buffer isa AbstractVector{UInt8} ||
            throw(InvalidArray("buffer $(repr(key)) is not bytes under a string key"))
        bytes[String(key)] = buffer isa Vector{UInt8} ? buffer : Vector{UInt8}(buffer)
    end
    refs = Dict{String,BufferRef}(key => BufferRef(key, 0, sizeof(b)) for (key, b) in bytes)
    view = open_array(ArrayRef(String(form), Int(length), refs), b -> pointer(bytes[b.segment]))
    return view, bytes
end
