"""An independent NumPy implementation of the homework's network, written straight from the
lecture's equations, that the tests compare pynet against. Nothing here calls pynet."""
import numpy as np


def activate(x, a):
    if a == "LINEAR":
        return x.copy()
    if a == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-x))
    if a == "RELU":
        return np.where(x > 0, x, 0.0)
    if a == "LRELU":
        return np.where(x > 0, x, 0.1 * x)
    if a == "SOFTMAX":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if a == "TANH":
        return np.tanh(x)
    raise ValueError(a)


def gradient(y, a):
    """f'(x) expressed through the output y = f(x)."""
    if a in ("LINEAR", "SOFTMAX"):
        return np.ones_like(y)
    if a == "LOGISTIC":
        return y * (1 - y)
    if a == "RELU":
        return (y > 0).astype(float)
    if a == "LRELU":
        return np.where(y > 0, 1.0, 0.1)
    raise ValueError(a)


def forward(ws, acts, X):
    """Outputs of every layer (list), for weights ws and activation names acts."""
    outs = []
    for w, a in zip(ws, acts):
        X = activate(X @ w, a)
        outs.append(X)
    return outs


def backward(ws, acts, X, outs, dL):
    """dw of every layer for the negative-gradient delta dL = y - p (the homework's convention)."""
    ins = [X] + outs[:-1]
    dws = [None] * len(ws)
    delta = dL.copy()
    for i in reversed(range(len(ws))):
        delta = delta * gradient(outs[i], acts[i])
        dws[i] = ins[i].T @ delta
        delta = delta @ ws[i].T
    return dws


def cross_entropy(y, p):
    return float(np.mean(np.sum(-y * np.log(p), axis=1)))


def update(w, dw, v, rate, momentum, decay):
    """The homework's rule: v = dw - decay*w + momentum*v; w = w + rate*v. Returns new (w, v)."""
    v = dw - decay * w + momentum * v
    return w + rate * v, v


def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar f() with respect to every entry of the array x (perturbed
    in place and restored)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


def rel_error(a, b):
    """Largest entrywise difference relative to the largest entry (entries near 0 are fine)."""
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-12)
