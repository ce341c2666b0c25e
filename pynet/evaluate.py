"""pynet.evaluate — how well a model does on data: loss and accuracy (``evaluate_model``, in C),
the confusion matrix and per-class accuracy (``evaluate_classes``), as ``python -m pynet eval``
reports them."""
import numpy as np

from ._native import check, ffi, lib
from .classifier import model_handle, predict_model
from .data import data_handle

__all__ = ["evaluate_model", "confusion_matrix", "per_class_accuracy", "evaluate_classes"]


def evaluate_model(m, d):
    """(mean cross-entropy, accuracy) of model m on data d, in evaluation mode (no dropout)."""
    (cm, lock), cd = model_handle(m), data_handle(d)
    loss, acc = ffi.new("double *"), ffi.new("double *")
    with lock:
        check(lib.evaluate_model(cm, cd, loss, acc))
    return loss[0], acc[0]


def confusion_matrix(m, d):
    """k × k counts (int64) of d's rows by true class (row) and m's predicted class (column)."""
    data_handle(d)   # TypeError if d is not a Data
    predicted = np.argmax(predict_model(m, d.X).data, axis=1)
    k = d.y.cols
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (d.classes, predicted), 1)
    return confusion


def per_class_accuracy(confusion, names=None):
    """One dict per class from a confusion matrix: ``class`` (its name; default its index),
    ``examples``, ``correct`` and ``accuracy`` (None for a class with no examples)."""
    confusion = np.asarray(confusion)
    k = confusion.shape[0]
    names = list(names) if names is not None else [str(i) for i in range(k)]
    return [{"class": names[i], "examples": int(confusion[i].sum()), "correct": int(confusion[i, i]),
             "accuracy": float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None}
            for i in range(k)]


def evaluate_classes(m, d, names=None):
    """A dict: ``loss`` and ``accuracy`` (evaluate_model), ``confusion`` (confusion_matrix) and
    ``per_class`` (per_class_accuracy, with the class ``names``: default m.labels, then d.labels,
    then the class indices)."""
    loss, accuracy = evaluate_model(m, d)
    confusion = confusion_matrix(m, d)
    if names is None:
        names = m.labels or d.labels or [str(i) for i in range(d.y.cols)]
    return {"loss": loss, "accuracy": accuracy, "confusion": confusion,
            "per_class": per_class_accuracy(confusion, names)}
