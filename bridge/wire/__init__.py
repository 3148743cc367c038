"""The wire layer: what travels on the socket (julia_server/src/wire/). Pure: no sockets, no
shared memory, no state."""

from .protocol import PROTOCOL_VERSION, decode, encode, from_wire, to_wire
from .refs import ArrayRef, BufferRef, FunctionRef, HandleRef
from .segment_names import SEGMENT_PREFIX, is_segment_name, segment_name, segment_pid
from .shown_value import ShownValue

__all__ = [
    "PROTOCOL_VERSION",
    "SEGMENT_PREFIX",
    "ArrayRef",
    "BufferRef",
    "FunctionRef",
    "HandleRef",
    "ShownValue",
    "decode",
    "encode",
    "from_wire",
    "is_segment_name",
    "segment_name",
    "segment_pid",
    "to_wire",
]
