"""Experiments 4.1-4.5 (pynet.extras, tryhw4.py --extras): each answer says the true thing about
its numbers, on synthetic results where the lecture's claim holds and where it does not; the
statistics are the report's; and the experiments run end to end on real MNIST (small sizes), the
same seed giving the same results, with their report sections, tables and plots."""
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
from pynet import extras, report  # noqa: E402
from pynet.report import extras as A  # noqa: E402


# ---- the statistics are the report's ----------------------------------------------------------------

def test_statistics_are_the_reports_one_rule():
    from pynet.report import answers
    result = {"test_examples": 10000, "train_examples": 5000, "classes": 10}
    assert A.standard_error(0.91, 10000) == pytest.approx((0.91 * 0.09 / 10000) ** 0.5, rel=1e-15)
    # two standard errors at 91% on 10,000 images are 0.572 points: 0.5 points is a tie, 1 point is not
    assert A.compare(0.91, 0.905, 10000) == 0 and answers._tied(0.91, 0.905, result)
    assert A.compare(0.91, 0.90, 10000) == 1 and A.compare(0.90, 0.91, 10000) == -1
    assert not answers._tied(0.91, 0.90, result)
    assert A.at_chance(0.1, 10, 500) and not A.at_chance(0.16, 10, 500)   # 2 SE of 10% on 500: 2.68 points
    assert answers._at_chance({"test_accuracy": 0.1}, dict(result, test_examples=500))
    assert A.overfits(1.0, 5000, 0.95, 10000) == 1 and A.overfits(0.95, 5000, 0.951, 10000) == 0
    assert answers._overfit({"train_accuracy": 1.0, "test_accuracy": 0.95}, result) == 1


# ---- synthetic results --------------------------------------------------------------------------------

def run(label, test, train=None, diverged_at=None, **extra):
    r = {"label": label, "test_accuracy": test, "train_accuracy": test if train is None else train,
         "diverged": diverged_at is not None, "diverged_at": diverged_at, "final_loss": 0.3, "diagnostics": None}
    r.update(extra)
    return r


def result(exp_id, runs, n=10000, n_train=60000, **settings):
    return {"id": exp_id, "title": extras.EXTRAS[exp_id]["title"], "claim": extras.EXTRAS[exp_id]["claim"],
            "question": "?", "classes": 10, "test_examples": n, "train_examples": n_train,
            "settings": dict(settings, batch=128, momentum=0.9), "runs": runs}


def r41(soft, ovr):
    return result("4.1", [run("softmax", soft), run("one-vs-rest (10 logistic)", ovr)], iters=1000, rate=0.01)


def test_4_1_holds_when_softmax_is_better_and_faster():
    v, text = A.answer(r41(0.92, 0.90), [0.3, 2.4])
    assert v == A.HELD and "held here" in text
    assert "softmax is 2.00 points more accurate, more than two standard errors" in text
    assert "2.40 s against 0.30 s" in text and "8.0 times as long" in text


def test_4_1_does_not_hold_when_one_vs_rest_is_better_and_faster():
    v, text = A.answer(r41(0.91, 0.93), [2.0, 1.0])
    assert v == A.NOT_HELD and "did not hold here" in text
    assert "one-vs-rest is 2.00 points more accurate" in text and "better, not worse" in text
    assert "one-vs-rest was not slower" in text


def test_4_1_a_tie_is_not_worse():
    v, text = A.answer(r41(0.910, 0.908), [0.3, 2.4])
    assert v == A.PARTLY and "a tie" in text and "not measurably worse" in text


def r42(logistic_ratios, relu_ratios, logistic_acc, relu_acc):
    runs = []
    for act, ratios, accs in (("LOGISTIC", logistic_ratios, logistic_acc), ("RELU", relu_ratios, relu_acc)):
        for depth, ratio, acc in zip((2, 4, 8), ratios, accs):
            runs.append(run("%s, depth %d" % (act, depth), acc, activation=act, depth=depth, start_ratio=ratio))
    return result("4.2", runs, iters=1000, rate=0.1, width=32)


def test_4_2_holds_when_logistic_gradients_vanish_and_deep_logistic_trains_worse():
    v, text = A.answer(r42([0.7, 0.03, 1e-4], [5, 6, 6], [0.94, 0.92, 0.101], [0.95, 0.95, 0.90]))
    assert v == A.HELD
    assert "LOGISTIC ratio falls by a factor of 7e+03" in text and "RELU ratio rises by a factor of 1.2" in text
    assert "the logistic gradient vanishes towards the input" in text
    assert "LOGISTIC, depth 8 10.10%, at chance" in text and "RELU is 79.90 points more accurate" in text


def test_4_2_a_zero_ratio_is_a_vanished_gradient_not_an_undefined_one():
    v, text = A.answer(r42([0.7, 0.03, 0.0], [5, 6, 6], [0.94, 0.92, 0.101], [0.95, 0.95, 0.90]))
    assert "exactly zero at the start for LOGISTIC, depth 8" in text and "undefined" not in text
    assert "the logistic gradient vanished towards the input" in text and v == A.HELD


def test_4_2_does_not_hold_when_logistic_gradients_grow():
    v, text = A.answer(r42([1.0, 1.2, 1.5], [5, 4, 3], [0.94, 0.94, 0.94], [0.94, 0.94, 0.941]))
    assert v == A.NOT_HELD and "did not hold here" in text
    assert "LOGISTIC ratio rises by a factor of 1.5" in text and "RELU ratio falls by a factor of 1.67" in text
    assert "does not vanish faster than the ReLU one" in text and "a tie" in text


def r43(relu_dead, relu_acc, lrelu_acc, lrelu_div=(None,) * 4):
    runs, rates = [], [0.01, 0.1, 0.3, 1.0]
    for rate, dead, acc in zip(rates, relu_dead, relu_acc):
        runs.append(run("RELU, rate %g" % rate, acc, activation="RELU", rate=rate, final_dead=dead,
                        final_silent=dead))
    for rate, acc, div in zip(rates, lrelu_acc, lrelu_div):
        runs.append(run("LRELU, rate %g" % rate, acc, diverged_at=div, activation="LRELU", rate=rate,
                        final_dead=None, final_silent=0.0))
    return result("4.3", runs, iters=1000, widths=[64, 64])


def test_4_3_holds_when_relu_dies_and_lrelu_trains_on():
    v, text = A.answer(r43([0.01, 0.05, 0.3, 0.9], [0.93, 0.96, 0.94, 0.3], [0.93, 0.96, 0.95, 0.95]))
    assert v == A.HELD
    assert "rise from 1.00% at rate 0.01 to 90.00% at rate 1" in text
    assert "LRELU kept training and scored 65.00 points higher" in text
    assert "rate 0.01: RELU 93.00%, LRELU 93.00% (a tie)" in text


def test_4_3_does_not_hold_when_dead_units_fall_and_lrelu_diverges():
    v, text = A.answer(r43([0.2, 0.1, 0.08, 0.05], [0.93, 0.96, 0.94, 0.93], [0.93, 0.96, 0.1, 0.1],
                           lrelu_div=(None, None, 64, 15)))
    assert v == A.NOT_HELD and "did not hold here" in text
    assert "fall from 20.00% at rate 0.01 to 5.00% at rate 1" in text
    assert "rate 0.3: RELU 94.00%, LRELU diverged at step 64" in text
    assert "Where RELU lost the most units (rate 0.01, 20.00% dead), LRELU did not score measurably higher" in text


def r44(accs, first, top, grad_last=0.5):
    runs = [run(v, a, variant=v, grad_norm=[first, top, grad_last], first_grad_norm=first, max_grad_norm=top,
                nonfinite_grad=False, final_dead=0.1) for v, a in zip(("plain", "clip", "layer norm"), accs)]
    return result("4.4", runs, epochs=1, rate=0.2, depth=8, width=64, clip=1.0)


def test_4_4_holds_when_plain_explodes_and_both_fixes_train():
    v, text = A.answer(r44([0.098, 0.94, 0.86], 0.02, 4000.0, grad_last=0.0))
    assert v == A.HELD
    assert "went from 0.02 at the first record to a largest 4e+03, 2e+05 times as large" in text
    assert "The plain net did not train: 9.80%, at chance" in text
    assert text.count("so it fixed the plain net's failure") == 2
    assert "By the last record it was 0, below where it started, with 10.00% of the hidden units dead" in text


def test_4_4_held_in_part_when_one_fix_fails():
    v, text = A.answer(r44([0.098, 0.94, 0.101], 0.02, 4000.0))
    assert v == A.PARTLY and "so it did not make the net train" in text


def test_4_4_does_not_hold_when_the_plain_net_trains():
    # its gradient grew 25 times and it trained anyway: not "no explosion" (the gradient did grow)
    v, text = A.answer(r44([0.93, 0.935, 0.90], 0.02, 0.5))
    assert v == A.NOT_HELD and "The plain net trained: 93.00%" in text
    assert "gradient grew but it trained anyway" in text and "no explosion" not in text
    assert "not measurably better than plain" in text
    # a gradient that never grew: then there was no explosion
    v, text = A.answer(r44([0.93, 0.935, 0.90], 0.02, 0.02, grad_last=0.01))
    assert v == A.NOT_HELD and "did not grow and it trained, so there was no explosion" in text


def r45(plain, drop):
    runs = [run("no dropout", plain[1], plain[0], dropout=0.0, train_curve=[plain[0]], test_curve=[plain[1]]),
            run("dropout 0.5", drop[1], drop[0], dropout=0.5, train_curve=[drop[0]], test_curve=[drop[1]])]
    return result("4.5", runs, n_train=5000, epochs=20, rate=0.1, width=512, subset=5000, dropout=0.5)


def test_4_5_holds_when_dropout_raises_test_accuracy_of_an_overfitting_net():
    v, text = A.answer(r45((1.0, 0.944), (0.999, 0.952)))
    assert v == A.HELD
    assert "a gap of 5.60 points, more than two standard errors of the gap: it overfits" in text
    assert "dropout is 0.80 points more accurate, more than two standard errors (0.43 points)" in text
    assert "Dropout narrowed the gap by 0.90 points." in text


def test_4_5_a_gap_that_is_negative_is_not_called_closed():
    # without dropout test is above training by more than two standard errors: narrowing that gap is not
    # "it no longer overfits" (it never did)
    v, text = A.answer(r45((0.90, 0.93), (0.80, 0.96)))
    assert "test above training by more than two standard errors" in text
    assert "no longer measurably overfits" not in text and v == A.NOT_HELD


def test_4_5_does_not_hold_without_overfitting():
    v, text = A.answer(r45((0.95, 0.948), (0.95, 0.949)))
    assert v == A.NOT_HELD and "no measurable overfitting" in text and "did not overfit" in text


def test_4_5_does_not_hold_when_dropout_neither_helps_nor_closes_the_gap():
    v, text = A.answer(r45((1.0, 0.944), (1.0, 0.943)))
    assert v == A.NOT_HELD and "a tie" in text and "Dropout did not narrow the gap." in text


def test_4_5_held_in_part_when_the_gap_closes_but_test_accuracy_ties():
    v, text = A.answer(r45((0.96, 0.944), (0.947, 0.945)))
    assert v == A.PARTLY and "it no longer measurably overfits" in text and "a tie" in text


def test_every_answer_has_a_table_and_section():
    cases = {"4.1": (r41(0.92, 0.9), [0.3, 2.4]), "4.2": (r42([0.7, 0.03, 1e-4], [5, 6, 6], [.9] * 3, [.9] * 3), None),
             "4.3": (r43([0, 0, 0.3, 1], [.9] * 4, [.9] * 4), None), "4.4": (r44([.1, .9, .9], 0.02, 40.0), None),
             "4.5": (r45((1.0, 0.94), (1.0, 0.95)), None)}
    extras_results = {k: v[0] for k, v in cases.items()}
    blocks = A.blocks(extras_results, {k: v[1] for k, v in cases.items() if v[1]}, {"4.2": ["fig.png"]})
    assert [x for kind, x in blocks if kind == "h2"] == ["%s %s" % (k, r["title"]) for k, r in extras_results.items()]
    tables = [x for kind, x in blocks if kind == "table"]
    assert [len(t) - 1 for t in tables] == [2, 6, 8, 3, 2]
    assert all(len(row) == len(t[0]) for t in tables for row in t)
    assert ("img", "fig.png") in blocks
    assert sum(1 for kind, x in blocks if kind == "p" and x.startswith("Answer: The lecture's claim")) == 5


# ---- the real thing ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist(mnist_root):
    from pynet import datasets
    train = datasets.load("mnist", "train", root=str(mnist_root.parent), bias=True)
    test = datasets.load("mnist", "test", root=str(mnist_root.parent), bias=True)
    return pynet.Data(train.X.data[:600], train.y.data[:600]), pynet.Data(test.X.data[:600], test.y.data[:600])


def test_start_gradients_leave_training_unchanged(mnist):
    train, _ = mnist
    weights = []
    for probe in (False, True):
        pynet.set_seed(3)
        m = extras._net(train.X.cols, [16, 16], pynet.RELU, 10)
        if probe:
            norms = extras.start_gradients(m, train)
            assert len(norms) == 3 and all(n > 0 for n in norms)
        pynet.train_model(m, train, 32, 20, 0.05, 0.9, 0.0, progress=False)
        weights.append([l.w.data.copy() for l in m.layers])
    for a, b in zip(*weights):
        assert np.array_equal(a, b)


def test_start_gradient_is_the_mean_loss_gradient(mnist):
    """Against a NumPy forward and backward pass of a one-layer softmax model."""
    train, _ = mnist
    pynet.set_seed(1)
    m = extras._net(train.X.cols, [], None, 10)
    X, y = train.X.data, train.y.data
    z = X @ m.layers[0].w.data
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = np.linalg.norm(X.T @ (y - p)) / X.shape[0]
    assert extras.start_gradients(m, train)[0] == pytest.approx(expected, rel=1e-10)


@pytest.fixture(scope="module")
def extras_report(tmp_path_factory, mnist_root):
    """--extras on 20 iterations and the first 1,000 examples, twice with the same seed."""
    outs = [tmp_path_factory.mktemp("extras"), tmp_path_factory.mktemp("again")]
    for out in outs:
        assert tryhw4.main(["--extras", "--iters", "20", "--limit", "1000", "--quiet", "--report", str(out)]) == 0
    return outs


def test_extras_run_and_are_reported(extras_report):
    out, _ = extras_report
    results = json.loads((out / "results.json").read_text())
    assert list(results["extras"]) == extras.ORDER and results["experiments"] == {}
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for exp_id, r in results["extras"].items():
        assert "## %s %s" % (exp_id, r["title"]) in md and "%s %s" % (exp_id, r["title"]) in html
        for row in A.table(r, json.loads((out / "timings.json").read_text())["seconds"][exp_id])[1:]:
            assert row[0] in md
    for name in ("4_1_accuracy_time", "4_2_ratio_accuracy", "4_2_gradients", "4_3_dead_accuracy", "4_4_norms_dead",
                 "4_4_gradients", "4_5_accuracy_epochs"):
        assert (out / ("fig_%s.png" % name)).stat().st_size > 1000 and ("fig_%s.png" % name) in md
    assert md.count("Answer: The lecture's claim") == 5
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    four = results["extras"]["4.4"]
    assert four["settings"]["epochs"] == 3   # 1000 rows: 7 steps an epoch, so 3 epochs give >= 20 steps
    assert all(r["diagnostics"]["step"] for r in four["runs"] if not r["diverged"])


def test_same_seed_same_extras(extras_report):
    a, b = extras_report
    assert (a / "results.json").read_text() == (b / "results.json").read_text()


def test_answers_printed_match_the_report(extras_report, capsys, tmp_path):
    out, _ = extras_report
    results = json.loads((out / "results.json").read_text())
    seconds = json.loads((out / "timings.json").read_text())["seconds"]
    md = (out / "report.md").read_text()
    for exp_id, r in results["extras"].items():
        assert A.answer(r, seconds[exp_id])[1] in md


def run_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "tryhw4.py"), *args], capture_output=True, text=True,
                          env=dict(os.environ, PYNET_PROGRESS="0"), cwd=str(REPO), timeout=300)


def test_one_extra_alone(mnist_root):
    p = run_cli("-e", "4.1", "--iters", "5", "--limit", "500")
    assert p.returncode == 0, p.stderr
    assert "4.1 One-vs-rest vs softmax: the claim " in p.stdout and "4.2 " not in p.stdout


def test_bad_extras_command_lines():
    p = run_cli("-e", "4.9")
    assert p.returncode == 2 and "unknown experiment '4.9'" in p.stderr and "4.5" in p.stderr
    p = run_cli("--extras", "--impl", "tests/homework_solution.py")
    assert p.returncode == 2 and "run those without --impl" in p.stderr


def test_run_names_a_bad_experiment(mnist):
    train, test = mnist
    with pytest.raises(ValueError, match="unknown extra experiment '4.0'"):
        extras.run("4.0", train, test)
