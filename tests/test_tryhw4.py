"""tryhw4.py end to end on the real datasets, with tiny iteration budgets: every experiment runs,
the report has every section, table and plot, the same seed gives the same results.json, and bad
input gets a one-line message instead of a traceback."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tryhw4  # noqa: E402
from pynet import experiments as ex  # noqa: E402
from pynet import report  # noqa: E402


def run_cli(*args, env=None):
    e = dict(os.environ, PYNET_PROGRESS="0")
    e.update(env or {})
    return subprocess.run([sys.executable, str(REPO / "tryhw4.py"), *args], capture_output=True, text=True,
                          env=e, cwd=str(REPO), timeout=600)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory, mnist_root, cifar10_root):
    """--all on a 3-iteration budget and the first 2,000 examples, twice with the same seed."""
    out = tmp_path_factory.mktemp("report")
    again = tmp_path_factory.mktemp("again")
    quick = ["--all", "--iters", "3", "--limit", "2000", "--quiet", "--report"]
    assert tryhw4.main(quick + [str(out)]) == 0
    assert tryhw4.main(quick + [str(again)]) == 0
    return out, again


def test_every_experiment_runs_and_is_reported(full_report):
    out, _ = full_report
    results = json.loads((out / "results.json").read_text())
    assert list(results["experiments"]) == ex.ORDER
    assert "extras" not in results   # --all is the homework's experiments only; --extras adds 4.1-4.5
    for exp_id, spec in ex.EXPERIMENTS.items():
        runs = results["experiments"][exp_id]["runs"]
        assert len(runs) == len(spec.get("values", [None]))
        for r in runs:
            assert r["setting"]["iters"] == 3
            assert 0 <= r["test_accuracy"] <= 1 and 0 <= r["train_accuracy"] <= 1
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for exp_id, result in results["experiments"].items():
        heading = "%s %s" % (exp_id, result["title"])
        assert "## " + heading in md and heading in html
        assert (out / ("fig_%s_loss.png" % exp_id.replace(".", "_"))).stat().st_size > 1000
        if result["sweep"]:
            assert (out / ("fig_%s_accuracy.png" % exp_id.replace(".", "_"))).exists()
        for r in result["runs"]:
            assert "| %s |" % r["label"] in md
    assert md.count("Answer: ") == len(ex.ORDER)
    assert (out / "fig_softmax_weights.png").exists() and "softmax weights" in md.lower()
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert "data:image/png;base64," in html and "<img" in html   # self-contained
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings["seconds"]) == set(ex.ORDER)


def test_same_seed_gives_identical_results_json(full_report):
    out, again = full_report
    assert (out / "results.json").read_bytes() == (again / "results.json").read_bytes()


def test_a_different_seed_changes_the_numbers(full_report, tmp_path):
    out, _ = full_report
    assert tryhw4.main(["-e", "2.2.1", "--iters", "3", "--limit", "2000", "--seed", "1", "--quiet",
                        "--report", str(tmp_path)]) == 0
    a = json.loads((out / "results.json").read_text())["experiments"]["2.2.1"]["runs"][0]
    b = json.loads((tmp_path / "results.json").read_text())["experiments"]["2.2.1"]["runs"][0]
    assert a["loss_curve"] != b["loss_curve"]


def test_dependencies_run_first(mnist_root, tmp_path):
    assert tryhw4.main(["-e", "2.3.3", "--iters", "2", "--limit", "2000", "--quiet", "--report", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())["experiments"]
    assert list(results) == ["2.3.1", "2.3.2", "2.3.3"]
    best_act = max(results["2.3.1"]["runs"], key=lambda r: r["test_accuracy"])["value"]
    assert all(r["setting"]["activation"] == best_act for r in results["2.3.3"]["runs"])


def test_default_run_is_the_homework_script(mnist_root):
    p = run_cli("--iters", "20", "--limit", "3000")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "loading data..." and "training model..." in lines
    acc = [l for l in lines if l.startswith(("training accuracy:", "test accuracy:"))]
    assert len(acc) == 2 and all(0.3 < float(l.split(":")[1]) <= 1 for l in acc)


def test_default_run_falls_back_to_the_bundled_sample(tmp_path):
    p = run_cli("--iters", "5", env={"PYNET_DATA": str(tmp_path), "PYNET_CACHE": str(tmp_path), "HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    assert "sample" in p.stderr and len([l for l in p.stderr.splitlines() if "sample" in l]) == 1
    assert "test accuracy:" in p.stdout


def test_diverging_runs_are_recorded_and_the_sweep_goes_on(mnist_root, tmp_path, monkeypatch):
    # With a RELU hidden layer, a rate of 1e300 overflows the activations to inf: the loss is NaN
    # within a few steps, whatever the kernels' rounding.
    monkeypatch.setitem(ex.EXPERIMENTS["2.3.1"], "values", ["RELU"])
    monkeypatch.setitem(ex.EXPERIMENTS["2.3.2"], "values", [1e300, 0.1, 0.01])
    assert tryhw4.main(["-e", "2.3.2", "--iters", "50", "--limit", "5000", "--quiet", "--report", str(tmp_path)]) == 0
    runs = json.loads((tmp_path / "results.json").read_text())["experiments"]["2.3.2"]["runs"]
    assert [r["diverged"] for r in runs] == [True, False, False]
    assert isinstance(runs[0]["diverged_at"], int) and runs[0]["diverged_loss"] in ("nan", "inf")
    assert runs[1]["test_accuracy"] > 0.7
    md = (tmp_path / "report.md").read_text()
    assert "diverged at iteration %d" % runs[0]["diverged_at"] in md and "Rate 1e+300 diverged" in md


def test_unknown_experiment_is_one_line():
    p = run_cli("--experiment", "2.9")
    assert p.returncode == 2
    assert "unknown experiment '2.9'" in p.stderr and "2.2.1" in p.stderr
    assert "Traceback" not in p.stderr


def test_missing_dataset_skips_with_a_message_and_keeps_other_results(mnist_root, tmp_path):
    empty = tmp_path / "nodata"
    empty.mkdir()
    (empty / "mnist").symlink_to(mnist_root)           # MNIST present, CIFAR-10 missing
    rep = tmp_path / "rep"
    p = run_cli("-e", "2.2.1", "-e", "3.2.1", "--iters", "2", "--limit", "1000", "--data", str(empty),
                "--report", str(rep))
    assert p.returncode == 1
    assert "3.2.1 skipped" in p.stderr and "cifar10" in p.stderr.lower() and "Traceback" not in p.stderr
    results = json.loads((rep / "results.json").read_text())["experiments"]
    assert "2.2.1" in results and "3.2.1" not in results and "2.3.1" in results


def test_missing_mnist_for_the_default_run_is_one_line(tmp_path):
    p = run_cli("--data", str(tmp_path / "nowhere"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "nowhere" in p.stderr


def test_unwritable_report_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = run_cli("-e", "2.2.1", "--iters", "2", "--report", str(blocker / "sub"))
    assert p.returncode == 2 and "cannot write the report folder" in p.stderr and "Traceback" not in p.stderr


def test_bad_numbers_are_rejected():
    for args in (["--iters", "0"], ["--seed", "-3"], ["--threads", "0"], ["--iters", "many"], ["--limit", "0"]):
        p = run_cli(*args)
        assert p.returncode == 2 and "Traceback" not in p.stderr, args


def test_report_without_matplotlib_keeps_tables(tmp_path, monkeypatch):
    run = {"label": "rate=0.1", "value": 0.1, "setting": {"batch": 128, "iters": 3, "rate": 0.1, "momentum": 0.9,
                                                          "decay": 0.0}, "final_loss": 0.5, "train_accuracy": 0.9,
           "test_accuracy": 0.89, "diverged": False, "diverged_at": None, "diverged_loss": None,
           "curve_step": 1, "loss_curve": [1.0, 0.7, 0.5]}
    result = {"id": "2.2.2", "title": "Softmax: learning rate", "question": "?", "dataset": "mnist",
              "model": "softmax", "sweep": "rate", "base": dict(ex.HOMEWORK), "runs": [run]}
    monkeypatch.setattr(report, "have_matplotlib", lambda: False)
    files = report.write_report(str(tmp_path), {"2.2.2": result}, {"2.2.2": [0.1]}, {"seed": 0})
    assert files == ["report.md", "report.html"]
    md = (tmp_path / "report.md").read_text()
    assert "| rate=0.1 | 0.5000 | 90.00% | 89.00% |" in md and "pip install matplotlib" in md


def test_answer_names_ties_instead_of_a_zero_margin():
    def run(value, acc):
        return {"label": "decay=%g" % value, "value": value, "setting": {"decay": value, "iters": 1000}, "final_loss": 0.4,
                "train_accuracy": 0.9, "test_accuracy": acc, "diverged": False, "diverged_at": None,
                "diverged_loss": None, "curve_step": 1, "loss_curve": [1.0, 0.4]}
    result = {"id": "2.2.3", "title": "Softmax: weight decay", "question": "?", "dataset": "mnist",
              "model": "softmax", "sweep": "decay", "base": dict(ex.HOMEWORK),
              "runs": [run(1, 0.9058), run(0.01, 0.91), run(0.001, 0.91), run(1e-4, 0.9099)]}
    text = report.answer(result)   # 0.42 points and less: under two standard errors (0.57), all ties
    assert "All 4 runs that learnt tie" in text and "points ahead" not in text
    result["runs"][0]["test_accuracy"] = 0.80
    result["runs"][2]["test_accuracy"] = 0.9090
    text = report.answer(result)
    assert "tied with it (within two standard errors, 0.57 points): decay 0.0001 90.99%, decay 0.001 90.90%" in text


def test_a_run_stuck_at_chance_is_called_out_not_ranked(tmp_path):
    def run(rate, acc, loss):
        return {"label": "rate=%g" % rate, "value": rate, "setting": {"rate": rate, "iters": 1000},
                "final_loss": loss, "train_accuracy": acc, "test_accuracy": acc, "diverged": False,
                "diverged_at": None, "diverged_loss": None, "curve_step": 1, "loss_curve": [2.3, loss]}
    result = {"id": "2.3.2", "title": "Two-layer net: learning rate", "question": "?", "dataset": "mnist",
              "model": "neural_net", "sweep": "rate", "base": dict(ex.HOMEWORK), "classes": 10,
              "runs": [run(10, 0.098, 2.3026), run(1, 0.2093, 2.0513), run(0.1, 0.9551, 0.128),
                       run(0.01, 0.9236, 0.275)]}
    text = report.answer(result)
    assert "Rate 10 did not learn: its test accuracy, 9.80%, is within two standard errors of chance" in text
    assert "its loss ended at 2.3026, about ln 10 = 2.3026" in text
    assert "The worst run that learnt, rate 1, reached 20.93% (10.93 points above chance" in text


def test_quiet_still_prints_the_results_and_the_report_is_readable(tmp_path):
    p = run_cli("-q", "-e", "2.2.1", "--iters", "3", "--limit", "500", "--report", str(tmp_path),
                env={"PYNET_DATA": os.environ.get("PYNET_DATA", "")})
    assert p.returncode == 0, p.stderr
    assert "2.2.1 The softmax model" in p.stdout and "report:" in p.stdout
    assert "final loss" not in p.stdout   # no per-run lines
    mask = os.umask(0)
    os.umask(mask)
    for name in ("report.md", "report.html", "results.json"):   # the usual permissions, not mkstemp's 0600
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_a_skipped_experiment_is_named_in_the_report(tmp_path):
    p = run_cli("-e", "2.2.1", "-e", "3.2.1", "--iters", "3", "--limit", "500", "--quiet", "--report",
                str(tmp_path), env={"PYNET_DATA": str(tmp_path / "nothing")})
    assert p.returncode == 1
    md = (tmp_path / "report.md").read_text()
    assert "Skipped: 3.2.1 (" in md and "cifar10" in md.lower()


def test_a_file_name_as_report_folder_says_it_takes_a_folder(tmp_path):
    """Issue 10 item 14: `--report .../report.md` (an existing file) said 'File exists'."""
    (tmp_path / "report.md").write_text("old")
    p = run_cli("-e", "2.2.1", "--iters", "2", "--report", str(tmp_path / "report.md"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "--report takes a folder" in p.stderr and "File exists" not in p.stderr, p.stderr
