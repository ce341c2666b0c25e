"""pynet.classifier — the homework's neural network (src/hw4/classifier.py), backed by C.

Same names, same arguments, same conventions as the homework:

- ``forward_layer(l, in)`` computes ``out = f(in·w)`` and saves ``in`` and ``out`` in the layer;
- ``backward_layer(l, delta)`` turns ``delta`` into ``delta ∘ f′(out)`` *in place*, stores
  ``l.dw = inᵀ·delta`` and returns ``delta·wᵀ`` for the layer below;
- ``update_layer(l, rate, momentum, decay)`` does ``v = dw − decay·w + momentum·v; w += rate·v``;
- ``train_model`` feeds ``dL = y − p`` (truth minus prediction, the negative gradient) backwards and
  calls ``update_model(m, rate/batch, momentum, decay)``.

The activations live in pynet.activations, the layers in pynet.layer and the data in pynet.data;
every homework name is importable from here, as in the homework. Layers, models and data are thin
handles on the C structs; their fields (``l.w``, ``l.out``, ``d.X``) are numpy views of the C
memory, not copies. Matrices a layer returns (``forward_layer``'s result,
``backward_layer``'s result) belong to the layer and are overwritten by its next forward/backward.
"""

import math

import numpy as np

from ._native import DivergedError, _index, _number, call, check, ffi, lib
from ._progress import Progress, progress_enabled
from .activations import (ACTIVATION, HIDDEN_ACTIVATIONS, activate_matrix, gradient_matrix,  # noqa: F401
                          _activation)
from .activations import *  # noqa: F401,F403  LINEAR, LOGISTIC, ... (one constant per C activation)
from .data import Data, _data, data_handle, make_data, random_batch  # noqa: F401  the homework's names
from .config import make_config
from .diagnostics import Recorder, diagnostics_every
from .layer import Layer, _LayerStore, _layer, backward_layer, forward_layer, make_layer, update_layer  # noqa: F401
from .matrix import Matrix, as_matrix, _adopt, random_matrix
from .steps import run_steps

__all__ = ["ACTIVATION", "Layer", "Model", "Data",
           "activate_matrix", "gradient_matrix", "forward_layer", "backward_layer", "update_layer",
           "make_layer", "make_model", "make_mlp", "forward_model", "backward_model", "update_model",
           "predict_model", "accuracy_model", "cross_entropy_loss", "random_batch", "make_data",
           "train_model", "DivergedError"] + list(ACTIVATION.__members__)


# ---- models ------------------------------------------------------------------------------------

class Model:
    """A stack of layers, first to last. ``m.layers`` is the tuple of them (fixed: the C model is
    built from it), ``m.n`` its length. Several threads may share a model; its C calls take turns.
    ``m.labels`` (class names) and ``m.standardizer`` (input standardisation learnt from the training
    data, see pynet.training.Standardizer) travel with the model when it is saved; both may be None.
    ``m.info`` is a free-form, JSON-serialisable dict (how the model was trained, on what data) that
    pynet.save_model stores and pynet.load_model gives back; empty for a new model."""

    __slots__ = ("_store", "_c", "layers", "labels", "standardizer", "info", "__weakref__")

    @property
    def n(self):
        return self._c.n

    def __repr__(self):
        sizes = [self.layers[0].inputs] + [l.outputs for l in self.layers]
        acts = ", ".join(l.activation.name for l in self.layers)
        return "Model(%s; %s)" % (" -> ".join(map(str, sizes)), acts)


_EMPTY_LAYER = ffi.new("layer *")   # all zeros: what a moved-out layer struct becomes


def make_model(layers):
    """A model from a list of layers (each from make_layer). The layers move into the model: keep
    using them through the list or ``m.layers``; a layer can belong to one model only."""
    layers = list(layers)
    if not layers:
        raise ValueError("make_model: need at least one layer")
    for i, l in enumerate(layers):
        _layer(l)
        if l._model is not None:
            raise ValueError("make_model: layer %d (%r) already belongs to a model; make a new one "
                             "with make_layer" % (i, l))
    if len({id(l) for l in layers}) != len(layers):
        raise ValueError("make_model: the same layer appears twice in the list")
    for i in range(1, len(layers)):
        if layers[i - 1].outputs != layers[i].inputs:
            raise ValueError("make_model: layer %d outputs %d values but layer %d takes %d (w is %dx%d, "
                             "then %dx%d)" % (i - 1, layers[i - 1].outputs, i, layers[i].inputs,
                                             layers[i - 1].inputs, layers[i - 1].outputs,
                                             layers[i].inputs, layers[i].outputs))
    store = _LayerStore(len(layers))
    model = Model.__new__(Model)
    for i, l in enumerate(layers):
        # Move the struct (and with it the ownership of its buffers) into the model's array. Views
        # of the layer taken before now point into memory the new store owns: the old store, which
        # they hold, keeps the new one alive.
        with l._store.lock:
            store.ptr[i] = l._ptr[0]
            l._ptr[0] = _EMPTY_LAYER[0]
            l._store.successor = store
            l._store, l._ptr, l._model = store, store.ptr + i, model
    model._store = store
    model._c = ffi.new("model *", {"layers": store.ptr, "n": len(layers)})
    model.layers = tuple(layers)
    model.labels = None
    model.standardizer = None
    model.info = {}
    return model


INITS = ("homework", "glorot")


def make_mlp(sizes, activation, *, bias=False, dropout=0.0, input_dropout=0.0, norm=False, init="homework"):
    """A multi-layer perceptron: one make_layer(sizes[i], sizes[i + 1]) per pair of widths (inputs
    first, classes last), the hidden layers with ``activation`` and the last with SOFTMAX. ``bias``
    gives every layer a bias; ``input_dropout`` is the first layer's dropout, ``dropout`` every later
    layer's (the hidden units); ``norm`` gives every hidden layer layer normalisation (the output
    layer never). ``init``: "homework" (make_layer's weights, uniform in ±√(2/inputs), biases 0) or
    "glorot" (scikit-learn's MLPClassifier and Keras's: weights and biases uniform in
    ±√(f/(inputs + outputs)), f = 2 when ``activation`` is LOGISTIC, else 6), drawn from pynet's one
    generator after the homework's. The one builder the CLI, the estimator, the benchmarks and
    tryhw4.py use."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError("make_mlp: need at least two sizes (inputs, ..., classes), got %r" % (sizes,))
    if init not in INITS:
        raise ValueError("make_mlp: unknown init %r; valid: %s" % (init, ", ".join(INITS)))
    last = len(sizes) - 2
    m = make_model([make_layer(sizes[i], sizes[i + 1], ACTIVATION.SOFTMAX if i == last else activation, bias=bias,
                               dropout=input_dropout if i == 0 else dropout, norm=norm and i != last)
                    for i in range(last + 1)])
    if init == "glorot":
        factor = 2.0 if _activation(activation) == ACTIVATION.LOGISTIC else 6.0
        for l in m.layers:
            bound = math.sqrt(factor / (l.w.rows + l.w.cols))
            l.w.data[...] = random_matrix(l.w.rows, l.w.cols, bound).data
            if l.b is not None:
                l.b.data[...] = random_matrix(1, l.w.cols, bound).data
    return m


def _model(m):
    if not isinstance(m, Model):
        raise TypeError("expected a Model (from make_model), got %s" % type(m).__name__)
    return m


def model_handle(m):
    """The C side of a Model, for library code that calls the C core itself (pynet.training):
    ``(struct, lock)``, the C ``model`` struct and the lock to hold around every C call that uses it
    (threads sharing a model take turns; see pynet.layer._LayerStore). TypeError if m is not a Model."""
    m = _model(m)
    return m._c[0], m._store.lock


def forget_input(m):
    """After a C loop that fed the model its own batch buffers (freed now): the first layer keeps
    no Python input alive any more."""
    _model(m).layers[0]._saved_in = None


def forward_model(m, X):
    """Run every layer forward; returns the last layer's output (owned by it)."""
    m = _model(m)
    x = as_matrix(X, "X")
    with m._store.lock:
        out = call(lib.forward_model, m._c[0], x._m[0])
        m.layers[0]._saved_in = x
        return Matrix._wrap(out, m._store)


def backward_model(m, dL):
    """Backpropagate dL (batch × outputs, the negative loss gradient) through every layer, last to
    first, filling each layer's dw. dL itself is left unchanged."""
    m = _model(m)
    dL = as_matrix(dL, "dL")
    with m._store.lock:
        check(lib.backward_model(m._c[0], dL._m[0]))


def update_model(m, rate, momentum, decay):
    """update_layer on every layer."""
    m = _model(m)
    rate, momentum, decay = _number(rate, "rate"), _number(momentum, "momentum"), _number(decay, "decay")
    with m._store.lock:
        check(lib.update_model(m._c[0], rate, momentum, decay))


def predict_model(m, X):
    """The model's outputs for X as a new matrix, without disturbing any layer's saved state."""
    m = _model(m)
    x = as_matrix(X, "X")
    classes = m.layers[-1].outputs
    out = _adopt(call(lib.make_matrix, x.rows, classes))
    with m._store.lock:
        check(lib.predict_model(m._c[0], x._m[0], out._m[0]))
    return out


def accuracy_model(m, d):
    """The share of rows of d whose highest output is the true class."""
    m, d = _model(m), _data(d)
    with m._store.lock:
        return call(lib.accuracy_model, m._c[0], d._c[0])


def cross_entropy_loss(y, p):
    """Mean over rows of −Σ y·log p (p is clamped away from 0, so the result is finite)."""
    y, p = as_matrix(y, "y"), as_matrix(p, "p")
    return call(lib.cross_entropy_loss, y._m[0], p._m[0])


def train_model(m, d, batch, iters, rate, momentum, decay, *, progress=None, diagnostics=None):
    """The homework's training loop, run in C: ``iters`` steps of SGD on random batches of
    ``batch`` rows with learning rate ``rate`` (divided by the batch size, as the homework does),
    ``momentum`` and weight ``decay``.

    Shows a progress line (iteration, loss averaged over the last 50 steps, speed) unless
    ``progress=False`` or ``PYNET_PROGRESS=0``. Returns every step's batch loss as a numpy array.
    Raises ValueError for a rate that is not > 0, momentum outside [0, 1) or a negative decay (the
    same check and message as fit's). Raises DivergedError (a FloatingPointError) naming the
    iteration if the loss becomes NaN or infinite (the weights are then the ones that produced that
    loss, updated by the step before), or naming the iteration and the layer if an update leaves a
    weight NaN or infinite (that layer's weights then hold the non-finite values); when the batch held
    NaN or infinite input the message says so and names it.

    ``diagnostics=N`` (or True: N = 10) also records per-layer statistics of every N-th step
    (pynet.diagnostics, docs/TRAINING.md) and returns ``(losses, diagnostics)`` instead."""
    m, d = _model(m), _data(d)
    batch, iters = _index(batch, "batch", 1), _index(iters, "iters", 0)
    rate, momentum, decay = _number(rate, "rate"), _number(momentum, "momentum"), _number(decay, "decay")
    # the homework's config; fit's ranges and message, even for 0 iters
    config = make_config("train_model", batch=batch, rate=rate, momentum=momentum, decay=decay)
    every = diagnostics_every(diagnostics)
    recorder = Recorder(m, every, batch) if every else None
    losses = np.full(iters, np.nan)
    bar = Progress(iters, "train", enabled=progress_enabled(progress))

    def after_chunk(done):
        bar.update(done, loss=float(np.mean(losses[max(0, done - 50):done])))

    try:
        run_steps(model_handle(m), data_handle(d), config, losses, 0, iters, fn="train_model", recorder=recorder,
                  after_chunk=after_chunk, diverged_message=lambda bad: (
                      "train_model: the loss became %s at iteration %d of %d, so training stopped there (the weights "
                      "are the ones that produced it). The learning rate %g is probably too high for this model: "
                      "try a lower one, e.g. %g." % (losses[bad], bad, iters, rate, rate / 10)))
    finally:
        forget_input(m)   # the C loop's batch buffer is gone
        bar.close()
    return (losses, recorder.result()) if recorder else losses
