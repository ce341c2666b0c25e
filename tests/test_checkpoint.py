"""Nothing lost on interruption (issue 14, part 4): a real SIGINT during fit stops it at the end of a
step with the History marked interrupted and the best weights kept; checkpoints written every epoch
resume to the same final weights, bit for bit, as a run that was never stopped; a checkpoint of other
settings is refused naming the file and the difference."""
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import pynet
from pynet.checkpoint import CheckpointError
from pynet.training import fit


@pytest.fixture(autouse=True)
def sigint_reaches_python():
    """Ctrl-C tests need SIGINT to reach Python, as it does in a terminal. A process started in the
    background by a shell without job control inherits SIGINT ignored (and so would its children);
    give this process Python's default handler for the test, and put back what was there."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def problem(seed=0, n=600, features=12, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    return pynet.make_data(X, y)


def model(dropout=0.0, bias=True):
    pynet.set_seed(3)
    return pynet.make_model([pynet.make_layer(12, 16, "relu", bias=bias, dropout=dropout),
                             pynet.make_layer(16, 3, "softmax", bias=bias, dropout=dropout)])


def weights(m):
    return [l.w.data.copy() for l in m.layers] + [l.b.data.copy() for l in m.layers if l.b is not None]


SETTINGS = {
    "sgd-momentum": dict(optimizer="sgd", rate=0.1, momentum=0.9, decay=1e-4, batch=32),
    "adam-cosine-dropout-validation": dict(optimizer="adam", rate=3e-3, schedule="cosine", warmup=1, batch=32,
                                           validation=0.2, clip=1.0, l2=1e-3),
    "adam-step-patience": dict(optimizer="adam", rate=3e-3, schedule="step", step_size=1, gamma=0.7, batch=50,
                               validation=0.25, patience=3),
    "adam-float32-products": dict(optimizer="adam", rate=3e-3, batch=32, matmul="float32", validation=0.2),
    "adam-last-batch-filled": dict(optimizer="adam", rate=3e-3, batch=70, last_batch="fill", validation=0.2),
}


@pytest.mark.parametrize("name", SETTINGS)
def test_interrupted_and_resumed_run_ends_with_the_same_weights_bit_for_bit(tmp_path, name):
    kw = SETTINGS[name]
    dropout = 0.2 if "dropout" in name else 0.0
    d = problem()
    pynet.set_seed(11)
    m = model(dropout)
    pynet.set_seed(11)
    straight = fit(m, d, epochs=4, progress=False, **kw)
    expected = weights(m)

    path = tmp_path / "run.ckpt"
    m2 = model(dropout)
    pynet.set_seed(11)
    first = fit(m2, d, epochs=4, progress=False, checkpoint=path, on_epoch=lambda r: r["epoch"] == 2, **kw)
    assert len(first.epochs) == 2 and path.exists()
    pynet.set_seed(999)            # the resumed run must not depend on the generator's state now
    m3 = model(dropout)            # fresh weights: all of them come from the checkpoint
    resumed = fit(m3, d, epochs=4, progress=False, resume=path, checkpoint=path, **kw)
    assert [r["epoch"] for r in resumed.epochs] == [r["epoch"] for r in straight.epochs]
    for got, want in zip(weights(m3), expected):
        assert np.array_equal(got, want)
    assert np.array_equal(resumed.losses, straight.losses)
    assert resumed.best_epoch == straight.best_epoch
    assert [r["train_loss"] for r in resumed.epochs] == [r["train_loss"] for r in straight.epochs]


def test_sgd_run_resumed_for_more_epochs_matches_the_longer_run(tmp_path):
    d = problem()
    m = model()
    pynet.set_seed(5)
    fit(m, d, epochs=3, rate=0.1, batch=40, progress=False)
    m2 = model()
    pynet.set_seed(5)
    fit(m2, d, epochs=2, rate=0.1, batch=40, progress=False, checkpoint=tmp_path / "c.npz")
    fit(m2, d, epochs=3, rate=0.1, batch=40, progress=False, resume=tmp_path / "c.npz")
    assert all(np.array_equal(a, b) for a, b in zip(weights(m2), weights(m)))


def test_checkpoint_of_other_settings_or_shapes_is_refused_naming_file_and_difference(tmp_path):
    d = problem()
    path = tmp_path / "c.npz"
    fit(model(), d, epochs=1, optimizer="sgd", rate=0.1, progress=False, checkpoint=path)
    with pytest.raises(CheckpointError, match=r"c\.npz.*optimizer 'sgd' \(checkpoint\) vs 'adam' \(now\)"):
        fit(model(), d, epochs=2, optimizer="adam", rate=0.1, progress=False, resume=path)
    with pytest.raises(CheckpointError, match=r"c\.npz.*last_batch 'drop' \(checkpoint\) vs 'fill' \(now\)"):
        fit(model(), d, epochs=2, optimizer="sgd", rate=0.1, progress=False, resume=path, last_batch="fill")
    wider = pynet.make_model([pynet.make_layer(12, 20, "relu", bias=True), pynet.make_layer(20, 3, "softmax", bias=True)])
    with pytest.raises(CheckpointError, match=r"c\.npz.*\[\[12, 16, True\], \[16, 3, True\]\].*\[\[12, 20, True\]"):
        fit(wider, d, epochs=2, rate=0.1, progress=False, resume=path)
    with pytest.raises(CheckpointError, match=r"c\.npz.*other training data"):
        fit(model(), problem(n=500), epochs=2, rate=0.1, progress=False, resume=path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.npz.*not a readable pynet checkpoint"):
        fit(model(), d, epochs=2, rate=0.1, progress=False, resume=tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        fit(model(), d, epochs=2, rate=0.1, progress=False, resume=tmp_path / "missing.npz")


def test_checkpoint_holds_no_pickle_and_names_its_format(tmp_path):
    path = tmp_path / "c.npz"
    fit(model(), problem(), epochs=1, optimizer="adam", rate=1e-3, progress=False, checkpoint=path)
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
        assert b'"format": "pynet-checkpoint"' in z["metadata"].tobytes()
        assert np.any(z["s0"] != 0)   # Adam's second moments are in it
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]   # no temporary file left


@pytest.mark.parametrize("how", ["raise_signal", "kill"])
def test_sigint_during_fit_returns_an_interrupted_history_with_the_best_weights(how):
    d = problem()
    m = model()
    pynet.set_seed(1)
    snapshots = []

    def on_epoch(record):
        snapshots.append(weights(m))
        if record["epoch"] == 2:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGINT)
            else:
                signal.raise_signal(signal.SIGINT)

    h = fit(m, d, epochs=6, rate=0.1, batch=32, validation=0.2, progress=False, on_epoch=on_epoch)
    assert h.interrupted and not h.stopped_early
    assert [r["epoch"] for r in h.epochs] == [1, 2]
    assert len(h.losses) == 2 * (480 // 32)
    best = weights(m)
    assert any(all(np.array_equal(a, b) for a, b in zip(best, s)) for s in snapshots)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # handler put back
    assert not fit(model(), d, epochs=1, rate=0.1, progress=False).interrupted


def test_sigint_arriving_during_the_c_steps_stops_fit_within_the_epoch():
    import threading
    d = problem(n=20000)
    m = model()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        h = fit(m, d, epochs=50, rate=0.05, batch=8, progress=False)
    finally:
        timer.cancel()
    assert h.interrupted
    assert 0 < len(h.losses) < 50 * (20000 // 8)
    assert len(h.epochs) == len(h.losses) // (20000 // 8)   # the finished epochs only
    assert np.all(np.isfinite(h.losses))


# ---- the command line, interrupted by a real SIGINT -------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = ["train", "--data", "mnist", "--subset", "3000", "--layers", "auto,32,auto", "--activation", "relu",
       "--batch", "8", "--optimizer", "adam", "--rate", "0.001", "--dropout", "0.1", "--validation", "0.1",
       "--seed", "4", "--bias", "--threads", "1"]


def interrupted_cli(*args, after=r"epoch +1/\d+ +loss"):
    """Run python -m pynet with args, send SIGINT once stderr matches ``after``; (status, stderr)."""
    import re
    import subprocess
    import sys
    import threading
    env = dict(os.environ, PYTHONPATH=REPO, PYNET_PROGRESS="1")
    p = subprocess.Popen([sys.executable, "-m", "pynet", *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    err, sent = [], threading.Event()

    def read():
        text = ""
        for chunk in iter(lambda: p.stderr.read1(4096), b""):
            text += chunk.decode()
            if not sent.is_set() and re.search(after, text):
                p.send_signal(signal.SIGINT)
                sent.set()
        err.append(text)

    reader = threading.Thread(target=read)
    reader.start()
    out = p.stdout.read().decode()
    status = p.wait(timeout=600)
    reader.join()
    assert sent.is_set(), err
    return status, out, err[0]


def run_cli(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "pynet", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO), timeout=600)


def saved_weights(path):
    m = pynet.load_model(path)
    return weights(m)


@pytest.mark.skipif(not os.path.isdir(os.path.join(os.environ.get("PYNET_DATA", ""), "mnist")),
                    reason="needs MNIST in PYNET_DATA")
def test_cli_ctrl_c_saves_model_and_log_exits_130_and_resume_matches_an_uninterrupted_run(tmp_path):
    import csv
    status, out, err = interrupted_cli(*CLI, "--epochs", "8", "--out", tmp_path / "m.npz", "--log",
                                       tmp_path / "log.csv", "--checkpoint", tmp_path / "run.ckpt")
    assert status == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("pynet: interrupted after ") and "saved" in last and "m.npz" in last, last
    finished = int(last.split("interrupted after ")[1].split()[0])
    assert 1 <= finished < 8
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, finished + 1))
    m = pynet.load_model(tmp_path / "m.npz")
    assert m.info["result"]["interrupted"] is True
    best = max(rows, key=lambda r: (float(r["val_accuracy"]), -float(r["val_loss"])))
    assert m.info["result"]["best_epoch"] == int(best["epoch"])

    r = run_cli(*CLI, "--epochs", "8", "--resume", tmp_path / "run.ckpt", "--checkpoint", tmp_path / "run.ckpt",
                "--out", tmp_path / "resumed.npz", "--log", tmp_path / "log.csv")
    assert r.returncode == 0, r.stderr
    r = run_cli(*CLI, "--epochs", "8", "--out", tmp_path / "straight.npz")
    assert r.returncode == 0, r.stderr
    for a, b in zip(saved_weights(tmp_path / "resumed.npz"), saved_weights(tmp_path / "straight.npz")):
        assert np.array_equal(a, b)
    with open(tmp_path / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, 9))

    r = run_cli(*CLI, "--epochs", "8", "--optimizer", "sgd", "--resume", tmp_path / "run.ckpt")
    assert r.returncode == 1 and "run.ckpt" in r.stderr and "optimizer 'adam' (checkpoint) vs 'sgd'" in r.stderr, \
        r.stderr


def test_estimator_interrupted_keeps_its_fitted_state_and_warns():
    import threading
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 12))
    y = np.where(X[:, 0] > 0, "yes", "no")
    est = pynet.MLPClassifier(hidden_layer_sizes=(16,), batch_size=8, max_iter=200, tol=0, n_iter_no_change=1000,
                              random_state=0)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(UserWarning, match="interrupted"):
            est.fit(X, y)
    finally:
        timer.cancel()
    assert est.n_iter_ < 200
    assert est.score(X, y) > 0.9
    assert list(est.classes_) == ["no", "yes"]


CV_CHILD = r"""
import sys, time, warnings
import numpy as np
from sklearn.model_selection import cross_val_score
import pynet
rng = np.random.default_rng(0)
X = rng.normal(size=(30000, 12))
y = (X[:, 0] > 0).astype(int)
est = pynet.MLPClassifier(hidden_layer_sizes=(8,), batch_size=8, max_iter=250, tol=0, n_iter_no_change=1000,
                          random_state=0, threads=1)
print("ready", flush=True)
try:
    scores = cross_val_score(est, X, y, cv=3)
except KeyboardInterrupt as e:
    print("KeyboardInterrupt %s: %s" % (type(e).__name__, e), flush=True)
    sys.exit(130)
print("finished", scores, flush=True)
"""


@pytest.mark.parametrize("presses", [1, 2])
def test_a_second_ctrl_c_soon_after_the_first_leaves_a_cross_validation(presses):
    """One Ctrl-C stops the running fit gently (the cross-validation goes on with the next fold, as
    the warning says); a second one within AGAIN_SECONDS raises KeyboardInterrupt and ends it."""
    import subprocess
    import sys
    import time
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(pynet.__file__).parents[1])] +
                                                    os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    child = subprocess.Popen([sys.executable, "-c", CV_CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        child.send_signal(signal.SIGINT)
        if presses == 2:
            time.sleep(1.5)
            child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=300)
    finally:
        child.kill()
    assert "training interrupted (Ctrl-C)" in err and "A second Ctrl-C within 10 s raises KeyboardInterrupt" in err
    if presses == 1:   # the stopped fold is scored as it is, the other two run in full
        assert child.returncode == 0 and "finished" in out, (out, err)
        assert err.count("UserWarning: MLPClassifier: training interrupted (Ctrl-C)") == 1
    else:
        assert child.returncode == 130, (out, err)
        assert "KeyboardInterrupt Aborted: a second Ctrl-C within 10 s" in out
