# The plain records that name an array's buffers in shared memory (docs/protocol.md, section 4):
# what a client sends and what the server returns, before any view is built.

"""
    BufferRef(segment, offset, nbytes)

One buffer of an array: `nbytes` bytes starting `offset` bytes into the shared-memory segment
named `segment` (`akb-{pid}-{hex}`). On the wire it is the list `[segment, offset, nbytes]`.
"""
struct BufferRef
    segment::String
    offset::Int
    nbytes::Int
end

"""
    ArrayRef(form, length, buffers)

An Awkward Array in shared memory: its form JSON (as `ak.forms.Form.to_json` writes it), its
outer length, and its buffers keyed `"{form_key}-{role}"` (`node0-offsets`, `node1-data`, …).
"""
struct ArrayRef
    form::String
    length::Int
    buffers::Dict{String,BufferRef}
end

"""
    same_array(a::ArrayRef, b::ArrayRef) -> Bool

Whether `a` and `b` describe the same array: the same form JSON, length and buffers.
"""
same_array(a::ArrayRef, b::ArrayRef) = a.form == b.form && a.length == b.length && a.buffers == b.buffers
