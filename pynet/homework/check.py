"""``python -m pynet homework check [FILE]``: check a student's five functions.

Each check runs in its own forked process with a timeout, so code that raises, never returns, prints
a lot or changes shared state fails only that check. Expected values come from an independent NumPy
implementation (and the lecture's printed numbers) or from pynet's C reference; the parent process
never runs pynet's C kernels, so forking is safe. A hint is given only when the wrong result equals
what a known mistake computes.
"""
import importlib.util
import io
import json
import multiprocessing
import os
import sys
import time
import traceback

import numpy as np

FUNCTIONS = ("activate_matrix", "gradient_matrix", "forward_layer", "backward_layer", "update_layer")
HOMEWORK = ("LINEAR", "LOGISTIC", "RELU", "LRELU", "SOFTMAX")
TIMEOUT = 2.0          # seconds per check
BUDGET = 9.0           # seconds for the whole run
PARALLEL = 8

X1 = [[3.0, 2.0, 4.0]]
W1 = [[1, 0.5], [0.1, 1], [-2.3, -0.5]]
W2 = [[0.7, -2.1], [0.1, -0.2]]
TRUTH = [[1.0, 0.0]]


class Failure(Exception):
    """A check failed: what it was given, what it expected, what it got, and maybe a hint."""

    def __init__(self, message, inp=None, expected=None, got=None, hint=None):
        super().__init__(message)
        self.message, self.inp, self.expected, self.got, self.hint = message, inp, expected, got, hint


# ---- the independent NumPy reference ---------------------------------------------------------

def np_activate(x, a):
    x = np.array(x, dtype=np.float64)
    if a == "LOGISTIC":
        return 1 / (1 + np.exp(-x))
    if a == "RELU":
        return np.where(x > 0, x, 0.0)
    if a == "LRELU":
        return np.where(x > 0, x, 0.1 * x)
    if a == "SOFTMAX":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return x


def np_gradient(y, a, d):
    y, d = np.asarray(y, dtype=np.float64), np.array(d, dtype=np.float64)
    if a == "LOGISTIC":
        return d * y * (1 - y)
    if a == "RELU":
        return np.where(y > 0, d, 0.0)
    if a == "LRELU":
        return np.where(y > 0, d, 0.1 * d)
    return d


def close(a, b, tol=1e-9):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=tol, atol=tol, equal_nan=False))


def fmt(x):
    if x is None:
        return "None"
    a = np.asarray(x)
    if a.ndim == 0:
        return repr(a.item())
    with np.printoptions(precision=6, suppress=True, threshold=40, edgeitems=3, linewidth=100):
        return np.array2string(a, separator=", ").replace("\n", "")


# ---- helpers used inside the check processes -------------------------------------------------

def _values(x, what):
    """x (a Matrix, an array or None) as a float array, or a Failure naming what it should be."""
    if x is None:
        raise Failure("%s is None" % what)
    try:
        return np.array(getattr(x, "data", x), dtype=np.float64)
    except (TypeError, ValueError):
        raise Failure("%s is a %s, not a matrix" % (what, type(x).__name__)) from None


def _layer(w, a):
    import pynet
    l = pynet.make_layer(len(w), len(w[0]), a)
    l.w = w
    return l


def _rng(seed):
    return np.random.default_rng(seed)


def _shapes():
    return [(1, 1), (1, 3), (2, 2), (3, 4), (5, 3)]


def _inputs(rng, rows, cols, a):
    x = rng.uniform(-3, 3, size=(rows, cols)).round(3)
    if x.size > 2:
        x.flat[1] = 0.0          # the kink of relu / lrelu
    return x


def _c_activate(x, a):
    import pynet
    m = pynet.Matrix(x)
    pynet.activate_matrix(m, a)
    return m.data.copy()


def _c_gradient(y, a, d):
    import pynet
    g = pynet.Matrix(d)
    pynet.gradient_matrix(pynet.Matrix(y), a, g)
    return g.data.copy()


def _with_reference(mod, *names):
    """Replace the student's functions `names` with pynet's, so one function's bug shows up in its
    own check only (the student's backward_layer calls the C gradient_matrix, and so on)."""
    import pynet
    for n in names:
        setattr(mod, n, getattr(pynet, n))


# ---- activate_matrix -------------------------------------------------------------------------

def activate_hint(x, a, got):
    x = np.asarray(x, dtype=np.float64)
    if a == "SOFTMAX":
        with np.errstate(all="ignore"):
            if got.shape == x.shape and close(got, np.exp(x)):
                return "softmax not normalised: divide each e^x by the sum of e^x over its row"
            overflow = np.abs(x).max() > 700 and not np.all(np.isfinite(got))   # e^x overflows past ~709
            if got.shape == x.shape and overflow:
                return "softmax not shifted by the row max: subtract each row's max before exp"
            if got.shape == x.shape and x.shape[0] > 1 and close(got, np.exp(x) / np.exp(x).sum()):
                return "softmax not normalised per row: divide by the sum of e^x over the row, not the matrix"
    if a == "LRELU" and got.shape == x.shape:
        neg = x < 0
        if neg.any() and close(got[~neg], x[~neg]):
            ratio = got[neg] / x[neg]
            if np.allclose(ratio, ratio.flat[0]):
                return "lrelu slope: negative x are scaled by %g; the homework's slope is 0.1" % ratio.flat[0]
    return None


def check_activate_worked(mod):
    import pynet
    o1 = pynet.Matrix(np.array(X1) @ np.array(W1))
    inp = o1.data.copy()
    mod.activate_matrix(o1, "RELU")
    got = _values(o1, "the matrix after activate_matrix")
    if not (close(got, np_activate(inp, "RELU")) and close(got, [[0, 1.5]])):
        raise Failure("relu of x·w1 for the lecture's x", inp, [[0, 1.5]], got, activate_hint(inp, "RELU", got))
    o2 = pynet.Matrix(np.array([[0, 1.5]]) @ np.array(W2))
    inp = o2.data.copy()
    mod.activate_matrix(o2, "SOFTMAX")
    got = _values(o2, "the matrix after activate_matrix")
    exp = np_activate(inp, "SOFTMAX")
    if not (close(got, exp) and np.allclose(got, [[0.61, 0.39]], atol=0.005)):
        raise Failure("softmax of o1·w2 (the lecture's o2 ≈ [0.61, 0.39])", inp, exp, got,
                      activate_hint(inp, "SOFTMAX", got))


def make_activate_random(a):
    def check(mod):
        import pynet
        rng = _rng(11)
        for rows, cols in _shapes():
            x = _inputs(rng, rows, cols, a)
            exp = _c_activate(x, a)
            m = pynet.Matrix(x)
            r = mod.activate_matrix(m, getattr(pynet, a))
            got = _values(m, "the matrix after activate_matrix")
            if not close(got, exp):
                raise Failure("%s on a %dx%d matrix (in place)" % (a, rows, cols), x, exp, got,
                              activate_hint(x, a, got))
    check.__name__ = "%s, random shapes, vs pynet's C" % a
    return check


def check_softmax_large(mod):
    import pynet
    for x in ([[1000.0, 1001.0, 1002.0]], [[-1000.0, 0.0, 1000.0], [5.0, 5.0, 5.0]]):
        x = np.array(x)
        exp = np_activate(x, "SOFTMAX")
        m = pynet.Matrix(x)
        with np.errstate(all="ignore"):
            try:
                mod.activate_matrix(m, "SOFTMAX")
            except OverflowError:
                raise Failure("softmax of large logits raised OverflowError", x, exp, None,
                              "softmax not shifted by the row max: subtract each row's max before exp") from None
        got = _values(m, "the matrix after activate_matrix")
        if not close(got, exp):
            raise Failure("softmax of large logits (must not overflow)", x, exp, got, activate_hint(x, "SOFTMAX", got))


# ---- gradient_matrix -------------------------------------------------------------------------

def gradient_hint(y, a, d, got):
    y, d = np.asarray(y), np.asarray(d)
    if got.shape != d.shape:
        return None
    exp = np_gradient(y, a, d)
    if a == "LOGISTIC":
        s = 1 / (1 + np.exp(-y))
        if close(got, d * s * (1 - s)):
            return "logistic gradient taken from x: m holds the outputs y, so the derivative is y·(1 − y)"
    if a in ("RELU", "LRELU"):
        bad = ~np.isclose(got, exp, rtol=1e-9, atol=1e-9)
        if bad.any() and np.all(y[bad] <= 0):
            neg = bad & (y < 0) & (d != 0)
            if a == "LRELU" and neg.any():
                ratio = got[neg] / d[neg]
                if np.allclose(ratio, ratio[0]):
                    return "lrelu slope: the gradient for y < 0 is scaled by %g; it must be 0.1" % ratio[0]
            return ("%s gradient at or below 0: f'(y) is 1 only for y > 0 (y = 0 included in 'below'), "
                    "%s otherwise" % (a.lower(), "0" if a == "RELU" else "0.1"))
    return None


def make_gradient_random(a):
    def check(mod):
        import pynet
        rng = _rng(23)
        for rows, cols in _shapes():
            y = _c_activate(_inputs(rng, rows, cols, a), a)
            d = rng.uniform(-2, 2, size=(rows, cols)).round(3)
            exp = _c_gradient(y, a, d)
            if not close(exp, np_gradient(y, a, d)):
                raise Failure("internal: pynet's C gradient disagrees with the NumPy reference", y, exp, None)
            ym, dm = pynet.Matrix(y), pynet.Matrix(d)
            mod.gradient_matrix(ym, getattr(pynet, a), dm)
            got = _values(dm, "d after gradient_matrix")
            if not close(ym.data, y):
                raise Failure("gradient_matrix changed m (it must only change d)", y, y, ym.data,
                              "mutating the input: gradient_matrix multiplies d in place and leaves m alone")
            if not close(got, exp):
                raise Failure("%s gradient on a %dx%d matrix, m = outputs y" % (a, rows, cols),
                              {"m": y, "d": d}, exp, got, gradient_hint(y, a, d, got))
    check.__name__ = "%s, random shapes, vs pynet's C" % a
    return check


# ---- forward_layer ---------------------------------------------------------------------------

def _forward_case(mod, w, a, x):
    import pynet
    l = _layer(w, a)
    xm = pynet.Matrix(x)
    out = mod.forward_layer(l, xm)
    exp = np_activate(np.asarray(x) @ np.asarray(w), a)
    got = _values(out, "forward_layer's result")
    if not close(xm.data, x):
        raise Failure("forward_layer changed its input", x, x, xm.data,
                      "mutating the input: compute out = f(in·w) in a new matrix, leave in as it is")
    if not close(got, exp):
        hint = None
        if got.shape == exp.shape and close(got, np.asarray(x) @ np.asarray(w)) and a != "LINEAR":
            hint = "the activation was not applied: out = f(in·w), activate_matrix(out, l.activation)"
        raise Failure("%s layer %dx%d on a %dx%d input" % (a, len(w), len(w[0]), len(x), len(x[0])),
                      {"in": x, "w": w}, exp, got, hint)
    return l, xm, exp


def check_forward_worked(mod):
    _with_reference(mod, "activate_matrix")
    o1 = _forward_case(mod, W1, "RELU", X1)[2]
    if not close(o1, [[0, 1.5]]):
        raise Failure("internal: the lecture's o1", X1, [[0, 1.5]], o1)
    _forward_case(mod, W2, "SOFTMAX", [[0.0, 1.5]])


def check_forward_random(mod):
    _with_reference(mod, "activate_matrix")
    rng = _rng(37)
    for batch, n_in, n_out in ((1, 1, 1), (2, 3, 2), (4, 5, 3)):
        for a in HOMEWORK:
            w = rng.uniform(-1, 1, size=(n_in, n_out)).round(3)
            x = rng.uniform(-2, 2, size=(batch, n_in)).round(3)
            _forward_case(mod, w.tolist(), a, x.tolist())


def check_forward_state(mod):
    _with_reference(mod, "activate_matrix")
    x = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    l, xm, exp = _forward_case(mod, W1, "LOGISTIC", x)
    if l.inp is None or not close(_values(l.inp, "l.inp"), x):
        raise Failure("l.inp after forward_layer is not the input", x, x, None if l.inp is None else l.inp.data,
                      "the layer must save its input: l.inp = inp")
    if not close(_values(l.out, "l.out"), exp):
        raise Failure("l.out after forward_layer is not the output", x, exp, l.out.data,
                      "the layer must save its output: l.out = out")


# ---- backward_layer --------------------------------------------------------------------------

def _backward_case(mod, w, a, x, delta, what):
    """Run the C forward (so only backward_layer is the student's), then the student's backward."""
    import pynet
    _with_reference(mod, "activate_matrix", "gradient_matrix")
    l = _layer(w, a)
    x, w, delta = (np.asarray(v, dtype=np.float64) for v in (x, w, delta))
    xm = pynet.Matrix(x)
    y = pynet.forward_layer(l, xm).data.copy()
    g = np_gradient(y, a, delta)
    exp_dw, exp_dx = x.T @ g, g @ w.T
    dm = pynet.Matrix(delta)
    dx = mod.backward_layer(l, dm)
    got_dw = _values(l.dw, "l.dw")
    got_dx = _values(dx, "backward_layer's result")
    given = {"in": x, "w": w, "out": y, "delta": delta}
    if not close(got_dw, exp_dw):
        hint = None
        if not np.any(got_dw) and np.any(exp_dw):
            hint = "dw not stored: backward_layer must set l.dw = inᵀ·delta"
        elif close(got_dw, -exp_dw):
            hint = "delta's sign: dw = inᵀ·delta with delta as given (no minus)"
        elif close(got_dw, x.T @ delta) and a != "LINEAR":
            hint = "delta was not multiplied by f'(out) first (gradient_matrix(l.out, l.activation, delta))"
        elif g.shape[0] == x.shape[1] and close(got_dw, (x @ g) if x.shape[1] == g.shape[0] else None):
            hint = "a missing transpose: dw = inᵀ·delta"
        raise Failure("%s: l.dw" % what, given, exp_dw, got_dw, hint)
    if not close(got_dx, exp_dx):
        hint = None
        if close(got_dx, -exp_dx):
            hint = "delta's sign: return delta·wᵀ with delta as given (no minus)"
        elif got_dx.shape == g.shape and (close(got_dx, g) or close(got_dx, delta)):
            hint = "returning delta instead of dx: return delta·wᵀ, the delta for the layer below"
        elif w.shape[0] == w.shape[1] and close(got_dx, g @ w):
            hint = "a missing transpose: dx = delta·wᵀ"
        elif close(got_dx, delta @ w.T) and a != "LINEAR":
            hint = "delta was not multiplied by f'(out) before computing dx"
        raise Failure("%s: the returned dx" % what, given, exp_dx, got_dx, hint)
    return got_dw, got_dx


def check_backward_worked(mod):
    import pynet
    # layer 2: the lecture's delta handed down is [1.092, 0.117]; its dw2 ≈ [[0, 0], [0.585, -0.585]]
    o1 = np.array([[0.0, 1.5]])
    p = np_activate(o1 @ np.array(W2), "SOFTMAX")
    dw2, dx2 = _backward_case(mod, W2, "SOFTMAX", o1, np.array(TRUTH) - p, "layer 2 of the worked example")
    if not np.allclose(dx2, [[1.092, 0.117]], atol=0.002) or not np.allclose(dw2, [[0, 0], [0.585, -0.585]], atol=0.0015):
        raise Failure("layer 2 of the worked example: the lecture's numbers", None,
                      {"dx": [[1.092, 0.117]], "dw2": [[0, 0], [0.585, -0.585]]}, {"dx": dx2, "dw2": dw2})
    dw1, _ = _backward_case(mod, W1, "RELU", X1, dx2, "layer 1 of the worked example")
    if not np.allclose(dw1, [[0, 0.351], [0, 0.234], [0, 0.468]], atol=0.0015):
        raise Failure("layer 1 of the worked example: the lecture's dw1", None,
                      [[0, 0.351], [0, 0.234], [0, 0.468]], dw1)


def check_backward_random(mod):
    rng = _rng(41)
    for batch, n_in, n_out in ((1, 1, 1), (2, 2, 2), (3, 4, 2), (5, 3, 4)):
        for a in HOMEWORK:
            w = rng.uniform(-1, 1, size=(n_in, n_out)).round(3)
            x = rng.uniform(-2, 2, size=(batch, n_in)).round(3)
            d = rng.uniform(-1, 1, size=(batch, n_out)).round(3)
            _backward_case(mod, w, a, x, d, "%s layer %dx%d, batch %d" % (a, n_in, n_out, batch))


def check_backward_numeric(mod):
    """Central differences of L = Σ G∘f(x·w) (softmax: cross-entropy) against dw and dx."""
    import pynet
    _with_reference(mod, "activate_matrix", "gradient_matrix")
    rng = _rng(53)
    h = 1e-6
    for a in HOMEWORK:
        x = rng.uniform(-2, 2, size=(3, 4))
        w = rng.uniform(-1, 1, size=(4, 3))
        if a == "SOFTMAX":
            y = np.eye(3)[[0, 2, 1]]
            loss = lambda x, w: -np.sum(y * np.log(np_activate(x @ w, "SOFTMAX")))
        else:
            G = rng.uniform(-1, 1, size=(3, 3))
            loss = lambda x, w: np.sum(G * np_activate(x @ w, a))
        num_w = np.zeros_like(w)
        for idx in np.ndindex(*w.shape):
            wp, wm = w.copy(), w.copy()
            wp[idx] += h
            wm[idx] -= h
            num_w[idx] = (loss(x, wp) - loss(x, wm)) / (2 * h)
        num_x = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            xp, xm_ = x.copy(), x.copy()
            xp[idx] += h
            xm_[idx] -= h
            num_x[idx] = (loss(xp, w) - loss(xm_, w)) / (2 * h)
        l = _layer(w.tolist(), a)
        out = pynet.forward_layer(l, pynet.Matrix(x)).data.copy()
        # the homework passes the NEGATIVE gradient for softmax + cross-entropy (truth − p);
        # for the others we pass dL/d out itself, so dw = dL/dw
        delta = (y - out) if a == "SOFTMAX" else G
        sign = -1 if a == "SOFTMAX" else 1
        dx = mod.backward_layer(l, pynet.Matrix(delta))
        got_w, got_x = sign * _values(l.dw, "l.dw"), sign * _values(dx, "backward_layer's result")
        if not close(got_w, num_w, 1e-5) or not close(got_x, num_x, 1e-5):
            hint = None
            if not np.any(got_w) and np.any(num_w):
                hint = "dw not stored: backward_layer must set l.dw = inᵀ·delta"
            elif close(got_w, -num_w, 1e-5) or close(got_x, -num_x, 1e-5):
                hint = "delta's sign: dw = inᵀ·delta and dx = delta·wᵀ with delta as given (no minus)"
            raise Failure("%s: central differences (h = 1e-6) disagree with dw/dx" % a,
                          {"in": x, "w": w}, {"dw": num_w * sign, "dx": num_x * sign},
                          {"dw": got_w * sign, "dx": got_x * sign}, hint)


# ---- update_layer ----------------------------------------------------------------------------

def _np_updates(w, dw, v, rate, momentum, decay, steps, variant=None):
    w, v = w.copy(), v.copy()
    for _ in range(steps):
        if variant == "decay_sign":
            v = dw + decay * w + momentum * v
        elif variant == "momentum_sign":
            v = dw - decay * w - momentum * v
        elif variant == "w_first":
            w = w + rate * v
            v = dw - decay * w + momentum * v
            continue
        elif variant == "decay_after":
            v = dw + momentum * v
            w = w + rate * v - decay * w
            continue
        elif variant == "v_not_kept":
            w = w + rate * (dw - decay * w + momentum * v)
            continue
        elif variant == "minus":
            v = dw - decay * w + momentum * v
            w = w - rate * v
            continue
        else:
            v = dw - decay * w + momentum * v
        w = w + rate * v
    return w, v


UPDATE_HINTS = {
    "decay_sign": "decay's sign: v = dw − decay·w + momentum·v (decay pulls w towards 0)",
    "momentum_sign": "momentum's sign: v = dw − decay·w + momentum·v",
    "w_first": "momentum/decay in the wrong order: compute the new v first, then w = w + rate·v",
    "decay_after": "decay in the wrong place: it goes into v (v = dw − decay·w + momentum·v), before w is updated",
    "v_not_kept": "v not updated: store the new v in l.v, the next step's momentum needs it",
    "minus": "the update's sign: dw is the negative gradient here, so w = w + rate·v",
}


def _update_case(mod, w, dw, v, rate, momentum, decay, steps, what):
    import pynet
    l = pynet.make_layer(w.shape[0], w.shape[1], "LINEAR")
    l.w, l.dw, l.v = w, dw, v
    for _ in range(steps):
        mod.update_layer(l, rate, momentum, decay)
    got_w, got_v = _values(l.w, "l.w"), _values(l.v, "l.v")
    exp_w, exp_v = _np_updates(w, dw, v, rate, momentum, decay, steps)
    given = {"w": w, "dw": dw, "v": v, "rate": rate, "momentum": momentum, "decay": decay, "steps": steps}
    if not close(got_w, exp_w) or (not close(got_v, exp_v) and momentum):
        hint = None
        for variant, text in UPDATE_HINTS.items():
            if close(got_w, _np_updates(w, dw, v, rate, momentum, decay, steps, variant)[0]):
                hint = text
                break
        if hint is None and close(got_w, exp_w):
            hint = UPDATE_HINTS["v_not_kept"] if close(got_v, v) else None
        if not close(got_w, exp_w):
            raise Failure("%s: l.w" % what, given, exp_w, got_w, hint)
        raise Failure("%s: l.v" % what, given, exp_v, got_v, hint)
    return got_w


def check_update_worked(mod):
    x = np.array(X1)
    o1 = np.array([[0.0, 1.5]])
    p = np_activate(o1 @ np.array(W2), "SOFTMAX")
    d2 = np.array(TRUTH) - p
    dw2 = o1.T @ d2
    dw1 = x.T @ np_gradient(o1, "RELU", d2 @ np.array(W2).T)
    zero1, zero2 = np.zeros((3, 2)), np.zeros((2, 2))
    w1 = _update_case(mod, np.array(W1, float), dw1, zero1, 0.1, 0.0, 0.0, 1, "layer 1, rate 0.1")
    w2 = _update_case(mod, np.array(W2, float), dw2, zero2, 0.1, 0.0, 0.0, 1, "layer 2, rate 0.1")
    if not np.allclose(w1, [[1, 0.5351], [0.1, 1.0234], [-2.3, -0.4532]], atol=0.00015) or \
            not np.allclose(w2, [[0.7, -2.1], [0.1585, -0.2585]], atol=0.00015):
        raise Failure("the lecture's weights after one update", None,
                      {"w1": [[1, 0.5351], [0.1, 1.0234], [-2.3, -0.4532]], "w2": [[0.7, -2.1], [0.1585, -0.2585]]},
                      {"w1": w1, "w2": w2})


def check_update_momentum(mod):
    rng = _rng(61)
    for shape in ((1, 1), (2, 3), (4, 2)):
        w = rng.uniform(-1, 1, size=shape).round(3)
        dw = rng.uniform(-1, 1, size=shape).round(3)
        v = rng.uniform(-0.5, 0.5, size=shape).round(3)
        _update_case(mod, w, dw, v, 0.1, 0.9, 0.01, 3, "3 steps, rate 0.1, momentum 0.9, decay 0.01, %dx%d" % shape)


def check_update_state(mod):
    rng = _rng(67)
    w, dw = rng.uniform(-1, 1, size=(2, 2)).round(3), rng.uniform(-1, 1, size=(2, 2)).round(3)
    import pynet
    l = pynet.make_layer(2, 2, "LINEAR")
    l.w, l.dw = w, dw
    mod.update_layer(l, 0.5, 0.0, 0.0)
    if not close(_values(l.v, "l.v"), dw):
        raise Failure("l.v after one step from v = 0 (momentum 0, decay 0) must be dw", {"w": w, "dw": dw},
                      dw, l.v.data, UPDATE_HINTS["v_not_kept"])
    if not close(_values(l.dw, "l.dw"), dw):
        raise Failure("update_layer changed l.dw", {"dw": dw}, dw, l.dw.data,
                      "mutating the input: update_layer reads dw, it does not change it")


CHECKS = [
    ("activate_matrix", "worked example (o1, o2)", check_activate_worked),
    *[("activate_matrix", "%s, random shapes vs pynet's C" % a, make_activate_random(a)) for a in HOMEWORK],
    ("activate_matrix", "softmax on large logits", check_softmax_large),
    *[("gradient_matrix", "%s, random shapes vs pynet's C" % a, make_gradient_random(a)) for a in HOMEWORK],
    ("forward_layer", "worked example (o1 = [0, 1.5], o2)", check_forward_worked),
    ("forward_layer", "random shapes, every activation", check_forward_random),
    ("forward_layer", "state: inp and out saved", check_forward_state),
    ("backward_layer", "worked example (delta, dw2, dw1)", check_backward_worked),
    ("backward_layer", "random shapes, every activation", check_backward_random),
    ("backward_layer", "central-difference gradient check", check_backward_numeric),
    ("update_layer", "worked example (weights after one update, rate 0.1)", check_update_worked),
    ("update_layer", "3 steps with momentum and decay", check_update_momentum),
    ("update_layer", "state: v updated, dw kept", check_update_state),
]


# ---- running the checks ----------------------------------------------------------------------

class _CappedOutput(io.TextIOBase):
    """stdout/stderr for student code: keeps the first few thousand characters, counts the rest."""

    def __init__(self, cap=2000):
        self.cap, self.text, self.count = cap, [], 0

    def write(self, s):
        s = str(s)
        if self.count < self.cap:
            self.text.append(s[: self.cap - self.count])
        self.count += len(s)
        return len(s)

    def writable(self):
        return True


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def _child(path, index, conn):
    """Run check `index` on the module at `path`; send back a result dict."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    out = _CappedOutput()
    sys.stdout = sys.stderr = out
    fn_name, name, fn = CHECKS[index]
    result = {"function": fn_name, "check": name, "passed": False}
    try:
        import pynet
        pynet.set_threads(1)
        spec = importlib.util.spec_from_file_location("student_classifier", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except BaseException as e:
            raise Failure("%s could not be loaded: %s: %s" % (os.path.basename(path), type(e).__name__, e)) from None
        if not callable(getattr(mod, fn_name, None)):
            raise Failure("%s does not define %s" % (os.path.basename(path), fn_name))
        with np.errstate(all="ignore"):
            fn(mod)
        result["passed"] = True
    except Failure as f:
        result.update(message=f.message, input=_jsonable(f.inp), expected=_jsonable(f.expected),
                      got=_jsonable(f.got), hint=f.hint)
    except BaseException as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = next((fr for fr in reversed(tb) if fr.filename == path), None)
        at = " (%s line %d)" % (os.path.basename(path), where.lineno) if where else ""
        result.update(message="raised %s: %s%s" % (type(e).__name__, str(e)[:300], at))
    if out.count > 10000:
        result["printed"] = out.count
    try:
        conn.send(result)
    finally:
        os._exit(0)


def run_checks(path, timeout=TIMEOUT, budget=BUDGET):
    """Every check on the file at path, as a list of result dicts (in CHECKS order)."""
    path = os.path.abspath(path)
    ctx = multiprocessing.get_context("fork")
    start = time.monotonic()
    results = [None] * len(CHECKS)
    pending = list(range(len(CHECKS)))
    running = {}
    while pending or running:
        while pending and len(running) < PARALLEL:
            i = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(path, i, send), daemon=True)
            p.start()
            send.close()
            running[i] = (p, recv, time.monotonic())
        time.sleep(0.005)
        for i, (p, recv, t0) in list(running.items()):
            fn_name, name, _ = CHECKS[i]
            res = None
            if recv.poll():
                try:
                    res = recv.recv()
                except (EOFError, OSError):
                    res = {"function": fn_name, "check": name, "passed": False,
                           "message": "the check's process died (exit code %s)" % p.exitcode}
            elif not p.is_alive():
                res = {"function": fn_name, "check": name, "passed": False,
                       "message": "the check's process died (exit code %s)" % p.exitcode}
            elif time.monotonic() - t0 > timeout:
                p.kill()
                res = {"function": fn_name, "check": name, "passed": False,
                       "message": "did not return within %.1f s (an endless loop?)" % timeout}
            elif time.monotonic() - start > budget:
                p.kill()
                res = {"function": fn_name, "check": name, "passed": False,
                       "message": "not finished when the checker's %.0f s budget for all checks ran out "
                                  "(other checks took their full %.1f s)" % (budget, timeout)}
            if res is not None:
                p.join(1)
                recv.close()
                if res.get("printed"):
                    res["message"] = (res.get("message") or "passed") + "; printed %d characters" % res["printed"]
                results[i] = res
                del running[i]
    return results


def format_result(r):
    lines = ["%s  %-16s %s" % ("PASS" if r["passed"] else "FAIL", r["function"], r["check"])]
    if not r["passed"]:
        lines.append("      %s" % r.get("message", ""))
        for key in ("input", "expected", "got"):
            if r.get(key) is not None:
                v = r[key]
                text = ", ".join("%s = %s" % (k, fmt(x)) for k, x in v.items()) if isinstance(v, dict) else fmt(v)
                lines.append("      %-9s %s" % (key + ":", text))
        if r.get("hint"):
            lines.append("      hint:     %s" % r["hint"])
    return "\n".join(lines)


def gradescope(results):
    tests = [{"name": "%s: %s" % (r["function"], r["check"]), "score": 1.0 if r["passed"] else 0.0,
              "max_score": 1.0, "output": "passed" if r["passed"] else format_result(r)} for r in results]
    return {"score": sum(t["score"] for t in tests), "tests": tests}


def main(path="classifier.py", as_json=False, gradescope_path=None, stdout=None):
    stdout = stdout or sys.stdout
    if not os.path.isfile(path):
        print("homework check: %s: no such file (run it in your homework folder, or name the file)" % path,
              file=sys.stderr)
        return 2
    results = run_checks(path)
    passed = sum(r["passed"] for r in results)
    if gradescope_path:
        from .init import _write
        _write(gradescope_path, json.dumps(gradescope(results), indent=1) + "\n")
    if as_json:
        json.dump({"file": os.path.abspath(path), "passed": passed, "total": len(results), "checks": results},
                  stdout, indent=1)
        stdout.write("\n")
    else:
        for r in results:
            print(format_result(r), file=stdout)
        print("%d of %d checks passed%s" % (passed, len(results), "" if passed < len(results) else ": all done"),
              file=stdout)
    return 0 if passed == len(results) else 1
