"""The student's homework on pynet (issue 11, parts 1-3): homework-style code on pynet objects,
``homework init`` and ``homework check`` (against a naive correct solution and deliberately wrong ones)."""
import ast
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import pynet
from pynet.homework import check, init as hw_init, runner
from pynet.homework.templates import CLASSIFIER

HERE = os.path.dirname(os.path.abspath(__file__))
SOLUTION = os.path.join(HERE, "homework_solution.py")
FIVE = ("activate_matrix", "gradient_matrix", "forward_layer", "backward_layer", "update_layer")


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    return subprocess.run([sys.executable, "-m", "pynet", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60)


# ---- part 1: homework-style code runs on pynet objects ---------------------------------------

def test_activations_equal_their_names_and_hash_like_them():
    assert pynet.LOGISTIC == "LOGISTIC" and pynet.RELU != "LOGISTIC" and not (pynet.RELU != "RELU")
    assert pynet.RELU == int(pynet.ACTIVATION.RELU)            # still the C value
    assert {"RELU": 1, "SOFTMAX": 2}[pynet.SOFTMAX] == 2
    assert pynet.RELU in {"RELU"} and len({pynet.RELU, "RELU"}) == 1
    l = pynet.make_layer(3, 2, "LRELU")
    assert l.activation == "LRELU" and l.activation != "RELU"
    m = pynet.Matrix([[-1.0, 2.0]])
    pynet.activate_matrix(m, l.activation)                    # still passed to C correctly
    np.testing.assert_allclose(m.data, [[-0.1, 2.0]])


def test_layer_inp_keeps_what_it_is_given_and_c_uses_it():
    l = pynet.make_layer(3, 2, "LINEAR")
    l.w = [[1, 2], [3, 4], [5, 6]]
    x = pynet.Matrix([[1.0, 0.0, 2.0]])
    l.inp = x
    x_data = x.data
    del x
    np.testing.assert_array_equal(l.inp.data, [[1, 0, 2]])
    x_data[0, 0] = 7.0                                        # the layer saved x itself, not a copy
    assert l.inp.data[0, 0] == 7.0
    l.out = [[11.0, 14.0]]
    pynet.backward_layer(l, pynet.Matrix([[1.0, -1.0]]))      # C reads the assigned in and out
    np.testing.assert_allclose(l.dw.data, [[7, -7], [0, 0], [2, -2]])
    with pytest.raises(ValueError, match="layer.inp: the layer takes 3 inputs"):
        l.inp = [[1.0, 2.0]]
    l.inp = None
    assert l.inp is None


def test_layer_out_copies_into_the_layers_buffer_and_grows():
    l = pynet.make_layer(2, 3, "RELU")
    l.inp = pynet.Matrix([[1.0, 2.0]])
    out = pynet.Matrix(np.arange(12.0).reshape(4, 3))
    l.out = out
    out.data[0, 0] = -5
    assert l.out.shape == (4, 3) and l.out.data[0, 0] == 0     # a copy: the layer owns its out
    assert l.inp.shape == (1, 2)                              # growing out left the saved input alone
    l.out = np.ones((1, 3))
    assert l.out.shape == (1, 3)
    with pytest.raises(ValueError, match="layer.out: the layer has 3 outputs"):
        l.out = np.ones((1, 2))
    l.dw = np.full((2, 3), 0.5)
    l.v = np.full((2, 3), 0.25)
    pynet.update_layer(l, 1.0, 1.0, 0.0)                      # v = dw + v, w += v: C sees both
    np.testing.assert_allclose(l.v.data, 0.75)


def test_free_matrix_is_safe_the_way_the_skeleton_calls_it():
    l = pynet.make_layer(2, 2, "LINEAR")
    before = l.w.data.copy()
    pynet.free_matrix(l.w)
    pynet.free_matrix(l.w)
    pynet.free_matrix(None)
    pynet.free_matrix(l.out)
    np.testing.assert_array_equal(l.w.data, before)
    m = pynet.make_matrix(2, 2)
    pynet.free_matrix(m)
    m.data[0][0] = 1.0                                        # still usable
    with pytest.raises(TypeError, match="free_matrix"):
        pynet.free_matrix("not a matrix")


# ---- part 2: homework init -------------------------------------------------------------------

def test_init_writes_the_folder_and_refuses_to_overwrite(tmp_path):
    folder = tmp_path / "hw"
    r = cli("homework", "init", str(folder))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(folder)) == ["README.md", "classifier.py", "tryhw4.py"]
    (folder / "classifier.py").write_text("# my work\n")
    r = cli("homework", "init", str(folder))
    assert r.returncode == 1 and "already exist" in r.stderr and "--force" in r.stderr
    assert (folder / "classifier.py").read_text() == "# my work\n"
    r = cli("homework", "init", str(folder), "--force")
    assert r.returncode == 0 and (folder / "classifier.py").read_text() == CLASSIFIER


def test_placeholders_do_not_contain_the_answer():
    tree = ast.parse(CLASSIFIER)
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    for name in FIVE:
        body = funcs[name].body
        assert len(body) == 2 and isinstance(body[0].value, ast.Constant), name   # docstring, then raise
        assert isinstance(body[1], ast.Raise), name
    for name in ("make_layer", "forward_model", "backward_model", "update_model", "accuracy_model",
                 "cross_entropy_loss", "train_model"):
        assert name in funcs


def test_placeholders_fail_every_check(tmp_path):
    hw_init.init(tmp_path)
    r = cli("homework", "check", cwd=tmp_path)
    assert r.returncode == 1
    assert "0 of %d checks passed" % len(check.CHECKS) in r.stdout
    assert r.stdout.count("NotImplementedError") == len(check.CHECKS)


def test_generated_tryhw4_runs_the_students_code(tmp_path):
    hw_init.init(tmp_path)
    r = subprocess.run([sys.executable, str(tmp_path / "tryhw4.py"), "--impl", SOLUTION, "--iters", "20",
                        "--limit", "500"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
    assert r.returncode == 0, r.stderr
    acc = float(r.stdout.split("training accuracy:")[1].split()[0])
    assert acc > 0.5                                          # 20 steps of softmax regression learn


# ---- part 3: homework check ------------------------------------------------------------------

def test_a_naive_correct_solution_passes_every_check():
    r = cli("homework", "check", SOLUTION)
    assert r.returncode == 0, r.stdout
    assert r.stdout.count("PASS") == len(check.CHECKS) and "FAIL" not in r.stdout


def mutate(tmp_path, old, new, name="classifier.py"):
    src = open(SOLUTION).read()
    assert src.count(old) == 1, old
    path = tmp_path / name
    path.write_text(src.replace(old, new))
    return str(path)


MUTANTS = [
    ("softmax_not_normalised", "m.data[i][j] /= total", "pass",
     "activate_matrix", "softmax not normalised"),
    ("softmax_not_shifted", "math.exp(m.data[i][j] - top)", "math.exp(m.data[i][j])",
     "activate_matrix", "softmax not shifted by the row max"),
    ("lrelu_slope", "x if x > 0 else 0.1 * x", "x if x > 0 else 0.01 * x",
     "activate_matrix", "lrelu slope"),
    ("logistic_gradient_from_x", "d.data[i][j] *= y * (1 - y)",
     "s = 1 / (1 + math.exp(-y)); d.data[i][j] *= s * (1 - s)",
     "gradient_matrix", "logistic gradient taken from x"),
    ("relu_gradient_at_0", "d.data[i][j] *= 1.0 if y > 0 else 0.0", "d.data[i][j] *= 1.0 if y >= 0 else 0.0",
     "gradient_matrix", "relu gradient at or below 0"),
    ("lrelu_gradient_slope", "d.data[i][j] *= 1.0 if y > 0 else 0.1", "d.data[i][j] *= 1.0 if y > 0 else 0.01",
     "gradient_matrix", "lrelu slope"),
    ("delta_sign", "    xt = transpose_matrix(l.inp)", "    delta = axpy_matrix(-2, delta, delta)\n"
     "    xt = transpose_matrix(l.inp)", "backward_layer", "delta's sign"),
    ("missing_transpose", "dx = matrix_mult_matrix(delta, wt)", "dx = matrix_mult_matrix(delta, l.w)",
     "backward_layer", "a missing transpose"),
    ("missing_transpose_dw", "dw = matrix_mult_matrix(xt, delta)", "dw = matrix_mult_matrix(l.inp, delta)",
     "backward_layer", "a missing transpose"),
    ("dw_not_stored", "    l.dw = dw\n", "", "backward_layer", "dw not stored"),
    ("returns_delta", "    return dx\n", "    return delta\n", "backward_layer", "returning delta instead of dx"),
    ("decay_sign", "b = axpy_matrix(-decay, l.w, l.dw)", "b = axpy_matrix(decay, l.w, l.dw)",
     "update_layer", "decay's sign"),
    ("w_before_v", "    b = axpy_matrix(-decay, l.w, l.dw)",
     "    w = axpy_matrix(rate, l.v, l.w)\n    l.w = w\n    b = axpy_matrix(-decay, l.w, l.dw)",
     "update_layer", None),   # w then v then w again: wrong, and matches none of the known mistakes
    ("v_not_stored", "    l.v = v\n    w = axpy_matrix(rate, l.v, l.w)", "    w = axpy_matrix(rate, v, l.w)",
     "update_layer", "v not updated"),
    ("inp_not_saved", "    l.inp = inp\n", "", "forward_layer", "the layer must save its input"),
    # more of issue 11's listed mistakes, each as a student would write it
    ("activation_not_applied", "    activate_matrix(out, l.activation)\n    free_matrix(l.out)", "    free_matrix(l.out)",
     "forward_layer", "the activation was not applied"),
    ("gradient_not_applied", "    gradient_matrix(l.out, l.activation, delta)\n", "",
     "backward_layer", "delta was not multiplied by f'(out)"),
    ("lrelu_gradient_at_0", "d.data[i][j] *= 1.0 if y > 0 else 0.1", "d.data[i][j] *= 1.0 if y >= 0 else 0.1",
     "gradient_matrix", "lrelu gradient at or below 0"),
    ("relu_gradient_forgotten", "            elif a == 'RELU':\n                d.data[i][j] *= 1.0 if y > 0 else 0.0\n",
     "", "gradient_matrix", "relu gradient at or below 0"),
    ("gradient_overwrites_m", "                d.data[i][j] *= y * (1 - y)",
     "                m.data[i][j] = y * (1 - y)\n                d.data[i][j] *= m.data[i][j]",
     "gradient_matrix", "mutating the input"),
    ("momentum_sign", "v = axpy_matrix(momentum, l.v, b)", "v = axpy_matrix(-momentum, l.v, b)",
     "update_layer", "momentum's sign"),
    ("w_updated_with_the_old_v", "    b = axpy_matrix(-decay, l.w, l.dw)\n    v = axpy_matrix(momentum, l.v, b)\n"
     "    free_matrix(l.v)\n    l.v = v\n    w = axpy_matrix(rate, l.v, l.w)\n    free_matrix(l.w)\n    l.w = w\n",
     "    w = axpy_matrix(rate, l.v, l.w)\n    free_matrix(l.w)\n    l.w = w\n"
     "    b = axpy_matrix(-decay, l.w, l.dw)\n    v = axpy_matrix(momentum, l.v, b)\n    free_matrix(l.v)\n"
     "    l.v = v\n", "update_layer", "momentum/decay in the wrong order"),
    ("decay_applied_to_w", "    b = axpy_matrix(-decay, l.w, l.dw)\n    v = axpy_matrix(momentum, l.v, b)\n"
     "    free_matrix(l.v)\n    l.v = v\n    w = axpy_matrix(rate, l.v, l.w)\n",
     "    v = axpy_matrix(momentum, l.v, l.dw)\n    free_matrix(l.v)\n    l.v = v\n"
     "    w = axpy_matrix(-decay, l.w, axpy_matrix(rate, l.v, l.w))\n",
     "update_layer", "decay in the wrong place"),
    ("update_subtracts", "w = axpy_matrix(rate, l.v, l.w)", "w = axpy_matrix(-rate, l.v, l.w)",
     "update_layer", "the update's sign"),
    ("decay_in_place_on_dw", "    b = axpy_matrix(-decay, l.w, l.dw)\n",
     "    for i in range(l.dw.rows):\n        for j in range(l.dw.cols):\n"
     "            l.dw.data[i][j] -= decay * l.w.data[i][j]\n    b = l.dw\n",
     "update_layer", "mutating the input"),
    ("mutates_input", "    activate_matrix(out, l.activation)\n    free_matrix(l.out)",
     "    activate_matrix(out, l.activation)\n    activate_matrix(inp, 'RELU')\n    free_matrix(l.out)",
     "forward_layer", "mutating the input"),
]


@pytest.mark.parametrize("label,old,new,function,hint", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_a_wrong_implementation_is_caught_by_its_function_with_its_hint(tmp_path, label, old, new, function, hint):
    results = runner.run_checks(mutate(tmp_path, old, new))
    failed = [r for r in results if not r["passed"]]
    assert failed, label
    assert {r["function"] for r in failed} == {function}, [(r["function"], r["check"]) for r in failed]
    hints = [r.get("hint") for r in failed]
    if hint is None:
        assert hints == [None] * len(failed), hints          # no false hint
    else:
        assert any(h and h.startswith(hint) for h in hints), hints
        assert all(h is None or h.startswith(hint) for h in hints), hints   # no other mistake's hint
    for r in failed:
        assert r.get("message")


def test_softmax_shifted_but_not_normalised_gets_the_hint_on_every_softmax_check(tmp_path):
    results = runner.run_checks(mutate(tmp_path, "m.data[i][j] /= total", "pass"))
    failed = [r for r in results if not r["passed"]]
    assert [r["check"] for r in failed] == ["worked example (o1, o2)", "SOFTMAX, random shapes vs pynet's C",
                                            "softmax on large logits"]
    assert all(r["hint"].startswith("softmax not normalised: ") for r in failed), [r["hint"] for r in failed]


def test_softmax_without_the_shift_fails_only_on_large_logits(tmp_path):
    results = runner.run_checks(mutate(tmp_path, "math.exp(m.data[i][j] - top)", "math.exp(m.data[i][j])"))
    failed = [r["check"] for r in results if not r["passed"]]
    assert failed == ["softmax on large logits"]


def test_the_failure_shows_the_smallest_input_expected_and_got(tmp_path):
    path = mutate(tmp_path, "x if x > 0 else 0.1 * x", "x if x > 0 else 0.01 * x")
    r = cli("homework", "check", path)
    assert r.returncode == 1
    block = r.stdout.split("FAIL  activate_matrix  LRELU")[1].split("\nPASS")[0]
    assert "LRELU on a 1x1 matrix" in block and "[[-2.229]]" in block    # the first, smallest case
    assert "expected:" in block and "got:" in block and "hint:" in block and "0.01" in block


def test_hanging_raising_printing_and_meddling_code_fail_only_their_checks(tmp_path):
    src = open(SOLUTION).read()
    src = src.replace("def update_layer(l, rate, momentum, decay):\n",
                      "def update_layer(l, rate, momentum, decay):\n    while True:\n        pass\n")
    src = src.replace("def gradient_matrix(m, a, d):\n",
                      "def gradient_matrix(m, a, d):\n    raise ValueError('oops')\n")
    src = src.replace("def activate_matrix(m, a):\n",
                      "def activate_matrix(m, a):\n    print('x' * 10000)\n")
    src = src.replace("def forward_layer(l, inp):\n",
                      "def forward_layer(l, inp):\n    pynet.matrix_mult_matrix = None\n    np.seterr(all='raise')\n")
    src = "import numpy as np\n" + src
    path = tmp_path / "bad.py"
    path.write_text(src)
    start = time.monotonic()
    r = cli("homework", "check", str(path), "--json")
    seconds = time.monotonic() - start
    assert seconds < 20        # the checker caps itself at 9 s; the rest is slack for a loaded machine
    assert r.returncode == 1
    out = json.loads(r.stdout)
    by_fn = {}
    for c in out["checks"]:
        by_fn.setdefault(c["function"], []).append(c)
    assert all(not c["passed"] and "did not return" in c["message"] for c in by_fn["update_layer"])
    assert all(not c["passed"] and "ValueError: oops" in c["message"] for c in by_fn["gradient_matrix"])
    assert all(c["passed"] and "printed" in c["message"] for c in by_fn["activate_matrix"])
    assert all(c["passed"] for c in by_fn["forward_layer"])   # it only broke its own process
    assert all(c["passed"] for c in by_fn["backward_layer"])


def test_json_and_gradescope_outputs(tmp_path):
    gs = tmp_path / "results.json"
    path = mutate(tmp_path, "    l.dw = dw\n", "")
    r = cli("homework", "check", path, "--json", "--gradescope", str(gs))
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert set(out) == {"file", "passed", "total", "checks"} and out["total"] == len(check.CHECKS)
    for c in out["checks"]:
        assert {"function", "check", "passed"} <= set(c) and c["function"] in FIVE
    g = json.loads(gs.read_text())
    assert set(g) == {"score", "tests"} and len(g["tests"]) == len(check.CHECKS)
    for t in g["tests"]:
        assert set(t) == {"name", "score", "max_score", "output"}
        assert t["max_score"] == 1.0 and t["score"] in (0.0, 1.0) and isinstance(t["output"], str)
    assert g["score"] == sum(t["score"] for t in g["tests"]) == out["passed"] < len(check.CHECKS)
    failed = [t for t in g["tests"] if t["score"] == 0]
    assert all(t["name"].startswith("backward_layer") and "dw not stored" in t["output"] for t in failed)


def test_check_of_a_missing_file_says_so(tmp_path):
    r = cli("homework", "check", str(tmp_path / "nope.py"))
    assert r.returncode == 2 and "nope.py: no such file" in r.stderr


def test_numpy_style_softmax_without_the_shift_gets_the_shift_hint(tmp_path):
    path = mutate(tmp_path, "        if a == 'SOFTMAX':\n",
                  "        if a == 'SOFTMAX':\n            e = np.exp(m.data[i])\n            m.data[i] = e / e.sum()\n"
                  "            continue\n")
    src = "import numpy as np\n" + open(path).read()
    open(path, "w").write(src)
    failed = [r for r in runner.run_checks(path) if not r["passed"]]
    assert [r["check"] for r in failed] == ["softmax on large logits"]
    assert failed[0]["hint"].startswith("softmax not shifted by the row max")
    assert failed[0]["got"] is not None       # the NaNs it produced are shown


def test_softmax_normalised_over_the_whole_matrix_gets_its_own_hint(tmp_path):
    path = mutate(tmp_path, "        if a == 'SOFTMAX':\n",
                  "        if a == 'SOFTMAX':\n            e = np.exp(m.data - m.data.max())\n"
                  "            m.data = e / e.sum()\n            return\n")
    src = "import numpy as np\n" + open(path).read()
    open(path, "w").write(src)
    failed = [r for r in runner.run_checks(path) if not r["passed"]]
    assert failed and {r["function"] for r in failed} == {"activate_matrix"}
    hints = {r["hint"] for r in failed}
    assert any(h and h.startswith("softmax not normalised per row") for h in hints), hints
    assert not any(h and "shifted" in h for h in hints), hints


def test_code_that_hangs_on_import_fails_every_check_within_the_budget(tmp_path):
    path = tmp_path / "hang.py"
    path.write_text("while True:\n    pass\n")
    start = time.monotonic()
    results = runner.run_checks(str(path))
    assert time.monotonic() - start < runner.BUDGET + 5
    assert all(not r["passed"] and ("did not return" in r["message"] or "budget" in r["message"]) for r in results)


def test_code_that_exits_or_crashes_fails_only_its_checks_with_a_short_message(tmp_path):
    src = open(SOLUTION).read()
    src = src.replace("def update_layer(l, rate, momentum, decay):\n",
                      "def update_layer(l, rate, momentum, decay):\n    import os; os._exit(0)\n")
    src = src.replace("def backward_layer(l, delta):\n",
                      "def backward_layer(l, delta):\n    import ctypes; ctypes.string_at(0)\n")
    src = src.replace("def gradient_matrix(m, a, d):\n", "def gradient_matrix(m, a, d):\n    import sys; sys.exit(3)\n")
    path = tmp_path / "crashes.py"
    path.write_text(src)
    r = cli("homework", "check", str(path))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    blocks = {}
    for line in r.stdout.splitlines():
        if line.startswith(("PASS", "FAIL")):
            fn = line.split()[1]
            blocks.setdefault(fn, []).append([line])
        elif line.startswith("      "):
            blocks[fn][-1].append(line.strip())
    assert all(b[0].startswith("PASS") for fn in ("activate_matrix", "forward_layer") for b in blocks[fn])
    assert all(b[1] == "raised SystemExit: 3 (crashes.py line %d)" % (src.splitlines().index(
        "    import sys; sys.exit(3)") + 1) for b in blocks["gradient_matrix"])
    assert all(b[1].startswith("the check's process was killed by SIGSEGV") for b in blocks["backward_layer"])
    assert all(b[1].startswith("the check's process exited (exit code 0) without a result")
               for b in blocks["update_layer"])


def test_forward_layer_must_return_a_matrix(tmp_path):
    """Returning out.data.tolist() is what the given forward_model cannot use: it fails the forward
    checks (it passed them when lists were taken as matrices), as the training loop would reject it."""
    path = mutate(tmp_path, "    return out\n", "    return out.data.tolist()\n")
    failed = [r for r in runner.run_checks(path) if not r["passed"]]
    assert {r["function"] for r in failed} == {"forward_layer"} and len(failed) == 3
    assert all(r["message"].startswith("forward_layer's result is a list, not a matrix") for r in failed)


def test_activate_matrix_returning_a_new_matrix_gets_the_in_place_hint(tmp_path):
    src = open(SOLUTION).read()
    head, rest = src.split("def activate_matrix(m, a):\n", 1)
    body, tail = rest.split("\n\n\ndef gradient_matrix", 1)
    path = tmp_path / "copy.py"
    path.write_text(head + "def activate_matrix(m, a):\n    m = copy_matrix(m)\n" + body + "\n    return m"
                    + "\n\n\ndef gradient_matrix" + tail)
    failed = [r for r in runner.run_checks(str(path)) if not r["passed"]]
    assert {r["function"] for r in failed} == {"activate_matrix"} and len(failed) == 6   # LINEAR passes
    assert all(r["hint"].startswith("change m in place") for r in failed), [r["hint"] for r in failed]


def test_a_pass_that_printed_a_lot_says_so_in_one_short_line(tmp_path):
    path = mutate(tmp_path, "def activate_matrix(m, a):\n", "def activate_matrix(m, a):\n    print('x' * 20000)\n")
    r = cli("homework", "check", path)
    assert r.returncode == 0 and "xxxx" not in r.stdout
    line = r.stdout.splitlines()[0]
    assert line.startswith("PASS  activate_matrix  worked example") and line.endswith(
        "(printed 40002 characters, not shown)")                  # two calls, 20,001 characters each
