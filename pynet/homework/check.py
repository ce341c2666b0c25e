"""The checks of ``python -m pynet homework check``: for each of the five functions, the lecture's
worked example, random cases against pynet's C or the NumPy reference, and the state the skeleton
relies on. A check takes the student's module and raises Failure (or anything else) to fail; a hint
is given only when the wrong result equals what a known mistake computes. runner.py runs them."""
import numpy as np

from .reference import (HOMEWORK, TRUTH, W1, W2, X1, Failure, _c_activate, _c_gradient, _inputs, _layer, _result,
                        _rng, _shapes, _values, _with_reference, close, np_activate, np_gradient)

# ---- activate_matrix -------------------------------------------------------------------------

def activate_hint(x, a, got):
    x = np.asarray(x, dtype=np.float64)
    if a == "SOFTMAX":
        with np.errstate(all="ignore"):
            shifted = np.exp(x - x.max(axis=1, keepdims=True)) if x.size else x
            if got.shape == x.shape and (close(got, np.exp(x)) or close(got, shifted)):
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
            if np.allclose(ratio, ratio.flat[0]) and not np.isclose(ratio.flat[0], 1.0):   # 1: not applied
                return "lrelu slope: negative x are scaled by %g; the homework's slope is 0.1" % ratio.flat[0]
    return None


def in_place_hint(returned, exp):
    """The hint for an activate_matrix that computes the right values in a new matrix and returns it."""
    try:
        if returned is not None and close(np.array(getattr(returned, "data", returned), dtype=np.float64), exp):
            return "change m in place: activate_matrix returns nothing, the given code ignores what it returns"
    except (TypeError, ValueError):
        pass
    return None


def check_activate_worked(mod):
    import pynet
    o1 = pynet.Matrix(np.array(X1) @ np.array(W1))
    inp = o1.data.copy()
    r = mod.activate_matrix(o1, "RELU")
    got = _values(o1, "the matrix after activate_matrix")
    if not (close(got, np_activate(inp, "RELU")) and close(got, [[0, 1.5]])):
        raise Failure("relu of x·w1 for the lecture's x", inp, [[0, 1.5]], got,
                      in_place_hint(r, [[0, 1.5]]) or activate_hint(inp, "RELU", got))
    o2 = pynet.Matrix(np.array([[0, 1.5]]) @ np.array(W2))
    inp = o2.data.copy()
    r = mod.activate_matrix(o2, "SOFTMAX")
    got = _values(o2, "the matrix after activate_matrix")
    exp = np_activate(inp, "SOFTMAX")
    if not (close(got, exp) and np.allclose(got, [[0.61, 0.39]], atol=0.005)):
        raise Failure("softmax of o1·w2 (the lecture's o2 ≈ [0.61, 0.39])", inp, exp, got,
                      in_place_hint(r, exp) or activate_hint(inp, "SOFTMAX", got))


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
                              in_place_hint(r, exp) or activate_hint(x, a, got))
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
                r = mod.activate_matrix(m, "SOFTMAX")
            except OverflowError:
                raise Failure("softmax of large logits raised OverflowError", x, exp, None,
                              "softmax not shifted by the row max: subtract each row's max before exp") from None
        got = _values(m, "the matrix after activate_matrix")
        if not close(got, exp):
            raise Failure("softmax of large logits (must not overflow)", x, exp, got,
                          in_place_hint(r, exp) or activate_hint(x, "SOFTMAX", got))


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
    got = _result(out, "forward_layer's result")
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
    got_dx = _result(dx, "backward_layer's result")
    given = {"in": x, "w": w, "out": y, "delta": delta}
    if not close(got_dw, exp_dw):
        hint = None
        if not np.any(got_dw) and np.any(exp_dw):
            hint = "dw not stored: backward_layer must set l.dw = inᵀ·delta"
        elif close(got_dw, -exp_dw):
            hint = "delta's sign: dw = inᵀ·delta with delta as given (no minus)"
        elif close(got_dw, x.T @ delta) and a != "LINEAR":
            hint = "delta was not multiplied by f'(out) first (gradient_matrix(l.out, l.activation, delta))"
        elif x.shape[1] == g.shape[0] and close(got_dw, x @ g):   # in·delta: only computable when square
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
    if not np.allclose(dx2, [[1.092, 0.117]], atol=0.002) or \
            not np.allclose(dw2, [[0, 0], [0.585, -0.585]], atol=0.0015):
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


def _central_difference(f, v, h):
    """The gradient of the scalar f at the array v, entry by entry: (f(v + h) − f(v − h)) / 2h."""
    grad = np.zeros_like(v)
    for idx in np.ndindex(*v.shape):
        up, down = v.copy(), v.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (f(up) - f(down)) / (2 * h)
    return grad


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
        num_w = _central_difference(lambda v: loss(x, v), w, h)
        num_x = _central_difference(lambda v: loss(v, w), x, h)
        l = _layer(w.tolist(), a)
        out = pynet.forward_layer(l, pynet.Matrix(x)).data.copy()
        # the homework passes the NEGATIVE gradient for softmax + cross-entropy (truth − p);
        # for the others we pass dL/d out itself, so dw = dL/dw
        delta = (y - out) if a == "SOFTMAX" else G
        sign = -1 if a == "SOFTMAX" else 1
        dx = mod.backward_layer(l, pynet.Matrix(delta))
        got_w, got_x = sign * _values(l.dw, "l.dw"), sign * _result(dx, "backward_layer's result")
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
MUTATES_DW = "mutating the input: update_layer reads dw, it does not change it"


def _update_case(mod, w, dw, v, rate, momentum, decay, steps, what):
    import pynet
    l = pynet.make_layer(w.shape[0], w.shape[1], "LINEAR")
    l.w, l.dw, l.v = w, dw, v
    for _ in range(steps):
        mod.update_layer(l, rate, momentum, decay)
    got_w, got_v = _values(l.w, "l.w"), _values(l.v, "l.v")
    exp_w, exp_v = _np_updates(w, dw, v, rate, momentum, decay, steps)
    given = {"w": w, "dw": dw, "v": v, "rate": rate, "momentum": momentum, "decay": decay, "steps": steps}
    if not close(_values(l.dw, "l.dw"), dw):   # first: a changed dw also makes every later w wrong
        raise Failure("%s: update_layer changed l.dw" % what, given, dw, l.dw.data, MUTATES_DW)
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
        raise Failure("update_layer changed l.dw", {"dw": dw}, dw, l.dw.data, MUTATES_DW)


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
