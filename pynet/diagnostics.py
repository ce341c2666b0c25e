"""pynet.diagnostics — what the layers look like while a model trains: per layer, every N steps,
the norm of the weight gradient, the fraction of dead ReLU units, the fraction of saturated
logistic/tanh outputs and the size of the update relative to the weights (docs/TRAINING.md,
"Diagnostics while training"). ``train_model`` and ``fit`` record them on request
(``diagnostics=N``, or ``True`` for every 10 steps); ``plot_diagnostics`` draws them.

The training loops run the C steps in chunks that end on every N-th step, with that step alone in
its own chunk so the weights can be copied just before it; the statistics are then computed with
NumPy on zero-copy views of the layers' ``out`` and, for the norms of ``dw``, ``w`` and the update, by
one C call per layer (``layer_step_norms``, csrc/model.c), so they describe that one step
(the last of each N), not an average over the N.
"""
import operator

import numpy as np

from ._native import check, ffi, lib

__all__ = ["DEFAULT_EVERY", "diagnostics_every", "Recorder", "summary", "to_json", "plot_diagnostics"]

DEFAULT_EVERY = 10            # diagnostics=True records every 10 steps
LOGISTIC_SATURATION = 0.49    # a logistic output y is saturated when |y − ½| > 0.49
TANH_SATURATION = 0.98        # a tanh output y is saturated when |y| > 0.98
KEYS = ("grad_norm", "dead", "saturated", "update_ratio")


def diagnostics_every(value, name="diagnostics"):
    """N, the steps between records, from a ``diagnostics=`` argument: None or False (off) give
    None, True gives DEFAULT_EVERY, a positive integer gives itself; anything else is an error
    naming ``name``."""
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_EVERY
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError("%s must be True, False/None or a positive integer (record every N steps), got %r"
                        % (name, value)) from None
    if n < 1:
        raise ValueError("%s must be a positive integer (record every N steps), got %d" % (name, n))
    return n


class Recorder:
    """Records the diagnostics of model ``m`` trained with batches of ``batch`` rows every ``every``
    steps. The loop asks ``limit(done, n)`` how many of n steps it may run next, calls
    ``before(done, n)`` just before running them and ``after(done + n)`` once they have run;
    ``result()`` is the record (see docs/TRAINING.md)."""

    def __init__(self, m, every, batch):
        self.every, self.batch = every, batch
        self.layers = m.layers
        self.activations = [l.activation.name for l in self.layers]
        self._relu = [a == "RELU" for a in self.activations]
        self._saturation = [(0.5, LOGISTIC_SATURATION) if a == "LOGISTIC" else (0.0, TANH_SATURATION) if a == "TANH"
                            else None for a in self.activations]
        self._before = [np.empty((l.inputs, l.outputs)) for l in self.layers]
        self._before_ptr = [ffi.cast("double *", ffi.from_buffer(b)) for b in self._before]
        self._norms = np.zeros(3)
        self._norms_ptr = ffi.cast("double *", ffi.from_buffer(self._norms))
        self.next = every             # steps done (1-based count) at the next record
        self.steps = []
        self.values = {k: [[] for _ in self.layers] for k in KEYS}

    def limit(self, done, n):
        """How many of the n steps after ``done`` to run in the next C call: so that a chunk ends
        just before a recorded step, and that step runs alone."""
        to_go = self.next - done      # >= 1: the recorded step is the to_go-th from here
        return 1 if to_go == 1 else min(n, to_go - 1)

    def before(self, done, n):
        """Copy the weights if the next chunk is the recorded step."""
        if done + n == self.next:
            for l, copy in zip(self.layers, self._before):
                np.copyto(copy, l.w.data)

    def after(self, done):
        """Record the step that brought the count to ``done``, if it is one to record."""
        if done != self.next:
            return
        self.next += self.every
        self.steps.append(done)
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging run's norms are inf, truly
            self._record()

    def _record(self):
        for i, l in enumerate(self.layers):
            # ‖dw‖, ‖w before‖, ‖w after − w before‖ in one C call (csrc/model.c layer_step_norms)
            check(lib.layer_step_norms(l._ptr, self._before_ptr[i], self._norms_ptr))
            grad, w_norm, step = self._norms
            # dw is the homework's inᵀ·(y − p): minus the gradient of the batch's summed loss
            self.values["grad_norm"][i].append(grad / self.batch)
            self.values["update_ratio"][i].append(step / w_norm if w_norm > 0 else np.inf)
            if self._relu[i] or self._saturation[i] is not None:
                out = l.out.data
                if self._relu[i]:
                    alive = np.count_nonzero(np.any(out != 0, axis=0))
                    self.values["dead"][i].append(1.0 - alive / out.shape[1])
                else:
                    centre, limit = self._saturation[i]
                    self.values["saturated"][i].append(np.count_nonzero(np.abs(out - centre) > limit) / out.size)

    def result(self):
        """The record: a dict with ``every``, ``activations`` (one name per layer), ``step`` (the
        1-based step counts recorded: every, 2·every, …) and, for each of ``grad_norm``, ``dead``,
        ``saturated`` and ``update_ratio``, a list with one entry per layer: an array over the
        recorded steps, or None where the statistic does not apply (dead: RELU layers only;
        saturated: LOGISTIC and TANH layers only)."""
        r = {"every": self.every, "activations": list(self.activations),
             "step": np.array(self.steps, dtype=np.int64)}
        applies = {"grad_norm": [True] * len(self.layers), "dead": self._relu,
                   "saturated": [s is not None for s in self._saturation], "update_ratio": [True] * len(self.layers)}
        for k in KEYS:
            r[k] = [np.array(v, dtype=np.float64) if ok else None for v, ok in zip(self.values[k], applies[k])]
        return r


def attach(error, recorder):
    """``error`` (a DivergedError) with ``error.diagnostics``: what was recorded before the run
    diverged, or None without a recorder."""
    error.diagnostics = recorder.result() if recorder else None
    return error


def to_json(diagnostics):
    """The record as plain lists (None stays None; an infinite ratio becomes None), for results.json."""
    def values(a):
        return None if a is None else [float(x) if np.isfinite(x) else None for x in a]
    r = {"every": diagnostics["every"], "activations": list(diagnostics["activations"]),
         "step": [int(s) for s in diagnostics["step"]]}
    for k in KEYS:
        r[k] = [values(a) for a in diagnostics[k]]
    return r


def summary(diagnostics):
    """One line on the last recorded step, layer by layer (or that nothing was recorded)."""
    steps = diagnostics["step"]
    if len(steps) == 0:
        return "diagnostics: no step recorded (the run had fewer than %d steps)" % diagnostics["every"]
    parts = []
    for i, a in enumerate(diagnostics["activations"]):
        text = "layer %d %s: gradient norm %.3g, update ratio %.3g" % (
            i, a, diagnostics["grad_norm"][i][-1], diagnostics["update_ratio"][i][-1])
        if diagnostics["dead"][i] is not None:
            text += ", dead %.1f%%" % (100 * diagnostics["dead"][i][-1])
        if diagnostics["saturated"][i] is not None:
            text += ", saturated %.1f%%" % (100 * diagnostics["saturated"][i][-1])
        parts.append(text)
    return "diagnostics at step %d (recorded every %d steps): %s" % (steps[-1], diagnostics["every"], "; ".join(parts))


def plot_diagnostics(diagnostics, path=None, title=None):
    """Two panels from a record (``History.diagnostics``, train_model's, or its JSON form): the weight
    gradient norm of every layer against the step on a log scale, and the fraction of dead units of
    every RELU layer against the step. Saves to ``path`` if given; returns the matplotlib Figure.
    Needs matplotlib (an optional extra)."""
    import matplotlib
    matplotlib.use("Agg")   # files, not windows, as in pynet.report
    import matplotlib.pyplot as plt
    steps = np.asarray(diagnostics["step"])
    names = ["layer %d (%s)" % (i, a) for i, a in enumerate(diagnostics["activations"])]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, g in zip(names, diagnostics["grad_norm"]):
        g = np.asarray([np.nan if x is None else x for x in g], dtype=np.float64)
        left.plot(steps, np.where(g > 0, g, np.nan), label=name)
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel("‖∂L/∂w‖ (mean loss)")
    left.set_title("weight gradient norm")
    left.legend(fontsize="small")
    any_relu = False
    for name, d in zip(names, diagnostics["dead"]):
        if d is not None:
            any_relu = True
            right.plot(steps, [np.nan if x is None else x for x in d], label=name)
    right.set_xlabel("step")
    right.set_ylabel("fraction of units")
    right.set_ylim(-0.02, 1.02)
    right.set_title("dead ReLU units")
    if any_relu:
        right.legend(fontsize="small")
    else:
        right.text(0.5, 0.5, "no RELU layer", ha="center", va="center", transform=right.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
