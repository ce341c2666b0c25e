"""The files ``python -m pynet homework init DIR`` writes (kept as strings so they ship with the package)."""

CLASSIFIER = '''"""Homework 4: a neural network classifier, written by you.

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

def activate_matrix(m, a):
    """Apply activation a to every entry of m, changing m in place; return nothing.

    LINEAR leaves x as it is; LOGISTIC is the sigmoid 1 / (1 + e^-x); RELU keeps positive x and
    makes the rest 0; LRELU keeps positive x and scales the rest by 0.1. SOFTMAX works on each row
    as a whole: every entry becomes e^x divided by the sum of e^x over its row. Make it work for
    large entries too (1000 must not overflow): subtracting a row's largest entry from each of its
    entries first does not change the result."""
    raise NotImplementedError("activate_matrix is not written yet")


def gradient_matrix(m, a, d):
    """Multiply each entry of d, in place, by the derivative of activation a, where m holds the
    activation's OUTPUTS y = f(x) (not its inputs); return nothing.

    In terms of y: LINEAR 1; LOGISTIC y(1 - y); RELU 1 where y > 0, else 0; LRELU 1 where y > 0,
    else 0.1. SOFTMAX: 1 (the cross-entropy loss already folded its derivative into d)."""
    raise NotImplementedError("gradient_matrix is not written yet")


def forward_layer(l, inp):
    """The layer's forward pass on inp (batch x inputs): out = f(inp · l.w) with f = l.activation.
    Save the input (l.inp = inp) and the output (l.out = out) for the backward pass, and return
    out. Do not change inp."""
    raise NotImplementedError("forward_layer is not written yet")


def backward_layer(l, delta):
    """The layer's backward pass. delta (batch x outputs) is dL/d(out) from the layer above.
    1. turn it into dL/d(inp · w): multiply it by f'(l.out) (gradient_matrix, in place);
    2. store the weights' gradient l.dw = (l.inp)ᵀ · delta;
    3. return dL/d(inp) = delta · (l.w)ᵀ (batch x inputs) for the layer below."""
    raise NotImplementedError("backward_layer is not written yet")


def update_layer(l, rate, momentum, decay):
    """One step of SGD with momentum and weight decay, in this order:
    v = dw - decay·w + momentum·v   (store it in l.v), then
    w = w + rate·v                  (store it in l.w)."""
    raise NotImplementedError("update_layer is not written yet")


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
'''

TRYHW4 = '''"""Run the homework's experiments on your classifier.py (or on --impl FILE).

    python tryhw4.py                       # softmax regression on MNIST, the homework's defaults
    python tryhw4.py --model neural_net --activation RELU --iters 1000 --rate 0.01
    python tryhw4.py --experiment 2.2.1    # an experiment of the homework (--all: all of them),
                                           # each run checked against pynet's C loop
    python tryhw4.py --all --report report # and the write-up: report.md, report.html, results.json
"""
import argparse
import importlib.util
import os
import sys
import time

import pynet
from pynet import datasets

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ("softmax", "neural_net", "three_layer_net")


def load_impl(path):
    """Your classifier.py as a module."""
    spec = importlib.util.spec_from_file_location("student_classifier", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(c, name, inputs, outputs, activation):
    if name == "softmax":
        layers = [c.make_layer(inputs, outputs, "SOFTMAX")]
    elif name == "neural_net":
        layers = [c.make_layer(inputs, 32, activation), c.make_layer(32, outputs, "SOFTMAX")]
    else:
        layers = [c.make_layer(inputs, 64, activation), c.make_layer(64, 32, activation),
                  c.make_layer(32, outputs, "SOFTMAX")]
    return c.make_model(layers)


def run(c, args):
    train = datasets.load(args.dataset, "train", bias=True)
    test = datasets.load(args.dataset, "test", bias=True)
    if args.limit:
        train, test = train.head(args.limit), test.head(args.limit)
    pynet.set_seed(args.seed)
    m = build(c, args.model, train.X.cols, train.y.cols, args.activation)
    start = time.perf_counter()
    losses = c.train_model(m, train, args.batch, args.iters, args.rate, args.momentum, args.decay)
    seconds = time.perf_counter() - start
    print("%s, %s, %d steps in %.1f s (%.1f ms a step)" % (args.model, args.activation, args.iters,
                                                          seconds, 1000 * seconds / max(args.iters, 1)))
    print("final loss:        %f" % losses[-1])
    print("training accuracy: %f" % c.accuracy_model(m, train))
    print("test accuracy:     %f" % c.accuracy_model(m, test))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", default=os.path.join(HERE, "classifier.py"), help="the classifier.py to run")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "cifar10"))
    p.add_argument("--model", default="softmax", choices=MODELS)
    p.add_argument("--activation", default="LOGISTIC", choices=("LINEAR", "LOGISTIC", "RELU", "LRELU"))
    p.add_argument("--experiment", "-e", action="append", metavar="N",
                   help="run experiment N of the homework (e.g. 2.2.1) on your functions; repeat for several")
    p.add_argument("--all", action="store_true", help="run every experiment")
    p.add_argument("--report", metavar="DIR", help="with --experiment/--all: write the report into DIR")
    p.add_argument("--iters", type=int, help="default 1000 (the experiments: their own counts)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rate", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="use only the first N rows of each split")
    p.add_argument("--threads", type=int, help="threads for pynet's C kernels (default: all cores; on a "
                                               "busy shared machine 1 is often faster)")
    args = p.parse_args(argv)
    if args.threads:
        pynet.set_threads(args.threads)
    if args.experiment or args.all:
        from pynet.experiments import ORDER
        from pynet.homework.loop import run_experiments
        return run_experiments(args.impl, ORDER if args.all else args.experiment, seed=args.seed,
                               iters=args.iters, limit=args.limit or None, report_dir=args.report)
    if args.iters is None:
        args.iters = 1000
    run(load_impl(args.impl), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

README = '''# Homework 4: a neural network from scratch, on pynet

Your task: write the five functions marked TODO in `classifier.py`:

1. `activate_matrix(m, a)`: the activation functions, LINEAR, LOGISTIC, RELU, LRELU and SOFTMAX;
2. `gradient_matrix(m, a, d)`: their derivatives, taken at the outputs;
3. `forward_layer(l, inp)`: a layer's forward pass, saving its input and output;
4. `backward_layer(l, delta)`: its backward pass, storing `l.dw` and returning the delta for the layer below;
5. `update_layer(l, rate, momentum, decay)`: SGD with momentum and weight decay.

The rest of the classifier (`forward_model`, `backward_model`, `update_model`, `train_model`, ...) is
written for you on top of these five.

Commands:

    python -m pynet homework check             # checks ./classifier.py; exit status 0 when all pass
    python -m pynet homework check --json      # the same results as JSON
    python tryhw4.py                           # trains softmax regression on MNIST with your code
    python tryhw4.py --model neural_net --activation RELU

A failing check prints the smallest input it failed on, what was expected, what your code gave, and,
when the failure looks like a known mistake, a hint naming the step to look at.
'''

FILES = {"classifier.py": CLASSIFIER, "tryhw4.py": TRYHW4, "README.md": README}
