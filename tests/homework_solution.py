# A correct homework solution, written the naive way (tests only; not shipped).
"""Homework 4: a neural network classifier, written by you.

Write the five functions marked TODO. Everything below them (make_layer, forward_model, ...,
train_model) is given and is built on your five. Check your work with

    python -m pynet homework check classifier.py

Matrices are pynet.Matrix objects: m.rows, m.cols, and m.data[i][j] to read or write one entry.
pynet's matrix operations are there to use: make_matrix, copy_matrix, transpose_matrix,
matrix_mult_matrix (a·b), axpy_matrix (a·x + y), free_matrix.
A layer l has l.inp (its saved input; `in` is a Python keyword), l.w, l.dw, l.v, l.out and
l.activation, which equals its name: l.activation == 'RELU'.
"""
import math

import pynet
from pynet import (LINEAR, LOGISTIC, RELU, LRELU, SOFTMAX, axpy_matrix, copy_matrix, free_matrix,
                   make_matrix, matrix_mult_matrix, random_batch, transpose_matrix)


# ---- the five functions to write ------------------------------------------------------------











# ---- given: the rest of the classifier, built on the five above ------------------------------

def make_layer(input, output, activation):
    """A layer from `input` to `output` units: weights uniform in ±sqrt(2/input), dw and v zero."""
    return pynet.make_layer(input, output, activation)


def make_model(layers):
    return pynet.make_model(layers)


def forward_model(m, X):
    for l in m.layers:
        X = forward_layer(l, X)
    return X


def backward_model(m, dL):
    d = copy_matrix(dL)
    for l in reversed(m.layers):
        prev = backward_layer(l, d)
        free_matrix(d)
        d = prev
    free_matrix(d)


def update_model(m, rate, momentum, decay):
    for l in m.layers:
        update_layer(l, rate, momentum, decay)


def max_index(row):
    best = 0
    for j in range(len(row)):
        if row[j] > row[best]:
            best = j
    return best


def accuracy_model(m, d):
    p = forward_model(m, d.X)
    correct = 0
    for i in range(d.y.rows):
        if max_index(d.y.data[i]) == max_index(p.data[i]):
            correct += 1
    return correct / d.y.rows


def cross_entropy_loss(y, p):
    total = 0.0
    for i in range(y.rows):
        for j in range(y.cols):
            if y.data[i][j]:
                total += -y.data[i][j] * math.log(max(p.data[i][j], 1e-300))
    return total / y.rows


def train_model(m, d, batch, iters, rate, momentum, decay, progress=True):
    """iters steps of SGD on batches of `batch` rows drawn from d; returns the losses."""
    losses = []
    for it in range(iters):
        b = random_batch(d, batch)
        p = forward_model(m, b.X)
        loss = cross_entropy_loss(b.y, p)
        losses.append(loss)
        if progress and (it % 100 == 0 or it == iters - 1):
            print("%06d: Loss: %f" % (it, loss), flush=True)
        dL = axpy_matrix(-1, p, b.y)   # truth - prediction: the negative gradient
        backward_model(m, dL)
        update_model(m, rate / batch, momentum, decay)
    return losses


def activate_matrix(m, a):
    for i in range(m.rows):
        if a == 'SOFTMAX':
            top = m.data[i][0]
            for j in range(m.cols):
                if m.data[i][j] > top:
                    top = m.data[i][j]
            total = 0.0
            for j in range(m.cols):
                m.data[i][j] = math.exp(m.data[i][j] - top)
                total += m.data[i][j]
            for j in range(m.cols):
                m.data[i][j] /= total
            continue
        for j in range(m.cols):
            x = m.data[i][j]
            if a == 'LOGISTIC':
                m.data[i][j] = 1.0 / (1.0 + math.exp(-x))
            elif a == 'RELU':
                m.data[i][j] = x if x > 0 else 0.0
            elif a == 'LRELU':
                m.data[i][j] = x if x > 0 else 0.1 * x


def gradient_matrix(m, a, d):
    for i in range(m.rows):
        for j in range(m.cols):
            y = m.data[i][j]
            if a == 'LOGISTIC':
                d.data[i][j] *= y * (1 - y)
            elif a == 'RELU':
                d.data[i][j] *= 1.0 if y > 0 else 0.0
            elif a == 'LRELU':
                d.data[i][j] *= 1.0 if y > 0 else 0.1


def forward_layer(l, inp):
    l.inp = inp
    out = matrix_mult_matrix(inp, l.w)
    activate_matrix(out, l.activation)
    free_matrix(l.out)
    l.out = out
    return out


def backward_layer(l, delta):
    gradient_matrix(l.out, l.activation, delta)
    xt = transpose_matrix(l.inp)
    dw = matrix_mult_matrix(xt, delta)
    free_matrix(xt)
    free_matrix(l.dw)
    l.dw = dw
    wt = transpose_matrix(l.w)
    dx = matrix_mult_matrix(delta, wt)
    free_matrix(wt)
    return dx


def update_layer(l, rate, momentum, decay):
    b = axpy_matrix(-decay, l.w, l.dw)
    v = axpy_matrix(momentum, l.v, b)
    free_matrix(l.v)
    l.v = v
    w = axpy_matrix(rate, l.v, l.w)
    free_matrix(l.w)
    l.w = w
