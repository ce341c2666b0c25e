"""The experiments on a student's code (issue 11 part 4): ``tryhw4.py --impl FILE`` and the generated
folder's tryhw4.py train with the student's five functions in a Python loop that draws the same
weights and batches as the C loop, and say per run whether the result matches the C loop's. The
reference numbers here come from a separate plain C run of tryhw4.py, not from the --impl run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tryhw4  # noqa: E402
import pynet  # noqa: E402
from pynet.homework.loop import Implementation, compare  # noqa: E402

SOLUTION = REPO / "tests" / "homework_solution.py"
QUICK = ["-e", "2.2.1", "--iters", "50", "--limit", "500", "--quiet", "--threads", "1"]


def wrong_solution(tmp_path):
    """The naive solution with one of the listed mistakes: momentum left out of the update."""
    text = SOLUTION.read_text()
    right = "    v = axpy_matrix(momentum, l.v, b)\n"
    assert right in text
    path = tmp_path / "no_momentum.py"
    path.write_text(text.replace(right, "    v = copy_matrix(b)\n"))
    return path


def results(folder):
    return json.loads((folder / "results.json").read_text())


@pytest.fixture(scope="module")
def c_reference(tmp_path_factory, mnist_root):
    out = tmp_path_factory.mktemp("c")
    assert tryhw4.main(QUICK + ["--report", str(out)]) == 0
    return results(out)["experiments"]["2.2.1"]["runs"][0]


def test_naive_solution_reproduces_the_c_loop(tmp_path, c_reference, capsys):
    assert tryhw4.main(QUICK + ["--impl", str(SOLUTION), "--report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "homework_solution.py: 1 of 1 runs match the C reference within 1e-09" in out
    res = results(tmp_path)
    run = res["experiments"]["2.2.1"]["runs"][0]
    impl = run["implementation"]
    assert impl["matches"] is True and impl["max_rel_diff"] <= 1e-9
    assert impl["check"]["passed"] == impl["check"]["total"] == res["implementation"]["check"]["total"]
    for key in ("train_accuracy", "test_accuracy", "final_loss"):
        assert run[key] == pytest.approx(c_reference[key], rel=1e-9, abs=0)
    np.testing.assert_allclose(run["loss_curve"], c_reference["loss_curve"], rtol=1e-9, atol=0)
    md = (tmp_path / "report.md").read_text()
    assert ("implementation %s (check: %d/%d passed); matches the C reference within 1e-09: yes"
            % (SOLUTION, impl["check"]["total"], impl["check"]["total"])) in md


def test_wrong_implementation_is_reported_as_not_matching(tmp_path, c_reference, capsys):
    wrong = wrong_solution(tmp_path)
    out_dir = tmp_path / "report"
    assert tryhw4.main(QUICK + ["--impl", str(wrong), "--report", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "no_momentum.py: 0 of 1 runs match the C reference within 1e-09; not: 2.2.1 homework defaults" in out
    run = results(out_dir)["experiments"]["2.2.1"]["runs"][0]
    impl = run["implementation"]
    assert impl["matches"] is False and impl["check"]["passed"] < impl["check"]["total"]
    # The run's numbers are the wrong implementation's own, not the C reference's.
    assert run["loss_curve"] != c_reference["loss_curve"]
    md = (out_dir / "report.md").read_text()
    assert "matches the C reference within 1e-09: NO: the batch loss first differs at iteration 2 (" in md
    assert "matches the C reference within 1e-09: yes" not in md


def test_the_python_loop_draws_like_train_model(mnist_root):
    """Two layers, RELU: the loop's losses equal the C loop's step by step from the same seed."""
    impl = Implementation(str(SOLUTION), check=False)
    train = pynet.datasets.load("mnist", "train", root=str(mnist_root), bias=True)
    train = pynet.make_data(train.X.data[:300], train.y.data[:300])

    def build():
        pynet.set_seed(7)
        return pynet.make_model([pynet.make_layer(train.X.cols, 16, pynet.RELU),
                                 pynet.make_layer(16, train.y.cols, pynet.SOFTMAX)])
    m = build()
    ref = pynet.train_model(m, train, 32, 20, 0.05, 0.9, 0.001, progress=False)
    m2 = build()
    losses, diverged_at = impl.train(m2, train, 32, 20, 0.05, 0.9, 0.001)
    assert diverged_at is None
    np.testing.assert_allclose(losses, ref, rtol=1e-12, atol=0)
    for a, b in zip(m.layers, m2.layers):
        np.testing.assert_allclose(b.w.data, a.w.data, rtol=1e-10, atol=1e-14)
    run = {"diverged": False, "diverged_at": None, "train_accuracy": 0.5, "test_accuracy": 0.5}
    assert compare(run, ref, run, losses)["matches"]
    shifted = losses.copy()
    shifted[3] *= 1 + 1e-8
    verdict = compare(run, ref, run, shifted)
    assert not verdict["matches"] and "iteration 3" in verdict["reason"]


def test_a_missing_implementation_is_one_line(tmp_path, capsys):
    assert tryhw4.main(["--impl", str(tmp_path / "nope.py"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nope.py: no such file" in err and "Traceback" not in err


def test_generated_folder_runs_an_experiment_on_its_classifier(tmp_path, mnist_root):
    folder = tmp_path / "hw"
    env = dict(os.environ, PYNET_PROGRESS="0", PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-m", "pynet", "homework", "init", str(folder)], check=True, env=env,
                   capture_output=True)
    (folder / "classifier.py").write_text(SOLUTION.read_text())
    p = subprocess.run([sys.executable, "tryhw4.py", "-e", "2.2.1", "--iters", "20", "--limit", "300",
                        "--report", "out"], cwd=str(folder), env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "1 of 1 runs match the C reference within 1e-09" in p.stdout
    run = json.loads((folder / "out" / "results.json").read_text())["experiments"]["2.2.1"]["runs"][0]
    assert run["implementation"]["matches"] is True


def test_matrix_keeps_one_view_which_keeps_the_memory():
    """m.data is made once per Matrix (element loops read it per entry); the view, not the Matrix,
    holds the memory, so it stays valid after the Matrix goes and no reference cycle is made."""
    import gc
    import weakref
    m = pynet.make_matrix(2, 3)
    v = m.data
    assert m.data is v and m[1] is not None
    gone = weakref.ref(m)
    del m
    assert gone() is None   # freed by reference counting alone: no cycle through the cached view
    gc.collect()
    v[1, 2] = 5.0
    assert v[1, 2] == 5.0


def test_impl_does_not_combine_with_workers(capsys):
    with pytest.raises(SystemExit) as e:
        tryhw4.parse_args(["--impl", str(SOLUTION), "--all", "--workers", "2"])
    assert e.value.code == 2
    assert "--impl runs the student's code in this process" in capsys.readouterr().err


CHAOTIC = ["-e", "2.2.2", "--iters", "200", "--limit", "1000", "--quiet", "--threads", "1"]


def test_a_run_that_amplifies_rounding_is_not_called_a_mismatch(tmp_path, mnist_root, capsys):
    """2.2.2's rate=10 on 1,000 rows: the naive solution's curve parts from C's at about iteration
    84 although every step is right (its sums round differently), and pynet's own C loop parts as
    far when its initial weights move by one ulp. That is agreement within rounding, not a mistake."""
    assert tryhw4.main(CHAOTIC + ["--impl", str(SOLUTION), "--report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    runs = {r["label"]: r for r in results(tmp_path)["experiments"]["2.2.2"]["runs"]}
    impl = runs["rate=10"]["implementation"]
    assert impl["matches"] is False and impl["max_rel_diff"] > 1e-9       # the curves do part
    assert impl["within_rounding"] is True
    assert impl["steps"]["first"] is None and impl["steps"]["max_rel_diff"] < 1e-12
    assert impl["c_one_ulp"]["max_rel_diff"] > 1e-9 and impl["c_one_ulp"]["first_iteration"] > 0
    for label in ("rate=0.1", "rate=0.01", "rate=0.001"):
        assert runs[label]["implementation"]["matches"] is True, label
    assert "; not:" not in out
    assert "4 of 5 runs match the C reference within 1e-09; 1 agrees only within rounding (every step agrees; "\
           "the run amplifies rounding): 2.2.2 rate=10\n" in out
    md = (tmp_path / "report.md").read_text()
    assert "rate=10: implementation %s (check: 21/21 passed); matches the C reference within 1e-09: no, but " \
           "within rounding: the batch loss first differs at iteration" % SOLUTION in md
    assert "NO:" not in md


def test_a_wrong_step_is_found_even_where_the_curve_is_chaotic(tmp_path, mnist_root, capsys):
    """The same runs with momentum left out: not within rounding, and the step check names the first
    step that differs from pynet's C step (step 1: at step 0, v is 0, so momentum·v is too)."""
    wrong = wrong_solution(tmp_path)
    assert tryhw4.main(CHAOTIC + ["--impl", str(wrong), "--report", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    for run in results(tmp_path / "r")["experiments"]["2.2.2"]["runs"]:
        impl = run["implementation"]
        assert impl["matches"] is False and impl["within_rounding"] is False, run["label"]
        assert impl["steps"]["first"]["iteration"] == 1, run["label"]
    assert "0 of 5 runs match the C reference within 1e-09; not: 2.2.2 rate=10, 2.2.2 rate=1, 2.2.2 rate=0.1" in out
    md = (tmp_path / "r" / "report.md").read_text()
    assert "the first step that differs from pynet's C step from the same weights: iteration 1, layer 0's" in md
