"""Training with float32 products (``matmul="float32"``: fit, MLPClassifier, ``--matmul`` on the
command line). The weights, optimiser state and evaluation stay float64; only the training step's
products round their operands to float32 (the gemm itself is checked in tests/test_gemm_f32.py).
Checked here: the option takes effect and is confined to the training loop, a step agrees with an
independent NumPy step to float32 rounding, results do not depend on threads, and the recipe
learns as well as in float64."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pynet

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def threads():
    before = pynet.get_threads()
    adaptive = pynet.set_adaptive_threads(True)
    yield
    pynet.set_threads(before)
    pynet.set_adaptive_threads(adaptive)


def problem(rows=2048, features=40, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    y = np.argmax(X[:, :classes] + 0.3 * rng.standard_normal((rows, classes)), axis=1)
    return pynet.make_data(X, y, classes)


def net(features=40, classes=5, seed=1):
    pynet.set_seed(seed)
    return pynet.make_mlp([features, 64, classes], pynet.RELU, bias=True)


def run(matmul, threads=2, adapt=True, epochs=2, **kw):
    d = problem()
    pynet.set_threads(threads)
    pynet.set_adaptive_threads(adapt)
    m = net()
    h = pynet.fit(m, d, epochs=epochs, batch=32, optimizer="adam", rate=1e-3, progress=False, matmul=matmul, **kw)
    return h, m, d


def weights(m):
    return [l.w.data.copy() for l in m.layers] + [l.b.data.copy() for l in m.layers]


def test_float32_products_change_the_bits_but_not_what_is_learnt(threads):
    h64, m64, d = run("float64")
    h32, m32, _ = run("float32")
    assert not np.array_equal(h64.losses, h32.losses)          # the option reached the products
    np.testing.assert_allclose(h32.losses, h64.losses, rtol=2e-4)
    for w32, w64 in zip(weights(m32), weights(m64)):
        np.testing.assert_allclose(w32, w64, rtol=0, atol=1e-4)
    assert abs(pynet.accuracy_model(m32, d) - pynet.accuracy_model(m64, d)) <= 0.01


def test_float32_training_is_the_same_bits_for_any_thread_count(threads):
    base = run("float32", threads=2, adapt=True)
    for other in (run("float32", threads=1), run("float32", threads=2, adapt=False)):
        np.testing.assert_array_equal(base[0].losses, other[0].losses)
        for a, b in zip(weights(base[1]), weights(other[1])):
            np.testing.assert_array_equal(a, b)


def test_the_setting_ends_with_the_training_loop(threads):
    """Products outside the loop (prediction, the homework's own calls) stay float64, bit for bit
    the reference product, after a float32 fit and after one that failed."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((70, 130)), rng.standard_normal((130, 90))
    want = pynet.gemm(a, b).data.copy()
    assert not np.array_equal(pynet.gemm(a, b, precision="float32").data, want)   # so the check can fail
    _, m, d = run("float32")
    np.testing.assert_array_equal(pynet.gemm(a, b).data, want)
    p = pynet.predict_model(m, d.X).data
    x = d.X.data
    for l in m.layers[:-1]:
        x = np.maximum(x @ l.w.data + l.b.data, 0)
    z = x @ m.layers[-1].w.data + m.layers[-1].b.data
    ref = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(p, ref / ref.sum(1, keepdims=True), rtol=1e-12, atol=1e-15)
    with pytest.raises(pynet.DivergedError):   # a rate far too high: the run fails inside the C loop
        pynet.fit(m, d, epochs=1, batch=32, optimizer="sgd", rate=1e300, progress=False, matmul="float32")
    np.testing.assert_array_equal(pynet.gemm(a, b).data, want)


def test_one_float32_step_matches_numpy_on_float32_rounded_operands(threads):
    """One SGD step of a softmax layer with bias, against NumPy: the products of float32-rounded
    operands summed in float64, the rest in float64. They differ only by pynet's float32 sums
    (k = 40 terms forward, 32 for dw), a few float32 ulps of the products."""
    d = problem(rows=32)
    pynet.set_seed(2)
    m = pynet.make_model([pynet.make_layer(40, 5, "softmax", bias=True)])
    w0, b0 = m.layers[0].w.data.copy(), m.layers[0].b.data.copy()
    pynet.fit(m, d, epochs=1, batch=32, optimizer="sgd", rate=0.1, momentum=0.0, shuffle=False, progress=False,
              matmul="float32")
    f32 = lambda x: x.astype(np.float32).astype(np.float64)  # noqa: E731
    X, Y = d.X.data, d.y.data
    z = f32(X) @ f32(w0) + b0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = Y - p
    w1 = w0 + (0.1 / 32) * (f32(X).T @ f32(dz))
    b1 = b0 + (0.1 / 32) * dz.sum(0)
    np.testing.assert_allclose(m.layers[0].w.data, w1, rtol=0, atol=1e-7)
    np.testing.assert_allclose(m.layers[0].b.data, b1, rtol=0, atol=2e-8)   # through p, from the float32 z
    assert not np.allclose(m.layers[0].w.data, w0 + (0.1 / 32) * (X.T @ (Y - _softmax(X @ w0 + b0))),
                           rtol=0, atol=1e-12)   # and it is not the float64 step


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_an_unknown_matmul_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown matmul 'float16'; valid: float64, float32"):
        pynet.fit(net(), problem(rows=64), epochs=1, batch=32, progress=False, matmul="float16")


def test_the_estimator_takes_matmul(threads):
    from pynet import MLPClassifier
    d = problem()
    X, y = d.X.data, d.y.data.argmax(1)
    scores = {}
    for matmul in ("float64", "float32"):
        clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=3, random_state=0, batch_size=64,
                            learning_rate_init=0.01, matmul=matmul)
        with pytest.warns(Warning):   # ConvergenceWarning after 3 epochs
            clf.fit(X, y)
        scores[matmul] = clf.score(X, y)
    assert scores["float32"] > 0.8 and abs(scores["float32"] - scores["float64"]) <= 0.01
    assert MLPClassifier(matmul="float32").get_params()["matmul"] == "float32"


def test_the_command_line_trains_with_float32_products(mnist_root, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [sys.executable, "-m", "pynet", "train", "--root", mnist_root, "--subset", "2000", "--epochs", "1",
            "--layers", "auto,32,auto", "--activation", "relu", "--seed", "3", "--quiet"]
    out = {}
    for matmul in ("float64", "float32"):
        r = subprocess.run(args + ["--matmul", matmul, "--out", tmp_path / ("%s.npz" % matmul)], env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        out[matmul] = pynet.load_model(tmp_path / ("%s.npz" % matmul)).layers[0].w.data
    assert not np.array_equal(out["float64"], out["float32"])
    np.testing.assert_allclose(out["float32"], out["float64"], rtol=0, atol=1e-3)
    r = subprocess.run(args + ["--matmul", "half"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "half" in r.stderr and "float32" in r.stderr


# ---- make_mlp(init=...): scikit-learn's initialisation, used with the float32 recipe in bench_fit ----

@pytest.mark.parametrize("activation,factor", [("relu", 6.0), ("tanh", 6.0), ("logistic", 2.0)])
def test_glorot_init_draws_uniform_weights_and_biases_within_sklearns_bound(activation, factor):
    pynet.set_seed(4)
    m = pynet.make_mlp([300, 200, 10], activation, bias=True, init="glorot")
    for l in m.layers:
        bound = np.sqrt(factor / (l.w.rows + l.w.cols))
        for values in (l.w.data, l.b.data):
            assert np.abs(values).max() <= bound
            if values.size >= 200:                                  # uniform over the whole interval
                assert np.abs(values).max() > 0.95 * bound and abs(values.mean()) < 0.1 * bound
    pynet.set_seed(4)
    again = pynet.make_mlp([300, 200, 10], activation, bias=True, init="glorot")
    for a, b in zip(m.layers, again.layers):
        np.testing.assert_array_equal(a.w.data, b.w.data)
    pynet.set_seed(4)
    homework = pynet.make_mlp([300, 200, 10], activation, bias=True)
    assert not np.array_equal(homework.layers[0].w.data, m.layers[0].w.data)
    assert 0.95 * np.sqrt(2.0 / 300) < np.abs(homework.layers[0].w.data).max() <= np.sqrt(2.0 / 300)
    np.testing.assert_array_equal(homework.layers[0].b.data, 0.0)


def test_an_unknown_init_is_refused_and_the_estimator_passes_init_on():
    with pytest.raises(ValueError, match="make_mlp: unknown init 'he'; valid: homework, glorot"):
        pynet.make_mlp([4, 3], "relu", init="he")
    from pynet import MLPClassifier
    d = problem(rows=256)
    X, y = d.X.data, d.y.data.argmax(1)
    biases = {}
    for init in ("glorot", "homework"):
        with pytest.warns(Warning):   # one epoch: ConvergenceWarning
            clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=1, random_state=0, init=init).fit(X, y)
        biases[init] = np.abs(clf.intercepts_[0]).max()
    # one epoch at rate 1e-3 moves a bias by ~1e-3: the homework's start at 0, Glorot's anywhere in ±0.33
    assert biases["homework"] < 0.05 < 0.1 < biases["glorot"]
    assert MLPClassifier().get_params()["init"] == "homework"
