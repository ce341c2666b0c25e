"""pynet.estimator — ``MLPClassifier``, pynet's multi-layer perceptron as a scikit-learn estimator.

It is a thin layer over the public API: ``make_mlp`` builds the network,
``pynet.fit`` trains it, ``predict_model`` predicts. scikit-learn's parameter names mean what they
mean there (``alpha`` included: see the class docstring); pynet's own settings (dropout, schedules,
clipping, threads) come after them. Labels may be any values ``numpy.unique`` can sort (ints,
strings); inputs are checked the scikit-learn way (``validate_data``), so a 1-D sample to predict
is refused with scikit-learn's usual "Expected 2D array" error and a column vector of labels is
read as labels, with scikit-learn's DataConversionWarning. NaN and infinity in X are refused by
pynet's own pass over X (``pynet.data.scan_values``, in C on pynet's threads), whose message names
the first one's row and column; the same pass serves make_data's check for raw 0-255 pixels.

Pickling (which joblib, ``GridSearchCV(n_jobs=...)`` and ``clone`` of a fitted estimator need)
stores the trained network through pynet's own model format (``save_model`` to bytes), never C
pointers, and unpickling reads it back with ``load_model``. Optimiser state (momentum, Adam's
moments) is not part of that format, so a ``warm_start`` or ``partial_fit`` after unpickling starts
it afresh.

This module imports scikit-learn; ``pynet`` itself imports it only when ``pynet.MLPClassifier`` is
first used.
"""
import numbers
import os
import tempfile
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
except ImportError as e:   # pragma: no cover - the venv has scikit-learn
    raise ImportError("pynet.MLPClassifier needs scikit-learn (>= 1.3): pip install scikit-learn "
                      "(in a pynet checkout: pip install -e '.[sklearn]')") from e

from ._estimator_checks import check_X, in_our_words, kernel_threads, validate_inputs
from ._native import set_seed
from .classifier import INITS, make_data, make_mlp, predict_model
from . import checkpoint as _checkpoint
from .io import load_model, save_model
from .training import fit as _fit

__all__ = ["MLPClassifier", "ACTIVATIONS"]

# scikit-learn's activation names -> pynet's (lrelu is pynet's own: leaky relu, slope 0.1 below 0)
ACTIVATIONS = {"identity": "linear", "logistic": "logistic", "tanh": "tanh", "relu": "relu", "lrelu": "lrelu"}
SOLVERS = ("sgd", "adam")


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron classifier trained by pynet's C core, with scikit-learn's interface.

    The network is ``n_features → hidden_layer_sizes… → n_classes``, every layer with a bias, the
    hidden layers with ``activation``, the last with softmax (for two classes too), trained on the
    cross-entropy with ``pynet.fit`` in shuffled epochs of ``batch_size`` rows.

    scikit-learn's parameters (same names, same meaning):

    - ``hidden_layer_sizes``: tuple of hidden widths (an int for one layer; ``()`` for none).
    - ``activation``: 'identity', 'logistic', 'tanh', 'relu', or pynet's 'lrelu'.
    - ``solver``: 'adam' or 'sgd' (SGD with classical momentum ``momentum``; scikit-learn's
      Nesterov variant is not offered). ``beta_1``, ``beta_2``, ``epsilon``: Adam's.
    - ``alpha``: the L2 penalty. scikit-learn minimises, on each batch of b rows,
      ``mean cross-entropy + (alpha / (2·b))·Σ‖W‖²`` over the weight matrices (not the biases), so
      its gradient adds ``(alpha/b)·W``. That is ``pynet.fit(l2=alpha)``: fit's ``l2`` penalises the
      batch's *summed* loss by ``(l2/2)·Σ‖W‖²``, the same objective divided by b, and its gradient
      goes through Adam's moments as scikit-learn's does. (For SGD it equals the homework's
      ``decay=alpha``: ``v = dw − alpha·w + m·v``, ``w += (rate/b)·v``; Adam's ``decay`` is
      decoupled AdamW decay, which is a different thing.)
    - ``batch_size``: rows per step, 'auto' = min(200, n_samples); clipped (with a warning) to the
      training rows. Every row is used every epoch and an epoch is ceil(n_samples / batch_size)
      steps, as in scikit-learn; where scikit-learn's last batch of an epoch is a smaller one,
      pynet's is filled up with the first rows of that epoch's order (``pynet.fit(last_batch="fill")``).
    - ``learning_rate_init``: the step size (for SGD that of the mean loss's gradient).
    - ``max_iter``: epochs. ``tol``, ``n_iter_no_change``: stop when the training loss (or, with
      ``early_stopping``, the validation accuracy) has not improved by ``tol`` for more than
      ``n_iter_no_change`` consecutive epochs, as scikit-learn does; otherwise a
      ConvergenceWarning after ``max_iter`` epochs.
    - ``early_stopping``, ``validation_fraction``: hold out that share of the rows (at random, not
      stratified), score each epoch on it and keep the weights of the best epoch.
    - ``shuffle``, ``random_state``, ``warm_start``, ``verbose`` (fit's per-epoch lines, on stderr).
      ``random_state`` seeds pynet's one generator (``pynet.set_seed``) at the start of ``fit``
      and of the first ``partial_fit``: weights, shuffles, the validation split and dropout masks.

    pynet's own: ``dropout`` (on each hidden layer's output, i.e. the next layer's input),
    ``input_dropout``, ``schedule`` ('constant', 'step', 'cosine'), ``warmup``, ``step_size``
    (epochs), ``gamma``, ``min_rate``, ``clip`` (global gradient norm), ``layer_norm`` (True:
    every hidden layer normalises its pre-activation, make_layer's ``norm=True``), ``matmul``
    ('float64', or 'float32': the training step's products in float32, 1.6-1.8x their float64
    throughput on AVX-512; see pynet.fit), ``init`` ('homework', make_layer's, the default; or 'glorot',
    scikit-learn's initialisation: weights and biases uniform in ±√(f/(fan_in + fan_out)), f = 2 for
    'logistic', else 6, from pynet's generator; see make_mlp), ``threads`` (C kernel threads during
    fit and predict; None leaves pynet's setting alone).

    Fitted attributes: ``classes_``, ``n_features_in_`` (and ``feature_names_in_`` for a
    DataFrame), ``n_layers_``, ``n_outputs_``, ``out_activation_`` ('softmax'), ``coefs_`` and
    ``intercepts_`` (copies of the weights), ``loss_``, ``best_loss_``, ``loss_curve_`` (per epoch:
    the mean cross-entropy of its batches plus the L2 penalty at the end-of-epoch weights),
    ``validation_scores_`` and ``best_validation_score_`` (None without ``early_stopping``),
    ``n_iter_`` (epochs, summed over warm starts as in scikit-learn), ``t_`` (training rows seen)
    and ``model_``, the pynet Model (``model_.labels`` are ``str`` of the classes), usable with the
    homework API and ``pynet.save_model``.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True, random_state=None,
                 tol=1e-4, verbose=False, warm_start=False, momentum=0.9, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 dropout=0.0, input_dropout=0.0, schedule="constant", warmup=0, step_size=None, gamma=0.1,
                 min_rate=0.0, clip=0.0, layer_norm=False, matmul="float64", init="homework", threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.schedule = schedule
        self.warmup = warmup
        self.step_size = step_size
        self.gamma = gamma
        self.min_rate = min_rate
        self.clip = clip
        self.layer_norm = layer_norm
        self.matmul = matmul
        self.init = init
        self.threads = threads

    # ---- parameters ---------------------------------------------------------------------------

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise ValueError("MLPClassifier: hidden_layer_sizes must be an int or a sequence of ints, got %r"
                             % (self.hidden_layer_sizes,)) from None
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError("MLPClassifier: hidden_layer_sizes must be positive ints, got %r"
                             % (self.hidden_layer_sizes,))
        return tuple(int(s) for s in sizes)

    def _check_params(self):
        """The estimator's own checks (fit checks the numbers it is given, naming them)."""
        if self.activation not in ACTIVATIONS:
            raise ValueError("MLPClassifier: unknown activation %r; valid: %s"
                             % (self.activation, ", ".join(ACTIVATIONS)))
        if self.solver not in SOLVERS:
            raise ValueError("MLPClassifier: unknown solver %r; valid: %s" % (self.solver, ", ".join(SOLVERS)))
        if not (isinstance(self.alpha, numbers.Real) and np.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError("MLPClassifier: alpha must be a finite number >= 0, got %r" % (self.alpha,))
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError("MLPClassifier: max_iter must be an int >= 1, got %r" % (self.max_iter,))
        if not (isinstance(self.n_iter_no_change, numbers.Integral) and self.n_iter_no_change >= 1):
            raise ValueError("MLPClassifier: n_iter_no_change must be an int >= 1, got %r" % (self.n_iter_no_change,))
        if not (isinstance(self.tol, numbers.Real) and self.tol >= 0):
            raise ValueError("MLPClassifier: tol must be a number >= 0, got %r" % (self.tol,))
        if self.early_stopping and not (isinstance(self.validation_fraction, numbers.Real)
                                        and 0 < self.validation_fraction < 1):
            raise ValueError("MLPClassifier: validation_fraction must be in (0, 1), got %r"
                             % (self.validation_fraction,))
        if self.init not in INITS:
            raise ValueError("MLPClassifier: unknown init %r; valid: %s" % (self.init, ", ".join(INITS)))
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, numbers.Integral)
                                              and not isinstance(self.batch_size, bool) and self.batch_size >= 1)):
            raise ValueError("MLPClassifier: batch_size must be 'auto' or an int >= 1, got %r" % (self.batch_size,))
        return self._hidden_sizes()

    def _batch(self, n_rows):
        if self.batch_size == "auto":
            return min(200, n_rows)
        if self.batch_size > n_rows:
            warnings.warn("MLPClassifier: batch_size %d is larger than the %d training rows; using %d"
                          % (self.batch_size, n_rows, n_rows))
            return n_rows
        return int(self.batch_size)

    # ---- the network --------------------------------------------------------------------------

    def _seed(self):
        # pynet has one generator; an int repeats the run, None draws a seed from numpy's global one
        set_seed(int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max)))

    def _build(self, n_features, sizes):
        widths = (n_features,) + sizes + (len(self.classes_),)
        act = ACTIVATIONS[self.activation]
        with in_our_words():
            m = make_mlp(widths, act, bias=True, dropout=self.dropout, input_dropout=self.input_dropout,
                         norm=bool(self.layer_norm), init=self.init)
        self._architecture = self._architecture_now(sizes)
        m.labels = [str(c) for c in self.classes_]
        m.info = {"trained_by": "pynet.MLPClassifier"}
        self.model_ = m
        self.n_layers_ = len(widths)
        self.n_outputs_ = len(self.classes_)
        self.out_activation_ = "softmax"
        self.n_iter_, self.t_ = 0, 0
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self._no_improvement_count = 0
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _check_X(self, X):
        """check_X(X) on the estimator's ``threads``."""
        with kernel_threads(self.threads):
            return check_X(X)

    def _validated(self, X, y, reset):
        """validate_data, then _check_X: (X, y, scan). A refused X leaves the estimator as it was,
        as scikit-learn's own finite check inside validate_data did (it refused X before setting
        n_features_in_ and feature_names_in_)."""
        kept = {k: self.__dict__[k] for k in ("n_features_in_", "feature_names_in_") if k in self.__dict__}
        X, y = validate_inputs(self, X, y, reset=reset)
        try:
            return X, y, self._check_X(X)
        except ValueError:
            for k in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(k, None)
            self.__dict__.update(kept)
            raise

    def _architecture_now(self, sizes):
        return {"hidden_layer_sizes": tuple(sizes), "activation": self.activation, "layer_norm": bool(self.layer_norm),
                "dropout": self.dropout, "input_dropout": self.input_dropout}

    def _check_same_network(self, sizes, how):
        """ValueError when a parameter that shapes the network changed since it was built: a warm
        start or a later partial_fit keeps the fitted network, so the parameters would not describe it."""
        built = getattr(self, "_architecture", None)
        if built is None:
            return
        now = self._architecture_now(sizes)
        changed = ["%s=%r (the network has %r)" % (k, now[k], built[k]) for k in built if now.get(k) != built[k]]
        if changed:
            raise ValueError("MLPClassifier: %s continues training the fitted network, but %s changed since it "
                             "was built: %s. Fit afresh (warm_start=False, or a clone) for the new network"
                             % (how, "these parameters" if len(changed) > 1 else "a parameter", "; ".join(changed)))

    def _label_indices(self, y):
        idx = np.searchsorted(self.classes_, y)
        idx = np.minimum(idx, len(self.classes_) - 1)
        unknown = self.classes_[idx] != y
        if np.any(unknown):
            new = np.unique(np.asarray(y)[unknown])
            raise ValueError("MLPClassifier: y has %d labels that are not in classes_ %s: %s%s"
                             % (len(new), self.classes_.tolist(), new[:5].tolist(),
                                " and %d more" % (len(new) - 5) if len(new) > 5 else ""))
        return idx

    def _train(self, X, y, scan, epochs, incremental):
        """Epochs of pynet.fit on (X, y) (``scan``: check_X's of X); records the curves and applies
        scikit-learn's stopping rule."""
        early = self.early_stopping and not incremental
        n_train = X.shape[0] - (int(round(X.shape[0] * self.validation_fraction)) if early else 0)
        batch = self._batch(max(n_train, 1))
        # X passed validate_data (float64, C order): make_data shares it, and uses the scan that
        # found it finite for its check of raw pixels
        d = make_data(X, self._label_indices(y), classes=len(self.classes_), _x_scan=scan,
                      _pixel_advice=("MLPClassifier", "Divide X by 255 (X / 255.0), or put "
                                     "sklearn.preprocessing.StandardScaler before the estimator in a Pipeline"))
        stop_reason = []

        def on_epoch(record):
            self.n_iter_ += 1
            self.t_ += n_train
            # Σw² by a ufunc and a sum, not np.dot: a BLAS call here wakes OpenBLAS's threads, which
            # then spin for ~0.1 s on the cores pynet's training threads need (a two-thread step took
            # 3 ms instead of 0.55 right after one; the loop then fell back to one thread)
            penalty = 0.0
            if self.alpha:
                penalty = 0.5 * self.alpha / batch * sum(float(np.square(l.w.data).sum()) for l in self.model_.layers)
            self.loss_ = record["train_loss"] + penalty
            self.loss_curve_.append(self.loss_)
            if incremental:
                return False
            if early:   # scikit-learn's _update_no_improvement_count
                score = record["val_accuracy"]
                self.validation_scores_.append(score)
                self._no_improvement_count = (self._no_improvement_count + 1
                                              if score < self.best_validation_score_ + self.tol else 0)
                self.best_validation_score_ = max(self.best_validation_score_, score)
            else:
                self._no_improvement_count = (self._no_improvement_count + 1
                                              if self.loss_ > self.best_loss_ - self.tol else 0)
            self.best_loss_ = min(self.best_loss_, self.loss_)
            if self._no_improvement_count > self.n_iter_no_change:
                stop_reason.append("%s did not improve more than tol=%f for %d consecutive epochs"
                                   % ("Validation score" if early else "Training loss", self.tol,
                                      self.n_iter_no_change))
                return True
            return False

        with kernel_threads(self.threads), in_our_words():
            history = _fit(self.model_, d, epochs=epochs, batch=batch, optimizer=self.solver,
                           rate=self.learning_rate_init, momentum=self.momentum, l2=self.alpha, beta1=self.beta_1,
                           beta2=self.beta_2, eps=self.epsilon, schedule=self.schedule, warmup=self.warmup,
                           step_size=self.step_size, gamma=self.gamma, min_rate=self.min_rate, clip=self.clip,
                           matmul=self.matmul, shuffle=self.shuffle, last_batch="fill",
                           validation=self.validation_fraction if early else None, progress=bool(self.verbose),
                           on_epoch=on_epoch)
        if history.interrupted:   # Ctrl-C: keep what was learnt (fit stopped at the end of a step)
            warnings.warn("MLPClassifier: training interrupted (Ctrl-C) after %d finished epochs; the estimator "
                          "keeps the %s weights. A second Ctrl-C within %g s raises KeyboardInterrupt instead (to "
                          "leave a cross_val_score or GridSearchCV, which would go on with its next fit)"
                          % (len(history.epochs), "best epoch's" if early and history.best_epoch is not None
                             else "last step's", _checkpoint.AGAIN_SECONDS), UserWarning)
        elif stop_reason:
            self._no_improvement_count = 0   # as scikit-learn: a warm start gets its full patience
            if self.verbose:
                print("%s. Stopping." % stop_reason[0])
        elif not incremental:
            warnings.warn("MLPClassifier: stochastic optimiser: maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % epochs, ConvergenceWarning)
        self.coefs_ = [l.w.data.copy() for l in self.model_.layers]
        self.intercepts_ = [l.b.data.reshape(-1).copy() for l in self.model_.layers]
        return self

    # ---- scikit-learn's interface -------------------------------------------------------------

    def fit(self, X, y):
        """Train on X (n_samples × n_features) and labels y (any sortable values); returns self.
        With ``warm_start`` and a fitted estimator, training continues from the current weights."""
        sizes = self._check_params()
        first = not (self.warm_start and hasattr(self, "model_"))
        X, y, scan = self._validated(X, y, reset=first)   # before anything changes: a refused X loses nothing
        check_classification_targets(y)
        classes = np.unique(y)
        if not first:   # scikit-learn's rule for a warm start: the same classes, and the same network
            if not np.array_equal(classes, self.classes_):
                raise ValueError("MLPClassifier: warm_start can only be used where y has the same classes as in "
                                 "the previous call to fit: it had %s, y has %s"
                                 % (self.classes_.tolist(), classes.tolist()))
            self._check_same_network(sizes, "warm_start")
        self._seed()
        if first:
            if len(classes) < 2:
                raise ValueError("MLPClassifier: needs at least 2 classes to learn from, got 1 class (%r)"
                                 % (classes[0].item() if isinstance(classes[0], np.generic) else classes[0],))
            self.classes_ = classes
            self._build(X.shape[1], sizes)
        return self._train(X, y, scan, self.max_iter, incremental=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch of training on (X, y). The first call needs ``classes``, every label that
        will ever be seen; later calls continue from the current weights. Returns self."""
        sizes = self._check_params()
        first = not hasattr(self, "model_")
        X, y, scan = self._validated(X, y, reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("MLPClassifier.partial_fit: the first call needs classes, every label the "
                                 "model will see")
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError("MLPClassifier: needs at least 2 classes to learn from, got %d class"
                                 % len(classes))
            self.classes_ = classes
            self._seed()
            self._build(X.shape[1], sizes)
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError("MLPClassifier.partial_fit: classes=%r is not the same as on the first call (%r)"
                             % (list(classes), self.classes_.tolist()))
        else:
            self._check_same_network(sizes, "partial_fit")
        return self._train(X, y, scan, 1, incremental=True)

    def predict_proba(self, X):
        """Class probabilities (n_samples × n_classes, columns in the order of ``classes_``)."""
        check_is_fitted(self)
        X = validate_inputs(self, X, reset=False)
        self._check_X(X)
        with kernel_threads(self.threads):
            return np.array(predict_model(self.model_, X).data)

    def predict_log_proba(self, X):
        """The logarithm of predict_proba (−inf where a probability underflowed to 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row, as a label from ``classes_``."""
        proba = self.predict_proba(X)   # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    # ---- pickling through pynet's model format ----------------------------------------------

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        if "model_" in state:
            with tempfile.TemporaryDirectory(prefix="pynet-pickle-") as folder:
                path = os.path.join(folder, "model.npz")
                save_model(state["model_"], path)
                with open(path, "rb") as f:
                    state["model_"] = f.read()
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("model_"), bytes):
            with tempfile.TemporaryDirectory(prefix="pynet-pickle-") as folder:
                path = os.path.join(folder, "model.npz")
                with open(path, "wb") as f:
                    f.write(state["model_"])
                state["model_"] = load_model(path)
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)
