"""pynet.experiments — the homework's experiments (hw4, sections 2.2.1 to 3.2.1) and the runner
behind ``tryhw4.py``.

Each experiment is a sweep: one model, one parameter varied over a list of values, everything else
at the homework's defaults (batch 128, 1000 iterations, rate 0.01, momentum 0.9, decay 0). Later
experiments take what earlier ones found (2.3.2 uses 2.3.1's best activation, and so on); running
one alone runs what it depends on first. Every run starts from ``set_seed(seed)``, so all runs of a
sweep start from the same weights and see the same batches: they differ only in the swept setting,
and the same seed gives the same numbers, bit for bit.

Results are plain dicts (JSON-ready, no timings, so a rerun gives an identical results.json);
timings are kept apart. A run asked for diagnostics (an experiment's ``diagnostics=N``, or the
Runner's for every run) keeps them in its dict as ``diagnostics`` (pynet.diagnostics.to_json).
"""
import math
import time
from typing import List, Optional, TypedDict

import numpy as np

from . import classifier as C
from ._native import DivergedError, set_seed
from .diagnostics import diagnostics_every, to_json

HOMEWORK = {"batch": 128, "iters": 1000, "rate": 0.01, "momentum": 0.9, "decay": 0.0}
POWERS_RATE = [10.0, 1.0, 0.1, 0.01, 0.001]
POWERS_DECAY = [1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001]
ACTIVATIONS = ["LINEAR", "LOGISTIC", "RELU", "LRELU"]
CURVE_POINTS = 200          # loss curves are stored averaged down to at most this many points
FINAL_WINDOW = 50           # "final loss" = mean batch loss over the last FINAL_WINDOW iterations

EXPERIMENTS = {
    "2.2.1": dict(title="The softmax model", dataset="mnist", model="softmax", sweep=None,
                  question="What are the training and test accuracy? Why might we be interested in both, and "
                           "what do these two numbers tell us about the model?"),
    "2.2.2": dict(title="Softmax: learning rate", dataset="mnist", model="softmax", sweep="rate",
                  values=POWERS_RATE,
                  question="How does the choice of learning rate affect the loss during training and the final "
                           "accuracy?"),
    "2.2.3": dict(title="Softmax: weight decay", dataset="mnist", model="softmax", sweep="decay",
                  values=POWERS_DECAY,
                  question="How does weight decay affect the final training and test accuracy?"),
    "2.3.1": dict(title="Two-layer net: activation", dataset="mnist", model="neural_net", sweep="activation",
                  values=ACTIVATIONS,
                  question="How well do the activation functions perform, and which is best?"),
    "2.3.2": dict(title="Two-layer net: learning rate", dataset="mnist", model="neural_net", sweep="rate",
                  values=POWERS_RATE, needs=["2.3.1"],
                  question="With the best activation, which power of 10 is the best learning rate? What are the "
                           "training and test accuracy?"),
    "2.3.3": dict(title="Two-layer net: weight decay", dataset="mnist", model="neural_net", sweep="decay",
                  values=POWERS_DECAY, needs=["2.3.1", "2.3.2"],
                  question="Does adding weight decay help? Why or why not?"),
    "2.3.4": dict(title="Three-layer net: weight decay", dataset="mnist", model="three_layer_net", sweep="decay",
                  values=[0.0001, 0.001, 0.01, 0.1, 1.0], iters=3000, needs=["2.3.1", "2.3.2"],
                  question="With 3 layers (inputs -> 64 -> 32 -> outputs) and 3000 iterations, which decay is "
                           "best, and why?"),
    "3.2.1": dict(title="CIFAR-10: learning rate x decay", dataset="cifar10", model="three_layer_net",
                  sweep="grid", values=[(r, d) for r in (0.1, 0.01, 0.001) for d in (0.0, 0.001, 0.1)],
                  iters=3000, needs=["2.3.1"],
                  question="How well does the network perform on CIFAR-10?"),
}
ORDER = list(EXPERIMENTS)


class Run(TypedDict, total=False):
    """One run of a sweep, as results.json keeps it (the report reads only these keys)."""
    label: str                   # "rate=0.1", "homework defaults"
    value: object                # the swept value (a [rate, decay] pair for the grid), None for no sweep
    setting: dict                # batch, iters, rate, momentum, decay (and activation for the networks)
    final_loss: Optional[float]  # mean batch loss over the last FINAL_WINDOW finite iterations
    train_accuracy: float        # over the whole training set, after training
    test_accuracy: float         # over the whole test set
    diverged: bool
    diverged_at: Optional[int]   # the iteration whose loss became NaN or infinite
    diverged_loss: Optional[str]  # that loss, as text ("nan", "inf")
    curve_step: int              # iterations per point of loss_curve
    loss_curve: List[float]      # the batch losses averaged down to at most CURVE_POINTS points
    diagnostics: dict            # when asked for: pynet.diagnostics.to_json of the run
    implementation: dict         # with tryhw4.py --impl: the student's code and whether it matched C


class Result(TypedDict):
    """One experiment's result: its definition (from EXPERIMENTS), the data's size and its runs."""
    id: str
    title: str
    question: str
    dataset: str                 # "mnist", "cifar10"
    model: str                   # "softmax", "neural_net", "three_layer_net"
    sweep: Optional[str]         # "rate", "decay", "activation", "grid", or None
    base: dict                   # the settings every run starts from (after its dependencies' findings)
    classes: int
    train_examples: int
    test_examples: int
    runs: List[Run]


class MissingData(Exception):
    """A dataset an experiment needs could not be loaded; the message says what and how to fix it."""


def resolve(ids):
    """The experiments to run for the requested ids, dependencies first, each once, in order."""
    wanted = set()

    def add(i):
        for dep in EXPERIMENTS[i].get("needs", []):
            add(dep)
        wanted.add(i)

    for i in ids:
        if i not in EXPERIMENTS:
            raise ValueError("unknown experiment %r; valid: %s" % (i, ", ".join(ORDER)))
        add(i)
    return [i for i in ORDER if i in wanted]


def label(sweep, value):
    if sweep == "grid":
        return "rate=%g, decay=%g" % value
    if sweep == "activation":
        return str(value)
    return "%s=%g" % (sweep, value)


def downsample(losses, points=CURVE_POINTS):
    """(step, values): the curve averaged over equal windows, at most `points` of them."""
    n = len(losses)
    if n == 0:
        return 1, []
    step = max(1, math.ceil(n / points))
    usable = [float(np.mean(losses[i:i + step])) for i in range(0, n, step)]
    return step, usable


def skip_reason(exp_id, did_not_run):
    """Why exp_id cannot run when the experiments in ``did_not_run`` did not (it needs one of them),
    or None when it can. The one wording of a dependency skip, serial or on a cluster."""
    missing = [d for d in EXPERIMENTS[exp_id].get("needs", []) if d in did_not_run]
    return "it needs %s, which did not run" % ", ".join(missing) if missing else None


def softmax_weights(results, models, labels):
    """(w, class names, side) for the report's picture of what the softmax model learnt: the first
    softmax experiment's best model's weights, when its inputs are side x side pixels plus the bias
    row; else None. ``labels`` are the dataset's class names (or None for 0, 1, ...)."""
    ids = [i for i in results if EXPERIMENTS[i]["model"] == "softmax"]
    if not ids or models.get(ids[0]) is None:
        return None
    w = models[ids[0]].layers[0].w.data
    side = int(round((w.shape[0] - 1) ** 0.5))
    if side * side != w.shape[0] - 1:
        return None
    return w, labels or [str(k) for k in range(w.shape[1])], side


def best_run(result, key="test_accuracy"):
    """The best run of an experiment's result by ``key``: the highest among runs that did not
    diverge (among all runs when every one diverged). The one place "the best run" is decided, for
    the dependencies between experiments (2.3.2 takes 2.3.1's best activation) and the report."""
    runs = [r for r in result["runs"] if not r["diverged"]] or result["runs"]
    return max(runs, key=lambda r: r[key])


class Runner:
    """Runs experiments with the model builders given (tryhw4.py's softmax_model, neural_net,
    three_layer_net), loading each dataset once, and calls ``on_run(exp_id, run, seconds)`` as each
    run finishes so results can be saved as they come. With ``impl`` (a
    pynet.homework.loop.Implementation) each run is trained twice from the same seed, by the C loop
    and by the student's functions in the Python loop; the run's numbers are the student's, and its
    "implementation" entry says whether they match the C run's."""

    def __init__(self, builders, load, seed=0, iters=None, progress=True, log=None, on_run=None, impl=None,
                 diagnostics=None):
        self.builders = builders
        self.diagnostics = diagnostics_every(diagnostics, "Runner: diagnostics")
        self.load = load                  # load(name) -> (train, test) Data, or raise MissingData
        self.seed = seed
        self.iters = iters
        self.progress = progress
        self.log = log or (lambda msg: None)
        self.on_run = on_run
        self.impl = impl                  # a pynet.homework.loop.Implementation: rerun every run on it
        self.results = {}                 # exp id -> result dict
        self.timings = {}                 # exp id -> [seconds per run]
        self.models = {}                  # exp id -> the model of the experiment's best run
        self._data = {}

    def data(self, name):
        if name not in self._data:
            self._data[name] = self.load(name)
        return self._data[name]

    def best(self, exp_id, key="test_accuracy"):
        return best_run(self.results[exp_id], key)

    def settings(self, exp_id):
        """The base settings of an experiment after what its dependencies found."""
        spec = EXPERIMENTS[exp_id]
        s = dict(HOMEWORK, activation="LOGISTIC")
        if "iters" in spec:
            s["iters"] = spec["iters"]
        if "2.3.1" in spec.get("needs", []):
            s["activation"] = self.best("2.3.1")["setting"]["activation"]
        if "2.3.2" in spec.get("needs", []):
            s["rate"] = self.best("2.3.2")["setting"]["rate"]
        if self.iters is not None:
            s["iters"] = self.iters
        return s

    def run(self, exp_id):
        spec = EXPERIMENTS[exp_id]
        train, test = self.data(spec["dataset"])
        base = self.settings(exp_id)
        values = spec.get("values", [None])
        result = {"id": exp_id, "title": spec["title"], "question": spec["question"], "dataset": spec["dataset"],
                  "model": spec["model"], "sweep": spec["sweep"], "base": base, "classes": train.y.cols,
                  "train_examples": train.X.rows, "test_examples": test.X.rows, "runs": []}
        self.results[exp_id] = result
        self.timings[exp_id] = []
        best_model, best_acc = None, -1.0
        for value in values:
            setting = dict(base)
            if spec["sweep"] == "grid":
                setting["rate"], setting["decay"] = value
            elif spec["sweep"] is not None:
                setting[spec["sweep"]] = value
            name = label(spec["sweep"], value) if spec["sweep"] else "homework defaults"
            self.log("%s %s: %s" % (exp_id, spec["title"], name))
            t0 = time.perf_counter()
            run, model = self._train(spec, setting, train, test)
            seconds = time.perf_counter() - t0
            run["label"] = name
            run["value"] = list(value) if isinstance(value, tuple) else value
            result["runs"].append(run)
            self.timings[exp_id].append(seconds)
            if run["test_accuracy"] > best_acc and not run["diverged"]:
                best_model, best_acc = model, run["test_accuracy"]
            self.log("  final loss %s  train %.2f%%  test %.2f%%  (%.1fs)" % (
                "diverged at iteration %d" % run["diverged_at"] if run["diverged"] else "%.4f" % run["final_loss"],
                100 * run["train_accuracy"], 100 * run["test_accuracy"], seconds))
            impl = run.get("implementation")
            if impl:
                self.log("  %s: %s; Python loop %.2f ms a step, C loop %.2f ms" % (
                    impl["file"], self.impl.verdict(impl), impl["ms_per_step"]["python"], impl["ms_per_step"]["c"]))
            if self.on_run:
                self.on_run(exp_id, run, seconds)
        self.models[exp_id] = best_model
        return result

    def _build(self, spec, s, train):
        set_seed(self.seed)
        build = self.builders[spec["model"]]
        inputs, outputs = train.X.cols, train.y.cols
        return build(inputs, outputs) if spec["model"] == "softmax" else build(inputs, outputs, getattr(C, s["activation"]))

    def _train(self, spec, s, train, test):
        model = self._build(spec, s, train)
        diverged_at, diagnostics = None, None
        every = (diagnostics_every(spec.get("diagnostics"), "experiment %s: diagnostics" % spec["title"])
                 or self.diagnostics)
        t0 = time.perf_counter()
        try:
            losses = C.train_model(model, train, s["batch"], s["iters"], s["rate"], s["momentum"], s["decay"],
                                   progress=self.progress, diagnostics=every)
            if every:
                losses, diagnostics = losses
        except DivergedError as e:
            losses, diverged_at, diagnostics = e.losses, e.iteration, e.diagnostics
        seconds = time.perf_counter() - t0
        with np.errstate(all="ignore"):
            train_acc = C.accuracy_model(model, train)
            test_acc = C.accuracy_model(model, test)
        summarise = lambda *a: self._summarise(spec, s, *a)
        run = summarise(losses, diverged_at, train_acc, test_acc)
        if diagnostics is not None:
            run["diagnostics"] = to_json(diagnostics)
        if self.impl is not None:   # the same run again, on the student's five functions
            return self.impl.rerun((run, losses, seconds), lambda: self._build(spec, s, train), s, train, test,
                                   summarise)
        return run, model

    @staticmethod
    def _summarise(spec, s, losses, diverged_at, train_acc, test_acc):
        finite = losses[np.isfinite(losses)]
        step, curve = downsample(finite)
        return {"setting": {k: s[k] for k in ("activation", "batch", "iters", "rate", "momentum", "decay")
                            if spec["model"] != "softmax" or k != "activation"},
                "final_loss": float(np.mean(finite[-FINAL_WINDOW:])) if len(finite) else None,
                "train_accuracy": float(train_acc), "test_accuracy": float(test_acc),
                "diverged": diverged_at is not None, "diverged_at": diverged_at,
                "diverged_loss": None if diverged_at is None else str(float(losses[-1])),
                "curve_step": step, "loss_curve": curve}
