"""The homework's sweeps on a real Dask cluster: a LocalCluster of two worker processes on loopback
(no mocks). The cluster's results must be the serial Runner's, bit for bit; a worker killed in the
middle of a sweep is replaced and its run redone; a run that raises is reported and the others go
on; each worker reads a dataset once. Small budgets (--iters / --limit) keep this file short."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tryhw4  # noqa: E402
import pynet  # noqa: E402
from pynet import experiments as ex  # noqa: E402
from pynet import sweep  # noqa: E402

LIMIT = 1000


@pytest.fixture(scope="module")
def client():
    c = sweep.local_client(2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def serial(ids, iters, limit=LIMIT, threads=None):
    """The reference: the serial Runner in this process (with ``threads``, on that many threads)."""
    runner = ex.Runner(tryhw4.BUILDERS, lambda name: tryhw4.load_dataset(name, None, limit)[:2], iters=iters,
                       progress=False)
    before = pynet.get_threads()
    pynet.set_threads(threads or before)
    try:
        for exp_id in ids:
            runner.run(exp_id)
    finally:
        pynet.set_threads(before)
    return runner


def on_cluster(client, ids, iters, limit=LIMIT, **kw):
    runner = sweep.ClusterRunner(client, tryhw4.BUILDERS, tryhw4.load_dataset, limit=limit, iters=iters, **kw)
    return runner, runner.run_all(ids)


def test_a_two_experiment_sweep_equals_the_serial_one(client, mnist_root):
    ids = ex.resolve(["2.3.2"])                  # 2.3.1, then 2.3.2 with 2.3.1's best activation
    assert ids == ["2.3.1", "2.3.2"]
    lines = []
    runner, failed = on_cluster(client, ids, iters=5, log=lines.append)
    assert failed == [] and runner.skipped == {} and runner.failed_runs == []
    expected = serial(ids, iters=5)
    assert json.dumps(runner.results) == json.dumps(expected.results)     # bit for bit, in the same order
    assert runner.models["2.3.1"] is not None
    for a, b in zip(runner.models["2.3.2"].layers, expected.models["2.3.2"].layers):
        assert (a.w.data == b.w.data).all()
    # progress counts runs across the cluster: 4 activations + 5 rates
    assert [l.split("]")[0] for l in lines] == ["[%d/9" % k for k in range(1, 10)]
    assert len(runner.workers_used) == 2
    for key, loaded in client.run(sweep.worker_loads).items():   # read once per worker, never per run
        assert loaded == [("mnist", None)], key


def test_a_killed_worker_is_replaced_and_its_run_redone(client, mnist_root):
    ids = ["2.3.1"]
    client.wait_for_workers(2)
    before = client.run(os.getpid)
    killed = {}

    def kill_a_busy_worker():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if any("pynet-run-" in str(k) for k in keys)]
            if busy:
                time.sleep(0.3)          # inside the run (or its first data read)
                busy = [w for w, keys in client.processing().items() if any("pynet-run-" in str(k) for k in keys)]
                if busy:
                    killed["pid"], killed["keys"] = before[busy[0]], client.processing()[busy[0]]
                    os.kill(killed["pid"], signal.SIGKILL)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    runner, failed = on_cluster(client, ids, iters=1500)
    killer.join()
    assert killed and killed["keys"], "no worker was busy to kill"
    assert failed == [] and runner.failed_runs == []
    # one thread: runs this long on two threads slow down badly when other processes take a core
    assert json.dumps(runner.results) == json.dumps(serial(ids, iters=1500, threads=1).results)
    client.wait_for_workers(2, timeout=60)
    after = client.run(os.getpid)
    assert killed["pid"] not in after.values() and len(after) == 2       # the nanny started a new one
    # the scheduler ran the killed worker's run again, elsewhere, to the end
    key = killed["keys"][0]
    story = client.run_on_scheduler(lambda dask_scheduler: [tuple(t[1:3]) for t in dask_scheduler.story(key)])
    assert ("processing", "released") in story                             # lost with its worker
    assert story.index(("processing", "memory")) > story.index(("processing", "released"))   # then done again


def test_a_failing_run_is_reported_and_the_others_go_on(client, mnist_root, monkeypatch):
    monkeypatch.setitem(ex.EXPERIMENTS, "9.1", dict(title="Softmax: batch size", dataset="mnist", model="softmax",
                                                     sweep="batch", values=[64, 0, 32], question="Which batch?"))
    warnings = []
    runner, failed = on_cluster(client, ["2.2.1", "9.1"], iters=3, warn=warnings.append, threads=2)
    assert failed == [] and runner.threads_used == [2, 2, 2]     # --threads overrides cores / workers
    assert [r["label"] for r in runner.results["9.1"]["runs"]] == ["batch=64", "batch=32"]
    assert runner.failed_runs == [{"experiment": "9.1", "label": "batch=0",
                                   "error": "ValueError: batch must be >= 1, got 0"}]
    assert any("9.1 batch=0 failed: ValueError: batch must be >= 1" in w for w in warnings)
    assert runner.results["2.2.1"] == serial(["2.2.1"], iters=3).results["2.2.1"]


def test_missing_data_skips_the_experiment_and_its_dependents(client, tmp_path):
    runner = sweep.ClusterRunner(client, tryhw4.BUILDERS, tryhw4.load_dataset, data_dir=str(tmp_path / "nowhere"),
                                 iters=2)
    failed = runner.run_all(["2.3.1", "3.2.1"])
    assert failed == ["2.3.1", "3.2.1"] and runner.results == {}
    assert "nowhere" in runner.skipped["2.3.1"]
    assert runner.skipped["3.2.1"] == "it needs 2.3.1, which did not run"




def test_tryhw4_workers_gives_the_serial_results_json(tmp_path, mnist_root):
    """What varies between the two runs is timings.json (seconds, threads, workers) and the report's
    seconds and thread count; results.json holds no timings, so it must be identical."""
    quick = ["-e", "2.2.1", "-e", "2.3.2", "--iters", "3", "--limit", str(LIMIT), "--quiet", "--report"]
    assert tryhw4.main(quick + [str(tmp_path / "serial")]) == 0
    assert tryhw4.main(quick + [str(tmp_path / "dask"), "--workers", "2"]) == 0
    assert (tmp_path / "serial" / "results.json").read_bytes() == (tmp_path / "dask" / "results.json").read_bytes()
    timings = json.loads((tmp_path / "dask" / "timings.json").read_text())
    assert timings["workers"] == 2 and timings["threads"] == max(1, sweep.available_cores() // 2)
    assert "on 2 Dask workers" in (tmp_path / "dask" / "report.md").read_text()


def test_tryhw4_scheduler_reports_a_failing_run(client, tmp_path, mnist_root, monkeypatch, capsys):
    monkeypatch.setitem(ex.EXPERIMENTS["2.2.2"], "values", [0.1, float("nan"), 0.01])
    rc = tryhw4.main(["-e", "2.2.2", "--iters", "3", "--limit", str(LIMIT), "--quiet", "--threads", "1",
                      "--scheduler", client.scheduler.address, "--report", str(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "2.2.2 rate=nan failed: ValueError" in err
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["label"] for r in results["experiments"]["2.2.2"]["runs"]] == ["rate=0.1", "rate=0.01"]
    assert results["failed_runs"][0]["label"] == "rate=nan"
    md = (tmp_path / "report.md").read_text()
    assert "Failed: the rate=nan run of 2.2.2 raised ValueError" in md and "1 thread(s) per run" in md


def test_tryhw4_workers_without_dask_says_how_to_get_it():
    code = ("import sys, runpy; sys.modules['distributed'] = None; "
            "sys.argv = ['tryhw4.py', '-e', '2.2.1', '--workers', '2']; runpy.run_path(%r, run_name='__main__')"
            % str(REPO / "tryhw4.py"))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    # never 'pip install pynet[dask]' outside a checkout: an unrelated 'pynet' is on the package index
    assert "pip install 'dask[distributed]'" in p.stderr and "pip install pynet" not in p.stderr


@pytest.mark.parametrize("args, message", [
    (["-e", "2.2.1", "--workers", "0"], "--workers must be >= 1, got 0"),
    (["-e", "2.2.1", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "give one of them"),
    (["--workers", "2"], "add --all, --experiment N or --report DIR"),
])
def test_tryhw4_bad_cluster_options_are_one_line(args, message):
    p = subprocess.run([sys.executable, str(REPO / "tryhw4.py"), *args], capture_output=True, text=True,
                       cwd=str(REPO), timeout=120)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gridsearchcv_runs_on_the_dask_backend_with_the_serial_results(client):
    """scikit-learn's GridSearchCV over pynet.MLPClassifier with joblib's Dask backend: the fits run as
    tasks on the cluster's worker processes (the estimator travels through pynet's safe model format)
    and the scores equal a serial search's, bit for bit."""
    joblib = pytest.importorskip("joblib")
    from distributed import get_task_stream
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from pynet import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    y = y[:600]
    grid = {"learning_rate_init": [1e-3, 1e-2], "alpha": [0.0, 1e-3]}

    def search():
        est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, batch_size=64, random_state=0, threads=1)
        return GridSearchCV(est, grid, cv=2)

    with get_task_stream(client) as tasks, joblib.parallel_config(backend="dask"):
        on_dask = search().fit(X, y)
    serial_search = search().fit(X, y)
    assert len(tasks.data) >= len(on_dask.cv_results_["params"]) * 2   # every fit ran on a worker
    assert {t["worker"] for t in tasks.data} <= set(client.scheduler_info()["workers"])
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"], serial_search.cv_results_["mean_test_score"])
    assert on_dask.best_params_ == serial_search.best_params_
    assert on_dask.best_estimator_.score(X, y) == serial_search.best_estimator_.score(X, y)
