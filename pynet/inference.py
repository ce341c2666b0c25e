"""pynet.inference — the model used the way scikit-learn users expect: labels of any kind in,
and predictions that apply the model's own input standardisation.

Two families of calls, on purpose:

- raw, as in the homework: ``forward_model``, ``predict_model``, ``accuracy_model`` and
  ``evaluate_model`` take X exactly as given; a model's ``standardizer`` is *not* applied;
- this module's ``predict``, ``predict_proba`` and ``score`` standardise a copy of X with
  ``m.standardizer`` first (when the model has one, as a model from ``python -m pynet train`` or
  from ``fit`` after ``m.standardizer = ...`` does), and accept a single 1-D sample.

Class order: with integer labels, label k is output column k (the homework's convention). With
string (or other non-integer) labels, the columns are ``m.labels`` when the model has them, else
the sorted unique labels (as scikit-learn's ``classes_``), which ``fit(m, X, y)`` stores in
``m.labels``.
"""
import numpy as np

from .classifier import model_handle, predict_model
from .data import Data

__all__ = ["predict", "predict_proba", "score", "class_indices"]


def class_indices(y, labels, classes, what="y"):
    """(indices, labels) for labels y: a 1-D array (or an (n, 1) column) of integer class
    indices, or of class names. Names map through ``labels`` when given (an unknown name is an
    error), else through their sorted unique values; ``classes`` is the model's output count."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError("%s must be 1-D labels, an (n, 1) column of labels or (n, %d) one-hot rows; got shape %s"
                         % (what, classes, y.shape))
    if y.dtype.kind in "iub" and y.dtype.kind != "b":
        return y.astype(np.intp), labels
    if y.dtype.kind == "f" and y.size and np.array_equal(y, np.round(y)) and np.all(np.isfinite(y)):
        return y.astype(np.intp), labels
    if y.dtype.kind in "fcb":
        raise ValueError("%s holds non-integer numbers (dtype %s, e.g. %r); labels must be integer class indices "
                         "or class names" % (what, y.dtype, y.flat[0] if y.size else None))
    names = np.asarray([str(v) for v in y.tolist()])
    if labels is None:
        labels = sorted(set(names.tolist()))
        if len(labels) != classes:
            raise ValueError("%s has %d distinct class names (%s) but the model gives %d classes; with fewer names "
                             "than classes, set m.labels to the full class list first"
                             % (what, len(labels), ", ".join(labels)[:200], classes))
    lookup = {name: k for k, name in enumerate(str(v) for v in labels)}
    unknown = sorted(set(names.tolist()) - set(lookup))
    if unknown:
        raise ValueError("%s holds the label%s %s, which %s not among the model's %d labels (%s)"
                         % (what, "s" if len(unknown) > 1 else "", ", ".join(map(repr, unknown[:5])),
                            "are" if len(unknown) > 1 else "is", len(lookup), ", ".join(lookup)[:200]))
    if len(lookup) > classes:
        raise ValueError("%s has %d distinct labels but the model gives %d classes" % (what, len(lookup), classes))
    return np.fromiter((lookup[n] for n in names.tolist()), dtype=np.intp, count=names.size), list(labels)


def _inputs(m, X):
    """X as a fresh 2-D float64 array, standardised with m.standardizer when there is one."""
    if isinstance(X, Data):
        X = X.X.data
    X = np.array(getattr(X, "data", X) if not isinstance(X, np.ndarray) else X, dtype=np.float64, copy=True)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    n_in = m.layers[0].inputs
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError("X has shape %s but the model takes %d features per row" % (X.shape, n_in))
    if m.standardizer is not None:
        m.standardizer.apply(X)
    return X


def predict_proba(m, X):
    """The model's outputs (class probabilities, for a softmax model) for X, n × classes, after
    standardising a copy of X with ``m.standardizer`` if the model has one. X: rows of features,
    a single 1-D sample, a Matrix or a Data."""
    model_handle(m)   # TypeError if m is not a Model
    return np.array(predict_model(m, _inputs(m, X)).data)


def predict(m, X):
    """Each row's class index (the column of its highest output), standardising as predict_proba
    does. ``m.labels[k]`` names class k when the model has labels."""
    return np.argmax(predict_proba(m, X), axis=1)


def score(m, X, y=None):
    """Accuracy on (X, y), standardising as predict_proba does: y as 1-D integer indices or class
    names (mapped through ``m.labels``), an (n, 1) column, or one-hot rows; or ``score(m, d)`` for a
    Data, whose y is one-hot."""
    model_handle(m)   # TypeError if m is not a Model
    if isinstance(X, Data):
        if y is not None:
            raise TypeError("score(m, d) takes a Data alone; give y only with an array X")
        truth = X.classes
    else:
        if y is None:
            raise TypeError("score(m, X, y) needs the labels y when X is an array")
        y_arr = np.asarray(y)
        classes = m.layers[-1].outputs
        if y_arr.ndim == 2 and y_arr.shape[1] == classes and classes > 1:
            truth = np.argmax(y_arr, axis=1)
        else:
            truth, _ = class_indices(y_arr, m.labels, classes)
    pred = predict(m, X)
    if len(truth) != len(pred):
        raise ValueError("X has %d rows but y has %d labels" % (len(pred), len(truth)))
    return float(np.mean(pred == truth)) if len(pred) else float("nan")
