"""The codec layer: Awkward Arrays into and out of shared memory (julia_server/src/codec/)."""

from .open_array import open_array
from .place_array import PlacedArray, place_array

__all__ = ["PlacedArray", "open_array", "place_array"]
