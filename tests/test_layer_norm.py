"""Layer normalisation (issue 12 part 1) against independent references: central finite differences
through backward_layer, a float64 NumPy forward and backward written here from the equations (the
backward builds each row's full Jacobian instead of the compact formula the C code uses), NumPy SGD
and Adam over three steps, clipping, save/load, and models without it unchanged."""
import json
import math
import zipfile

import numpy as np
import pytest

import pynet
from pynet import (backward_layer, fit, forward_layer, make_data, make_layer, make_model, predict_model,
                   update_layer)
from pynet._native import lib
from reference import numeric_grad, rel_error

EPS = 1e-5


def np_act(x, a):
    return {"LINEAR": lambda: x.copy(), "TANH": lambda: np.tanh(x),
            "LOGISTIC": lambda: 1 / (1 + np.exp(-x)), "RELU": lambda: np.maximum(x, 0)}[a]()


def np_forward(x, w, b, g, s, a):
    z = x @ w + (0 if b is None else b)
    mu = z.mean(axis=1, keepdims=True)
    var = ((z - mu) ** 2).mean(axis=1, keepdims=True)
    xhat = (z - mu) / np.sqrt(var + EPS)
    return np_act(g * xhat + s, a), xhat, mu, 1 / np.sqrt(var + EPS)


def np_backward(x, w, b, g, s, a, dout):
    """dL/d(in·w), dgain, dshift, dx for dL/dout = dout, through each row's explicit Jacobian."""
    out, xhat, _, rstd = np_forward(x, w, b, g, s, a)
    fprime = {"LINEAR": np.ones_like(out), "TANH": 1 - out ** 2, "LOGISTIC": out * (1 - out)}[a]
    du = dout * fprime
    n = w.shape[1]
    dz = np.empty_like(du)
    for i in range(du.shape[0]):
        # d xhat_j / d z_k = rstd (δ_jk − 1/n − xhat_j xhat_k / n)
        J = rstd[i, 0] * (np.eye(n) - 1.0 / n - np.outer(xhat[i], xhat[i]) / n)
        dz[i] = J.T @ (du[i] * g[0])
    return dz, (du * xhat).sum(0, keepdims=True), du.sum(0, keepdims=True), dz @ w.T


def norm_layer(rng, n_in, n_out, act, bias=True):
    l = make_layer(n_in, n_out, act, bias=bias, norm=True)
    l.w = rng.normal(0, 0.7, (n_in, n_out))
    if bias:
        l.b = rng.normal(0, 0.5, (1, n_out))
    l.gain = rng.normal(1, 0.3, (1, n_out))
    l.shift = rng.normal(0, 0.3, (1, n_out))
    return l


def test_a_new_norm_layer_starts_as_the_identity_normalisation():
    l = make_layer(5, 4, "linear", norm=True)
    assert l.norm and not make_layer(5, 4, "linear").norm
    np.testing.assert_array_equal(l.gain.data, np.ones((1, 4)))
    for name in ("shift", "dgain", "dshift", "vgain", "vshift"):
        np.testing.assert_array_equal(getattr(l, name).data, np.zeros((1, 4)))
    plain = make_layer(5, 4, "linear")
    assert plain.gain is None and plain.shift is None and plain.dgain is None
    with pytest.raises(ValueError, match="norm=True"):
        plain.gain = np.ones(4)
    assert "norm" in repr(l)


@pytest.mark.parametrize("act", ["LINEAR", "TANH", "LOGISTIC"])
@pytest.mark.parametrize("bias", [False, True])
def test_forward_and_backward_match_an_independent_numpy_implementation(act, bias):
    rng = np.random.default_rng(12)
    l = norm_layer(rng, 6, 5, act, bias)
    x = rng.normal(0, 1, (7, 6)) + 3.0   # an offset the mean must remove
    w, b = l.w.data.copy(), None if not bias else l.b.data.copy()
    g, s = l.gain.data.copy(), l.shift.data.copy()
    out = forward_layer(l, x)
    ref_out, _, mu, rstd = np_forward(x, w, b, g, s, act)
    np.testing.assert_allclose(out.data, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(l.mean.data, mu, rtol=1e-12)   # saved per row for backward
    np.testing.assert_allclose(l.rstd.data, rstd, rtol=1e-12)
    dout = rng.normal(size=out.shape)
    delta = dout.copy()
    dx = backward_layer(l, delta)
    dz, dg, ds, ref_dx = np_backward(x, w, b, g, s, act, dout)
    np.testing.assert_allclose(delta, dz, rtol=1e-10, atol=1e-12)       # delta became dL/d(in·w)
    np.testing.assert_allclose(l.dgain.data, dg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(l.dshift.data, ds, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx.data, ref_dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(l.dw.data, x.T @ dz, rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(l.db.data, dz.sum(0, keepdims=True), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("act", ["LINEAR", "TANH"])
def test_central_differences_agree_with_backward_for_gain_shift_and_input(act):
    """S = Σ out∘R; backward_layer(R) must give ∂S/∂gain, ∂S/∂shift and ∂S/∂in."""
    rng = np.random.default_rng(7)
    l = norm_layer(rng, 5, 4, act)
    x = rng.normal(size=(3, 5))
    R = rng.normal(size=(3, 4))

    def S():
        return float(np.sum(forward_layer(l, x).data * R))

    forward_layer(l, x)
    dx = backward_layer(l, R.copy()).data.copy()
    dgain, dshift = l.dgain.data.copy(), l.dshift.data.copy()
    gain, shift = l.gain.data, l.shift.data   # live views: perturbing them perturbs the layer
    assert rel_error(dgain, numeric_grad(S, gain, h=1e-5)) < 1e-6
    assert rel_error(dshift, numeric_grad(S, shift, h=1e-5)) < 1e-6
    assert rel_error(dx, numeric_grad(S, x, h=1e-5)) < 1e-6


def test_sgd_and_adam_update_gain_and_shift_like_numpy_over_three_steps():
    rng = np.random.default_rng(3)
    grads = [(rng.normal(size=(1, 4)), rng.normal(size=(1, 4))) for _ in range(3)]
    # SGD: v = d + m·v, p += rate·v, never decayed (the bias's rule)
    l = make_layer(3, 4, "linear", norm=True)
    g, s = l.gain.data.copy(), l.shift.data.copy()
    vg, vs = np.zeros((1, 4)), np.zeros((1, 4))
    for dg, ds in grads:
        l.dgain.data[...] = dg
        l.dshift.data[...] = ds
        update_layer(l, 0.1, 0.9, 0.5)
        vg, vs = dg + 0.9 * vg, ds + 0.9 * vs
        g, s = g + 0.1 * vg, s + 0.1 * vs
    np.testing.assert_allclose(l.gain.data, g, rtol=1e-14)
    np.testing.assert_allclose(l.shift.data, s, rtol=1e-14)
    np.testing.assert_allclose(l.vgain.data, vg, rtol=1e-14)
    # Adam on the negative gradient scale·d, no decay
    l = make_layer(3, 4, "linear", norm=True)
    p = {"g": l.gain.data.copy(), "s": l.shift.data.copy()}
    m = {k: np.zeros((1, 4)) for k in p}
    v = {k: np.zeros((1, 4)) for k in p}
    rate, b1, b2, eps, scale = 0.01, 0.9, 0.999, 1e-8, 0.5
    for t, (dg, ds) in enumerate(grads, 1):
        l.dgain.data[...] = dg
        l.dshift.data[...] = ds
        assert lib.adam_update_layer(l._ptr, rate, b1, b2, eps, 0.3, t, scale) == 0
        for k, d in (("g", dg), ("s", ds)):
            gr = scale * d
            m[k] = b1 * m[k] + (1 - b1) * gr
            v[k] = b2 * v[k] + (1 - b2) * gr * gr
            p[k] = p[k] + rate * ((m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps))
    np.testing.assert_allclose(l.gain.data, p["g"], rtol=1e-13)
    np.testing.assert_allclose(l.shift.data, p["s"], rtol=1e-13)


def test_clipping_counts_and_rescales_gain_and_shift_gradients():
    rng = np.random.default_rng(5)
    m = make_model([make_layer(3, 4, "tanh", norm=True), make_layer(4, 2, "softmax")])
    for l in m.layers:
        l.dw = rng.normal(size=l.dw.shape)
    m.layers[0].dgain.data[...] = rng.normal(size=(1, 4))
    m.layers[0].dshift.data[...] = rng.normal(size=(1, 4))
    parts = [m.layers[0].dw.data, m.layers[1].dw.data, m.layers[0].dgain.data, m.layers[0].dshift.data]
    before = [p.copy() for p in parts]
    norm = 0.5 * math.sqrt(sum(np.sum(p ** 2) for p in before))
    assert lib.clip_gradients(m._c[0], norm / 4, 0.5) == pytest.approx(norm, rel=1e-13)
    for p, b in zip(parts, before):
        np.testing.assert_allclose(p, b / 4, rtol=1e-12)


def test_predict_applies_the_normalisation_like_forward():
    rng = np.random.default_rng(9)
    m = make_model([norm_layer(rng, 6, 5, "TANH"), make_layer(5, 3, "softmax", norm=True)])
    X = rng.normal(size=(300, 6))   # more than one evaluation chunk
    train_out = pynet.forward_model(m, X).data.copy()
    np.testing.assert_allclose(predict_model(m, X).data, train_out, rtol=1e-13, atol=1e-15)


def test_fit_trains_a_norm_model_and_save_load_predicts_identically(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 8))
    y = np.eye(3)[(X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)]
    d = make_data(X, y)
    m = make_model([make_layer(8, 16, "relu", bias=True, norm=True), make_layer(16, 3, "softmax", norm=True)])
    g0 = m.layers[0].gain.data.copy()
    fit(m, d, epochs=5, batch=20, rate=0.1, optimizer="adam")
    assert not np.array_equal(m.layers[0].gain.data, g0)   # the gain was trained
    path = tmp_path / "norm.pynet"
    pynet.save_model(m, path)
    with zipfile.ZipFile(path) as z:
        meta = json.loads(np.load(z.open("metadata.npy")).tobytes().decode("utf-8"))
    assert meta["version"] == pynet.io.VERSION == 2
    assert [s["norm"] for s in meta["layers"]] == [True, True]
    m2 = pynet.load_model(path)
    assert all(l.norm for l in m2.layers)
    np.testing.assert_array_equal(m2.layers[0].gain.data, m.layers[0].gain.data)
    np.testing.assert_array_equal(m2.layers[1].shift.data, m.layers[1].shift.data)
    np.testing.assert_array_equal(predict_model(m2, X).data, predict_model(m, X).data)


def test_bad_inputs_name_the_thing():
    l = make_layer(3, 2, "linear", norm=True)
    with pytest.raises(ValueError, match="input is 4x5"):
        forward_layer(l, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="gain"):
        l.gain = np.ones(3)
    forward_layer(l, np.ones((1, 3)))
    with pytest.raises(ValueError, match="shares memory with the layer's gain"):
        backward_layer(l, l.gain)


def test_a_file_written_in_format_version_1_still_loads_and_predicts_as_it_did():
    """tests/data/model_v1.pynet was written by pynet before layer normalisation (format version 1,
    no "norm" keys), with the predictions that pynet made for X saved next to it."""
    import os
    here = os.path.join(os.path.dirname(__file__), "data")
    path = os.path.join(here, "model_v1.pynet")
    with zipfile.ZipFile(path) as z:
        meta = json.loads(np.load(z.open("metadata.npy")).tobytes().decode("utf-8"))
    assert meta["version"] == 1 and all("norm" not in s for s in meta["layers"])
    m = pynet.load_model(path)
    assert [l.norm for l in m.layers] == [False, False] and m.labels == ["a", "b", "c"]
    X = np.linspace(-1, 1, 24).reshape(6, 4)
    np.testing.assert_array_equal(predict_model(m, X).data, np.load(os.path.join(here, "model_v1_predictions.npy")))


def test_a_version_2_file_must_say_whether_each_layer_normalises(tmp_path):
    m = make_model([make_layer(3, 2, "softmax", norm=True)])
    path = tmp_path / "m.pynet"
    pynet.save_model(m, path)
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(__import__("io").BytesIO(entries["metadata.npy"])).tobytes().decode("utf-8"))
    assert sorted(entries) == ["gain0.npy", "metadata.npy", "shift0.npy", "w0.npy"]
    del meta["layers"][0]["norm"]
    buf = __import__("io").BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    entries["metadata.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    with pytest.raises(pynet.io.ModelFileError, match="norm"):
        pynet.load_model(path)


def test_the_estimator_normalises_its_hidden_layers_with_layer_norm():
    pytest.importorskip("sklearn")
    from pynet import MLPClassifier
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 6))
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(8, 8), layer_norm=True, max_iter=3, random_state=0).fit(X, y)
    assert [l.norm for l in clf.model_.layers] == [True, True, False]
    assert not np.all(clf.model_.layers[0].gain.data == 1)
    assert [l.norm for l in MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0)
            .fit(X, y).model_.layers] == [False, False]
