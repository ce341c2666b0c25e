"""pynet/ has no import cycle and no module over 450 lines (issue 9).

The import graph is read from the sources with ast: every ``import`` and ``from ... import`` anywhere
in a module (function-level imports too), relative ones resolved against the module's package. An
edge goes to each pynet module named; ``from . import x`` (or ``from .pkg import x``) where x is a
submodule is an edge to that submodule; ``from .x import name`` is an edge to x. The compiled pynet._core
is no node (it imports nothing of pynet). The cycle finder is tested on a small graph so that the test
cannot pass by finding nothing.
"""
import ast
import pathlib

PYNET = pathlib.Path(__file__).resolve().parent.parent / "pynet"

MAX_LINES = 450
# Modules still over MAX_LINES, with their line counts as a ceiling: this list may only shrink (split
# a module and remove its entry). A module that grows past its ceiling, or a new one over 450, fails.
OVER_LIMIT = {}


def module_name(path, root=PYNET):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root=PYNET):
    """{module name: path} for every .py file under root."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(name, path, known):
    """The pynet modules that module ``name`` (at ``path``) imports, as a set of names in ``known``.
    A name that is no .py module (the compiled pynet._core, a module outside pynet) is no edge."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def add(target):
        if target in known and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                sub = base + "." + alias.name
                add(sub if sub in known else base)
    return found


def import_graph(root=PYNET):
    known = modules(root)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph):
    """One cycle of the directed graph {node: successors} as a list [a, b, ..., a], or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack = []

    def visit(n):
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m, WHITE) == GREY:
                return stack[stack.index(m):] + [m]
            if colour.get(m, WHITE) == WHITE:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        colour[n] = BLACK
        return None

    for n in sorted(graph):
        if colour[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return None


def test_find_cycle_on_small_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"x": {"y"}, "y": set(), "a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None


def test_imports_are_read_and_resolved(tmp_path):
    pkg = tmp_path / "pynet"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\nfrom . import sub\n")
    (pkg / "a.py").write_text("def f():\n    from .sub import x\n    import pynet.b\n")
    (pkg / "b.py").write_text("from pynet.sub.x import thing\nfrom ._core import lib\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import b\n")
    (pkg / "sub" / "x.py").write_text("import os\nfrom ..a import f\n")
    assert import_graph(pkg) == {
        "pynet": {"pynet.a", "pynet.sub"},
        "pynet.a": {"pynet.sub.x", "pynet.b"},
        "pynet.b": {"pynet.sub.x"},
        "pynet.sub": {"pynet.b"},
        "pynet.sub.x": {"pynet.a"},
    }
    assert find_cycle(import_graph(pkg)) == ["pynet.a", "pynet.b", "pynet.sub.x", "pynet.a"]


def test_the_graph_sees_pynet():
    graph = import_graph()
    assert "pynet.training" in graph and "pynet.classifier" in graph["pynet.training"]
    assert "pynet._native" in graph["pynet.matrix"]


def test_no_import_cycle_in_pynet():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in pynet/: " + " -> ".join(cycle)


def test_no_module_over_450_lines():
    problems = []
    for name, path in modules().items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        ceiling = OVER_LIMIT.get(name)
        if ceiling is None and n > MAX_LINES:
            problems.append("%s has %d lines (at most %d)" % (name, n, MAX_LINES))
        elif ceiling is not None and n > ceiling:
            problems.append("%s has %d lines, more than its ceiling %d in OVER_LIMIT" % (name, n, ceiling))
    assert not problems, "; ".join(problems)


def test_over_limit_list_is_current():
    known = modules()
    stale = [name for name in OVER_LIMIT if name not in known
             or len(known[name].read_text(encoding="utf-8").splitlines()) <= MAX_LINES]
    assert not stale, "remove from OVER_LIMIT (now gone or within %d lines): %s" % (MAX_LINES, ", ".join(stale))


def test_activations_come_from_the_c_table():
    """Adding an activation needs no Python edit: the enum, the module constants, the error's 'valid:'
    list and the CLI's --activation choices are all read from the C core's pn_activation_name."""
    import pytest
    import pynet
    from pynet import cli
    from pynet._native import ffi, lib
    names = []
    while lib.pn_activation_name(len(names)) != ffi.NULL:
        names.append(ffi.string(lib.pn_activation_name(len(names))).decode())
    assert lib.pn_activation_name(1000) == ffi.NULL
    assert len(names) >= 6 and [a.name for a in pynet.ACTIVATION] == names
    assert [int(a) for a in pynet.ACTIVATION] == list(range(len(names)))
    for i, name in enumerate(names):
        assert getattr(pynet, name) == name and getattr(pynet, name) == i and name in pynet.__all__
    assert list(cli.HIDDEN_ACTIVATIONS) == [n.lower() for n in names if n != "SOFTMAX"]
    with pytest.raises(ValueError, match="valid: " + ", ".join(names)):
        pynet.make_layer(2, 2, "nonesuch")


def test_every_training_option_reaches_fit_and_the_command_line():
    """A training option is added in three places (the C struct, its C check, pynet/config.py's
    OPTIONS): every C train_config field has its Option, and each public one is a keyword of fit
    with the C default and a --option of python -m pynet train."""
    import inspect
    from pynet import config, fit
    from pynet._native import ffi
    from pynet.cli import build_parser
    fields = [name for name, _ in ffi.typeof("train_config").fields]
    assert sorted(fields) == sorted(o.name for o in config.OPTIONS), "train_config and pynet.config.OPTIONS differ"
    parameters = inspect.signature(fit).parameters
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {s: a for a in train._actions for s in a.option_strings}
    for name, default in config.defaults().items():
        assert parameters[name].default == default and parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        action = flags["--" + name.replace("_", "-")]
        assert action.help and (action.default == default or name == "rate")
    assert "total_steps" not in parameters   # fit computes it from epochs
