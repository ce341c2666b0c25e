"""pynet — neural networks from scratch, fast.

A C core (matrices, GEMM, layers, SGD) with the homework's API, bound to Python through cffi.
Everything below is re-exported from :mod:`pynet.matrix` and :mod:`pynet.classifier`, which mirror
the homework's ``src/matrix.py`` and ``src/hw4/classifier.py`` (the classifier's parts live in
:mod:`pynet.activations`, :mod:`pynet.layer` and :mod:`pynet.data`), and from the modules beyond the
homework: :mod:`pynet.training` (fit), :mod:`pynet.evaluate`, :mod:`pynet.inference`, :mod:`pynet.io`.
"""
from ._native import (DivergedError, build_info, get_threads, set_adaptive_threads, set_seed, set_threads,
                      training_threads)
from .matrix import (Matrix, as_matrix, axpy_matrix, copy_matrix, free_matrix, gemm, make_matrix, matrix_mult_matrix,
                     random_matrix, transpose_matrix)
from .activations import ACTIVATION
from .activations import *  # noqa: F401,F403  one constant per C activation: LINEAR, LOGISTIC, RELU, ...
from .classifier import (Data, Layer, Model, accuracy_model, activate_matrix, backward_layer, backward_model,
                         cross_entropy_loss, forward_layer, forward_model, gradient_matrix, make_data, make_layer,
                         make_mlp, make_model, predict_model, random_batch, train_model, update_layer, update_model)
from .training import History, Standardizer, fit
from .evaluate import confusion_matrix, evaluate_classes, evaluate_model, per_class_accuracy
from .inference import predict, predict_proba, score
from .io import ModelFileError, load_model, save_model
from . import datasets
from .datasets import load_image_classification_data

from ._version import __version__


def __getattr__(name):   # pynet.MLPClassifier imports scikit-learn on first use only (not in __all__)
    if name == "MLPClassifier":
        from .estimator import MLPClassifier
        return MLPClassifier
    raise AttributeError("module 'pynet' has no attribute %r" % name)

__all__ = [
    "Matrix", "as_matrix", "make_matrix", "copy_matrix", "random_matrix", "transpose_matrix",
    "matrix_mult_matrix", "axpy_matrix", "gemm", "free_matrix",
    "ACTIVATION", "Layer", "Model", "Data",
    "activate_matrix", "gradient_matrix", "forward_layer", "backward_layer", "update_layer", "make_layer",
    "make_model", "make_mlp", "forward_model", "backward_model", "update_model", "predict_model", "accuracy_model",
    "cross_entropy_loss", "random_batch", "make_data", "train_model",
    "set_seed", "set_threads", "get_threads", "set_adaptive_threads", "training_threads", "build_info", "DivergedError",
    "fit", "predict", "predict_proba", "score", "History", "Standardizer", "evaluate_model",
    "confusion_matrix", "per_class_accuracy", "evaluate_classes",
    "save_model", "load_model", "ModelFileError",
    "datasets", "load_image_classification_data",
] + list(ACTIVATION.__members__)
