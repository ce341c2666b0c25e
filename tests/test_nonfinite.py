"""Issue 10 items 8 and 12: NaN or infinite numbers never train silently, Data checks like make_data,
save_model never writes what load_model refuses, and train_model refuses the settings fit refuses."""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pynet
from pynet import (RELU, SOFTMAX, DivergedError, fit, load_model, make_data, make_layer, make_model,
                   save_model, train_model)
from pynet._native import lib
from pynet.classifier import ACTIVATION
from pynet.data import scan_values
from pynet.training import Standardizer
from simd_levels import KERNELS


def _data(rows=64, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((rows, features)), rng.integers(0, classes, rows)


def _model(features=4, classes=3):
    pynet.set_seed(3)
    return make_model([make_layer(features, 8, RELU), make_layer(8, classes, SOFTMAX)])


# ---- Data checks like make_data ----------------------------------------------------------------

def test_data_refuses_nan_in_x_like_make_data():
    X, y = _data()
    onehot = make_data(X, y).y.data.copy()
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"Data: X has nan at row 3, column 2 \(1 non-finite values in all\)"):
        pynet.Data(X, onehot)
    with pytest.raises(ValueError, match=r"make_data: X has nan at row 3, column 2"):
        make_data(X, y)


def test_data_refuses_infinite_y():
    X, y = _data()
    onehot = make_data(X, y).y.data.copy()
    onehot[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"Data: y has inf at row 5, column 0"):
        pynet.Data(X, onehot)


@pytest.mark.parametrize("fill, row", [(5.0, 0), (0.0, 0)])
def test_a_2d_y_that_is_not_class_probabilities_is_refused(fill, row):
    X, _ = _data(rows=4)
    y = np.full((4, 3), fill)
    pattern = (r"make_data: y \(4x3\) must hold one row of class probabilities per example: one-hot truth, or "
               r"soft labels \(>= 0, summing to 1\); row %d is \[%g, %g, %g\] \(sum %g\), and 4 of 4 rows are not"
               % (row, fill, fill, fill, 3 * fill))
    with pytest.raises(ValueError, match=pattern):
        make_data(X, y)
    with pytest.raises(ValueError, match=pattern.replace("make_data", "Data")):
        pynet.Data(X, y)


def test_negative_label_entries_are_refused_even_when_the_row_sums_to_1():
    X, _ = _data(rows=2)
    y = np.array([[1.0, 0.0, 0.0], [1.5, -0.5, 0.0]])
    with pytest.raises(ValueError, match=r"row 1 is \[1.5, -0.5, 0\] \(sum 1\), and 1 of 2 rows are not"):
        make_data(X, y)


def test_soft_labels_are_accepted_and_train():
    X, y = _data()
    soft = 0.9 * make_data(X, y).y.data + 0.1 / 3   # label smoothing: rows sum to 1
    d = make_data(X, soft)
    losses = train_model(_model(), d, 16, 20, 0.1, 0.9, 0.0, progress=False)
    assert np.isfinite(losses).all()


# ---- NaN in a batch stops training, naming the step, the layer and the input -----------------------

def _data_with_a_nan_behind_the_check():
    """A Data whose X gets a NaN after construction (its X is a view that can be written to), the way
    a batch can hold one that no constructor saw."""
    X, y = _data()
    d = make_data(X, y)
    d.X.data[3, 2] = np.nan
    return d


def test_nan_in_a_batch_stops_train_model_naming_the_step_and_layer():
    d = _data_with_a_nan_behind_the_check()
    m = _model()
    with pytest.raises(DivergedError) as info:
        train_model(m, d, 8, 200, 0.1, 0.9, 0.0, progress=False)
    e = info.value
    assert e.layer == 0 and e.bad_input
    assert len(e.losses) == e.iteration + 1 and np.isfinite(e.losses).all()   # ReLU hid it from the loss
    assert str(e).startswith("train_model: the update of step %d made layer 0's weights non-finite (w[2][" % e.iteration)
    assert "its batch holds nan in X" in str(e)
    assert "the data's X has nan at row 3, column 2: only finite numbers can be learnt from" in str(e)
    assert "learning rate" not in str(e)   # the cause is the input


def test_nan_in_a_batch_stops_fit():
    d = _data_with_a_nan_behind_the_check()
    with pytest.raises(DivergedError) as info:
        fit(_model(), d, batch=8, epochs=3, progress=False)
    e = info.value
    assert e.layer == 0 and e.bad_input and e.iteration < 8   # row 3 is in the first epoch's batches
    assert str(e).startswith("fit: the update of step %d made layer 0's weights non-finite" % e.iteration)
    assert "the data's X has nan at row 3, column 2" in str(e)


def test_a_weight_overflowing_in_an_update_stops_training_though_the_loss_is_finite():
    # X is all zeros, so the output (and the loss, ln 3) does not depend on the weights; weight decay
    # with a large rate pushes layer 0's weights of -1e308 past the largest double in one update.
    X = np.zeros((8, 4))
    d = make_data(X, np.arange(8) % 3)
    m = _model()
    m.layers[0].w = np.full((4, 8), -1e308)
    with pytest.raises(DivergedError) as info:
        train_model(m, d, 8, 1, 1000.0, 0.0, 0.9, progress=False)
    e = info.value
    assert e.iteration == 0 and e.layer == 0 and not e.bad_input
    assert math.isclose(e.loss, math.log(3))
    assert str(e) == ("train_model: the update of step 0 made layer 0's weights non-finite (w[0][0] = inf); the "
                      "learning rate (1000) is probably too high for this model, try a lower one")


def test_adam_updates_are_checked_too():
    d = _data_with_a_nan_behind_the_check()
    with pytest.raises(DivergedError, match=r"fit: the update of step \d+ made layer 0's weights non-finite"):
        fit(_model(), d, batch=8, epochs=2, optimizer="adam", progress=False)


def test_finite_training_is_unchanged_by_the_check():
    X, y = _data()
    d = make_data(X, y)
    losses = train_model(_model(), d, 8, 100, 0.1, 0.9, 1e-4, progress=False)
    assert np.isfinite(losses).all() and losses[-10:].mean() < losses[:10].mean()


# ---- train_model and fit refuse the same settings with the same message ----------------------------

@pytest.mark.parametrize("rate, momentum, decay, message", [
    (-0.5, 0.9, 0.0, "rate must be > 0, got -0.5"),
    (0.0, 0.9, 0.0, "rate must be > 0, got 0"),
    (0.1, 5.0, 0.0, r"momentum must be in \[0, 1\), got 5"),
    (0.1, -0.1, 0.0, r"momentum must be in \[0, 1\), got -0.1"),
    (0.1, 1.0, 0.0, r"momentum must be in \[0, 1\), got 1"),
    (0.1, 0.9, -1.0, "decay must be >= 0, got -1"),
])
def test_train_model_refuses_what_fit_refuses(rate, momentum, decay, message):
    X, y = _data()
    d = make_data(X, y)
    for iters in (0, 10):
        m = _model()
        before = m.layers[0].w.data.copy()
        with pytest.raises(ValueError, match="^train_model: " + message + "$"):
            train_model(m, d, 8, iters, rate, momentum, decay, progress=False)
        assert np.array_equal(m.layers[0].w.data, before)
    with pytest.raises(ValueError, match="^fit: " + message + "$"):
        fit(_model(), d, batch=8, epochs=1, rate=rate, momentum=momentum, decay=decay, progress=False)


# ---- save_model never writes what load_model refuses -----------------------------------------------

def test_save_model_refuses_nan_weights_naming_the_layer_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.model"
    good = _model()
    save_model(good, path)
    before = path.read_bytes()
    bad = _model()
    w = bad.layers[1].w.data.copy()
    w[2, 1] = np.nan
    bad.layers[1].w = w
    with pytest.raises(ValueError, match=r"save_model: layer 1's weights: 1 of 24 values are not finite \(the "
                                         r"first, at \[2, 1\], is nan\); load_model refuses such a file, so "
                                         r"nothing was written"):
        save_model(bad, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.model"]


def test_save_model_refuses_a_standardizer_load_model_would_refuse(tmp_path):
    m = _model()
    m.standardizer = Standardizer(np.zeros(4), np.ones(4))
    m.standardizer.std = np.array([1.0, 0.0, 1.0, 1.0])   # Standardizer refuses it; an attribute can change
    with pytest.raises(ValueError, match=r"save_model: the model's standardizer's std: 1 of 4 values are not "
                                         r"finite and > 0 \(the first, at \[1\], is 0.0\)"):
        save_model(m, tmp_path / "m.model")
    assert not os.listdir(tmp_path)


_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.floats(-10, 10))
_json = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3),
                     max_leaves=8)


@st.composite
def _models(draw):
    sizes = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        l = make_layer(n_in, n_out, draw(st.sampled_from(list(ACTIVATION))), bias=draw(st.booleans()),
                       dropout=draw(st.sampled_from([0.0, 0.25, 0.5])))
        l.w = np.array(draw(st.lists(_floats, min_size=n_in * n_out, max_size=n_in * n_out))).reshape(n_in, n_out)
        if l.b is not None:
            l.b = np.array(draw(st.lists(_floats, min_size=n_out, max_size=n_out))).reshape(1, n_out)
        layers.append(l)
    m = make_model(layers)
    if draw(st.booleans()):
        m.labels = draw(st.lists(st.text(max_size=4), min_size=sizes[-1], max_size=sizes[-1]))
    if draw(st.booleans()):
        m.standardizer = Standardizer(np.zeros(sizes[0]), np.ones(sizes[0]))
        m.standardizer.mean = np.array(draw(st.lists(_floats, min_size=sizes[0], max_size=sizes[0])))
        m.standardizer.std = np.array(draw(st.lists(_floats, min_size=sizes[0], max_size=sizes[0])))
    m.info = draw(st.dictionaries(st.text(max_size=5), _json, max_size=3))
    return m


@settings(max_examples=int(os.environ.get("PYNET_FUZZ_EXAMPLES", 150)), derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(m=_models())
def test_anything_save_model_writes_load_model_reads(tmp_path, m):
    path = tmp_path / "m.model"
    if path.exists():
        path.unlink()
    try:
        save_model(m, path)
    except ValueError as e:
        assert str(e).startswith("save_model: ")
        assert not path.exists()
        return
    back = load_model(path)
    assert len(back.layers) == len(m.layers)
    for a, b in zip(m.layers, back.layers):
        assert np.array_equal(a.w.data, b.w.data)
        assert (a.b is None) == (b.b is None) and (a.b is None or np.array_equal(a.b.data, b.b.data))
        assert a.activation == b.activation and a.dropout == b.dropout
    assert back.labels == (None if m.labels is None else [str(s) for s in m.labels])


# ---- the one pass over X (pn_scan_values) -------------------------------------------------------

def _scan_by_numpy(a):
    a = np.asarray(a, dtype=np.float64).ravel()
    bad = ~np.isfinite(a)
    kept = a[~np.isnan(a)]
    low, top = (float(kept.min()), float(kept.max())) if kept.size else (math.nan, math.nan)
    return low, top, int(np.flatnonzero(bad)[0]) if bad.any() else -1, int(bad.sum())


def _same(scan, expected):
    for got, want in zip(scan, expected):
        assert got == want or (math.isnan(got) and math.isnan(want)), (tuple(scan), expected)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 7, 8191, 8192, 8193, 100_003])
def test_scan_values_agrees_with_numpy_at_every_simd_level(n, threads):
    """min/max of the non-NaN values, the first NaN or infinity and their count, for sizes either
    side of where the pass is split between threads, bad values at the ends of a thread's share."""
    rng = np.random.default_rng(n)
    cases = [rng.standard_normal(n)]
    if n:
        for spots, value in [([0], np.nan), ([n - 1], np.inf), ([n // 2, n // 3], -np.inf),
                             ([min(n // threads, n - 1), n - 1], np.nan)]:
            a = rng.standard_normal(n)
            a[spots] = value
            cases.append(a)
        cases.append(np.full(n, np.nan))
        cases.append(np.full(n, -0.0))
    before = pynet.get_threads()
    try:
        pynet.set_threads(threads)
        for level in KERNELS:
            assert lib.pn_set_simd(level.encode()) == 0
            for a in cases:
                _same(scan_values(a), _scan_by_numpy(a))
    finally:
        lib.pn_set_simd(b"auto")
        pynet.set_threads(before)


def test_scan_values_takes_any_layout_and_dtype():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    assert tuple(scan_values(a)) == (0.0, 22.0, -1, 0)
    assert tuple(scan_values(np.array([3, 250], dtype=np.uint8))) == (3.0, 250.0, -1, 0)


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_mlpclassifier_names_the_first_bad_input_in_fit_and_predict(value, word):
    pytest.importorskip("sklearn")
    from pynet import MLPClassifier
    X, y = _data(rows=40)
    X[7, 1] = value
    X[9, 0] = value
    with pytest.raises(ValueError, match=r"MLPClassifier: input X contains %s at row 7, column 1 \(2 NaN or "
                                         r"infinite values in all\)" % word):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X, y)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    with pytest.warns(Warning):   # (ConvergenceWarning after one epoch)
        clf.fit(np.nan_to_num(X, posinf=0, neginf=0), y)
    with pytest.raises(ValueError, match=r"input X contains %s at row 7, column 1" % word):
        clf.predict(X)


def test_a_refused_x_leaves_the_estimator_as_it_was():
    """NaN in X is refused before the estimator changes: a fitted one keeps its model, curves and
    n_features_in_; an unfitted one stays unfitted; a failed first partial_fit still needs classes."""
    pytest.importorskip("sklearn")
    from sklearn.exceptions import NotFittedError
    from pynet import MLPClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.warns(Warning):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    score, n_iter, proba = clf.score(X, y), clf.n_iter_, clf.predict_proba(X)
    for refit in (bad, np.hstack([bad, bad])):
        with pytest.raises(ValueError, match="input X contains NaN at row 3, column 2"):
            clf.fit(refit, y)
        assert (clf.score(X, y), clf.n_iter_, clf.n_features_in_) == (score, n_iter, 4)
        np.testing.assert_array_equal(clf.predict_proba(X), proba)
    fresh = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1)
    with pytest.raises(ValueError, match="contains NaN"):
        fresh.fit(bad, y)
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    assert not hasattr(fresh, "n_features_in_")
    with pytest.raises(ValueError, match="contains NaN"):
        fresh.partial_fit(bad, y, classes=[0, 1])
    with pytest.raises(ValueError, match="the first call needs classes"):
        fresh.partial_fit(X, y)


def test_the_scan_reports_zero_as_plus_zero():
    a = np.array([0.0, -0.0] * 5000 + [-0.0])
    for level in KERNELS:
        assert lib.pn_set_simd(level.encode()) == 0
        try:
            low, top = scan_values(a)[:2]
            assert (math.copysign(1, low), math.copysign(1, top)) == (1, 1)
        finally:
            lib.pn_set_simd(b"auto")
