"""
    AwkwardBridge.Wire

What travels on the socket: msgpack, JSON, references to buffers in shared memory
(`BufferRef`, `ArrayRef`) and the grammar of their segment names, and the envelopes of docs/protocol.md. Pure: no server state.
"""
module Wire

using Random
using ..Basics

include("msgpack.jl")
include("json.jl")
include("segment_names.jl")
include("refs.jl")
include("protocol.jl")

export ArrayRef, BufferRef, FieldMap, JSONError, MAX_EXECUTOR_MESSAGE_BYTES, MSGPACK_MAX_BYTES, MSGPACK_MAX_CONTAINERS, MSGPACK_MAX_DEPTH,
       MSGPACK_MAX_VALUES, PROTOCOL_VERSION, PackedValue,
       Request, array_ref, bool_field, decode_request, encode_error, encode_ok, encode_output, field, float_field,
       int_field, int_list_field, json_string, list_field, map_field, pack, parse_json,
       request_id, same_array, segment_name, segment_pid,
       is_segment_name, str_field, str_list_field, top_level_scalars, top_level_value_bytes, unpack, wire_array,
       wire_type, write_json

end
