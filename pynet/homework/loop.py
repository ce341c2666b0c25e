"""The experiments on the student's code: a training loop in Python that calls the student's
forward_layer, backward_layer and update_layer (and through them their activate_matrix and
gradient_matrix), and the comparison with pynet's C loop that says whether it reproduced it.

The loop consumes pynet's one random generator exactly as C's train_model does: the model is built
by pynet.make_layer (C, the same weight draws), and each step draws its batch with
pynet.random_batch (C's random_batch, the same row draws as train_model's gather); nothing else in
a step draws. The loss is pynet's cross_entropy_loss and dL = y − p is axpy_matrix(-1, p, y), both
the C loop's own arithmetic; the update gets rate/batch as the C loop passes it. So with the same
seed a correct implementation sees the same batches from the same weights and its numbers differ
from C's only by rounding (its sums may be ordered differently).

Rounding differences stay far below TOLERANCE in most runs, but a run with a large learning rate
can amplify them step after step until the curves part (pynet's own C loop does the same when its
initial weights move by one ulp). So each step is also checked on its own: before the student's
step, pynet's C forward_model/backward_model/update_model take the same step from the student's
current weights on a shadow copy, and the student's output, w and v must agree with it. A run whose
curve departs but whose every step agrees, in a run where one ulp moves C's own curve past
TOLERANCE too, is reported as agreeing within rounding, not as a match and not as a mistake."""
import importlib.util
import math
import os
import time

import numpy as np

import pynet
from ..checkpoint import rng_state, set_rng_state

from .verdict import TOLERANCE, describe, summary, verdict  # noqa: F401  re-exported

FIVE = ("activate_matrix", "gradient_matrix", "forward_layer", "backward_layer", "update_layer")


class ImplementationError(Exception):
    """The student's code could not be loaded or raised during a run; the message says where."""


def _load(path):
    spec = importlib.util.spec_from_file_location("student_classifier", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise ImplementationError("%s could not be loaded: %s: %s" % (path, type(e).__name__, e)) from None
    missing = [f for f in FIVE if not callable(getattr(module, f, None))]
    if missing:
        raise ImplementationError("%s does not define %s" % (path, ", ".join(missing)))
    return module


def _count_correct(y, p):
    """pynet's pn_count_correct: a row is right when p's first largest entry is where y's is
    (C's `if (a[i] > a[best])` loop, NaN included: a NaN never wins, and a NaN first entry stays)."""
    def first_max(a):
        filled = np.where(np.isnan(a), -np.inf, a)
        best = np.argmax(filled, axis=1)
        return np.where(np.isnan(a[:, 0]), 0, best)
    return int(np.sum(first_max(np.asarray(p)) == first_max(np.asarray(y))))


def _rel_diff(a, b):
    a, b = float(a), float(b)
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if math.isfinite(scale) else math.inf


def _rel_matrix(a, b):
    """A matrix's relative difference: max |a − b| over max |b| (entrywise relative differences
    would make rounding in an entry near 0 look large); 0 when equal."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return math.inf
    worst = float(np.max(np.abs(a - b), initial=0.0))
    if worst == 0.0 or math.isnan(worst):
        return 0.0 if worst == 0.0 else math.inf
    scale = float(np.max(np.abs(b), initial=0.0))
    return worst / scale if scale > 0 else math.inf


def _shadow(model):
    """Layers of the same shapes and activations as model's, for C to take each step on; made
    without a draw from pynet's generator, so the batches that follow are the C loop's."""
    state = rng_state()
    try:
        return pynet.make_model([pynet.make_layer(l.inputs, l.outputs, l.activation) for l in model.layers])
    finally:
        set_rng_state(state)


class Implementation:
    """A student's classifier.py: its five functions, run in the Python loop; ``check`` is its
    ``homework check`` result ({"passed", "total"}), or None when the check was not run."""

    def __init__(self, path, check=True):
        if not os.path.isfile(path):
            raise ImplementationError("%s: no such file (give the classifier.py to run)" % path)
        self.path = os.path.abspath(path)
        self.name = path
        self.check = None
        if check:   # before anything runs pynet's threaded kernels in this process: the checks fork
            from .runner import run_checks
            results = run_checks(self.path)
            self.check = {"passed": sum(r["passed"] for r in results), "total": len(results)}
        self.module = _load(self.path)

    def _call(self, fn, where, *args):
        try:
            return getattr(self.module, fn)(*args)
        except Exception as e:
            raise ImplementationError("%s: %s raised %s: %s (%s)" % (self.name, fn, type(e).__name__, e, where)) from None

    def forward(self, model, X, where):
        for i, l in enumerate(model.layers):
            X = self._call("forward_layer", "%s, layer %d" % (where, i), l, X)
            if not isinstance(X, pynet.Matrix):
                raise ImplementationError("%s: forward_layer returned %s, not a matrix (%s, layer %d)"
                                          % (self.name, type(X).__name__, where, i))
        return X

    def train(self, model, d, batch, iters, rate, momentum, decay, steps=None):
        """The homework's train_model on the student's functions: (losses, diverged_at or None).

        With ``steps`` (a dict), every step is also taken by pynet's C layer functions from the
        same weights (see the module's docstring); steps gets "max_rel_diff" (the largest relative
        difference of the output, a w or a v over all steps), "first" (None, or where a step
        first differed by more than TOLERANCE) and "seconds" (the student's part of the loop)."""
        losses = np.full(iters, np.nan)
        shadow = _shadow(model) if steps is not None else None
        worst, first, seconds = 0.0, None, 0.0
        try:
            for it in range(iters):
                where = "training step %d" % it
                b = pynet.random_batch(d, batch)
                if shadow is not None:
                    for l, s in zip(model.layers, shadow.layers):
                        s.w, s.v = l.w.data, l.v.data
                    p_c = pynet.forward_model(shadow, b.X).data.copy()
                    pynet.backward_model(shadow, pynet.axpy_matrix(-1.0, pynet.Matrix(p_c), b.y))
                    pynet.update_model(shadow, rate / batch, momentum, decay)
                t0 = time.perf_counter()
                p = self.forward(model, b.X, where)
                losses[it] = loss = pynet.cross_entropy_loss(b.y, p)
                if not math.isfinite(loss):
                    seconds += time.perf_counter() - t0
                    return losses[:it + 1], it
                delta = pynet.axpy_matrix(-1.0, p, b.y)   # truth − prediction, as the C loop computes it
                for i in reversed(range(len(model.layers))):
                    delta = self._call("backward_layer", "%s, layer %d" % (where, i), model.layers[i], delta)
                for i, l in enumerate(model.layers):
                    self._call("update_layer", "%s, layer %d" % (where, i), l, rate / batch, momentum, decay)
                seconds += time.perf_counter() - t0
                if shadow is not None:
                    diffs = [("the output of forward_layer", _rel_matrix(p.data, p_c))]
                    for i, (l, s) in enumerate(zip(model.layers, shadow.layers)):
                        diffs += [("layer %d's w" % i, _rel_matrix(l.w.data, s.w.data)),
                                  ("layer %d's v" % i, _rel_matrix(l.v.data, s.v.data))]
                    what, diff = max(diffs, key=lambda x: x[1])
                    if first is None and not diff <= TOLERANCE:
                        first = {"iteration": it, "what": what, "rel_diff": diff}
                    worst = max(worst, diff)
        finally:
            if steps is not None:
                steps.update(max_rel_diff=worst, first=first, seconds=seconds)
        return losses, None

    @staticmethod
    def verdict(impl):
        return verdict(impl)

    def accuracy(self, model, d, what):
        p = self.forward(model, d.X, "accuracy on the %s set" % what)
        return _count_correct(d.y.data, p.data) / d.y.rows

    def rerun(self, reference, build, setting, train, test, summarise):
        """Train a fresh model from ``build()`` (which seeds and builds it, as the C run did) with the
        student's functions; the run's dict from ``summarise`` with an "implementation" entry saying
        whether it matches ``reference`` (the C run's dict and losses), and the model."""
        ref_run, ref_losses, ref_seconds = reference
        model = build()
        s = setting
        steps = {}
        losses, diverged_at = self.train(model, train, s["batch"], s["iters"], s["rate"], s["momentum"], s["decay"],
                                         steps=steps)
        with np.errstate(all="ignore"):
            train_acc, test_acc = self.accuracy(model, train, "training"), self.accuracy(model, test, "test")
        run = summarise(losses, diverged_at, train_acc, test_acc)
        verdict = compare(ref_run, ref_losses, run, losses)
        verdict["steps"] = {"max_rel_diff": steps["max_rel_diff"], "first": steps["first"]}
        if not verdict["matches"]:
            verdict["c_one_ulp"] = c_sensitivity(build, ref_run, ref_losses, s, train, test, summarise)
            verdict["within_rounding"] = (steps["first"] is None
                                          and verdict["c_one_ulp"]["max_rel_diff"] > TOLERANCE)
        run["implementation"] = dict(verdict, file=self.name, check=self.check)
        run["implementation"]["ms_per_step"] = {"python": 1000 * steps["seconds"] / max(len(losses), 1),
                                                "c": 1000 * ref_seconds / max(len(ref_losses), 1)}
        return run, model


def c_sensitivity(build, ref_run, ref_losses, s, train, test, summarise):
    """How far pynet's own C loop departs from the reference run when every initial weight moves up
    by one ulp: {"max_rel_diff", "first_iteration"} (the first iteration past TOLERANCE, or None),
    on the losses and both accuracies, as ``compare`` measures them."""
    model = build()
    for l in model.layers:
        l.w = np.nextafter(l.w.data, np.inf)
    diverged_at = None
    try:
        losses = np.asarray(pynet.train_model(model, train, s["batch"], s["iters"], s["rate"], s["momentum"],
                                              s["decay"], progress=False))
    except pynet.DivergedError as e:
        losses, diverged_at = np.asarray(e.losses), e.iteration
    with np.errstate(all="ignore"):
        run = summarise(losses, diverged_at, pynet.accuracy_model(model, train), pynet.accuracy_model(model, test))
    n = min(len(losses), len(ref_losses))
    diffs = [_rel_diff(a, b) for a, b in zip(losses[:n], ref_losses[:n])]
    past = next((i for i, x in enumerate(diffs) if not x <= TOLERANCE), None)
    if past is None and len(losses) != len(ref_losses):
        past = n
    diffs += [_rel_diff(run[k], ref_run[k]) for k in ("train_accuracy", "test_accuracy")]
    worst = max(diffs) if diffs else 0.0
    if len(losses) != len(ref_losses) or run["diverged_at"] != ref_run["diverged_at"]:
        worst = math.inf
    return {"max_rel_diff": worst, "first_iteration": past}


def compare(ref_run, ref_losses, run, losses):
    """{"matches", "max_rel_diff", "reason"}: does a run reproduce the C reference run, every batch
    loss and both accuracies within TOLERANCE (relative)?"""
    if len(losses) != len(ref_losses) or run["diverged_at"] != ref_run["diverged_at"]:
        how = lambda r, n: ("diverged at iteration %d" % r["diverged_at"] if r["diverged"] else "ran %d steps" % n)
        return {"matches": False, "max_rel_diff": None,
                "reason": "it %s, the C reference %s" % (how(run, len(losses)), how(ref_run, len(ref_losses)))}
    diffs = [_rel_diff(a, b) for a, b in zip(losses, ref_losses)]
    diffs += [_rel_diff(run[k], ref_run[k]) for k in ("train_accuracy", "test_accuracy")]
    worst = max(diffs) if diffs else 0.0
    out = {"matches": worst <= TOLERANCE, "max_rel_diff": worst, "reason": None}
    if not out["matches"]:
        i = next(i for i, x in enumerate(diffs) if not x <= TOLERANCE)   # the first, so the step to look at
        if i < len(losses):
            out["reason"] = "the batch loss first differs at iteration %d (%.10g, the C reference's %.10g)" % (
                i, losses[i], ref_losses[i])
        else:
            k = ("train_accuracy", "test_accuracy")[i - len(losses)]
            out["reason"] = "the %s accuracy is %.4f%%, the C reference's %.4f%%" % (
                k.split("_")[0].replace("train", "training"), 100 * run[k], 100 * ref_run[k])
        out["reason"] += "; max rel. diff %.2g" % worst
    return out


def run_experiments(impl_path, ids, seed=0, iters=None, limit=None, data=None, report_dir=None, log=print):
    """The generated homework folder's ``tryhw4.py --experiment N / --all``: the experiments on the
    student's classifier.py (its make_layer and make_model build the models, its five functions
    train them), each run compared with pynet's C loop; prints the results and writes the report
    to ``report_dir`` if given. Returns the exit status (1 if an experiment could not run)."""
    from .. import datasets, experiments as ex, report
    impl = Implementation(impl_path)
    log("implementation: %s (homework check: %d of %d passed)" % (impl.name, impl.check["passed"], impl.check["total"]))
    c = impl.module
    builders = {
        "softmax": lambda i, o: c.make_model([c.make_layer(i, o, pynet.SOFTMAX)]),
        "neural_net": lambda i, o, a: c.make_model([c.make_layer(i, 32, a), c.make_layer(32, o, pynet.SOFTMAX)]),
        "three_layer_net": lambda i, o, a: c.make_model([c.make_layer(i, 64, a), c.make_layer(64, 32, a),
                                                         c.make_layer(32, o, pynet.SOFTMAX)]),
    }
    sources = []

    def load(name):
        try:
            train, test = (datasets.load(name, split, root=data, bias=True) for split in ("train", "test"))
        except (FileNotFoundError, ValueError) as e:
            raise ex.MissingData("%s: %s" % (name, e)) from None
        if limit:
            train, test = train.head(limit), test.head(limit)
        sources.append("%s (%d training and %d test examples)" % (name, train.X.rows, test.X.rows))
        return train, test

    runner = ex.Runner(builders, load, seed=seed, iters=iters, progress=False, log=log, impl=impl)
    status = 0
    try:
        for exp_id in ex.resolve(ids):
            reason = ex.skip_reason(exp_id, [d for d in ex.EXPERIMENTS[exp_id].get("needs", [])
                                             if d not in runner.results])
            if reason:
                log("%s skipped: %s" % (exp_id, reason))
                status = 1
                continue
            try:
                runner.run(exp_id)
            except ex.MissingData as e:
                runner.results.pop(exp_id, None)
                runner.timings.pop(exp_id, None)
                log("%s skipped: %s" % (exp_id, str(e).splitlines()[0]))
                status = 1
    except ImplementationError as e:
        log("stopped: %s" % e)
        return 1
    for result in runner.results.values():
        for r in result["runs"]:
            log(describe(r))
    log(summary(impl.name, runner.results))
    if report_dir and runner.results:
        os.makedirs(report_dir, exist_ok=True)
        meta = {"seed": seed, "iters": iters, "limit": limit, "version": pynet.__version__,
                "threads": pynet.get_threads(), "data": "; ".join(sources),
                "implementation": {"file": impl.name, "check": impl.check}}
        report.write_json(os.path.join(report_dir, "results.json"),
                          dict(meta, experiments=runner.results))
        report.write_report(report_dir, runner.results, runner.timings, meta)
        log("report: %s" % os.path.join(report_dir, "report.md"))
    return status
