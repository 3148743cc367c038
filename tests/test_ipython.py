"""``%load_ext bridge`` in IPython (issue 14), driven through IPython's own ``InteractiveShell``:
``%julia`` and ``%%julia`` evaluate on the notebook's bridge, display the value and print
Julia's output in the cell."""

from __future__ import annotations

import time

import pytest

IPython = pytest.importorskip("IPython", reason="IPython is a test dependency (pip install -e '.[test]')")
from IPython.core.completer import provisionalcompleter  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

from bridge import JuliaError, ipython as bridge_ipython  # noqa: E402


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bridge")
    yield shell
    shell.run_line_magic("unload_ext", "bridge")
    InteractiveShell.clear_instance()


def run(shell, source: str):
    result = shell.run_cell(source, store_history=True)
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result


def test_a_cell_defines_and_a_line_calls(shell, capsys):
    assert run(shell, '%%julia\nfunction twice(x)\n    println("twice of ", x)\n    2x\nend\ntwice(21)') == 42
    assert capsys.readouterr().out.startswith("twice of 21\n")   # then IPython's Out[...] display
    assert run(shell, "%julia twice(2.5)") == 5.0
    capsys.readouterr()


def test_a_value_with_no_python_equivalent_shows_as_in_julia(shell, capsys):
    assert repr(run(shell, "%julia 1 + 2im")) == "1 + 2im"
    assert repr(run(shell, "%julia typeof(1.5)")) == "Float64"
    assert run(shell, "%julia typeof(1.5);") is None
    capsys.readouterr()


def test_a_semicolon_suppresses_the_value(shell, capsys):
    assert run(shell, "%%julia\nx = 3;") is None
    assert run(shell, "%julia x + 1") == 4
    capsys.readouterr()


def test_a_semicolon_before_a_comment_suppresses_the_value_as_in_the_repl():
    assert bridge_ipython.ends_with_semicolon("y = 5; # quiet")
    assert bridge_ipython.ends_with_semicolon("y = 5;  #= quiet =#\n")
    assert not bridge_ipython.ends_with_semicolon("y = 5 # shown")
    assert not bridge_ipython.ends_with_semicolon("a; b")


def test_an_error_names_the_cell_that_ran_it(shell, capsys):
    result = shell.run_cell('%%julia\nfails_here() = error("from this cell")\nfails_here()', store_history=True)
    assert isinstance(result.error_in_exec, JuliaError)
    where = result.error_in_exec.backtrace
    assert f"In[{result.execution_count}]:" in where and f"In[{result.execution_count + 1}]" not in where
    capsys.readouterr()


def test_python_sees_the_same_bridge_and_its_arrays(shell, capsys):
    run(shell, "%julia double(v) = 2 .* v")
    assert run(shell, "from bridge.ipython import notebook_bridge\n"
                      "notebook_bridge().jl.double([1.0, 2.0]).tolist()") == [2.0, 4.0]
    capsys.readouterr()


def test_a_julia_error_is_the_cells_error(shell, capsys):
    with pytest.raises(JuliaError, match="UndefVarError"):
        run(shell, "%julia not_defined_anywhere")
    capsys.readouterr()


def test_a_julia_error_shows_the_users_frames_only(shell, capsys):
    run(shell, "%julia refuses(x) = error(string(\"not \", x))")
    result = shell.run_cell("from bridge.ipython import notebook_bridge\nnotebook_bridge().jl.refuses(7)",
                            store_history=True)
    shown = result.error_in_exec._render_traceback_()
    assert shown[0] == f"Cell In[{result.execution_count}], line 2: notebook_bridge().jl.refuses(7)"
    assert shown[1:] == [f"JuliaError: {result.error_in_exec}"] and "not 7" in shown[1]
    # a %julia cell is Julia code: none of its Python frames are the user's
    magic = shell.run_cell("%julia refuses(8)", store_history=True).error_in_exec
    assert magic._render_traceback_() == [f"JuliaError: {magic}"]
    capsys.readouterr()


def test_a_python_variable_named_in_julia_code_gets_a_hint(shell, capsys):
    run(shell, "events_here = [1.0, 2.0]")
    with pytest.raises(JuliaError, match=r"events_here is a Python variable.*notebook_bridge\(\)\.jl\.f\(events_here\)"):
        run(shell, "%julia sum(events_here)")
    with pytest.raises(JuliaError) as raised:
        run(shell, "%julia sum(nowhere_at_all)")
    assert "Hint" not in str(raised.value)
    capsys.readouterr()


def _completions(shell, text: str) -> list[str]:
    with provisionalcompleter():
        return [c.text for c in shell.Completer.completions(text, len(text))]


def test_tab_completes_julia_names_through_a_bridge(shell, capsys):
    run(shell, "%julia completes_me(x) = x")
    run(shell, "from bridge.ipython import notebook_bridge\nnb = notebook_bridge()")
    assert _completions(shell, "nb.jl.completes") == ["nb.jl.completes_me"]
    assert "nb.jl.Base.summary" in _completions(shell, "nb.jl.Base.summar")
    assert _completions(shell, "not_a_bridge.jl.completes") == []
    shell.run_line_magic("unload_ext", "bridge")
    try:
        assert _completions(shell, "nb.jl.completes") == []   # the matcher went with the extension
    finally:
        shell.run_line_magic("load_ext", "bridge")
        run(shell, "del nb")
    capsys.readouterr()


def test_use_bridge_leaves_the_users_own_bridge_open(capsys):
    from bridge import Bridge

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bridge")
    started = bridge_ipython.notebook_bridge()
    with Bridge() as own:
        bridge_ipython.use_bridge(own)
        assert started.closed   # the one %julia started is closed ...
        assert run(shell, "%julia 3 + 3") == 6
        shell.run_line_magic("unload_ext", "bridge")
        assert not own.closed   # ... the user's own is not
        assert own.call("sum", [1.0]) == 1.0
    shell.run_line_magic("load_ext", "bridge")
    capsys.readouterr()


def test_one_bridge_per_kernel_and_unload_closes_it(capsys):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bridge")
    first = bridge_ipython.notebook_bridge()
    assert run(shell, "%julia 1 + 1") == 2
    assert bridge_ipython.notebook_bridge() is first
    server = first._server
    shell.run_line_magic("unload_ext", "bridge")
    assert first.closed and server.process.poll() is not None
    shell.run_line_magic("load_ext", "bridge")
    assert run(shell, "%julia 2 + 2") == 4
    assert bridge_ipython.notebook_bridge() is not first
    capsys.readouterr()


def test_running_b_equals_bridge_again_leaves_only_the_new_server(shell, capsys):
    run(shell, "from bridge import Bridge\nb = Bridge()\nfirst = b._server")
    run(shell, "b = Bridge()")   # the cell run again: the first Bridge is garbage now
    first = shell.user_ns["first"]
    deadline = time.monotonic() + 60   # the collected Bridge's session ends in a thread of its own
    while first.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.process.poll() is not None
    assert run(shell, "b.jl.sum([1.0, 2.0])") == 3.0
    run(shell, "b.close(); del b, first")
    capsys.readouterr()
