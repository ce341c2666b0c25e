"""The core engine against independent references: the lecture's worked example, a NumPy
implementation of the same equations (tests/reference.py), and central finite differences."""
import numpy as np
import pytest

import pynet
from pynet import (LINEAR, LOGISTIC, LRELU, RELU, SOFTMAX, Matrix, activate_matrix, axpy_matrix,
                   backward_layer, backward_model, copy_matrix, cross_entropy_loss, forward_layer,
                   forward_model, gradient_matrix, make_data, make_layer, make_matrix, make_model,
                   matrix_mult_matrix, random_matrix, transpose_matrix, update_layer, update_model)

import reference as ref
from reference import numeric_grad, rel_error

ACTS = ["LINEAR", "LOGISTIC", "RELU", "LRELU", "SOFTMAX"]


def layer_with(w, activation):
    w = np.asarray(w, dtype=float)
    l = make_layer(w.shape[0], w.shape[1], activation)
    l.w = w
    return l


# ---- the lecture's worked example ------------------------------------------------------------

X1 = [[3.0, 2.0, 4.0]]
W1 = [[1, 0.5], [0.1, 1], [-2.3, -0.5]]
W2 = [[0.7, -2.1], [0.1, -0.2]]
TRUTH = [[1.0, 0.0]]


def worked_model():
    return make_model([layer_with(W1, RELU), layer_with(W2, SOFTMAX)])


def test_worked_example_matches_numpy_reference_exactly():
    m = worked_model()
    X, y = np.array(X1), np.array(TRUTH)
    outs = ref.forward([np.array(W1), np.array(W2)], ["RELU", "SOFTMAX"], X)
    p = forward_model(m, X)
    np.testing.assert_array_equal(m.layers[0].out.data, outs[0])   # [0, 1.5], exact
    np.testing.assert_allclose(p.data, outs[1], rtol=1e-15, atol=0)
    dL = y - p.data
    backward_model(m, dL)
    dws = ref.backward([np.array(W1), np.array(W2)], ["RELU", "SOFTMAX"], X, outs, y - outs[1])
    np.testing.assert_allclose(m.layers[1].dw.data, dws[1], rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(m.layers[0].dw.data, dws[0], rtol=1e-14, atol=1e-16)
    update_model(m, 0.1, 0, 0)
    np.testing.assert_allclose(m.layers[0].w.data, np.array(W1) + 0.1 * dws[0], rtol=1e-15)
    np.testing.assert_allclose(m.layers[1].w.data, np.array(W2) + 0.1 * dws[1], rtol=1e-15)


def test_worked_example_matches_the_lecture_numbers():
    """The slides round o2 to [0.61, 0.39] before going on, so their later figures carry that
    rounding (1.5 x 0.39 = 0.585 where the exact value is 0.58404). Each figure is checked to the
    precision the slide prints plus that carried rounding error."""
    m = worked_model()
    p = forward_model(m, X1)
    np.testing.assert_allclose(m.layers[0].out.data, [[0, 1.5]], atol=0)
    np.testing.assert_allclose(p.data, [[0.61, 0.39]], atol=0.005)
    dL = axpy_matrix(-1, p, TRUTH)             # truth - prediction
    # the delta handed to layer 1 is dL·w2ᵀ, before layer 1 applies relu' to it
    np.testing.assert_allclose((dL.data @ np.array(W2).T), [[1.092, 0.117]], atol=0.002)
    backward_model(m, dL)
    np.testing.assert_allclose(m.layers[1].dw.data, [[0, 0], [0.585, -0.585]], atol=0.0015)
    np.testing.assert_allclose(m.layers[0].dw.data, [[0, 0.351], [0, 0.234], [0, 0.468]], atol=0.0015)
    update_model(m, 0.1, 0, 0)
    np.testing.assert_allclose(m.layers[0].w.data, [[1, 0.5351], [0.1, 1.0234], [-2.3, -0.4532]], atol=0.00015)
    np.testing.assert_allclose(m.layers[1].w.data, [[0.7, -2.1], [0.1585, -0.2585]], atol=0.00015)


def test_worked_example_layer_by_layer():
    l1, l2 = layer_with(W1, "RELU"), layer_with(W2, "SOFTMAX")
    o1 = forward_layer(l1, Matrix(X1))
    o2 = forward_layer(l2, o1)
    d = Matrix(np.array(TRUTH) - o2.data)
    d1 = backward_layer(l2, d)
    np.testing.assert_allclose(d1.data, d.data @ np.array(W2).T, rtol=1e-15)
    d0 = backward_layer(l1, d1)
    # backward_layer applied relu' to d1 in place: its first entry (o1 = 0) is now 0
    assert d1.data[0, 0] == 0
    np.testing.assert_allclose(d0.data, d1.data @ np.array(W1).T, rtol=1e-15)


def test_softmax_example():
    m = Matrix([[1, 2, 7, 3, 2]])
    activate_matrix(m, SOFTMAX)
    e = np.exp(np.array([1, 2, 7, 3, 2.0]))
    np.testing.assert_allclose(m.data[0], e / e.sum(), rtol=1e-15)
    # the figures, printed to 3 decimals (0.0177 appears there truncated as 0.017)
    np.testing.assert_allclose(m.data[0], [0.002, 0.007, 0.967, 0.017, 0.007], atol=1e-3)
    assert m.data.sum() == pytest.approx(1, abs=1e-15)


def test_softmax_is_stable_for_huge_inputs():
    m = Matrix([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    activate_matrix(m, "SOFTMAX")
    assert np.all(np.isfinite(m.data))
    np.testing.assert_allclose(m.data[0], ref.activate(np.array([[0.0, 1.0, -1.0]]), "SOFTMAX")[0], rtol=1e-15)
    np.testing.assert_allclose(m.data[1], [1 / 3] * 3, rtol=1e-15)


# ---- activations --------------------------------------------------------------------------------

@pytest.mark.parametrize("act", ACTS)
def test_activate_matrix_matches_reference(act):
    x = np.random.default_rng(1).normal(0, 3, (7, 5))
    m = Matrix(x)
    activate_matrix(m, act)
    np.testing.assert_allclose(m.data, ref.activate(x, act), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("act", ACTS)
def test_gradient_matrix_matches_reference(act):
    rng = np.random.default_rng(2)
    y = ref.activate(rng.normal(0, 2, (6, 4)), act)
    d = rng.normal(0, 1, (6, 4))
    dm = Matrix(d)
    gradient_matrix(Matrix(y), act, dm)
    np.testing.assert_allclose(dm.data, d * ref.gradient(y, act), rtol=1e-15)


def test_activation_names_are_accepted_in_any_case():
    for name in ("relu", "Relu", "RELU", 2, RELU):
        assert make_layer(2, 2, name).activation == RELU


def test_activate_matrix_works_in_place_on_a_numpy_array():
    a = np.array([[-1.0, 2.0]])
    activate_matrix(a, RELU)
    np.testing.assert_array_equal(a, [[0.0, 2.0]])


# ---- finite-difference gradient checks --------------------------------------------------------

def away_from_kinks(rng, shape_in, w):
    """An input whose pre-activations are all at least 0.05 from 0, so relu's kink is out of reach
    of the finite-difference step."""
    while True:
        x = rng.normal(0, 1, shape_in)
        if np.min(np.abs(x @ w)) > 0.05:
            return x


@pytest.mark.parametrize("act", ["LINEAR", "LOGISTIC", "RELU", "LRELU"])
def test_backward_layer_gradients_match_finite_differences(act):
    """L = Σ out ∘ R. With delta = ∂L/∂out = R, backward_layer gives dw = ∂L/∂w and returns ∂L/∂in
    (it is linear in delta, so the homework's sign convention does not matter here)."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.5, (5, 4))
    x = away_from_kinks(rng, (3, 5), w)
    R = rng.normal(0, 1, (3, 4))
    l = layer_with(w, act)

    def loss():
        return float(np.sum(ref.activate(x @ w, act) * R))

    forward_layer(l, x)
    dx = backward_layer(l, R.copy())
    assert rel_error(l.dw.data, numeric_grad(loss, w)) < 1e-6
    assert rel_error(dx.data, numeric_grad(loss, x)) < 1e-6


def test_softmax_layer_with_cross_entropy_matches_finite_differences():
    """Softmax's gradient is 1 because it is paired with cross-entropy: with delta = y − p,
    backward_layer must give dw = −∂(Σ CE)/∂w and return −∂(Σ CE)/∂in."""
    rng = np.random.default_rng(4)
    w, x = rng.normal(0, 0.5, (5, 4)), rng.normal(0, 1, (3, 5))
    y = np.eye(4)[[0, 3, 1]]
    l = layer_with(w, SOFTMAX)

    def loss():
        return float(np.sum(-y * np.log(ref.activate(x @ w, "SOFTMAX"))))

    p = forward_layer(l, x)
    dx = backward_layer(l, y - p.data)
    assert rel_error(-l.dw.data, numeric_grad(loss, w)) < 1e-6
    assert rel_error(-dx.data, numeric_grad(loss, x)) < 1e-6


@pytest.mark.parametrize("hidden", [("LOGISTIC", "RELU"), ("LRELU", "LINEAR")])
def test_three_layer_model_gradients_match_finite_differences(hidden):
    rng = np.random.default_rng(5)
    acts = [hidden[0], hidden[1], "SOFTMAX"]
    ws = [rng.normal(0, 0.6, s) for s in [(6, 5), (5, 4), (4, 3)]]
    x = rng.normal(0, 1, (4, 6))
    y = np.eye(3)[[0, 2, 1, 2]]
    while np.min(np.abs(x @ ws[0])) < 0.05 or np.min(np.abs(ref.forward(ws, acts, x)[0] @ ws[1])) < 0.05:
        x = rng.normal(0, 1, (4, 6))
    m = make_model([layer_with(w, a) for w, a in zip(ws, acts)])

    def loss():   # the batch total of the cross-entropy, whose mean cross_entropy_loss reports
        return len(x) * ref.cross_entropy(y, ref.forward(ws, acts, x)[-1])

    p = forward_model(m, x)
    assert cross_entropy_loss(y, p) == pytest.approx(loss() / len(x), rel=1e-14)
    backward_model(m, y - p.data)
    for i, w in enumerate(ws):
        assert rel_error(-m.layers[i].dw.data, numeric_grad(loss, w)) < 1e-6, "layer %d" % i


def test_backward_model_leaves_dl_unchanged():
    m = make_model([make_layer(4, 3, LOGISTIC), make_layer(3, 2, SOFTMAX)])
    x = np.random.default_rng(6).normal(size=(5, 4))
    p = forward_model(m, x)
    dL = np.eye(2)[[0, 1, 1, 0, 0]] - p.data
    before = dL.copy()
    backward_model(m, dL)
    np.testing.assert_array_equal(dL, before)


# ---- the update rule ----------------------------------------------------------------------------

def test_update_with_momentum_and_decay_over_three_steps_matches_numpy():
    rng = np.random.default_rng(7)
    l = make_layer(4, 3, LINEAR)
    w, v = l.w.data.copy(), np.zeros((4, 3))
    for _ in range(3):
        dw = rng.normal(size=(4, 3))
        l.dw = dw
        update_layer(l, 0.05, 0.9, 0.01)
        w, v = ref.update(w, dw, v, 0.05, 0.9, 0.01)
        np.testing.assert_allclose(l.v.data, v, rtol=1e-15, atol=1e-17)
        np.testing.assert_allclose(l.w.data, w, rtol=1e-15, atol=1e-17)


def test_train_model_step_matches_numpy_reference():
    """One train_model step on a batch of the whole (1-row) dataset equals the hand-written step:
    forward, dL = y - p, backward, update(rate/batch)."""
    rng = np.random.default_rng(8)
    ws = [rng.normal(0, 0.5, (3, 4)), rng.normal(0, 0.5, (4, 2))]
    acts = ["LOGISTIC", "SOFTMAX"]
    x, y = rng.normal(size=(1, 3)), np.array([[0.0, 1.0]])
    m = make_model([layer_with(w, a) for w, a in zip(ws, acts)])
    batch = 4   # all 4 draws pick the only row
    losses = pynet.train_model(m, make_data(x, y), batch, 1, 0.1, 0.9, 0.001, progress=False)
    xb, yb = np.repeat(x, batch, 0), np.repeat(y, batch, 0)
    outs = ref.forward(ws, acts, xb)
    assert losses[0] == pytest.approx(ref.cross_entropy(yb, outs[-1]), rel=1e-14)
    dws = ref.backward(ws, acts, xb, outs, yb - outs[-1])
    for i in range(2):
        w_new, _ = ref.update(ws[i], dws[i], np.zeros_like(ws[i]), 0.1 / batch, 0.9, 0.001)
        np.testing.assert_allclose(m.layers[i].w.data, w_new, rtol=1e-13)


# ---- matrices -----------------------------------------------------------------------------------

def test_matrix_functions_match_numpy():
    rng = np.random.default_rng(9)
    a, b, c = rng.normal(size=(5, 7)), rng.normal(size=(7, 3)), rng.normal(size=(5, 7))
    np.testing.assert_allclose(matrix_mult_matrix(a, b).data, a @ b, rtol=1e-13)
    np.testing.assert_array_equal(transpose_matrix(a).data, a.T)
    np.testing.assert_array_equal(axpy_matrix(2.5, a, c).data, 2.5 * a + c)
    np.testing.assert_array_equal(copy_matrix(a).data, a)
    assert make_matrix(3, 4).data.shape == (3, 4) and not make_matrix(3, 4).data.any()


def test_random_matrix_is_uniform_in_range_and_seeded():
    pynet.set_seed(42)
    r = random_matrix(200, 300, 0.5).data
    assert r.min() >= -0.5 and r.max() <= 0.5
    assert abs(r.mean()) < 0.01 and r.std() == pytest.approx(0.5 / np.sqrt(3), rel=0.01)
    pynet.set_seed(42)
    np.testing.assert_array_equal(random_matrix(200, 300, 0.5).data, r)


def test_make_layer_initialisation():
    pynet.set_seed(1)
    l = make_layer(800, 50, RELU)
    s = np.sqrt(2 / 800)
    assert l.w.shape == (800, 50) and np.abs(l.w.data).max() <= s
    assert np.abs(l.w.data).max() > 0.99 * s          # the whole range is used
    assert not l.dw.data.any() and not l.v.data.any()


def test_data_is_zero_copy_c_memory():
    m = make_matrix(2, 3)
    m.data[1][2] = 7.0                                  # the homework's pseudo-code
    assert copy_matrix(m).data[1, 2] == 7.0             # C saw the write
    a = np.asarray(m)
    assert np.shares_memory(a, m.data)
    a[0, 0] = -1.0
    assert transpose_matrix(m).data[0, 0] == -1.0


def test_matrix_constructor_copies():
    x = np.ones((2, 2))
    m = Matrix(x)
    x[0, 0] = 5
    assert m.data[0, 0] == 1


def test_views_keep_their_owner_alive():
    import gc
    view = make_layer(30, 20, RELU).w.data              # the layer itself is gone right away
    row = Matrix(np.ones((4, 4))).data[1]
    gc.collect()
    assert view.shape == (30, 20) and np.abs(view).max() <= np.sqrt(2 / 30)
    assert row.sum() == 4


def test_layer_keeps_its_saved_input_alive():
    import gc
    l = make_layer(3, 2, LINEAR)
    x = np.arange(6.0).reshape(2, 3)
    forward_layer(l, Matrix(x))                          # a temporary Matrix
    gc.collect()
    np.testing.assert_array_equal(l.inp.data, x)
    backward_layer(l, np.ones((2, 2)))
    np.testing.assert_allclose(l.dw.data, x.T @ np.ones((2, 2)))


def test_old_output_views_stay_valid_when_the_batch_grows():
    l = make_layer(3, 2, LINEAR)
    small = forward_layer(l, np.ones((1, 3))).data
    first = small.copy()
    forward_layer(l, np.ones((500, 3)))                  # the layer grows a new out buffer
    np.testing.assert_array_equal(small, first)          # the old memory is still there


def test_make_data_accepts_labels_or_one_hot():
    X = np.zeros((4, 2))
    d1 = make_data(X, [2, 0, 1, 2])
    np.testing.assert_array_equal(d1.y.data, np.eye(3)[[2, 0, 1, 2]])
    d2 = make_data(X, np.eye(3)[[2, 0, 1, 2]])
    np.testing.assert_array_equal(d2.y.data, d1.y.data)
    assert make_data(X, [0, 1, 1, 0], classes=10).y.shape == (4, 10)


def test_random_batch_draws_rows_of_the_data_with_replacement():
    pynet.set_seed(3)
    X = np.arange(20.0).reshape(10, 2)
    d = make_data(X, np.arange(10) % 3)
    b = pynet.random_batch(d, 5000)
    rows = b.X.data[:, 0] / 2
    assert set(rows.astype(int)) == set(range(10))                      # every row can come up
    np.testing.assert_array_equal(b.X.data[:, 1], b.X.data[:, 0] + 1)    # whole rows
    np.testing.assert_array_equal(b.y.data, np.eye(3)[rows.astype(int) % 3])
    counts = np.bincount(rows.astype(int), minlength=10)
    assert counts.min() > 400 and counts.max() < 600                    # ~500 each


def test_accuracy_and_loss_match_numpy():
    rng = np.random.default_rng(10)
    m = make_model([make_layer(6, 5, LOGISTIC), make_layer(5, 3, SOFTMAX)])
    X, labels = rng.normal(size=(1000, 6)), rng.integers(0, 3, 1000)
    d = make_data(X, labels)
    ws = [l.w.data for l in m.layers]
    p = ref.forward(ws, ["LOGISTIC", "SOFTMAX"], X)[-1]
    assert pynet.accuracy_model(m, d) == np.mean(np.argmax(p, 1) == labels)
    np.testing.assert_allclose(pynet.predict_model(m, X).data, p, rtol=1e-13)
    assert cross_entropy_loss(d.y, p) == pytest.approx(ref.cross_entropy(d.y.data, p), rel=1e-14)


def test_cross_entropy_is_finite_where_p_has_zeros():
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.0, 1.0], [0.0, 1.0]])
    loss = cross_entropy_loss(y, p)
    assert np.isfinite(loss) and loss > 300   # -log(smallest double) / 2 rows


# ---- training -------------------------------------------------------------------------------------

def blobs(n=600, seed=0):
    """Three well separated Gaussian clusters in 4-D."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    X = rng.normal(0, 0.5, (n, 4)) + np.eye(3, 4)[labels] * 3
    return make_data(X, labels)


def test_training_learns_and_is_deterministic():
    d = blobs()

    def run():
        pynet.set_seed(11)
        m = make_model([make_layer(4, 8, RELU), make_layer(8, 3, SOFTMAX)])
        losses = pynet.train_model(m, d, 32, 300, 0.1, 0.9, 1e-4, progress=False)
        return m, losses

    m1, l1 = run()
    m2, l2 = run()
    np.testing.assert_array_equal(l1, l2)
    for a, b in zip(m1.layers, m2.layers):
        np.testing.assert_array_equal(a.w.data, b.w.data)
    assert l1[-20:].mean() < 0.1 * l1[:5].mean()
    assert pynet.accuracy_model(m1, d) > 0.97


def test_train_model_returns_the_same_losses_with_or_without_progress(capsys):
    d = blobs()
    runs = []
    for progress in (False, True):
        pynet.set_seed(5)
        m = make_model([make_layer(4, 3, SOFTMAX)])
        runs.append(pynet.train_model(m, d, 16, 2000, 0.05, 0.9, 0, progress=progress))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_progress_does_not_flood_and_can_be_silenced(capsys):
    d = blobs()
    m = make_model([make_layer(4, 3, SOFTMAX)])
    pynet.train_model(m, d, 16, 1000, 0.05, 0.9, 0, progress=True)
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert 1 <= len(lines) <= 11, err                 # one line per tenth when not a terminal
    assert "1000/1000" in lines[-1] and "loss" in lines[-1]
    pynet.train_model(m, d, 16, 1000, 0.05, 0.9, 0, progress=False)
    assert capsys.readouterr().err == ""


def test_nan_loss_stops_training_naming_the_iteration():
    d = blobs()
    m = make_model([make_layer(4, 16, RELU), make_layer(16, 3, SOFTMAX)])
    with pytest.raises(pynet.DivergedError) as info:
        pynet.train_model(m, d, 32, 1000, 1e6, 0.9, 0, progress=False)
    e = info.value
    assert isinstance(e, FloatingPointError)
    assert "iteration %d" % e.iteration in str(e) and "lower" in str(e)
    assert not np.isfinite(e.loss) and len(e.losses) == e.iteration + 1
    assert np.all(np.isfinite(e.losses[:-1]))


def test_memory_stays_flat_over_10000_training_steps():
    def rss_kb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 // 1024

    d = blobs(2000)
    m = make_model([make_layer(4, 64, RELU), make_layer(64, 32, LOGISTIC), make_layer(32, 3, SOFTMAX)])
    pynet.train_model(m, d, 64, 200, 0.01, 0.9, 0, progress=False)   # warm up: buffers, allocator
    before = rss_kb()
    pynet.train_model(m, d, 64, 10000, 0.01, 0.9, 0, progress=False)
    for _ in range(2000):                                             # the Python-level API too
        p = forward_model(m, d.X.data[:64])
        backward_model(m, d.y.data[:64] - p.data)
        update_model(m, 0.001, 0.9, 0)
    grown = rss_kb() - before
    assert grown < 2048, "RSS grew by %d kB" % grown


# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, shapes", [
    (lambda: matrix_mult_matrix(np.ones((2, 3)), np.ones((4, 5))), ("2x3", "4x5")),
    (lambda: axpy_matrix(1, np.ones((2, 3)), np.ones((3, 2))), ("2x3", "3x2")),
    (lambda: gradient_matrix(np.ones((2, 3)), RELU, np.ones((2, 2))), ("2x3", "2x2")),
    (lambda: forward_layer(make_layer(4, 2, RELU), np.ones((3, 5))), ("3x5", "4x2")),
    (lambda: cross_entropy_loss(np.ones((2, 3)), np.ones((2, 4))), ("2x3", "2x4")),
    (lambda: make_model([make_layer(4, 3, RELU), make_layer(5, 2, SOFTMAX)]), ("3", "5")),
])
def test_shape_mismatch_names_both_shapes(call, shapes):
    with pytest.raises(ValueError) as info:
        call()
    for s in shapes:
        assert s in str(info.value)


def test_model_level_shape_errors():
    m = make_model([make_layer(4, 3, RELU), make_layer(3, 2, SOFTMAX)])
    with pytest.raises(ValueError, match="5x7.*4x3"):
        forward_model(m, np.ones((5, 7)))
    forward_model(m, np.ones((5, 4)))
    with pytest.raises(ValueError, match="6x2"):
        backward_model(m, np.ones((6, 2)))
    with pytest.raises(ValueError, match="d.y is 5x3"):
        pynet.train_model(m, make_data(np.ones((5, 4)), [0, 1, 2, 0, 1]), 2, 1, 0.1, 0, 0)
    with pytest.raises(ValueError, match="d.X is 5x6"):
        pynet.accuracy_model(m, make_data(np.ones((5, 6)), [0, 1, 1, 0, 1]))


def test_backward_before_forward_is_an_error():
    with pytest.raises(ValueError, match="forward"):
        backward_layer(make_layer(3, 2, RELU), np.ones((1, 2)))


def test_unknown_activation_lists_the_valid_ones():
    for bad in ("SIGMOID", 7, -1, None, 2.0):
        with pytest.raises(ValueError) as info:
            make_layer(3, 2, bad)
        assert "LINEAR, LOGISTIC, RELU, LRELU, SOFTMAX" in str(info.value)
    with pytest.raises(ValueError, match="valid"):
        activate_matrix(np.ones((2, 2)), "sigmoid")


def test_allocation_failure_raises_memory_error():
    with pytest.raises(MemoryError):
        make_matrix(2 ** 31 - 1, 2 ** 31 - 1)
    with pytest.raises(MemoryError):
        make_layer(2 ** 30, 2 ** 30, RELU)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="rows"):
        make_matrix(-1, 3)
    with pytest.raises(ValueError, match="2-D"):
        Matrix([1, 2, 3])
    with pytest.raises(ValueError):
        Matrix([["a", "b"]])
    with pytest.raises(TypeError, match="in place"):
        activate_matrix([[1.0, 2.0]], RELU)              # the result could not reach the caller
    with pytest.raises(ValueError, match="finite"):
        update_layer(make_layer(2, 2, RELU), float("nan"), 0, 0)
    with pytest.raises(ValueError, match="batch"):
        pynet.train_model(make_model([make_layer(4, 3, SOFTMAX)]), blobs(), 0, 10, 0.1, 0, 0)
    with pytest.raises(ValueError, match="already belongs"):
        l = make_layer(2, 2, SOFTMAX)
        make_model([l])
        make_model([l])
    with pytest.raises(TypeError, match="Layer"):
        forward_layer("not a layer", np.ones((1, 1)))
    with pytest.raises(ValueError, match="seed"):
        pynet.set_seed(-1)


def test_an_unbuilt_checkout_says_how_to_build_it(tmp_path):
    """A source tree without the compiled core (e.g. after a plain `pip install .`, which this folder
    would shadow) fails to import with one clear message instead of 'No module named pynet._core'."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    src = Path(pynet.__file__).resolve().parent
    shutil.copytree(src, tmp_path / "pynet", ignore=shutil.ignore_patterns("_core*", "__pycache__"))
    # An editable install's import hook would find the real package first; this checkout is not installed.
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
            "sys.path.insert(0, %r); import pynet" % str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pynet's compiled C core is missing from %s" % (tmp_path / "pynet"))
    assert "pip install -e ." in last


# ---- found by a robustness review: each of these crashed, hung or gave garbage before ---------------

def test_a_view_taken_before_make_model_outlives_the_layer_and_model():
    import gc
    l = pynet.make_layer(300, 300, RELU)
    w = l.w
    out = pynet.forward_layer(l, np.ones((4, 300)))
    expected_w, expected_out = w.data.copy(), out.data.copy()
    m = pynet.make_model([l])
    del m, l
    gc.collect()
    np.testing.assert_array_equal(w.data, expected_w)
    np.testing.assert_array_equal(out.data, expected_out)


def test_inp_keeps_its_input_alive_after_the_next_forward():
    import gc
    l = pynet.make_layer(3, 2, RELU)
    assert l.inp is None   # no forward yet
    pynet.forward_layer(l, np.ones((1000, 3)))
    first = l.inp
    pynet.forward_layer(l, np.zeros((5, 3)))
    gc.collect()
    assert first.shape == (1000, 3) and first.data.sum() == 3000
    assert l.inp.shape == (5, 3)


def test_two_threads_training_one_model_take_turns():
    import threading
    pynet.set_seed(3)
    rng = np.random.default_rng(0)
    d = pynet.make_data(rng.random((500, 20)), rng.integers(0, 4, 500))
    m = pynet.make_model([pynet.make_layer(20, 16, RELU), pynet.make_layer(16, 4, SOFTMAX)])
    errors = []

    def work(k):
        try:
            for i in range(30):
                losses = pynet.train_model(m, d, 8 + 7 * ((i + k) % 5), 3, 0.01, 0.9, 0, progress=False)
                assert np.isfinite(losses).all()
                pynet.predict_model(m, d.X)
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_a_buffer_larger_than_memory_is_a_memory_error_not_an_oom_kill():
    d = pynet.make_data(np.zeros((10, 100)), np.arange(10) % 2)
    with pytest.raises(MemoryError, match="random_batch: .* more than this machine's"):
        pynet.random_batch(d, 10**9)
    with pytest.raises(MemoryError, match="make_matrix"):
        pynet.make_matrix(10**6, 10**6)


def test_backward_model_checks_dL_columns():
    m = pynet.make_model([pynet.make_layer(3, 4, RELU), pynet.make_layer(4, 2, SOFTMAX)])
    pynet.forward_model(m, np.ones((4, 3)))
    with pytest.raises(ValueError, match="4x5"):
        pynet.backward_model(m, np.ones((4, 5)))
    with pytest.raises(ValueError, match="5x1"):
        pynet.backward_model(m, np.ones((5, 1)))


def test_outputs_that_alias_inputs_are_refused():
    a = np.random.default_rng(1).random((20, 20))
    before = a.copy()
    with pytest.raises(ValueError, match="shares memory with input A"):
        pynet.gemm(a, np.eye(20), out=a)
    with pytest.raises(ValueError, match="shares memory with input B"):
        pynet.gemm(np.eye(20), a, out=a)
    np.testing.assert_array_equal(a, before)
    l = pynet.make_layer(8, 8, RELU)
    o = pynet.forward_layer(l, np.ones((8, 8)))
    with pytest.raises(ValueError, match="shares memory with the layer's out"):
        pynet.forward_layer(l, o)
    with pytest.raises(ValueError, match="shares memory with the layer's saved input"):
        x = np.ones((8, 8))
        pynet.forward_layer(l, x)
        pynet.backward_layer(l, x)


def test_model_layers_are_fixed():
    m = pynet.make_model([pynet.make_layer(3, 2, SOFTMAX)])
    assert isinstance(m.layers, tuple)
    with pytest.raises(AttributeError):
        m.layers.append(pynet.make_layer(2, 2, SOFTMAX))


def test_make_data_refuses_nan_and_mismatched_labels():
    X = np.zeros((20, 3))
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match="nan at row 7, column 2"):
        pynet.make_data(X, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="3 labels .* for 2 classes"):
        pynet.make_data(np.zeros((4, 3)), [0, 1, 0, 1], labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="largest label, 999999999999"):
        pynet.make_data(np.zeros((2, 3)), [0, 10**12 - 1])


def test_sizes_beyond_a_c_int_and_complex_values_are_named():
    with pytest.raises(ValueError, match="rows must be at most 2147483647"):
        pynet.make_matrix(2**31, 1)
    with pytest.raises(ValueError, match="n must be at most"):
        pynet.random_batch(pynet.make_data(np.zeros((2, 2)), [0, 1]), 2**31)
    with pytest.raises(ValueError, match="complex"):
        pynet.Matrix(np.ones((2, 2), dtype=complex))


def test_an_empty_product_is_an_empty_result():
    r = pynet.matrix_mult_matrix(np.ones((2, 0)), np.ones((0, 3)))
    assert r.shape == (2, 3) and not r.data.any()
