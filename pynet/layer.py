"""pynet.layer — the homework's layers, backed by C: ``Layer`` (a handle on the C ``layer`` struct
whose fields are numpy views of its memory), ``make_layer``, and the three steps of a layer,
``forward_layer``, ``backward_layer`` and ``update_layer`` (conventions in pynet.classifier)."""
import threading

import numpy as np

from ._native import _index, _number, call, check, ffi, lib
from .activations import ACTIVATION, _activation
from .matrix import Matrix, as_matrix, _owned

__all__ = ["Layer", "make_layer", "forward_layer", "backward_layer", "update_layer"]


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
    input unit in a training forward; settable), ``mask`` (the last training forward's dropout
    mask, or None), and with ``make_layer(..., norm=True)`` the layer normalisation's ``gain`` and
    ``shift`` (1 × outputs, settable), ``dgain``, ``dshift``, ``vgain``, ``vshift`` (None without it;
    ``norm`` says which)."""

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

    def _norm_field(self, name):
        return self._field(name) if self._ptr.gain.data != ffi.NULL else None

    @property
    def norm(self):
        """True if the layer normalises its pre-activation (make_layer(..., norm=True))."""
        return self._ptr.gain.data != ffi.NULL

    @property
    def gain(self):
        return self._norm_field("gain")

    @gain.setter
    def gain(self, values):
        if not self.norm:
            raise ValueError("this layer has no normalisation; make it with make_layer(..., norm=True)")
        self._set("gain", np.reshape(np.asarray(values, dtype=np.float64), (1, -1)))

    @property
    def shift(self):
        return self._norm_field("shift")

    @shift.setter
    def shift(self, values):
        if not self.norm:
            raise ValueError("this layer has no normalisation; make it with make_layer(..., norm=True)")
        self._set("shift", np.reshape(np.asarray(values, dtype=np.float64), (1, -1)))

    @property
    def dgain(self):
        return self._norm_field("dgain")

    @property
    def dshift(self):
        return self._norm_field("dshift")

    @property
    def vgain(self):
        return self._norm_field("vgain")

    @property
    def vshift(self):
        return self._norm_field("vshift")

    @property
    def mean(self):
        """Per row of the last forward (batch × 1): the pre-activation's mean (None without norm)."""
        return self._field("mean") if self.norm and self._ptr.mean.rows else None

    @property
    def rstd(self):
        """Per row of the last forward (batch × 1): 1/sqrt(var + 1e-5) (None without norm)."""
        return self._field("rstd") if self.norm and self._ptr.rstd.rows else None

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
        extra = (", bias" if self.b is not None else "") + (", norm" if self.norm else "") + (", dropout=%g" % self.dropout if self.dropout else "")
        return "Layer(%d -> %d, %s%s)" % (self.inputs, self.outputs, self.activation.name, extra)


def make_layer(input, output, activation, *, bias=False, dropout=0.0, norm=False):
    """A layer from ``input`` to ``output`` units with weights uniform in ±sqrt(2/input) and zero
    dw and v. Beyond the homework: ``bias=True`` adds a zero-initialised bias, ``dropout=p`` drops
    each input unit with probability p during training (inverted dropout), ``norm=True`` normalises
    each row of the pre-activation z = in·w (+ b) over the layer's units, (z − mean)/sqrt(var + 1e-5),
    then applies a learnt per-unit gain (starts at 1) and shift (starts at 0) before f."""
    act = _activation(activation)
    store = _LayerStore(1)
    store.ptr[0] = call(lib.make_layer, _index(input, "input", 1), _index(output, "output", 1), act)
    layer = Layer.__new__(Layer)
    layer._store, layer._ptr, layer._saved_in, layer._model = store, store.ptr, None, None
    if bias:
        check(lib.layer_add_bias(store.ptr))
    if norm:
        check(lib.layer_add_norm(store.ptr))
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
