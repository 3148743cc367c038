"""Calling Julia as a juliacall user would (issue 14): keyword arguments, ``bridge.jl`` names,
module paths, ``_b`` for ``!``, tab completion of the client's names, and Julia function values
as Python callables."""

from __future__ import annotations

import gc

import awkward as ak
import msgpack
import numpy as np
import pytest

from bridge import Bridge, ExecutorDied, FunctionNotFound, JuliaError, JuliaFunction, ProtocolError

DEFINITIONS = """
scale(x; by = 2.0) = x .* by
ones!(n) = fill!(zeros(n), 1.0)
describe(; name, n = 1) = "$name×$n"
module Cuts
    passes(pt; min_pt = 20.0) = count(>(min_pt), pt)
end
"""


@pytest.fixture(scope="module")
def bridge():
    with Bridge() as shared:
        shared.eval(DEFINITIONS)
        yield shared


def test_call_passes_keyword_arguments(bridge):
    assert bridge.call("round", 3.14159, digits=2) == 3.14
    assert bridge.call("scale", np.arange(3.0), by=10.0).tolist() == [0.0, 10.0, 20.0]
    assert bridge.call("scale", np.arange(3.0)).tolist() == [0.0, 2.0, 4.0]   # the Julia default
    assert bridge.call("describe", name="jets", n=3) == "jets×3"
    # an array as a keyword value travels in shared memory like a positional one
    assert bridge.call("sort", ak.Array([3, 1, 2]), rev=True).tolist() == [3, 2, 1]


def test_a_keyword_julia_does_not_take_is_julias_error(bridge):
    with pytest.raises(JuliaError, match="MethodError") as raised:
        bridge.call("round", 1.5, nonsense=1)
    assert "nonsense" in str(raised.value)
    bridge.eval("cut_count(v; cut = 30.0) = count(>(cut), v)")
    with pytest.raises(JuliaError) as raised:
        bridge.call("cut_count", np.arange(3.0), ptcut=1.0)
    # the user's own frame; not the keyword machinery that entered it
    assert "cut_count" in raised.value.backtrace and "essentials.jl" not in raised.value.backtrace
    with pytest.raises(JuliaError, match="UndefKeywordError"):
        bridge.call("describe")


def test_jl_names_call_julia_functions(bridge):
    assert bridge.jl.round(2.71828, digits=1) == 2.7
    assert bridge.jl.scale(np.arange(2.0), by=3.0).tolist() == [0.0, 3.0]
    assert bridge.jl.Cuts.passes(np.array([10.0, 25.0, 40.0])) == 2
    assert bridge.jl.Cuts.passes(np.array([10.0, 25.0, 40.0]), min_pt=30.0) == 1
    assert bridge.jl.Base.sum(np.arange(4.0)) == 6.0
    assert bridge.jl.ones_b(2).tolist() == [1.0, 1.0]   # `_b` is `!`, as in juliacall
    assert bridge.jl.Base.empty_b({"a": 1}) == {}        # in a module path too
    # ... unless Julia has the name itself: a physicist's number of b-jets
    bridge.eval("n_b(x) = 2x; replace_b(x) = \"mine\"")
    assert bridge.jl.n_b(21) == 42
    assert bridge.jl.replace_b(np.arange(3.0)) == "mine"
    assert bridge.call("ones_b", 2).tolist() == [1.0, 1.0]   # any client's names
    with pytest.raises(FunctionNotFound, match="nothere_b"):
        bridge.jl.nothere_b(1)
    with pytest.raises(FunctionNotFound, match="nothere"):
        bridge.jl.nothere(1)
    with pytest.raises(TypeError, match="not a function"):
        bridge.jl()


def test_jl_passes_a_keyword_named_timeout_to_julia(bridge):
    bridge.eval("waits(; timeout) = timeout")
    assert bridge.jl.waits(timeout=3) == 3
    with pytest.raises(ValueError, match="timeout"):
        bridge.call("waits", timeout=0)   # call's own keyword


def test_dir_lists_the_clients_names_for_tab_completion(bridge):
    names = dir(bridge.jl)
    assert {"scale", "ones_b", "describe", "Cuts"} <= set(names)
    assert "eval" not in names and "include" not in names and "Client" not in names
    assert "passes" in dir(bridge.jl.Cuts)
    assert dir(bridge.jl.no_such_module) == []
    assert repr(bridge.jl.Cuts.passes).startswith("<Julia Cuts.passes on Bridge(")


def test_a_julia_names_doc_is_julias_documentation(bridge):
    # what help(b.jl.f) and IPython's b.jl.f? show
    bridge.eval('"Count the good jets." n_good(jets) = count(>(30), jets)')
    assert bridge.jl.n_good.__doc__.startswith("Count the good jets.")
    assert "sort!(v" in bridge.jl.sort_b.__doc__          # `_b` stands for `!`, as in calls
    assert "Sum the results" in bridge.jl.Base.sum.__doc__
    assert bridge.jl.__doc__.startswith("A Julia name, reached through")
    assert "is not a Julia name" in getattr(bridge.jl, "x; y").__doc__   # never evaluated


def test_the_server_refuses_malformed_keyword_arguments(bridge):
    with pytest.raises(ProtocolError, match="kwargs"):
        bridge._request("call", {"fn": "round", "args": [1.5], "kwargs": [1, 2]})
    with pytest.raises(ProtocolError, match="kwargs"):
        bridge._request("call", {"fn": "round", "args": [1.5], "kwargs": {"$": "tuple", "items": []}})


def test_a_request_the_server_cannot_read_in_full_is_answered(bridge):
    # msgpack nesting beyond the server's 64 levels, and an ext value: the request cannot be
    # decoded, yet its id comes first, so the caller gets the error instead of waiting forever
    nested = 1
    for _ in range(40):
        nested = (nested,)   # a tuple is a map holding a list: 80 levels
    with pytest.raises(ProtocolError, match="nesting deeper than 64"):
        bridge.call("identity", nested)
    with pytest.raises(ProtocolError, match="ext types"):
        bridge._request("call", {"fn": "identity", "args": [msgpack.ExtType(1, b"x")]})
    assert bridge.call("identity", 3) == 3


FINALIZED = """
mutable struct Probe
    x::Int
end
const finalized = Ref(0)
function make_adder(n)
    probe = Probe(n)
    finalizer(_ -> (finalized[] += 1), probe)
    return y -> y + probe.x
end
"""


def test_a_julia_function_value_is_a_python_callable(bridge):
    double = bridge.eval("x -> 2x")
    assert isinstance(double, JuliaFunction) and "anonymous" in repr(double)
    assert double(21) == 42
    assert double(np.arange(3.0)).tolist() == [0.0, 2.0, 4.0]
    scale = bridge.eval("scale")   # a named function, as any expression's value
    assert scale([1.0, 2.0], by=3.0).tolist() == [3.0, 6.0] and "scale" in repr(scale)
    # passed back as an argument, it is the same Julia function
    assert bridge.call("map", double, [1, 2, 3]).tolist() == [2, 4, 6]
    adder = bridge.eval("n -> (y -> y + n)")(5)   # a closure a call returns
    assert adder(1) == 6


def test_a_function_lives_as_long_as_its_python_object(bridge):
    bridge.eval(FINALIZED)
    add = bridge.call("make_adder", 1)
    assert add(1) == 2
    del add
    gc.collect()          # the Python object is gone: the next message drops the Julia function
    bridge.ping()
    assert bridge.eval("GC.gc(); GC.gc(); yield(); finalized[]") == 1
    kept = bridge.call("make_adder", 2)
    assert bridge.eval("GC.gc(); GC.gc(); yield(); finalized[]") == 1   # still held by Python
    assert kept(1) == 3


def test_a_function_from_an_ended_executor_is_not_found(bridge):
    stale = bridge.eval("x -> x + 1")
    with pytest.raises(ExecutorDied):
        bridge.eval("ccall(:abort, Cvoid, ())")
    with pytest.raises(FunctionNotFound, match="is gone"):
        stale(1)
    with pytest.raises(FunctionNotFound, match="is gone"):
        bridge.call("map", stale, [1])
    bridge.eval(DEFINITIONS)   # the fresh executor has none of this client's definitions


def test_the_server_refuses_a_malformed_function_value(bridge):
    with pytest.raises(ProtocolError, match="fn"):
        bridge._request("call", {"fn": {"$": "handle", "id": 1}, "args": []})
    with pytest.raises(ProtocolError, match="id"):
        bridge._request("call", {"fn": {"$": "function"}, "args": []})
