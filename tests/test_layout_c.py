"""The C files call downwards only (issue 9): train → optim → model → layer → gemm → activations → exp →
simd, with train and model using data, train also setting gemm's float32 mode around its steps
(pn_set_matmul_f32), optim's per-weight kernels (optim_kernels.c) beside gemm's microkernels, and
runtime.c / matrix.c leaves that every file may use.

The call graph between csrc/*.c files is read from the sources: comments, strings and character
literals are blanked out, top-level function definitions are found by brace depth, and a call
``name(`` inside a body is an edge to the file that defines ``name`` (its own file first, so a static
helper never counts as a call elsewhere). The graph must have no cycle, and every edge must go down
the order below; the parser itself is tested on small inputs so that it cannot pass by finding nothing.
"""
import pathlib
import re

import pytest

CSRC = pathlib.Path(__file__).resolve().parent.parent / "csrc"

# Each file's level: a file may call only files on a lower level. The three gemm files are one
# stage (the driver and its microkernels). runtime.c (errors, allocation, threads, random numbers) is
# the leaf every file uses. matrix.c's matrix_mult_matrix is a gemm call, so matrix.c sits just above
# gemm: the kernels below never make or free a matrix; layer, data and everything above may.
LEVELS = {
    "runtime.c": 0,
    "simd.c": 2,
    "exp.c": 3,
    "activations.c": 4,
    "gemm_avx2.c": 5, "gemm_avx512.c": 5, "gemm.c": 6,
    "optim_kernels.c": 5,   # optim.c's vectorised, threaded loops over the weights: simd and runtime only
    "matrix.c": 6.5,
    "layer.c": 7,
    "data.c": 7,
    "model.c": 8,
    "optim.c": 9,
    "train.c": 10,
}

KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "do", "else", "case", "defined",
            "__attribute__", "_Alignof", "alignof", "__builtin_expect"}


def strip_c(text):
    """The source with comments, string and character literals replaced by spaces (newlines kept),
    and preprocessor lines removed except for #pragma, whose clauses can call functions."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    keep, continued, pragma = [], False, False
    for line in "".join(out).split("\n"):
        if not continued:
            directive = line.lstrip().startswith("#")
            pragma = directive and line.lstrip().startswith("#pragma")
        else:
            directive = True
        continued = directive and line.rstrip().endswith("\\")
        if not directive:
            keep.append(line)
        elif pragma:
            keep.append(line.replace("#pragma", "       ").rstrip().rstrip("\\"))
        else:
            keep.append("")
    return "\n".join(keep)


def parse_c(text):
    """(definitions, calls) of one C source: {name: is_static} for its top-level function definitions,
    and {name: set of names called in its body}."""
    code = strip_c(text)
    defs, calls = {}, {}
    depth, start, current, body_start = 0, 0, None, 0
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                header = code[start:i].strip()
                current = function_name(header)
                if current:
                    defs[current] = re.search(r"\bstatic\b", header) is not None
                    body_start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if current:
                    body = code[body_start:i]
                    calls[current] = {m for m in re.findall(r"\b([A-Za-z_]\w*)\s*\(", body)
                                      if m not in KEYWORDS}
                current = None
                start = i + 1
        elif c == ";" and depth == 0:
            start = i + 1
    return defs, calls


def function_name(header):
    """The function a top-level `header {` defines, or None (struct, enum, initializer...)."""
    if not header.endswith(")") or "=" in header or re.match(r"^(typedef|struct|enum|union)\b", header):
        return None
    depth = 0
    for j in range(len(header) - 1, -1, -1):   # back to the '(' of the parameter list
        depth += header[j] == ")"
        depth -= header[j] == "("
        if depth == 0:
            m = re.search(r"([A-Za-z_]\w*)\s*$", header[:j])
            return m.group(1) if m and m.group(1) not in KEYWORDS else None
    return None


def call_graph(sources):
    """{file: {file it calls: example 'caller→callee'}} from {file name: C text}."""
    parsed = {name: parse_c(text) for name, text in sources.items()}
    public = {}
    for name, (defs, _) in parsed.items():
        for fn, is_static in defs.items():
            if not is_static:
                public.setdefault(fn, name)
    graph = {name: {} for name in sources}
    for name, (defs, calls) in parsed.items():
        for caller, callees in calls.items():
            for callee in callees:
                if callee in defs:
                    continue   # its own file's function (static helpers shadow others' names)
                target = public.get(callee)
                if target and target != name:
                    graph[name].setdefault(target, "%s→%s" % (caller, callee))
    return graph


def find_cycle(graph):
    """One cycle of `graph` ({node: iterable of successors}) as [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def real_graph():
    return call_graph({p.name: p.read_text(encoding="utf-8") for p in sorted(CSRC.glob("*.c"))})


# ---- the checker checks ------------------------------------------------------------------------

def test_find_cycle_on_small_graphs():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None   # a diamond is no cycle
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": ["a"], "a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({}) is None


def test_parser_finds_definitions_and_calls_but_not_comments_or_strings():
    one = '''
        /* helper(); in a comment */
        static const int table[] = {1, 2};
        struct s { int x; };
        static int helper(int x) { return x; }
        int visible(const char *s) { return helper(1) + other("other(") + (int)sizeof(int); }
        __attribute__((target("avx2"))) static inline double fast(double x) { return x; }
        void parallel(void) {
            #pragma omp parallel for num_threads(threads())
            for (int i = 0; i < 2; i++) fast(i);   // helper() here is a comment
        }
    '''
    defs, calls = parse_c(one)
    assert defs == {"helper": True, "visible": False, "fast": True, "parallel": False}
    assert calls["visible"] == {"helper", "other"}
    assert {"threads", "fast"} <= calls["parallel"] and "helper" not in calls["parallel"]
    two = "int other(const char *s) { return 0; }\nstatic int helper(int x) { return visible(0); }\n" \
          "int threads(void) { return 1; }"
    graph = call_graph({"one.c": one, "two.c": two})
    assert set(graph["one.c"]) == {"two.c"}      # other() and threads(); helper() is its own
    assert graph["two.c"] == {"one.c": "helper→visible"}   # visible() is public: a real edge back
    assert find_cycle(graph) == ["one.c", "two.c", "one.c"]


# ---- the layout itself -------------------------------------------------------------------------

def test_csrc_call_graph_has_no_cycle():
    cycle = find_cycle(real_graph())
    assert cycle is None, "csrc/ files call each other in a circle: " + " → ".join(cycle)


def test_every_file_calls_only_files_below_it():
    graph = real_graph()
    unplaced = sorted(set(graph) - set(LEVELS))
    assert not unplaced, "place %s in LEVELS of tests/test_layout_c.py (which files may it call?)" % unplaced
    upward = ["%s (level %g) calls %s (level %g): %s" % (src, LEVELS[src], dst, LEVELS[dst], via)
              for src, dsts in graph.items() for dst, via in dsts.items() if LEVELS[dst] >= LEVELS[src]]
    assert not upward, "calls that go up or sideways:\n" + "\n".join(upward)


def test_runtime_is_a_leaf_and_matrix_uses_only_runtime_and_gemm():
    graph = real_graph()
    assert graph["runtime.c"] == {}, "runtime.c must call no other file: %s" % graph["runtime.c"]
    assert set(graph["matrix.c"]) <= {"runtime.c", "gemm.c"}, "matrix.c may call only runtime.c and gemm.c: %s" \
        % graph["matrix.c"]


@pytest.mark.parametrize("src, dst", [
    ("train.c", "optim.c"), ("train.c", "model.c"), ("train.c", "data.c"),
    ("optim.c", "model.c"), ("optim.c", "layer.c"), ("optim.c", "optim_kernels.c"), ("optim_kernels.c", "simd.c"),
    ("model.c", "layer.c"), ("model.c", "data.c"), ("model.c", "gemm.c"),
    ("layer.c", "gemm.c"), ("layer.c", "activations.c"),
    ("gemm.c", "activations.c"), ("gemm.c", "simd.c"),
    ("activations.c", "exp.c"), ("exp.c", "simd.c"),
    ("data.c", "runtime.c"), ("layer.c", "matrix.c"), ("simd.c", "runtime.c"),
])
def test_the_chain_is_there(src, dst):
    assert dst in real_graph()[src], "expected %s to call into %s" % (src, dst)
