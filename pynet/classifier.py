"""pynet.classifier — the homework's neural network (src/hw4/classifier.py), backed by C.

Same names, same arguments, same conventions as the homework:

- ``forward_layer(l, in)`` computes ``out = f(in·w)`` and saves ``in`` and ``out`` in the layer;
- ``backward_layer(l, delta)`` turns ``delta`` into ``delta ∘ f′(out)`` *in place*, stores
  ``l.dw = inᵀ·delta`` and returns ``delta·wᵀ`` for the layer below;
- ``update_layer(l, rate, momentum, decay)`` does ``v = dw − decay·w + momentum·v; w += rate·v``;
- ``train_model`` feeds ``dL = y − p`` (truth minus prediction, the negative gradient) backwards and
  calls ``update_model(m, rate/batch, momentum, decay)``.

Layers, models and data are thin handles on the C structs; their fields (``l.w``, ``l.out``, ``d.X``)
are numpy views of the C memory, not copies. Matrices a layer returns (``forward_layer``'s result,
``backward_layer``'s result) belong to the layer and are overwritten by its next forward/backward.
"""
import enum
import math
import threading
import time

import numpy as np

from ._native import DivergedError, _index, diverged, _number, call, check, ffi, lib, raise_last, numpy_view
from ._progress import Progress, progress_enabled
from .data import Data, data_handle, make_data, random_batch   # re-exported: the homework's names
from .matrix import Matrix, as_matrix, _adopt, _owned

__all__ = ["ACTIVATION", "Layer", "Model", "Data",
           "activate_matrix", "gradient_matrix", "forward_layer", "backward_layer", "update_layer",
           "make_layer", "make_model", "make_mlp", "forward_model", "backward_model", "update_model",
           "predict_model", "accuracy_model", "cross_entropy_loss", "random_batch", "make_data",
           "train_model", "DivergedError"]


def _activation_names():
    """The C core's activation names in enum order: pn_activation_name(0), (1), ... until NULL."""
    names = []
    while True:
        name = lib.pn_activation_name(len(names))
        if name == ffi.NULL:
            return names
        names.append(ffi.string(name).decode("ascii"))


class _Activation(enum.IntEnum):
    """The activation functions; the names and values are the C core's (csrc/activations.c's
    table, read through pn_activation_name), so a new activation needs no edit here."""

    def __repr__(self):
        return self.name

    # Homework code compares activations with their names (``if a == 'LOGISTIC':``): a constant equals
    # its name as well as its C value, and hashes like its name, so dicts keyed by names find it.
    def __eq__(self, other):
        if isinstance(other, str):
            return self.name == other
        return int.__eq__(self, other)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(self.name)


ACTIVATION = _Activation("ACTIVATION", [(name, i) for i, name in enumerate(_activation_names())],
                         module=__name__, qualname="ACTIVATION")
ACTIVATION.__doc__ = _Activation.__doc__
# One module-level constant per activation (LINEAR, LOGISTIC, RELU, LRELU, SOFTMAX, TANH, ...).
globals().update(ACTIVATION.__members__)
__all__ += list(ACTIVATION.__members__)
# The activations a hidden layer may use: all but SOFTMAX, the output layer's (it works on whole rows).
HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATION if a.name != "SOFTMAX")


def _activation(a):
    """An ACTIVATION from a constant, its integer value or its name ('RELU', 'relu')."""
    valid = ", ".join(x.name for x in ACTIVATION)
    if isinstance(a, str):
        try:
            return ACTIVATION[a.strip().upper()]
        except KeyError:
            raise ValueError("unknown activation %r; valid: %s" % (a, valid)) from None
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        try:
            return ACTIVATION(int(a))
        except ValueError:
            raise ValueError("unknown activation %r; valid: %s" % (a, valid)) from None
    raise ValueError("unknown activation %r; valid: %s (or their names as strings)" % (a, valid))


def activate_matrix(m, a):
    """Apply activation a to every element of m, in place (softmax: to every row)."""
    a = _activation(a)
    m = as_matrix(m, "m", writable=True)
    check(lib.activate_matrix(m._m[0], a))


def gradient_matrix(m, a, d):
    """Multiply d, in place, by the derivative of activation a taken at the outputs m."""
    a = _activation(a)
    m, d = as_matrix(m, "m"), as_matrix(d, "d", writable=True)
    check(lib.gradient_matrix(m._m[0], a, d._m[0]))


# ---- layers ------------------------------------------------------------------------------------

class _LayerStore:
    """C memory for n layer structs; freeing it frees every layer's buffers.

    ``lock`` serialises the C calls that use these layers: cffi releases the GIL during a call, and
    two threads running one model at once would grow and read the same buffers. When make_model
    moves a layer into a model's store, the old store keeps the new one alive as ``successor``, so
    views taken from the layer before the move stay valid."""

    __slots__ = ("ptr", "n", "lock", "successor", "__weakref__")

    def __init__(self, n):
        ptr = call(lib.alloc_layers, n)
        self.ptr = ffi.gc(ptr, lambda p, n=n: lib.free_layers(p, n))
        self.n = n
        self.lock = threading.RLock()
        self.successor = None


class Layer:
    """One fully connected layer: ``out = f(in·w)``. Fields are live views of the C struct:
    ``inp`` (the saved input; ``in`` is a Python keyword), ``w``, ``dw``, ``v``, ``out``,
    ``activation``. Assigning ``l.w = array`` copies the values into the layer's weights.

    Beyond the homework: ``b``, ``db``, ``vb`` (the bias, its delta and momentum; None when the layer
    has no bias, see ``make_layer(..., bias=True)``), ``dropout`` (the probability of dropping each
    input unit in a training forward; settable) and ``mask`` (the last training forward's dropout
    mask, or None)."""

    __slots__ = ("_store", "_ptr", "_saved_in", "_model")

    def _field(self, name):
        return Matrix._wrap(getattr(self._ptr, name), self._store)

    @property
    def inp(self):
        """The input saved by the last forward pass (None if there is none). The view keeps that
        input alive even after a later forward pass moves on to another."""
        m = getattr(self._ptr, "in")
        if m.data == ffi.NULL and m.rows == 0 and m.cols == 0:
            return None
        return Matrix._wrap(m, (self._store, self._saved_in))

    @inp.setter
    def inp(self, m):
        """``l.inp = x`` (the homework's ``l.in = in``): the layer saves x itself, not a copy, and
        keeps it alive until the next forward or assignment; the C struct points at x's memory."""
        if m is None:
            with self._store.lock:
                setattr(self._ptr, "in", {"rows": 0, "cols": 0, "data": ffi.NULL})
                self._saved_in = None
            return
        x = as_matrix(m, "layer.inp")
        if x.cols != self._ptr.w.rows:
            raise ValueError("layer.inp: the layer takes %d inputs; cannot save a %dx%d matrix"
                             % (self._ptr.w.rows, x.rows, x.cols))
        with self._store.lock:
            setattr(self._ptr, "in", x._m[0])
            self._saved_in = x

    @property
    def w(self):
        return self._field("w")

    @property
    def dw(self):
        return self._field("dw")

    @property
    def v(self):
        return self._field("v")

    @property
    def out(self):
        return self._field("out")

    def _set(self, name, values):
        target = self._field(name)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != target.shape:
            raise ValueError("layer.%s is %dx%d; cannot assign an array of shape %s"
                             % (name, target.rows, target.cols, values.shape))
        target.data[...] = values

    @w.setter
    def w(self, values):
        self._set("w", values)

    @dw.setter
    def dw(self, values):
        self._set("dw", values)

    @v.setter
    def v(self, values):
        self._set("v", values)

    @out.setter
    def out(self, values):
        """``l.out = out``: the values are copied into the layer's own output buffer (the C struct
        keeps owning it), which grows when the batch size changes; out must be batch × outputs."""
        values = np.asarray(values.data if isinstance(values, Matrix) else values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self._ptr.w.cols:
            raise ValueError("layer.out: the layer has %d outputs; cannot assign an array of shape %s"
                             % (self._ptr.w.cols, values.shape))
        with self._store.lock:
            if values.shape[0] != self._ptr.out.rows:
                # Let the C layer grow its output buffer the way a forward pass does, then put the
                # saved input and mask back as they were.
                m = getattr(self._ptr, "in")
                saved_in, dropout = {"rows": m.rows, "cols": m.cols, "data": m.data}, self._ptr.dropout
                self._ptr.dropout = 0.0
                try:
                    zeros = _owned(values.shape[0], self._ptr.w.rows)
                    call(lib.forward_layer, self._ptr, zeros._m[0])
                finally:
                    self._ptr.dropout = dropout
                    setattr(self._ptr, "in", saved_in)
            self._field("out").data[...] = values

    @property
    def b(self):
        return self._field("b") if self._ptr.b.data != ffi.NULL else None

    @b.setter
    def b(self, values):
        if self._ptr.b.data == ffi.NULL:
            raise ValueError("this layer has no bias; make it with make_layer(..., bias=True)")
        self._set("b", np.reshape(np.asarray(values, dtype=np.float64), (1, -1)))

    @property
    def db(self):
        return self._field("db") if self._ptr.b.data != ffi.NULL else None

    @property
    def vb(self):
        return self._field("vb") if self._ptr.b.data != ffi.NULL else None

    @property
    def dropout(self):
        return self._ptr.dropout

    @dropout.setter
    def dropout(self, p):
        p = _number(p, "dropout")
        if not 0 <= p < 1:
            raise ValueError("dropout must be in [0, 1), got %g" % p)
        self._ptr.dropout = p

    @property
    def mask(self):
        return self._field("mask") if self._ptr.mask.rows else None

    @property
    def activation(self):
        return ACTIVATION(self._ptr.activation)

    @property
    def inputs(self):
        return self._ptr.w.rows

    @property
    def outputs(self):
        return self._ptr.w.cols

    def __repr__(self):
        extra = (", bias" if self.b is not None else "") + (", dropout=%g" % self.dropout if self.dropout else "")
        return "Layer(%d -> %d, %s%s)" % (self.inputs, self.outputs, self.activation.name, extra)


def make_layer(input, output, activation, *, bias=False, dropout=0.0):
    """A layer from ``input`` to ``output`` units with weights uniform in ±sqrt(2/input) and zero
    dw and v. Beyond the homework: ``bias=True`` adds a zero-initialised bias, ``dropout=p`` drops
    each input unit with probability p during training (inverted dropout)."""
    act = _activation(activation)
    store = _LayerStore(1)
    store.ptr[0] = call(lib.make_layer, _index(input, "input", 1), _index(output, "output", 1), act)
    layer = Layer.__new__(Layer)
    layer._store, layer._ptr, layer._saved_in, layer._model = store, store.ptr, None, None
    if bias:
        check(lib.layer_add_bias(store.ptr))
    if dropout:
        layer.dropout = dropout
    return layer


def _layer(l):
    if not isinstance(l, Layer):
        raise TypeError("expected a Layer (from make_layer), got %s" % type(l).__name__)
    return l


def forward_layer(l, in_):
    """Run the layer forward on ``in_`` (batch × inputs): saves it, computes and saves
    ``out = f(in_·w)``, and returns ``out`` (owned by the layer; overwritten by the next forward)."""
    l = _layer(l)
    x = as_matrix(in_, "in")
    with l._store.lock:
        out = call(lib.forward_layer, l._ptr, x._m[0])
        l._saved_in = x   # the C layer saved a pointer into x's memory: keep it alive
        return Matrix._wrap(out, l._store)


def backward_layer(l, delta):
    """Backpropagate through the layer: ``delta`` (dL/d out, batch × outputs) becomes
    dL/d(in·w) in place, ``l.dw`` gets ``inᵀ·delta``, and ``delta·wᵀ`` (dL/d in) is returned
    (owned by the layer; overwritten by its next backward)."""
    l = _layer(l)
    d = as_matrix(delta, "delta", writable=True)
    with l._store.lock:
        dx = call(lib.backward_layer, l._ptr, d._m[0])
        return Matrix._wrap(dx, l._store)


def update_layer(l, rate, momentum, decay):
    """SGD with momentum and weight decay: ``v = dw − decay·w + momentum·v; w += rate·v``."""
    l = _layer(l)
    rate, momentum, decay = _number(rate, "rate"), _number(momentum, "momentum"), _number(decay, "decay")
    with l._store.lock:
        check(lib.update_layer(l._ptr, rate, momentum, decay))


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


def make_mlp(sizes, activation, *, bias=False, dropout=0.0, input_dropout=0.0):
    """A multi-layer perceptron: one make_layer(sizes[i], sizes[i + 1]) per pair of widths (inputs
    first, classes last), the hidden layers with ``activation`` and the last with SOFTMAX. ``bias``
    gives every layer a bias; ``input_dropout`` is the first layer's dropout, ``dropout`` every later
    layer's (the hidden units). The one builder the CLI, the benchmarks and tryhw4.py use."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError("make_mlp: need at least two sizes (inputs, ..., classes), got %r" % (sizes,))
    last = len(sizes) - 2
    return make_model([make_layer(sizes[i], sizes[i + 1], SOFTMAX if i == last else activation, bias=bias,
                                  dropout=input_dropout if i == 0 else dropout) for i in range(last + 1)])


def _model(m):
    if not isinstance(m, Model):
        raise TypeError("expected a Model (from make_model), got %s" % type(m).__name__)
    return m


def model_handle(m):
    """The C side of a Model, for library code that calls the C core itself (pynet.training):
    ``(struct, lock)``, the C ``model`` struct and the lock to hold around every C call that uses it
    (threads sharing a model take turns; see _LayerStore). TypeError if m is not a Model."""
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
    m, cd = _model(m), data_handle(d)
    with m._store.lock:
        return call(lib.accuracy_model, m._c[0], cd)


def cross_entropy_loss(y, p):
    """Mean over rows of −Σ y·log p (p is clamped away from 0, so the result is finite)."""
    y, p = as_matrix(y, "y"), as_matrix(p, "p")
    return call(lib.cross_entropy_loss, y._m[0], p._m[0])


def train_model(m, d, batch, iters, rate, momentum, decay, *, progress=None):
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
    NaN or infinite input the message says so and names it."""
    m, cd = _model(m), data_handle(d)
    batch, iters = _index(batch, "batch", 1), _index(iters, "iters", 0)
    rate, momentum, decay = _number(rate, "rate"), _number(momentum, "momentum"), _number(decay, "decay")
    config = lib.default_train_config()
    config.batch, config.rate, config.momentum, config.decay = batch, rate, momentum, decay
    config = ffi.new("train_config *", config)
    check(lib.pn_check_config(b"train_model", config))   # fit's ranges and message, even for 0 iters
    cm = m._c[0]
    losses = np.full(iters, np.nan)
    losses_ptr = ffi.cast("double *", ffi.from_buffer(losses)) if iters else ffi.NULL
    bar = Progress(iters, "train", enabled=progress_enabled(progress))
    done, chunk = 0, 1
    try:
        while done < iters:
            # Run in chunks of about a tenth of a second: the progress line stays fresh and Ctrl-C is
            # honoured between chunks. Chunking changes nothing else: the C generator carries on.
            n = min(chunk, iters - done)
            t0 = time.perf_counter()
            with m._store.lock:
                # train_model_losses' loop with the homework's config, numbered from `done` so that an
                # error names the run's iteration, not the chunk's
                status = lib.train_steps(cm, cd, config, done, n, ffi.NULL, losses_ptr + done, ffi.NULL)
            elapsed = time.perf_counter() - t0
            if status == lib.PN_ERR_NONFINITE:
                raise diverged(losses, done, n, "train_model", lambda bad: (
                    "train_model: the loss became %s at iteration %d of %d, so training stopped there "
                    "(the weights are the ones that produced it). The learning rate %g is probably too "
                    "high for this model: try a lower one, e.g. %g." % (losses[bad], bad, iters, rate, rate / 10)))
            if status:
                raise_last(status)
            done += n
            bar.update(done, loss=float(np.mean(losses[max(0, done - 50):done])))
            chunk = max(1, min(100000, int(n * 0.1 / max(elapsed, 1e-6))))
    finally:
        m.layers[0]._saved_in = None   # the C loop's batch buffer is gone
        bar.close()
    return losses
