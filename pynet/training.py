"""pynet.training — training beyond the homework's ``train_model``: the tricks the lecture lists
(weight decay and momentum, which the homework has, plus Adam, dropout, gradient clipping and
learning-rate schedules), shuffled epochs, a validation split with early stopping that keeps the
best weights, and input standardisation learnt from the training data.

The steps themselves run in C (``train_steps`` in csrc/train.c); this module only arranges epochs,
evaluates, and keeps the record. Everything random (the validation split, each epoch's shuffle,
dropout masks) comes from pynet's one generator, so ``set_seed`` makes a run repeatable.
"""
import contextlib
import functools
import time

import numpy as np

from ._native import DivergedError, _index, diverged, _number, call, check, ffi, lib, raise_last
from ._progress import Progress, progress_enabled
from .classifier import Model, forget_input, model_handle
from .data import Data, Standardizer, data_handle, split_validation   # the last two re-exported here
from .evaluate import evaluate_model   # re-exported here, where it was

__all__ = ["fit", "History", "Standardizer", "evaluate_model", "train_config", "split_validation",
           "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = {"sgd": lib.PN_SGD, "adam": lib.PN_ADAM}
SCHEDULES = {"constant": lib.PN_CONSTANT, "step": lib.PN_STEP, "cosine": lib.PN_COSINE}


_INT_MAX = 2**31 - 1   # the C core counts training steps in C ints


def _choice(value, options, name):
    key = str(value).strip().lower()
    if key not in options:
        raise ValueError("unknown %s %r; valid: %s" % (name, value, ", ".join(options)))
    return options[key]


def train_config(*, batch=128, rate=0.01, momentum=0.9, decay=0.0, optimizer="sgd", beta1=0.9, beta2=0.999,
                 eps=1e-8, schedule="constant", warmup=0, step_size=None, gamma=0.1, total_steps=None,
                 min_rate=0.0, clip=0.0, l2=0.0):
    """A C ``train_config`` (see csrc/pynet_api.h) from keyword arguments, checked."""
    c = ffi.new("train_config *")
    c[0] = lib.default_train_config()
    c.batch = _index(batch, "batch", 1)
    c.rate, c.momentum, c.decay = _number(rate, "rate"), _number(momentum, "momentum"), _number(decay, "decay")
    c.optimizer = _choice(optimizer, OPTIMIZERS, "optimizer")
    c.beta1, c.beta2, c.eps = _number(beta1, "beta1"), _number(beta2, "beta2"), _number(eps, "eps")
    c.schedule = _choice(schedule, SCHEDULES, "schedule")
    c.warmup = _index(warmup, "warmup", 0)
    if c.schedule == lib.PN_STEP:
        if step_size is None:
            raise ValueError("the step schedule needs step_size (steps between rate cuts)")
        c.step_size = _index(step_size, "step_size", 1)
    c.gamma = _number(gamma, "gamma")
    if c.schedule == lib.PN_COSINE:
        if total_steps is None:
            raise ValueError("the cosine schedule needs total_steps")
        c.total_steps = _index(total_steps, "total_steps", 1)
    c.min_rate = _number(min_rate, "min_rate")
    c.clip = _number(clip, "clip")
    if c.clip < 0:
        raise ValueError("clip must be >= 0 (0: off), got %g" % c.clip)
    c.l2 = _number(l2, "l2")
    if c.l2 < 0:
        raise ValueError("l2 must be >= 0 (0: off), got %g" % c.l2)
    return c


class History:
    """What fit did: one dict per epoch (``epoch``, ``train_loss``, ``train_accuracy`` — measured on
    the training batches as they went by, dropout on — ``val_loss``, ``val_accuracy``, ``rate``,
    ``seconds``), every step's loss, the best epoch (by validation accuracy) and whether early
    stopping ended the run."""

    def __init__(self):
        self.epochs = []
        self.losses = np.empty(0)
        self.best_epoch = None
        self.stopped_early = False
        self.seconds = 0.0

    def __repr__(self):
        last = self.epochs[-1] if self.epochs else {}
        return "History(%d epochs, best %s, last %s)" % (len(self.epochs), self.best_epoch, last)


def _snapshot(m):
    return [(l.w.data.copy(), None if l.b is None else l.b.data.copy()) for l in m.layers]


def _restore(m, snap):
    for l, (w, b) in zip(m.layers, snap):
        l.w = w
        if b is not None:
            l.b = b


@contextlib.contextmanager
def _errors_from(fn, core="train_model"):
    """Make the plain ValueErrors, TypeErrors and MemoryErrors raised inside say that they come from
    ``fn`` (the public function the user called): "fn: message", also replacing the "core: " that
    the C core's messages start with. The exception itself (type, traceback) is kept."""
    try:
        yield
    except (ValueError, TypeError, MemoryError) as e:
        if type(e) in (ValueError, TypeError, MemoryError) and len(e.args) == 1 and isinstance(e.args[0], str):
            message = e.args[0]
            if message.startswith(core + ": "):
                message = message[len(core) + 2:]
            if not message.startswith(fn + ": "):
                e.args = ("%s: %s" % (fn, message),)
        raise


def _check_step_count(name, epochs, steps_per_epoch, train_rows, batch):
    """``epochs`` epochs of ``steps_per_epoch`` steps must fit the C int that counts steps."""
    limit = _INT_MAX // steps_per_epoch
    if epochs > limit:
        raise ValueError("%s must be at most %d here, got %d: at %d steps per epoch (%d training rows, batch %d) "
                         "%d epochs are %d steps, more than the %d a C int can count"
                         % (name, limit, epochs, steps_per_epoch, train_rows, batch, epochs, epochs * steps_per_epoch,
                            _INT_MAX))
    return epochs * steps_per_epoch


def fit(m, d, *, epochs=10, batch=128, optimizer="sgd", rate=0.01, momentum=0.9, decay=0.0, beta1=0.9,
        beta2=0.999, eps=1e-8, schedule="constant", warmup=0, step_size=None, gamma=0.1, min_rate=0.0,
        clip=0.0, l2=0.0, shuffle=True, validation=None, patience=None, progress=None, on_epoch=None):
    """Train m on d for ``epochs`` passes over shuffled data (the last partial batch of each epoch
    is dropped). Returns a History.

    - ``optimizer``: "sgd" (the homework's update, rate divided by batch) or "adam" (decoupled weight
      decay, rate used as is).
    - ``schedule``: "constant", "step" (multiply by ``gamma`` every ``step_size`` epochs) or "cosine"
      (half cosine from ``rate`` to ``min_rate`` over the run); ``warmup`` epochs of linear warm-up.
    - ``clip``: rescale each step's gradient (of the mean loss) to global norm at most ``clip``.
    - ``l2``: an L2 penalty (l2/2)·Σ‖w‖² added to each batch's summed loss, so to the mean loss
      (l2/(2·batch))·Σ‖w‖² (scikit-learn's ``alpha``): its gradient goes through clipping and the
      optimiser, Adam's moments included, unlike ``decay`` (for SGD the two are the same).
    - ``shuffle``: False takes each epoch's rows in order instead of a fresh permutation.
    - ``validation``: a Data, or a fraction of d to hold out. With it, each epoch is evaluated, the
      best weights (by validation accuracy) are restored at the end, and ``patience`` (epochs
      without improvement) enables early stopping.
    - ``on_epoch(record)``: called after each epoch with its dict; return True to stop.
    Raises DivergedError if the loss, or a weight after an update, becomes NaN or infinite (naming
    the step, and the layer and any non-finite input), and ValueError or TypeError naming
    the argument for a bad setting (before any training): a rate that is not > 0, momentum outside
    [0, 1), a negative decay, min_rate outside [0, rate], a step schedule's gamma <= 0, or epochs,
    warmup or step_size so large that the run's step count would not fit a C int.
    """
    with _errors_from("fit"):   # every check happens here, before any training
        (cm, lock), cd = model_handle(m), data_handle(d)
        epochs = _index(epochs, "epochs", 1)
        batch = _index(batch, "batch", 1)
        warmup = _index(warmup, "warmup", 0)
        if step_size is not None:
            step_size = _index(step_size, "step_size", 1)
        if patience is not None:
            patience = _index(patience, "patience", 1)
            if validation is None:
                raise ValueError("early stopping (patience) needs validation data or a validation fraction")
        if validation is None:
            train_rows, val = np.arange(d.X.rows, dtype=np.int32), None
        elif isinstance(validation, Data):
            train_rows, val = np.arange(d.X.rows, dtype=np.int32), validation
            if val.X.cols != m.layers[0].inputs or val.y.cols != m.layers[-1].outputs or val.X.rows == 0:
                # found now rather than after the first epoch's training
                raise ValueError("the validation data is %dx%d with %d classes but the model takes %d features "
                                 "and gives %d classes" % (val.X.rows, val.X.cols, val.y.cols, m.layers[0].inputs,
                                                           m.layers[-1].outputs))
        else:
            train_rows, val = split_validation(d, validation)
        steps_per_epoch = len(train_rows) // batch
        if steps_per_epoch < 1:
            raise ValueError("batch %d is larger than the %d training rows" % (batch, len(train_rows)))
        count = functools.partial(_check_step_count, steps_per_epoch=steps_per_epoch, train_rows=len(train_rows),
                                  batch=batch)
        total = count("epochs", epochs)
        warmup_steps = count("warmup", warmup)
        step_steps = None
        if step_size is not None and _choice(schedule, SCHEDULES, "schedule") == lib.PN_STEP:
            step_steps = count("step_size", step_size)
        cfg = train_config(batch=batch, rate=rate, momentum=momentum, decay=decay, optimizer=optimizer, beta1=beta1,
                           beta2=beta2, eps=eps, schedule=schedule, warmup=warmup_steps, step_size=step_steps,
                           gamma=gamma, total_steps=total, min_rate=min_rate, clip=clip, l2=l2)
        check(lib.pn_check_config(b"fit", cfg))   # the one range check, shared with train_model
        try:
            losses = np.full(total, np.nan)
            correct = np.zeros(total, dtype=np.int32)
        except MemoryError:
            raise MemoryError("not enough memory to record the loss of each of the %d steps of %d epochs (%.3g "
                              "GiB); train for fewer epochs or with a larger batch"
                              % (total, epochs, total * 12 / 2**30)) from None
    show = progress_enabled(progress)
    history = History()
    history.losses = losses
    losses_ptr = ffi.cast("double *", ffi.from_buffer(history.losses))
    correct_ptr = ffi.cast("int *", ffi.from_buffer(correct))
    perm = np.empty(len(train_rows), dtype=np.int32)
    perm_ptr = ffi.cast("int *", ffi.from_buffer(perm))
    rows = np.empty(steps_per_epoch * batch, dtype=np.int32)
    rows_ptr = ffi.cast("int *", ffi.from_buffer(rows))
    best = (-1.0, np.inf)
    best_weights, since_best = None, 0
    start = time.perf_counter()
    step = 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        if shuffle:
            check(lib.shuffle_indices(perm_ptr, len(train_rows)))
        else:
            perm[:] = np.arange(len(train_rows), dtype=np.int32)
        rows[:] = train_rows[perm[:len(rows)]]
        bar = Progress(steps_per_epoch, "epoch %d/%d" % (epoch, epochs), unit="step", enabled=show,
                       tenths=False)
        done, chunk = 0, 1
        while done < steps_per_epoch:
            n = min(chunk, steps_per_epoch - done)
            t1 = time.perf_counter()
            with lock:   # threads sharing the model take turns (classifier.model_handle)
                status = lib.train_steps(cm, cd, cfg, step, n, rows_ptr + done * batch, losses_ptr + step,
                                         correct_ptr + step)
            if status == lib.PN_ERR_NONFINITE:
                raise diverged(history.losses, step, n, "fit", lambda bad: (
                    "fit: the loss became %s at step %d (epoch %d), so training stopped there. The learning "
                    "rate %g is probably too high: try a lower one, or gradient clipping (clip)."
                    % (history.losses[bad], bad, epoch, rate)))
            if status:
                with _errors_from("fit"):   # the C core's messages say "train_model: "
                    raise_last(status)
            done += n
            step += n
            bar.update(done, loss=float(np.mean(history.losses[max(step - 50, 0):step])))
            chunk = max(1, min(steps_per_epoch, int(n * 0.1 / max(time.perf_counter() - t1, 1e-6))))
        bar.close(quiet=True)
        e0, e1 = step - steps_per_epoch, step
        record = {"epoch": epoch,
                  "train_loss": float(np.mean(history.losses[e0:e1])),
                  "train_accuracy": float(correct[e0:e1].sum()) / (steps_per_epoch * batch),
                  "rate": float(lib.scheduled_rate(cfg, e1 - 1))}
        if val is not None:
            record["val_loss"], record["val_accuracy"] = evaluate_model(m, val)
            if (record["val_accuracy"], -record["val_loss"]) > (best[0], -best[1]):
                best = (record["val_accuracy"], record["val_loss"])
                best_weights, since_best, history.best_epoch = _snapshot(m), 0, epoch
            else:
                since_best += 1
        record["seconds"] = time.perf_counter() - t0
        history.epochs.append(record)
        if show:
            _print_epoch(record, epochs)
        if on_epoch is not None and on_epoch(record):
            break
        if patience is not None and since_best >= patience:
            history.stopped_early = True
            break
    history.losses = history.losses[:step]
    if best_weights is not None and history.best_epoch != history.epochs[-1]["epoch"]:
        _restore(m, best_weights)
    forget_input(m)
    history.seconds = time.perf_counter() - start
    return history


def _print_epoch(r, epochs):
    import sys
    parts = ["epoch %*d/%d" % (len(str(epochs)), r["epoch"], epochs), "loss %.4f" % r["train_loss"],
             "train acc %.2f%%" % (100 * r["train_accuracy"])]
    if "val_accuracy" in r:
        parts.append("val loss %.4f  val acc %.2f%%" % (r["val_loss"], 100 * r["val_accuracy"]))
    parts.append("rate %.3g" % r["rate"])
    parts.append("%.1fs" % r["seconds"])
    sys.stderr.write("  ".join(parts) + "\n")
    sys.stderr.flush()
