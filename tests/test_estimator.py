"""pynet.MLPClassifier: scikit-learn's own estimator checks, the meta-estimators (Pipeline,
GridSearchCV with two processes, cross_val_score), pickling through pynet's model format, labels of
any type, and alpha against scikit-learn's formula for the L2 penalty (a NumPy step written here)."""
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import in_ci   # noqa: E402

if not in_ci():   # the test extra installs scikit-learn: under CI its absence is a failure
    pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning   # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score   # noqa: E402
from sklearn.pipeline import make_pipeline   # noqa: E402
from sklearn.preprocessing import StandardScaler   # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks   # noqa: E402

import pynet   # noqa: E402
from pynet import MLPClassifier   # noqa: E402

# short runs end before they converge; the tests that are about the warning ask for it
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(n=120, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, features))
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(0, 1, (n, features)), y


# ---- scikit-learn's estimator checks ------------------------------------------------------------

# scikit-learn's checks set max_iter=100 for an estimator named MLPClassifier (as for its own)
@parametrize_with_checks([MLPClassifier(random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---- use -----------------------------------------------------------------------------------------

def test_import_does_not_load_sklearn():
    code = ("import sys, pynet; assert 'sklearn' not in sys.modules; "
            "from pynet import MLPClassifier; assert 'sklearn' in sys.modules; print(MLPClassifier.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pynet.estimator"


def test_string_labels_and_fitted_attributes():
    X, y = blobs()
    names = np.array(["cat", "dog", "emu"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(8, 8), max_iter=60, learning_rate_init=0.01, random_state=1).fit(X, names)
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    assert clf.n_features_in_ == 5 and clf.n_iter_ == len(clf.loss_curve_) >= 1
    assert clf.best_validation_score_ is None
    assert set(clf.predict(X)) <= set(clf.classes_)
    p = clf.predict_proba(X)
    assert p.shape == (120, 3) and np.allclose(p.sum(axis=1), 1)
    assert np.allclose(np.exp(clf.predict_log_proba(X)), p)
    assert clf.score(X, names) > 0.9
    # model_ is a pynet Model usable with the homework API, and agrees with the estimator
    assert isinstance(clf.model_, pynet.Model) and clf.model_.labels == ["cat", "dog", "emu"]
    assert np.array_equal(pynet.predict_model(clf.model_, X).data, p)
    d = pynet.make_data(X, y, classes=3)
    assert pynet.accuracy_model(clf.model_, d) == pytest.approx(clf.score(X, names))


def test_integer_labels_not_starting_at_zero():
    X, y = blobs(classes=2)
    labels = np.where(y == 0, -7, 42)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, learning_rate_init=0.01, random_state=0).fit(X, labels)
    assert clf.classes_.tolist() == [-7, 42] and clf.predict_proba(X).shape == (120, 2)
    assert set(clf.predict(X)) <= {-7, 42}


def test_column_vector_y_is_labels_with_warning():
    X, y = blobs()
    with pytest.warns(DataConversionWarning):
        a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=3).fit(X, y.reshape(-1, 1))
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=3).fit(X, y)
    assert a.classes_.tolist() == [0, 1, 2]
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_predict_1d_sample_is_refused_the_sklearn_way():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        clf.predict(X[0])
    assert clf.predict(X[0].reshape(1, -1)).shape == (1,)


def test_bad_parameters_name_themselves():
    X, y = blobs()
    for params, word in [({"activation": "softplus"}, "activation"), ({"solver": "lbfgs"}, "solver"),
                         ({"alpha": -1.0}, "alpha"), ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes"),
                         ({"batch_size": 0}, "batch_size"), ({"max_iter": 0}, "max_iter"),
                         ({"init": "he"}, r"MLPClassifier: unknown init 'he'; valid: homework, glorot")]:
        with pytest.raises(ValueError, match=word):
            MLPClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="2 classes"):
        MLPClassifier().fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="rate"):
        MLPClassifier(learning_rate_init=0.0, max_iter=1).fit(X, y)


def test_same_random_state_same_model_and_threads_restored():
    X, y = blobs()
    before = pynet.get_threads()
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=7, threads=1).fit(X, y)
    assert pynet.get_threads() == before
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=7).fit(X, y)
    assert np.array_equal(a.coefs_[0], b.coefs_[0]) and a.loss_curve_ == b.loss_curve_


def test_tol_stops_like_sklearn_and_warns_otherwise():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=500, tol=10.0, n_iter_no_change=3, random_state=0)
    clf.fit(X, y)   # nothing improves by 10: the first epoch, then n_iter_no_change + 1 without gain
    from sklearn.neural_network import MLPClassifier as SklearnMLP
    theirs = SklearnMLP(hidden_layer_sizes=(8,), max_iter=500, tol=10.0, n_iter_no_change=3, random_state=0)
    assert clf.n_iter_ == theirs.fit(X, y).n_iter_ == 5
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)


def test_early_stopping_keeps_the_best_validation_score():
    X, y = blobs(n=300)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, learning_rate_init=0.01, early_stopping=True, validation_fraction=0.2,
                        n_iter_no_change=5, random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.8


def test_warm_start_and_partial_fit_continue():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0)
    clf.fit(X, y)
    w = clf.coefs_[0].copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6 and not np.array_equal(w, clf.coefs_[0])
    p = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        p.partial_fit(X, y)
    for _ in range(3):
        p.partial_fit(X[:60], y[:60], classes=[0, 1, 2])
    assert p.n_iter_ == 3 and p.classes_.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="not in classes_"):
        p.partial_fit(X, y + 5)


def test_pickle_goes_through_the_model_format():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    state = clf.__getstate__()
    assert isinstance(state["model_"], bytes) and state["model_"][:2] == b"PK"   # an .npz archive
    assert b"cffi" not in pickle.dumps(clf)
    back = pickle.loads(pickle.dumps(clf))
    assert isinstance(back.model_, pynet.Model) and back.model_ is not clf.model_
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))


# ---- alpha is scikit-learn's alpha ---------------------------------------------------------------

def _one_step(solver, alpha, rate=0.1):
    """One full-batch step of a softmax layer through MLPClassifier, and the same step in NumPy
    with scikit-learn's objective: mean cross-entropy + alpha/(2n)·‖W‖² (its _backprop)."""
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(40, 6)), np.arange(40) % 3
    clf = MLPClassifier(hidden_layer_sizes=(), solver=solver, alpha=alpha, momentum=0.0, max_iter=1,
                        learning_rate_init=rate, batch_size=40, shuffle=False, random_state=0)
    pynet.set_seed(int(np.random.RandomState(0).randint(np.iinfo(np.int32).max)))   # the estimator's seed
    w0 = pynet.make_layer(6, 3, "softmax").w.data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    z = X @ w0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad = X.T @ (p - np.eye(3)[y]) / 40 + alpha * w0 / 40   # scikit-learn: coef_grads += alpha*W; /= n
    if solver == "sgd":
        expected = w0 - rate * grad
    else:
        m, s = 0.1 * grad / (1 - 0.9), 0.001 * grad ** 2 / (1 - 0.999)
        expected = w0 - rate * m / (np.sqrt(s) + 1e-8)
    return clf.coefs_[0], expected, w0


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_alpha_is_sklearns_l2_penalty(solver):
    got, expected, w0 = _one_step(solver, alpha=3.0)
    assert np.allclose(got, expected, rtol=1e-10, atol=1e-12)
    plain, _, _ = _one_step(solver, alpha=0.0)
    assert not np.allclose(got, plain)   # the penalty did something


def test_loss_curve_includes_the_penalty():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(), alpha=2.0, max_iter=1, batch_size=120, shuffle=False,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    no_pen = clf.loss_curve_[0] - 2.0 / (2 * 120) * np.sum(clf.coefs_[0] ** 2)
    # one step: the recorded batch loss is the cross-entropy at the initial weights
    pynet.set_seed(int(np.random.RandomState(0).randint(np.iinfo(np.int32).max)))
    w0 = pynet.make_layer(5, 3, "softmax").w.data
    z = X @ w0
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    assert no_pen == pytest.approx(-logp[np.arange(120), y].mean(), rel=1e-9)


def test_fit_l2_is_sgd_decay_and_checked():
    X, y = blobs()
    runs = []
    for kw in ({"l2": 0.5}, {"decay": 0.5}):
        pynet.set_seed(4)
        m = pynet.make_model([pynet.make_layer(5, 7, "relu", bias=True), pynet.make_layer(7, 3, "softmax")])
        pynet.fit(m, pynet.make_data(X, y), epochs=3, batch=20, rate=0.05, **kw)
        runs.append(m.layers[0].w.data.copy())
    assert np.allclose(runs[0], runs[1], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="l2"):
        pynet.fit(m, pynet.make_data(X, y), batch=20, l2=-1.0)


# ---- inside scikit-learn's meta-estimators --------------------------------------------------------

def test_in_a_pipeline():
    X, y = blobs()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, learning_rate_init=0.01, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X[:90], y[:90])
    assert pipe.score(X[90:], y[90:]) > 0.8


def test_grid_search_two_processes():
    X, y = blobs()
    grid = GridSearchCV(MLPClassifier(max_iter=40, learning_rate_init=0.01, random_state=0),
                        {"hidden_layer_sizes": [(4,), (16,)], "alpha": [1e-4, 1e-1]}, cv=3, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert isinstance(grid.best_estimator_.model_, pynet.Model) and grid.score(X, y) > 0.8


def test_cross_val_score():
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, learning_rate_init=0.01,
                                                random_state=0), X, y, cv=4)
    assert scores.shape == (4,) and scores.min() > 0.7


def test_every_row_is_trained_on_every_epoch_as_in_scikit_learn():
    """Without shuffling, rows past the last whole batch are trained on (pynet.fit's
    last_batch="fill"): here they are the only examples of class 2, which a fit that dropped them
    could never predict."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 0.5, (20, 2)), rng.normal(2, 0.5, (20, 2)), rng.normal((2, -4), 0.5, (10, 2))])
    y = np.repeat([0, 1, 2], [20, 20, 10])
    clf = MLPClassifier(hidden_layer_sizes=(8,), batch_size=40, shuffle=False, max_iter=300, learning_rate_init=0.02,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    assert np.mean(clf.predict(X[40:]) == 2) >= 0.9


def test_warm_start_refuses_other_classes_or_another_network_and_keeps_the_model():
    X, y = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, warm_start=True).fit(X, y)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError, match=r"warm_start can only be used where y has the same classes as in the "
                                         r"previous call to fit: it had \[0, 1, 2\], y has \[0, 1\]"):
        clf.fit(X, y % 2)
    for change, words in [({"activation": "tanh"}, r"a parameter changed since it was built: "
                                                    r"activation='tanh' \(the network has 'relu'\)"),
                          ({"hidden_layer_sizes": (4, 4), "dropout": 0.5},
                           r"these parameters changed.*hidden_layer_sizes=\(4, 4\) \(the network has \(8,\)\); "
                           r"dropout=0.5 \(the network has 0.0\)")]:
        before = {k: clf.get_params()[k] for k in change}
        clf.set_params(**change)
        with pytest.raises(ValueError, match="MLPClassifier: warm_start continues training the fitted network, "
                                             "but " + words):
            clf.fit(X, y)
        with pytest.raises(ValueError, match="partial_fit continues training the fitted network"):
            clf.partial_fit(X, y)
        clf.set_params(**before)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    clf.fit(X, y)   # the same classes and network: training goes on
    assert clf.n_iter_ == 10


def test_unknown_labels_in_partial_fit_are_counted():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"y has 7 labels that are not in classes_ \[0, 1, 2\]: "
                                         r"\[3, 4, 5, 6, 7\] and 2 more"):
        clf.partial_fit(X[:10], np.arange(10))


def test_settings_are_named_as_the_estimator_names_them():
    X, y = blobs()
    for params, words in [({"learning_rate_init": 0.0}, r"^MLPClassifier: learning_rate_init must be > 0, got 0 "
                                                       r"\(pynet.fit's rate\)"),
                          ({"beta_1": 1.5}, r"^MLPClassifier: Adam needs 0 <= beta_1, beta_2 < 1 and epsilon > 0, got 1.5"),
                          ({"momentum": 1.5, "solver": "sgd"}, r"^MLPClassifier: momentum must be in \[0, 1\)"),
                          ({"matmul": "float16"}, r"^MLPClassifier: unknown matmul"),
                          ({"dropout": 1.0}, r"^MLPClassifier: dropout must be in \[0, 1\)")]:
        with pytest.raises(ValueError, match=words):
            MLPClassifier(max_iter=1, **params).fit(X, y)
    with pytest.raises(ValueError, match=r"got 1 class \(7.0\)$"):
        MLPClassifier().fit(X, np.full(len(X), 7.0))


def test_the_raw_pixel_warning_names_the_estimator_and_advice_that_works():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (60, 16)).astype(np.uint8)
    y = np.arange(60) % 3
    with pytest.warns(UserWarning, match=r"^MLPClassifier: X holds only whole numbers from 0 to 255, which looks like raw "
                                         r"0-255 pixels.*Divide X by 255 \(X / 255.0\), or put "
                                         r"sklearn.preprocessing.StandardScaler before the estimator in a Pipeline"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X, y)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # the advice silences it
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X / 255.0, y)
        make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=1)).fit(X, y)
