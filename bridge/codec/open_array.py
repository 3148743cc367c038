"""An Awkward Array out of shared memory: a result, as zero-copy read-only views of its segments.

The reply that named it comes from another process, so its form, buffer keys and byte ranges
are checked, and the array validated, before anything is returned (docs/protocol.md section 4).
"""

from __future__ import annotations

import functools
import weakref
from typing import Callable

import awkward as ak
import numpy as np

from bridge.base import BridgeError
from bridge.shm import Segment
from bridge.wire import ArrayRef, BufferRef


def open_array(
    ref: ArrayRef,
    *,
    on_release: Callable[[], None] | None = None,
    attach: Callable[[str], Segment] = Segment.attach,
) -> ak.Array:
    """The array ``ref`` describes, as zero-copy read-only views of its segments.

    ``attach`` maps a segment by name (``Mappings`` shares mappings between results).
    ``on_release`` is called exactly once: when the last view of this array's buffers is garbage,
    or at once if the array turns out to be invalid (``BridgeError``).
    """
    # Every view of this result holds the token, so it dies (and releases) with the last one.
    token = _release_token(on_release) if on_release is not None else None
    form, expected, positional = _read_form(ref.form)
    _check_keys(expected, ref.buffers)
    whole = {name: attach(name).window(token) for name in sorted({buffer.segment for buffer in ref.buffers.values()})}
    views = {
        key: _view(key, buffer, whole[buffer.segment], np.dtype(expected[key])) for key, buffer in ref.buffers.items()
    }
    try:
        array = ak.from_buffers(form, ref.length, views)
        problem = ak.validity_error(array) if positional else ""
    except Exception as error:
        raise BridgeError(f"invalid array from the server: {type(error).__name__}: {error}") from None
    if problem:
        raise BridgeError(f"invalid array from the server: {problem}")
    return array


@functools.lru_cache(maxsize=64)
def _read_form(form_json: str) -> tuple[ak.forms.Form, dict, bool]:
    """The form, the buffers it expects, and whether its buffers hold positions to validate.

    Cached: a kernel called in a loop returns the same form each time.
    """
    try:
        form = ak.forms.from_json(form_json)
    except Exception as error:
        raise BridgeError(f"invalid array form from the server: {type(error).__name__}: {error}") from None
    return form, form.expected_from_buffers(), not _holds_only_values(form)


def _holds_only_values(form: ak.forms.Form) -> bool:
    """Whether ``form`` has no offsets, index or tags (numbers, records, regular dimensions and
    masks of them) and no parameters: ``from_buffers`` checks all such an array's lengths, and any
    bytes in its buffers make a valid array, so ``ak.validity_error`` has nothing left to find."""
    if form.parameters:
        return False
    if isinstance(form, (ak.forms.NumpyForm, ak.forms.EmptyForm)):
        return True
    if isinstance(form, ak.forms.RecordForm):
        return all(_holds_only_values(content) for content in form.contents)
    if isinstance(form, (ak.forms.RegularForm, ak.forms.ByteMaskedForm, ak.forms.BitMaskedForm, ak.forms.UnmaskedForm)):
        return _holds_only_values(form.content)
    return False


def _check_keys(expected: dict, buffers: dict[str, BufferRef]) -> None:
    missing = sorted(set(expected) - set(buffers))
    extra = sorted(set(buffers) - set(expected))
    if missing or extra:
        raise BridgeError(f"array buffers do not match its form: missing {missing}, unexpected {extra}")


def _view(key: str, buffer: BufferRef, whole: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if buffer.offset + buffer.nbytes > whole.size:
        raise BridgeError(
            f"buffer {key} ({buffer.nbytes} bytes at offset {buffer.offset}) runs past the end of "
            f"segment {buffer.segment} ({whole.size} bytes)"
        )
    if buffer.offset % dtype.itemsize or buffer.nbytes % dtype.itemsize:
        raise BridgeError(
            f"buffer {key} ({buffer.nbytes} bytes at offset {buffer.offset}) is not a whole number of "
            f"{dtype} items at an aligned offset"
        )
    return whole[buffer.offset : buffer.offset + buffer.nbytes].view(dtype.newbyteorder("<"))


class _LeaseToken:
    """Referenced by every mapping of one result; its finalizer calls the release hook."""


def _release_token(on_release: Callable[[], None]) -> _LeaseToken:
    token = _LeaseToken()
    # No release at interpreter exit: the connection is going away with everything it leased.
    weakref.finalize(token, on_release).atexit = False
    return token
