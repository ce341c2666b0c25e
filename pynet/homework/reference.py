"""The checker's own NumPy reference, the lecture's worked example, and helpers the checks share.
Nothing here runs pynet's C kernels at import time (the checker forks after importing it)."""
import numpy as np

FUNCTIONS = ("activate_matrix", "gradient_matrix", "forward_layer", "backward_layer", "update_layer")
HOMEWORK = ("LINEAR", "LOGISTIC", "RELU", "LRELU", "SOFTMAX")

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


def _result(x, what):
    """A function's returned matrix as a float array: it must be a pynet Matrix, as the given code
    (forward_model, accuracy_model, the training loop) uses it as one; else a Failure saying so."""
    import pynet
    if x is not None and not isinstance(x, pynet.Matrix):
        raise Failure("%s is a %s, not a matrix: return a pynet Matrix (e.g. what matrix_mult_matrix "
                      "returned)" % (what, type(x).__name__))
    return _values(x, what)


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
