"""pynet.extras — five experiments beyond the homework (issue 12, ``tryhw4.py --extras``): each puts
one of the lecture's warnings to the test on MNIST and keeps the numbers its answer is computed from
(pynet.report.extras) and its plots are drawn from (pynet.report.extras_figures).

- 4.1 ten one-vs-rest logistic models against one softmax model, the same iterations each;
- 4.2 vanishing gradients: depth 2, 4, 8 with LOGISTIC or RELU hidden layers;
- 4.3 dying ReLU: RELU against LRELU at increasing learning rates;
- 4.4 exploding gradients: a deep RELU net at a high rate, plain, with clipping, with layer norm;
- 4.5 dropout: a wide net on 5,000 examples with and without dropout, accuracy per epoch.

Every model starts from ``set_seed(seed)``, so runs of an experiment start from the same weights and
(with the same step count) see the same batches, and the same seed gives the same results, bit for
bit. Results are JSON-ready dicts without timings; ``run`` returns the seconds apart (4.1's answer
needs them), as pynet.experiments does.
"""
import math
import time

import numpy as np

from . import classifier as C
from ._native import DivergedError, set_seed
from .diagnostics import to_json
from .experiments import FINAL_WINDOW, downsample
from .training import evaluate_model, fit

BATCH, MOMENTUM = 128, 0.9
PROBE_ROWS = 1000        # training rows a gradient or a dead-unit count at the start/end is measured on
DIAGNOSTICS_EVERY = 10

EXTRAS = {
    "4.1": dict(title="One-vs-rest vs softmax", iters=1000, rate=0.01,
                question="Are ten one-vs-rest logistic classifiers, trained for the same iterations as one softmax "
                         "model, slower and less accurate than it?",
                claim="one-vs-rest classifiers are slower and worse than a softmax"),
    "4.2": dict(title="Vanishing gradients", iters=1000, rate=0.1, depths=[2, 4, 8], width=32,
                activations=["LOGISTIC", "RELU"],
                question="How large is the first layer's gradient relative to the last layer's at the start of "
                         "training, for nets of depth 2, 4 and 8 with LOGISTIC or RELU hidden layers, and how well "
                         "does each train?",
                claim="logistic activations give vanishing gradients in deep nets, ReLU much less so"),
    "4.3": dict(title="Dying ReLU", iters=1000, rates=[0.01, 0.1, 0.3, 1.0], widths=[64, 64],
                activations=["RELU", "LRELU"],
                question="As the learning rate grows, what fraction of RELU units die (output 0 for every example), "
                         "does LRELU avoid it, and what does it cost in accuracy?",
                claim="ReLU units can die at high learning rates, and leaky ReLU keeps them alive"),
    "4.4": dict(title="Exploding gradients", epochs=1, rate=0.2, depth=8, width=64, clip=1.0,
                variants=["plain", "clip", "layer norm"],
                question="Does a deep RELU net at a high learning rate have exploding gradients, and do gradient "
                         "clipping or layer normalisation make it train?",
                claim="ReLU nets can have exploding gradients, fixed by gradient clipping or layer-wise "
                      "normalisation"),
    "4.5": dict(title="Dropout and overfitting", epochs=20, rate=0.1, subset=5000, width=512, dropout=0.5,
                question="On a 5,000-example subset, does a wide net overfit, and does dropout narrow the gap "
                         "between training and test accuracy and raise test accuracy?",
                claim="dropout fights overfitting"),
}
ORDER = list(EXTRAS)


def _net(inputs, widths, activation, outputs, norm=False, dropout=0.0):
    """inputs -> widths... -> outputs (softmax), by classifier.make_mlp: ``norm`` on the hidden
    layers, ``dropout`` on the inputs of every layer after the first (4.5: the hidden units)."""
    return C.make_mlp([inputs, *widths, outputs], activation, norm=norm, dropout=dropout)


def _accuracies(m, train, test):
    with np.errstate(all="ignore"):
        return float(C.accuracy_model(m, train)), float(C.accuracy_model(m, test))


def _train(m, train, iters, rate, diagnostics=DIAGNOSTICS_EVERY):
    """train_model with the homework's batch and momentum: (losses, diagnostics, diverged_at)."""
    try:
        out = C.train_model(m, train, BATCH, iters, rate, MOMENTUM, 0.0, progress=False, diagnostics=diagnostics)
        return (out + (None,)) if diagnostics else (out, None, None)
    except DivergedError as e:
        return e.losses, e.diagnostics, e.iteration


def _run_record(label, losses, diag, diverged_at, train_acc, test_acc):
    finite = losses[np.isfinite(losses)]
    step, curve = downsample(finite)
    return {"label": label, "train_accuracy": train_acc, "test_accuracy": test_acc,
            "final_loss": float(np.mean(finite[-FINAL_WINDOW:])) if len(finite) else None,
            "diverged": diverged_at is not None, "diverged_at": diverged_at,
            "curve_step": step, "loss_curve": curve, "diagnostics": None if diag is None else to_json(diag)}


def _probe(train):
    """The first PROBE_ROWS training rows, as (X, y) arrays."""
    n = min(PROBE_ROWS, train.X.rows)
    return train.X.data[:n], train.y.data[:n]


def start_gradients(m, train):
    """The norm of each layer's weight gradient of the mean loss over the probe rows, for the model
    as it is (called before training: the start). A forward and a backward pass only: no update,
    so training afterwards is unchanged (train_steps overwrites out and dw; tests/test_extras.py)."""
    X, y = _probe(train)
    p = C.forward_model(m, X)
    C.backward_model(m, y - p.data)   # the homework's delta: truth - prediction
    norms = [float(np.linalg.norm(l.dw.data)) / X.shape[0] for l in m.layers]
    return norms


def silent_fraction(m, train):
    """Per hidden layer, the fraction of units whose output is <= 0 on every probe row: dead for
    RELU (its output is exactly 0 there, and so is its gradient); for LRELU the same units still
    pass 0.01 of the gradient."""
    X, _ = _probe(train)
    C.forward_model(m, X)
    out = [float(1.0 - np.count_nonzero(np.any(l.out.data > 0, axis=0)) / l.outputs) for l in m.layers[:-1]]
    return out


def _base(exp_id, train, test, settings):
    spec = EXTRAS[exp_id]
    return {"id": exp_id, "title": spec["title"], "question": spec["question"], "claim": spec["claim"],
            "dataset": "mnist", "classes": train.y.cols, "train_examples": train.X.rows,
            "test_examples": test.X.rows, "settings": dict(settings, batch=BATCH, momentum=MOMENTUM), "runs": []}


def one_vs_rest(train, test, seed, iters):
    """4.1. Each one-vs-rest model is logistic regression for "class k or not", written as a
    two-class softmax (p = σ(x·(w₁ − w₀)), the same model); the ensemble predicts the class whose
    model is the most confident. Seconds: [softmax, the ten together]."""
    spec = EXTRAS["4.1"]
    iters = iters or spec["iters"]
    result = _base("4.1", train, test, {"iters": iters, "rate": spec["rate"]})
    set_seed(seed)
    m = _net(train.X.cols, [], None, train.y.cols)
    t0 = time.perf_counter()
    losses, _, div = _train(m, train, iters, spec["rate"], diagnostics=None)
    soft_seconds = time.perf_counter() - t0
    result["runs"].append(_run_record("softmax", losses, None, div, *_accuracies(m, train, test)))
    k = train.y.cols
    scores = {"train": np.empty((train.X.rows, k)), "test": np.empty((test.X.rows, k))}
    ovr_seconds, diverged, curves = 0.0, [], []
    for c in range(k):
        t = train.y.data[:, c]
        binary = C.Data(train.X, np.column_stack([1.0 - t, t]))
        set_seed(seed)   # each model sees the batches the softmax model saw
        mk = _net(train.X.cols, [], None, 2)
        t0 = time.perf_counter()
        lk, _, dk = _train(mk, binary, iters, spec["rate"], diagnostics=None)
        ovr_seconds += time.perf_counter() - t0
        if dk is not None:
            diverged.append((c, dk))
        curves.append(lk)
        with np.errstate(all="ignore"):
            for part, d in (("train", train), ("test", test)):
                scores[part][:, c] = C.predict_model(mk, d.X).data[:, 1]
    acc = {part: float(np.mean(np.argmax(s, axis=1) == d.classes))
           for (part, s), d in zip(scores.items(), (train, test))}
    mean_loss = np.mean(np.vstack(curves), axis=0)   # the ten binary losses, step by step
    ovr = _run_record("one-vs-rest (10 logistic)", mean_loss, None, diverged[0][1] if diverged else None,
                      acc["train"], acc["test"])
    ovr["diverged_models"] = [c for c, _ in diverged]
    result["runs"].append(ovr)
    return result, [soft_seconds, ovr_seconds]


def vanishing(train, test, seed, iters):
    """4.2: for each activation and depth, the start gradients (start_gradients) and the run."""
    spec = EXTRAS["4.2"]
    iters = iters or spec["iters"]
    result = _base("4.2", train, test, {"iters": iters, "rate": spec["rate"], "width": spec["width"]})
    seconds = []
    for act in spec["activations"]:
        for depth in spec["depths"]:
            set_seed(seed)
            m = _net(train.X.cols, [spec["width"]] * (depth - 1), getattr(C, act), train.y.cols)
            start = start_gradients(m, train)
            t0 = time.perf_counter()
            losses, diag, div = _train(m, train, iters, spec["rate"])
            seconds.append(time.perf_counter() - t0)
            run = _run_record("%s, depth %d" % (act, depth), losses, diag, div, *_accuracies(m, train, test))
            run.update(activation=act, depth=depth, start_grad_norm=start,
                       start_ratio=start[0] / start[-1] if start[-1] > 0 else None)
            result["runs"].append(run)
    return result, seconds


def _mean_dead(diag):
    """The dead fraction averaged over the RELU layers, per recorded step."""
    dead = [np.asarray([np.nan if x is None else x for x in d]) for d in diag["dead"] if d is not None]
    return [float(x) for x in np.mean(dead, axis=0)] if dead and len(dead[0]) else []


def dying(train, test, seed, iters):
    """4.3: RELU and LRELU at each rate; dead fraction over training (RELU, from the diagnostics)
    and the silent fraction at the end (both, silent_fraction)."""
    spec = EXTRAS["4.3"]
    iters = iters or spec["iters"]
    result = _base("4.3", train, test, {"iters": iters, "widths": spec["widths"]})
    seconds = []
    for act in spec["activations"]:
        for rate in spec["rates"]:
            set_seed(seed)
            m = _net(train.X.cols, spec["widths"], getattr(C, act), train.y.cols)
            t0 = time.perf_counter()
            losses, diag, div = _train(m, train, iters, rate)
            seconds.append(time.perf_counter() - t0)
            run = _run_record("%s, rate %g" % (act, rate), losses, diag, div, *_accuracies(m, train, test))
            mean_dead = _mean_dead(diag) if act == "RELU" else None
            with np.errstate(all="ignore"):
                silent = silent_fraction(m, train)
            run.update(activation=act, rate=rate, dead_curve=mean_dead,
                       final_dead=mean_dead[-1] if mean_dead else None, silent=silent,
                       final_silent=float(np.mean(silent)))
            result["runs"].append(run)
    return result, seconds


def _fit_run(m, train, epochs, rate, clip=0.0, on_epoch=None, every=5):
    """fit with the homework's SGD: (losses, diagnostics, diverged_at)."""
    try:
        h = fit(m, train, epochs=epochs, batch=BATCH, rate=rate, momentum=MOMENTUM, clip=clip, progress=False,
                diagnostics=every, on_epoch=on_epoch)
        return h.losses, h.diagnostics, None
    except DivergedError as e:
        return e.losses, e.diagnostics, e.iteration


def _epochs_for(iters, rows, default):
    """--iters N for an experiment counted in epochs: the fewest epochs with at least N steps."""
    if iters is None:
        return default
    return max(1, math.ceil(iters / max(1, rows // BATCH)))


def global_norms(diag):
    """sqrt(Σ over layers of ‖∂L/∂w‖²) per recorded step (None where a layer's is not finite)."""
    g = np.asarray([[np.nan if x is None else x for x in layer] for layer in diag["grad_norm"]], dtype=float)
    total = np.sqrt(np.sum(g ** 2, axis=0)) if g.size else np.empty(0)
    return [float(x) if np.isfinite(x) else None for x in total]


def exploding(train, test, seed, iters):
    """4.4: the same deep RELU net, plain, with clipping, with layer norm on its hidden layers."""
    spec = EXTRAS["4.4"]
    epochs = _epochs_for(iters, train.X.rows, spec["epochs"])
    result = _base("4.4", train, test, {"epochs": epochs, "rate": spec["rate"], "depth": spec["depth"],
                                        "width": spec["width"], "clip": spec["clip"]})
    seconds = []
    for variant in spec["variants"]:
        set_seed(seed)
        m = _net(train.X.cols, [spec["width"]] * (spec["depth"] - 1), C.RELU, train.y.cols,
                 norm=variant == "layer norm")
        t0 = time.perf_counter()
        losses, diag, div = _fit_run(m, train, epochs, spec["rate"], clip=spec["clip"] if variant == "clip" else 0.0)
        seconds.append(time.perf_counter() - t0)
        run = _run_record(variant, losses, diag, div, *_accuracies(m, train, test))
        norms = global_norms(diag) if diag is not None else []
        finite = [x for x in norms if x is not None]
        run.update(variant=variant, grad_norm=norms, first_grad_norm=finite[0] if finite else None,
                   max_grad_norm=max(finite) if finite else None,
                   nonfinite_grad=len(finite) < len(norms),
                   final_dead=_mean_dead(diag)[-1] if diag is not None and _mean_dead(diag) else None)
        result["runs"].append(run)
    return result, seconds


def dropout(train, test, seed, iters):
    """4.5: the first ``subset`` training rows; after every epoch, accuracy (dropout off) on them
    and on the whole test set."""
    spec = EXTRAS["4.5"]
    n = min(spec["subset"], train.X.rows)
    subset = C.Data(train.X.data[:n], train.y.data[:n])
    epochs = _epochs_for(iters, n, spec["epochs"])
    result = _base("4.5", subset, test, {"epochs": epochs, "rate": spec["rate"], "width": spec["width"],
                                         "subset": n, "dropout": spec["dropout"]})
    seconds = []
    for p in (0.0, spec["dropout"]):
        set_seed(seed)
        m = _net(train.X.cols, [spec["width"]], C.RELU, train.y.cols, dropout=p)
        curve = {"train": [], "test": []}

        def on_epoch(record):
            curve["train"].append(float(evaluate_model(m, subset)[1]))
            curve["test"].append(float(evaluate_model(m, test)[1]))

        t0 = time.perf_counter()
        losses, diag, div = _fit_run(m, subset, epochs, spec["rate"], on_epoch=on_epoch)
        seconds.append(time.perf_counter() - t0)
        run = _run_record("dropout %g" % p if p else "no dropout", losses, diag, div,
                          *_accuracies(m, subset, test))
        run.update(dropout=p, train_curve=curve["train"], test_curve=curve["test"])
        result["runs"].append(run)
    return result, seconds


RUNNERS = {"4.1": one_vs_rest, "4.2": vanishing, "4.3": dying, "4.4": exploding, "4.5": dropout}


def run(exp_id, train, test, seed=0, iters=None):
    """(result, seconds per run) of extra experiment ``exp_id`` on MNIST ``train``/``test`` (with the
    bias column). ``iters`` overrides the steps of every run (4.4 and 4.5, counted in epochs, take
    the fewest epochs with at least that many steps)."""
    if exp_id not in EXTRAS:
        raise ValueError("unknown extra experiment %r; valid: %s" % (exp_id, ", ".join(ORDER)))
    if train.y.cols < 2:
        raise ValueError("experiment %s needs at least two classes, the data has %d" % (exp_id, train.y.cols))
    return RUNNERS[exp_id](train, test, seed, iters)


def run_all(ids, load, seed=0, iters=None, log=None, on_run=None):
    """(results, seconds) of the extra experiments ``ids``, in order, on ``load("mnist")`` (train,
    test); ``log(line)`` gets a line per run and ``on_run(exp_id)`` is called as each experiment ends."""
    log = log or (lambda msg: None)
    results, timings = {}, {}
    train, test = load("mnist")
    for exp_id in ids:
        log("%s %s" % (exp_id, EXTRAS[exp_id]["title"]))
        results[exp_id], timings[exp_id] = run(exp_id, train, test, seed, iters)
        for r, s in zip(results[exp_id]["runs"], timings[exp_id]):
            log("  %-26s train %6.2f%%  test %6.2f%%%s  (%.1fs)" % (
                r["label"], 100 * r["train_accuracy"], 100 * r["test_accuracy"],
                "  diverged at step %d" % r["diverged_at"] if r["diverged"] else "", s))
        if on_run:
            on_run(exp_id)
    return results, timings
