"""The features beyond the homework (bias, dropout, tanh, Adam, clipping, schedules, standardisation,
validation with early stopping) against independent references: central finite differences of a
NumPy forward pass written here from the equations, and NumPy versions of SGD and Adam (the AdamW
paper's decoupled decay). pynet's own numbers are never the reference."""
import functools
import math
import re

import numpy as np
import pytest

import pynet
from pynet import (SOFTMAX, TANH, activate_matrix, backward_layer, backward_model, evaluate_model,
                   fit, forward_layer, forward_model, gradient_matrix, make_data, make_layer, make_model,
                   predict_model, update_layer)
from pynet._native import ffi, lib
from pynet.training import Standardizer, train_config
from reference import numeric_grad as _numeric_grad, rel_error

numeric_grad = functools.partial(_numeric_grad, h=1e-5)   # the step these checks were written for


# ---- an independent NumPy network: layers are (w, b or None, activation name) ----------------------

def activate(x, a):
    a = a.upper()
    if a == "LINEAR":
        return x.copy()
    if a == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-x))
    if a == "RELU":
        return np.maximum(x, 0.0)
    if a == "LRELU":
        return np.where(x > 0, x, 0.1 * x)
    if a == "TANH":
        return np.tanh(x)
    if a == "SOFTMAX":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(a)


def forward_ref(params, X, masks=None):
    """Each layer's (input as used, pre-activation, output); masks[i] multiplies layer i's input."""
    trace = []
    for i, (w, b, a) in enumerate(params):
        if masks is not None and masks[i] is not None:
            X = X * masks[i]
        z = X @ w + (0 if b is None else b)
        out = activate(z, a)
        trace.append((X, z, out))
        X = out
    return trace


def total_cross_entropy(params, X, Y, masks=None):
    """Σ over rows of −Σ y·log p (the quantity whose negative gradient backward_model returns)."""
    p = forward_ref(params, X, masks)[-1][2]
    return float(np.sum(-Y * np.log(p)))


def model_from(params, dropouts=None):
    layers = []
    for i, (w, b, a) in enumerate(params):
        l = make_layer(w.shape[0], w.shape[1], a, bias=b is not None,
                       dropout=0.0 if dropouts is None else dropouts[i])
        l.w = w
        if b is not None:
            l.b = b
        layers.append(l)
    return make_model(layers)


def random_params(rng, sizes, acts, bias=True):
    return [(rng.normal(0, 0.6, (n_in, n_out)), rng.normal(0, 0.3, (1, n_out)) if bias else None, a)
            for n_in, n_out, a in zip(sizes[:-1], sizes[1:], acts)]


def one_hot(labels, k):
    return np.eye(k)[labels]


# ---- tanh ------------------------------------------------------------------------------------------

def test_tanh_activation_and_its_gradient_from_the_output():
    x = np.linspace(-4, 4, 24).reshape(4, 6)
    y = x.copy()
    activate_matrix(y, TANH)
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-15, atol=1e-16)
    d = np.full_like(x, 2.0)
    gradient_matrix(y, "tanh", d)
    np.testing.assert_allclose(d, 2.0 * (1 - np.tanh(x) ** 2), rtol=1e-13, atol=1e-16)


def test_tanh_layer_gradients_match_finite_differences():
    """L = Σ out ∘ R: backward_layer(R) gives dw = ∂L/∂w and returns ∂L/∂in."""
    rng = np.random.default_rng(11)
    w, x, R = rng.normal(0, 0.5, (5, 4)), rng.normal(0, 1, (3, 5)), rng.normal(0, 1, (3, 4))
    l = make_layer(5, 4, TANH)
    l.w = w

    def loss():
        return float(np.sum(np.tanh(x @ w) * R))

    forward_layer(l, x)
    dx = backward_layer(l, R.copy())
    assert rel_error(l.dw.data, numeric_grad(loss, w)) < 1e-6
    assert rel_error(dx.data, numeric_grad(loss, x)) < 1e-6


# ---- bias ------------------------------------------------------------------------------------------

def test_bias_is_off_by_default_and_zero_when_added():
    assert make_layer(3, 2, "relu").b is None
    l = make_layer(3, 2, "relu", bias=True)
    np.testing.assert_array_equal(l.b.data, np.zeros((1, 2)))
    np.testing.assert_array_equal(l.db.data, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="no bias"):
        make_layer(3, 2, "relu").b = [1.0, 2.0]


def test_bias_forward_and_predict_add_the_bias():
    rng = np.random.default_rng(12)
    params = random_params(rng, [4, 5, 3], ["TANH", "SOFTMAX"])
    m = model_from(params)
    x = rng.normal(size=(7, 4))
    expected = forward_ref(params, x)[-1][2]
    np.testing.assert_allclose(forward_model(m, x).data, expected, rtol=1e-13)
    np.testing.assert_allclose(predict_model(m, x).data, expected, rtol=1e-13)


@pytest.mark.parametrize("acts", [("TANH", "TANH", "SOFTMAX"), ("LOGISTIC", "LINEAR", "SOFTMAX")])
def test_model_with_bias_gradients_match_finite_differences(acts):
    rng = np.random.default_rng(13)
    params = random_params(rng, [6, 5, 4, 3], acts)
    x, y = rng.normal(size=(4, 6)), one_hot([0, 2, 1, 2], 3)
    m = model_from(params)
    p = forward_model(m, x)
    backward_model(m, y - p.data)

    def loss():
        return total_cross_entropy(params, x, y)

    for i, (w, b, _) in enumerate(params):
        assert rel_error(-m.layers[i].dw.data, numeric_grad(loss, w)) < 1e-6, "w of layer %d" % i
        assert rel_error(-m.layers[i].db.data, numeric_grad(loss, b)) < 1e-6, "b of layer %d" % i


def test_update_layer_momentum_and_decay_leave_the_bias_undecayed():
    rng = np.random.default_rng(14)
    l = make_layer(3, 2, "linear", bias=True)
    w, b = l.w.data.copy(), rng.normal(size=(1, 2))
    l.b = b
    v, vb = np.zeros_like(w), np.zeros_like(b)
    for _ in range(3):
        dw, db = rng.normal(size=w.shape), rng.normal(size=b.shape)
        l.dw = dw
        l.db.data[...] = db
        update_layer(l, 0.05, 0.9, 0.1)
        v = dw - 0.1 * w + 0.9 * v
        w = w + 0.05 * v
        vb = db + 0.9 * vb          # no decay term for the bias
        b = b + 0.05 * vb
        np.testing.assert_allclose(l.w.data, w, rtol=1e-14)
        np.testing.assert_allclose(l.b.data, b, rtol=1e-14)
        np.testing.assert_allclose(l.vb.data, vb, rtol=1e-14)


# ---- dropout ---------------------------------------------------------------------------------------

def test_dropout_mask_holds_zero_or_the_inverse_keep_rate_and_drops_about_p():
    pynet.set_seed(21)
    l = make_layer(200, 3, "linear", dropout=0.3)
    x = np.ones((100, 200))
    forward_layer(l, x)
    mask = l.mask.data
    assert mask.shape == (100, 200)
    assert set(np.unique(mask)) <= {0.0, 1 / 0.7}
    # 20,000 Bernoulli(0.3) draws: the dropped share is 0.3 ± 0.0032 (1 sd); allow 5 sd.
    assert abs(np.mean(mask == 0) - 0.3) < 0.017
    np.testing.assert_array_equal(x, 1.0)   # the caller's input is not modified


def test_dropout_is_used_in_training_forward_and_off_in_evaluation():
    rng = np.random.default_rng(22)
    params = random_params(rng, [6, 8, 3], ["RELU", "SOFTMAX"])
    m = model_from(params, dropouts=[0.25, 0.5])
    x = rng.normal(size=(5, 6))
    pynet.set_seed(3)
    p_train = forward_model(m, x).data.copy()
    masks = [l.mask.data.copy() for l in m.layers]
    np.testing.assert_allclose(p_train, forward_ref(params, x, masks)[-1][2], rtol=1e-13)
    assert not np.allclose(p_train, forward_ref(params, x)[-1][2])
    np.testing.assert_allclose(predict_model(m, x).data, forward_ref(params, x)[-1][2], rtol=1e-13)
    y = one_hot([0, 1, 2, 0, 1], 3)
    d = make_data(x, y)
    loss, acc = evaluate_model(m, d)
    p_eval = forward_ref(params, x)[-1][2]
    assert loss == pytest.approx(np.mean(np.sum(-y * np.log(p_eval), axis=1)), rel=1e-13)
    assert acc == np.mean(np.argmax(p_eval, 1) == np.argmax(y, 1))


def test_dropout_mask_changes_between_training_forwards_and_disappears_without_dropout():
    pynet.set_seed(23)
    l = make_layer(10, 2, "linear", dropout=0.5)
    x = np.ones((4, 10))
    forward_layer(l, x)
    first = l.mask.data.copy()
    forward_layer(l, x)
    assert not np.array_equal(first, l.mask.data)
    l.dropout = 0.0
    forward_layer(l, x)
    assert l.mask is None
    with pytest.raises(ValueError, match="dropout"):
        l.dropout = 1.0


def test_dropout_gradients_with_a_fixed_mask_match_finite_differences():
    """The masks are read after a training forward and held fixed in the NumPy reference, so the
    loss is a smooth function of every weight, bias and input; backward must differentiate exactly
    that function (including dx through a dropped input)."""
    rng = np.random.default_rng(24)
    params = random_params(rng, [6, 7, 5, 3], ["TANH", "LOGISTIC", "SOFTMAX"])
    m = model_from(params, dropouts=[0.2, 0.5, 0.3])
    x, y = rng.normal(size=(5, 6)), one_hot([0, 2, 1, 2, 1], 3)
    pynet.set_seed(5)
    p = forward_model(m, x)
    masks = [l.mask.data.copy() for l in m.layers]
    assert all(np.any(mk == 0) for mk in masks)   # something was dropped in every layer
    backward_model(m, y - p.data)

    def loss():
        return total_cross_entropy(params, x, y, masks)

    for i, (w, b, _) in enumerate(params):
        assert rel_error(-m.layers[i].dw.data, numeric_grad(loss, w)) < 1e-6, "w of layer %d" % i
        assert rel_error(-m.layers[i].db.data, numeric_grad(loss, b)) < 1e-6, "b of layer %d" % i


def test_dropout_layer_input_gradient_goes_through_the_mask():
    rng = np.random.default_rng(25)
    w, b = rng.normal(0, 0.5, (6, 3)), rng.normal(0, 0.5, (1, 3))
    x, y = rng.normal(size=(4, 6)), one_hot([0, 1, 2, 1], 3)
    l = make_layer(6, 3, SOFTMAX, bias=True, dropout=0.4)
    l.w, l.b = w, b
    pynet.set_seed(6)
    p = forward_layer(l, x)
    mask = l.mask.data.copy()
    dx = backward_layer(l, y - p.data)

    def loss():
        return total_cross_entropy([(w, b, "SOFTMAX")], x, y, [mask])

    assert rel_error(-dx.data, numeric_grad(loss, x)) < 1e-6
    assert np.all(dx.data[mask == 0] == 0)


# ---- optimisers: train_steps against NumPy ---------------------------------------------------------

def backward_ref(params, trace, dL):
    """Negative gradients (dw, db) of the batch-total loss for dL = y − p, as the homework defines them."""
    grads = [None] * len(params)
    delta = dL
    for i in reversed(range(len(params))):
        w, b, a = params[i]
        inp, _, out = trace[i]
        if a == "TANH":
            delta = delta * (1 - out ** 2)
        elif a == "LOGISTIC":
            delta = delta * out * (1 - out)
        elif a != "SOFTMAX" and a != "LINEAR":
            raise ValueError(a)
        grads[i] = (inp.T @ delta, None if b is None else delta.sum(axis=0, keepdims=True))
        delta = delta @ w.T
    return grads


def run_train_steps(m, d, cfg, steps, batch):
    """`steps` C training steps, each on every row of d in order (so the batch is the whole data)."""
    rows = np.tile(np.arange(batch, dtype=np.int32), steps)
    losses = np.zeros(steps)
    status = lib.train_steps(m._c[0], d._c[0], cfg, 0, steps, ffi.cast("int *", ffi.from_buffer(rows)),
                             ffi.cast("double *", ffi.from_buffer(losses)), ffi.NULL)
    assert status == 0
    return losses


def scheduled(cfg, step):
    return lib.scheduled_rate(cfg, step)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_sgd_steps_with_bias_momentum_and_decay_match_numpy(schedule):
    """SGD in train_steps is the homework's rule with rate/batch; the bias gets momentum but no decay."""
    rng = np.random.default_rng(31)
    params = random_params(rng, [5, 4, 3], ["TANH", "SOFTMAX"])
    x, y = rng.normal(size=(6, 5)), one_hot([0, 1, 2, 2, 1, 0], 3)
    m, d = model_from(params), make_data(x, y)
    cfg = train_config(batch=6, rate=0.5, momentum=0.9, decay=0.01, optimizer="sgd", schedule=schedule,
                       warmup=1 if schedule == "cosine" else 0, total_steps=4, min_rate=0.05)
    losses = run_train_steps(m, d, cfg, 4, 6)
    params = [(w.copy(), b.copy(), a) for w, b, a in params]
    vel = [(np.zeros_like(w), np.zeros_like(b)) for w, b, _ in params]
    for step in range(4):
        rate = 0.5 if schedule == "constant" else \
            (0.5 * 1 / 1 if step == 0 else 0.05 + 0.45 * 0.5 * (1 + math.cos(math.pi * (step - 1) / 3)))
        trace = forward_ref(params, x)
        p = trace[-1][2]
        assert losses[step] == pytest.approx(np.mean(np.sum(-y * np.log(p), axis=1)), rel=1e-12)
        grads = backward_ref(params, trace, y - p)
        for i, ((w, b, a), (dw, db), (v, vb)) in enumerate(zip(params, grads, vel)):
            v = dw - 0.01 * w + 0.9 * v
            vb = db + 0.9 * vb
            params[i] = (w + rate / 6 * v, b + rate / 6 * vb, a)
            vel[i] = (v, vb)
    for l, (w, b, _) in zip(m.layers, params):
        np.testing.assert_allclose(l.w.data, w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(l.b.data, b, rtol=1e-12, atol=1e-14)


def adamw_ref(theta, g, m1, m2, t, rate, beta1, beta2, eps, decay):
    """One AdamW step (Loshchilov & Hutter, decoupled decay) on the gradient g of the mean loss."""
    m1 = beta1 * m1 + (1 - beta1) * g
    m2 = beta2 * m2 + (1 - beta2) * g * g
    m_hat, v_hat = m1 / (1 - beta1 ** t), m2 / (1 - beta2 ** t)
    theta = theta - rate * decay * theta - rate * m_hat / (np.sqrt(v_hat) + eps)
    return theta, m1, m2


def test_adam_steps_with_bias_and_decoupled_decay_match_numpy():
    rng = np.random.default_rng(32)
    params = random_params(rng, [5, 4, 3], ["LOGISTIC", "SOFTMAX"])
    x, y = rng.normal(size=(8, 5)), one_hot([0, 1, 2, 2, 1, 0, 0, 1], 3)
    m, d = model_from(params), make_data(x, y)
    rate, beta1, beta2, eps, decay = 0.01, 0.8, 0.95, 1e-7, 0.05
    cfg = train_config(batch=8, rate=rate, optimizer="adam", beta1=beta1, beta2=beta2, eps=eps, decay=decay)
    run_train_steps(m, d, cfg, 5, 8)
    params = [(w.copy(), b.copy(), a) for w, b, a in params]
    state = [[np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)] for w, b, _ in params]
    for t in range(1, 6):
        trace = forward_ref(params, x)
        grads = backward_ref(params, trace, y - trace[-1][2])
        for i, ((w, b, a), (dw, db), s) in enumerate(zip(params, grads, state)):
            w, s[0], s[1] = adamw_ref(w, -dw / 8, s[0], s[1], t, rate, beta1, beta2, eps, decay)
            b, s[2], s[3] = adamw_ref(b, -db / 8, s[2], s[3], t, rate, beta1, beta2, eps, 0.0)  # bias: no decay
            params[i] = (w, b, a)
    for l, (w, b, _) in zip(m.layers, params):
        np.testing.assert_allclose(l.w.data, w, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(l.b.data, b, rtol=1e-11, atol=1e-14)


def test_adam_update_layer_first_step_moves_each_weight_by_the_rate():
    """At t = 1 the bias-corrected step is g/(|g| + eps): every weight moves by almost exactly
    `rate` against its gradient, whatever the gradient's scale (Adam's defining property)."""
    rng = np.random.default_rng(33)
    l = make_layer(4, 3, "linear", bias=True)
    w0, b0 = l.w.data.copy(), l.b.data.copy()
    dw, db = rng.normal(size=(4, 3)) * 1e3, rng.normal(size=(1, 3)) * 1e-3
    l.dw = dw
    l.db.data[...] = db
    assert lib.adam_update_layer(l._ptr, 0.01, 0.9, 0.999, 1e-12, 0.0, 1, 1.0) == 0
    np.testing.assert_allclose(l.w.data - w0, 0.01 * np.sign(dw), rtol=1e-8)
    np.testing.assert_allclose(l.b.data - b0, 0.01 * np.sign(db), rtol=1e-6)


# ---- gradient clipping -----------------------------------------------------------------------------

def gradient_norm(m, scale):
    return scale * math.sqrt(sum(np.sum(l.dw.data ** 2) + (0 if l.b is None else np.sum(l.db.data ** 2))
                                 for l in m.layers))


def test_clip_gradients_rescales_to_the_global_norm_and_reports_the_norm_before():
    rng = np.random.default_rng(41)
    params = random_params(rng, [5, 4, 3], ["TANH", "SOFTMAX"])
    m = model_from(params)
    x, y = rng.normal(size=(6, 5)) * 5, one_hot([0, 1, 2, 2, 1, 0], 3)
    p = forward_model(m, x)
    backward_model(m, y - p.data)
    before = [(l.dw.data.copy(), l.db.data.copy()) for l in m.layers]
    norm = gradient_norm(m, 1 / 6)
    assert lib.clip_gradients(m._c[0], norm * 2, 1 / 6) == pytest.approx(norm, rel=1e-13)
    for l, (dw, db) in zip(m.layers, before):   # under the bound: untouched
        np.testing.assert_array_equal(l.dw.data, dw)
        np.testing.assert_array_equal(l.db.data, db)
    assert lib.clip_gradients(m._c[0], norm / 10, 1 / 6) == pytest.approx(norm, rel=1e-13)
    assert gradient_norm(m, 1 / 6) == pytest.approx(norm / 10, rel=1e-12)
    for l, (dw, db) in zip(m.layers, before):   # one common factor: the direction is kept
        np.testing.assert_allclose(l.dw.data, dw / 10, rtol=1e-12)
        np.testing.assert_allclose(l.db.data, db / 10, rtol=1e-12)
    assert math.isnan(lib.clip_gradients(m._c[0], 0.0, 1.0))
    lib.pn_clear_error()


def test_clipping_in_training_bounds_every_steps_update():
    """With plain SGD (no momentum, no decay) a step changes the parameters by rate × the clipped
    gradient of the mean loss, so the change's global norm is at most rate × clip — and equal to it
    when the raw gradient is larger, as it is here (inputs scaled up, rate tiny)."""
    rng = np.random.default_rng(42)
    params = random_params(rng, [10, 8, 3], ["RELU", "SOFTMAX"])
    m = model_from(params)
    x, y = rng.normal(size=(16, 10)) * 20, one_hot(rng.integers(0, 3, 16), 3)
    d = make_data(x, y)
    clip, rate = 0.5, 1e-3
    cfg = train_config(batch=16, rate=rate, momentum=0.0, decay=0.0, clip=clip)
    for _ in range(5):
        before = np.concatenate([np.concatenate([l.w.data.ravel(), l.b.data.ravel()]) for l in m.layers])
        run_train_steps(m, d, cfg, 1, 16)
        after = np.concatenate([np.concatenate([l.w.data.ravel(), l.b.data.ravel()]) for l in m.layers])
        change = np.linalg.norm(after - before) / rate
        assert change == pytest.approx(clip, rel=1e-9)
        assert gradient_norm(m, 1 / 16) <= clip * (1 + 1e-12)


def test_clip_must_not_be_negative():
    with pytest.raises(ValueError, match="clip"):
        train_config(clip=-1)


# ---- learning-rate schedules -----------------------------------------------------------------------

def test_constant_schedule_with_warmup_ramps_linearly_then_holds():
    cfg = train_config(rate=0.1, warmup=4)
    assert [scheduled(cfg, s) for s in range(7)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1])


def test_step_schedule_multiplies_by_gamma_every_step_size_after_warmup():
    cfg = train_config(rate=0.2, schedule="step", step_size=3, gamma=0.5, warmup=2)
    got = [scheduled(cfg, s) for s in range(11)]
    want = [0.1, 0.2] + [0.2 * 0.5 ** (t // 3) for t in range(9)]
    assert got == pytest.approx(want, rel=1e-15)


def test_cosine_schedule_follows_a_half_cosine_to_min_rate():
    cfg = train_config(rate=1.0, schedule="cosine", total_steps=12, warmup=2, min_rate=0.1)
    got = [scheduled(cfg, s) for s in range(14)]
    span = 10
    want = [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / span)) for t in range(span)] + [0.1, 0.1]
    assert got == pytest.approx(want, rel=1e-14)
    assert got[2] == 1.0 and got[7] == pytest.approx(0.55)   # peak right after warm-up; midpoint halfway


def test_schedules_need_their_settings():
    with pytest.raises(ValueError, match="step_size"):
        train_config(schedule="step")
    with pytest.raises(ValueError, match="total_steps"):
        train_config(schedule="cosine")
    with pytest.raises(ValueError, match="schedule"):
        train_config(schedule="exponential")
    with pytest.raises(ValueError, match="optimizer"):
        train_config(optimizer="rmsprop")


def test_fit_counts_warmup_and_step_size_in_epochs_and_reports_each_epochs_last_rate():
    rng = np.random.default_rng(51)
    d = make_data(rng.normal(size=(40, 3)), rng.integers(0, 2, 40), 2)
    m = make_model([make_layer(3, 2, SOFTMAX)])
    h = fit(m, d, epochs=6, batch=10, rate=0.4, schedule="step", step_size=2, gamma=0.5, warmup=1, progress=False)
    # 4 steps an epoch: warm-up over epoch 1 (steps 0-3), then 0.4 halved every 8 steps.
    assert [r["rate"] for r in h.epochs] == pytest.approx([0.4, 0.4, 0.4, 0.2, 0.2, 0.1])
    assert len(h.losses) == 24


# ---- standardisation -------------------------------------------------------------------------------

def test_standardizer_uses_training_statistics_and_leaves_constant_features_at_zero():
    rng = np.random.default_rng(61)
    X = np.column_stack([rng.normal(3, 2, 500), np.full(500, 7.0), rng.uniform(0, 255, 500)])
    s = Standardizer.fit(X)
    np.testing.assert_allclose(s.mean, X.mean(0))
    np.testing.assert_allclose(s.std, [X[:, 0].std(), 1.0, X[:, 2].std()])
    Z = X.copy()
    s.apply(Z)
    np.testing.assert_allclose(Z.mean(0), [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(Z.std(0), [1, 0, 1], rtol=1e-12)
    test = np.array([[3.0, 7.0, 0.0]])
    s.apply(test)   # other data is standardised with the training statistics
    np.testing.assert_allclose(test, [[(3 - X[:, 0].mean()) / X[:, 0].std(), 0.0, -X[:, 2].mean() / X[:, 2].std()]])
    with pytest.raises(ValueError, match="3 features"):
        s.apply(np.zeros((2, 4)))


# ---- validation split and early stopping -----------------------------------------------------------

def test_validation_fraction_holds_out_that_share_of_the_rows():
    rng = np.random.default_rng(71)
    d = make_data(rng.normal(size=(100, 3)), rng.integers(0, 2, 100), 2)
    pynet.set_seed(1)
    train_rows, val = pynet.training.split_validation(d, 0.2)
    assert len(train_rows) == 80 and len(val) == 20
    rows_of_val = {tuple(r) for r in val.X.data}
    assert not rows_of_val & {tuple(d.X.data[i]) for i in train_rows}
    with pytest.raises(ValueError, match="validation"):
        pynet.training.split_validation(d, 1.0)


def test_early_stopping_restores_the_best_epochs_weights():
    """The validation labels are the training labels flipped, so validation accuracy falls as
    training succeeds: the best epoch is the first, patience 2 stops the run after epoch 3, and the
    model handed back must be epoch 1's (its validation loss and accuracy exactly as recorded)."""
    rng = np.random.default_rng(72)
    x = rng.normal(size=(400, 2))
    labels = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    d, val = make_data(x, labels, 2), make_data(x, 1 - labels, 2)
    pynet.set_seed(2)
    m = make_model([make_layer(2, 2, SOFTMAX, bias=True)])
    seen = []
    h = fit(m, d, epochs=10, batch=20, rate=0.05, momentum=0.0, validation=val, patience=2, progress=False,
            on_epoch=lambda r: seen.append(r["val_accuracy"]) and False)
    assert h.stopped_early and len(h.epochs) == 3 and h.best_epoch == 1
    assert seen[0] > seen[2]
    loss, acc = evaluate_model(m, val)
    assert acc == h.epochs[0]["val_accuracy"]
    assert loss == h.epochs[0]["val_loss"]


def test_fit_without_validation_reports_training_numbers_only():
    rng = np.random.default_rng(73)
    d = make_data(rng.normal(size=(60, 3)), rng.integers(0, 3, 60), 3)
    m = make_model([make_layer(3, 3, SOFTMAX)])
    h = fit(m, d, epochs=2, batch=20, progress=False)
    assert h.best_epoch is None and "val_accuracy" not in h.epochs[0]
    assert set(h.epochs[0]) >= {"epoch", "train_loss", "train_accuracy", "rate", "seconds"}
    with pytest.raises(ValueError, match="validation"):
        fit(m, d, epochs=1, patience=3, progress=False)


def test_fit_checks_the_validation_data_before_training():
    rng = np.random.default_rng(74)
    d = make_data(rng.normal(size=(60, 3)), rng.integers(0, 3, 60), 3)
    m = make_model([make_layer(3, 3, SOFTMAX)])
    w0 = m.layers[0].w.data.copy()
    with pytest.raises(ValueError, match="validation data is 5x4"):
        fit(m, d, epochs=1, batch=20, validation=make_data(np.zeros((5, 4)), [0, 1, 2, 0, 1], 3), progress=False)
    np.testing.assert_array_equal(m.layers[0].w.data, w0)   # nothing was trained


def test_standardizer_with_one_mean_and_std_for_all_features():
    rng = np.random.default_rng(62)
    X = rng.uniform(0, 1, (300, 4)) * [1, 2, 3, 0]
    s = Standardizer.fit(X, per_feature=False)
    np.testing.assert_allclose(s.mean, np.full(4, X.mean()))
    np.testing.assert_allclose(s.std, np.full(4, X.std()))
    assert Standardizer.fit(np.zeros((3, 2)), per_feature=False).std.tolist() == [1.0, 1.0]


# ---- fit's checks of its settings ------------------------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    (dict(rate=0), r"fit: rate must be > 0, got 0"),
    (dict(rate=-0.1), r"fit: rate must be > 0, got -0.1"),
    (dict(rate=math.inf), r"fit: rate must be finite, got inf"),
    (dict(momentum=1), r"fit: momentum must be in \[0, 1\), got 1"),
    (dict(momentum=-0.5), r"fit: momentum must be in \[0, 1\), got -0.5"),
    (dict(decay=-1e-4), r"fit: decay must be >= 0, got -0.0001"),
    (dict(decay=math.nan), r"fit: decay must be finite, got nan"),
    (dict(schedule="cosine", min_rate=-0.01), r"fit: min_rate must be in \[0, rate\] = \[0, 0.1\], got -0.01"),
    (dict(schedule="cosine", min_rate=0.2), r"fit: min_rate must be in \[0, rate\] = \[0, 0.1\], got 0.2"),
    (dict(schedule="step", step_size=1, gamma=0), r"fit: gamma .* must be > 0, got 0"),
    (dict(schedule="step", step_size=1, gamma=-0.5), r"fit: gamma .* must be > 0, got -0.5"),
    (dict(schedule="step", step_size=1, gamma=math.nan), r"fit: gamma must be finite, got nan"),
    (dict(schedule="step", step_size=0), r"fit: step_size must be >= 1, got 0"),
    # 40 rows in batches of 10: 4 steps an epoch, and the C core counts steps in an int
    (dict(warmup=10**9), r"fit: warmup must be at most 536870911 here, got 1000000000: .*4 steps per epoch"
                         r".* 4000000000 steps, more than the 2147483647"),
    (dict(epochs=10**9, batch=1), r"fit: epochs must be at most 53687091 here, got 1000000000: .*40 steps per "
                                  r"epoch .*2147483647"),
    (dict(schedule="step", step_size=10**9), r"fit: step_size must be at most 536870911 here, got 1000000000"),
    # the C core's own checks are reported as fit's too
    (dict(optimizer="adam", beta1=1.0), r"^fit: Adam needs 0 <= beta1"),
])
def test_fit_refuses_bad_settings_naming_the_argument_before_training(settings, message):
    rng = np.random.default_rng(75)
    d = make_data(rng.normal(size=(40, 3)), rng.integers(0, 2, 40), 2)
    m = make_model([make_layer(3, 2, SOFTMAX)])
    w0 = m.layers[0].w.data.copy()
    with pytest.raises(ValueError, match=message):
        fit(m, d, **{"epochs": 2, "batch": 10, "rate": 0.1, "progress": False, **settings})
    np.testing.assert_array_equal(m.layers[0].w.data, w0)   # nothing was trained


def test_fit_accepts_the_edges_of_the_valid_ranges():
    rng = np.random.default_rng(76)
    d = make_data(rng.normal(size=(40, 3)), rng.integers(0, 2, 40), 2)
    m = make_model([make_layer(3, 2, SOFTMAX)])
    # gamma > 1 is meaningful (rate * gamma^(t // step_size) rises); momentum 0; min_rate == rate
    h = fit(m, d, epochs=3, batch=10, rate=0.1, schedule="step", step_size=1, gamma=2.0, momentum=0.0,
            progress=False)
    assert [r["rate"] for r in h.epochs] == pytest.approx([0.1, 0.2, 0.4])
    h = fit(m, d, epochs=2, batch=10, rate=0.1, schedule="cosine", min_rate=0.1, decay=0.0, progress=False)
    assert [r["rate"] for r in h.epochs] == pytest.approx([0.1, 0.1])


def test_fit_errors_name_fit_not_the_c_core():
    rng = np.random.default_rng(77)
    d = make_data(rng.normal(size=(40, 3)), rng.integers(0, 2, 40), 2)
    with pytest.raises(ValueError, match=r"^fit: d\.X is 40x3 but the first layer's w is 4x2"):
        fit(make_model([make_layer(4, 2, SOFTMAX)]), d, epochs=1, batch=10, progress=False)
    with pytest.raises(ValueError, match=r"^fit: epochs must be >= 1, got 0"):
        fit(make_model([make_layer(3, 2, SOFTMAX)]), d, epochs=0, progress=False)
    with pytest.raises(TypeError, match=r"^fit: rate must be a number, got 'fast'"):
        fit(make_model([make_layer(3, 2, SOFTMAX)]), d, batch=10, rate="fast", progress=False)


@pytest.mark.parametrize("mean, std", [
    (np.zeros((2, 3)), np.ones((2, 3))),    # 2-D statistics used to be flattened to 6 features
    (np.zeros((1, 3)), np.ones((1, 3))),
    (np.zeros(3), np.ones((3, 1))),
    (np.zeros(3), np.ones(4)),
    (0.0, 1.0),
    (np.zeros(0), np.zeros(0)),
])
def test_standardizer_statistics_must_be_1d_of_one_shape(mean, std):
    with pytest.raises(ValueError, match=r"Standardizer: .*1-D.*got shapes %s and %s"
                                         % tuple(re.escape(str(np.shape(v))) for v in (mean, std))):
        Standardizer(mean, std)


def test_fit_says_which_setting_needs_the_memory_it_lacks(monkeypatch):
    rng = np.random.default_rng(78)
    d = make_data(rng.normal(size=(40, 3)), rng.integers(0, 2, 40), 2)

    def no_memory(*args, **kwargs):   # as numpy does for a record of billions of steps
        raise MemoryError("Unable to allocate 149. GiB for an array")

    monkeypatch.setattr(np, "full", no_memory)
    with pytest.raises(MemoryError, match=r"^fit: not enough memory to record the loss of each of the 8 steps of "
                                          r"2 epochs .*fewer epochs or .* larger batch"):
        fit(make_model([make_layer(3, 2, SOFTMAX)]), d, epochs=2, batch=10, progress=False)


# ---- fit's last batch ----------------------------------------------------------------------------

def _last_batch_problem(n=100, features=5, classes=3):
    rng = np.random.default_rng(4)
    return rng.normal(size=(n, features)), rng.integers(0, classes, n)


def _mlp():
    pynet.set_seed(8)
    return pynet.make_mlp([5, 7, 3], "tanh", bias=True)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_last_batch_fill_trains_on_every_row_with_the_first_rows_filling_the_last_batch(optimizer):
    """fill: ceil(n / batch) steps an epoch, the last batch the leftover rows and then the epoch's
    first ones, i.e. (without shuffling) the same as dropping nothing from the rows followed by the
    first rows again."""
    X, y = _last_batch_problem()
    batch = 32                                           # 100 rows: 3 whole batches and 4 left over
    filled = _mlp()
    h = pynet.fit(filled, pynet.make_data(X, y, classes=3), epochs=3, batch=batch, shuffle=False, last_batch="fill",
                  optimizer=optimizer, rate=0.05, progress=False)
    assert len(h.losses) == 3 * 4
    pad = 4 * batch - len(X)
    by_hand = _mlp()
    pynet.fit(by_hand, pynet.make_data(np.vstack([X, X[:pad]]), np.concatenate([y, y[:pad]]), classes=3), epochs=3,
              batch=batch, shuffle=False, optimizer=optimizer, rate=0.05, progress=False)
    for a, b in zip(filled.layers, by_hand.layers):
        np.testing.assert_array_equal(a.w.data, b.w.data)
        np.testing.assert_array_equal(a.b.data, b.b.data)
    dropped = pynet.fit(_mlp(), pynet.make_data(X, y, classes=3), epochs=3, batch=batch, shuffle=False,
                        optimizer=optimizer, rate=0.05, progress=False)
    assert len(dropped.losses) == 3 * 3


def test_last_batch_fill_with_shuffling_uses_every_row_each_epoch_and_whole_batches_add_nothing():
    X, y = _last_batch_problem(n=96)
    runs = []
    for last in ("drop", "fill"):   # 96 rows, batch 32: nothing is left over, so the two are the same
        m = _mlp()
        pynet.set_seed(5)
        h = pynet.fit(m, X, y, epochs=2, batch=32, last_batch=last, progress=False)
        runs.append((h.losses, m.layers[0].w.data.copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_a_bad_last_batch_is_refused_naming_it():
    X, y = _last_batch_problem()
    with pytest.raises(ValueError, match=r"fit: last_batch must be one of 'drop', 'fill', got 'keep'"):
        pynet.fit(_mlp(), X, y, epochs=1, last_batch="keep", progress=False)
    with pytest.raises(ValueError, match="batch 200 is larger than the 100 training rows"):
        pynet.fit(_mlp(), X, y, epochs=1, batch=200, last_batch="fill", progress=False)
