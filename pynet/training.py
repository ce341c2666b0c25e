"""pynet.training — training beyond the homework's ``train_model``: the tricks the lecture lists
(weight decay and momentum, which the homework has, plus Adam, dropout, gradient clipping and
learning-rate schedules), shuffled epochs, a validation split with early stopping that keeps the
best weights, and input standardisation learnt from the training data.

The steps themselves run in C (``train_steps`` in csrc/train.c); this module only arranges epochs,
evaluates, and keeps the record. Everything random (the validation split, each epoch's shuffle,
dropout masks) comes from pynet's one generator, so ``set_seed`` makes a run repeatable.
"""
import functools
import time

import numpy as np

from ._native import _index, check, ffi, lib
from . import checkpoint as _checkpoint
from . import config
from .config import OPTIMIZERS, SCHEDULES, train_config  # noqa: F401  re-exported
from ._progress import Progress, progress_enabled
from .classifier import forget_input, model_handle
from .data import Data
from .data import Standardizer, data_handle, split_validation  # noqa: F401  Standardizer, split_validation re-exported
from .evaluate import evaluate_model  # noqa: F401  re-exported
from .diagnostics import Recorder, diagnostics_every
from .steps import errors_from, run_steps

__all__ = ["fit", "History", "Standardizer", "evaluate_model", "train_config", "split_validation",
           "OPTIMIZERS", "SCHEDULES"]

_INT_MAX = 2**31 - 1   # the C core counts training steps in C ints


class History:
    """What fit did: one dict per epoch (``epoch``, ``train_loss``, ``train_accuracy`` — measured on
    the training batches as they went by, dropout on — ``val_loss``, ``val_accuracy``, ``rate``,
    ``seconds``), every step's loss, the best epoch (by validation accuracy), whether early
    stopping ended the run, whether Ctrl-C (SIGINT) did (``interrupted``), and ``diagnostics``
    (None unless fit was asked for them)."""

    def __init__(self):
        self.epochs = []
        self.losses = np.empty(0)
        self.best_epoch = None
        self.stopped_early = False
        self.interrupted = False   # True when Ctrl-C (SIGINT) stopped fit early
        self.seconds = 0.0
        self.diagnostics = None   # fit(..., diagnostics=N): pynet.diagnostics.Recorder.result()

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


def _check_step_count(name, epochs, steps_per_epoch, train_rows, batch):
    """``epochs`` epochs of ``steps_per_epoch`` steps must fit the C int that counts steps."""
    limit = _INT_MAX // steps_per_epoch
    if epochs > limit:
        raise ValueError("%s must be at most %d here, got %d: at %d steps per epoch (%d training rows, batch %d) "
                         "%d epochs are %d steps, more than the %d a C int can count"
                         % (name, limit, epochs, steps_per_epoch, train_rows, batch, epochs, epochs * steps_per_epoch,
                            _INT_MAX))
    return epochs * steps_per_epoch


LAST_BATCH = ("drop", "fill")


def fit(m, d, y=None, *, epochs=10, shuffle=True, last_batch="drop", validation=None, patience=None, progress=None,
        on_epoch=None, diagnostics=None, checkpoint=None, resume=None, **options):
    """Train m on d for ``epochs`` passes over shuffled data. Returns a History.

    ``fit(m, X, y)`` takes arrays instead of a Data: X (n × features) and y as integer class
    indices, class names (strings), an (n, 1) column of either, or one-hot rows (see
    pynet.inference: names map through ``m.labels``, else their sorted unique values, which
    then become ``m.labels``). X is used as given: ``m.standardizer`` is not applied.

    - ``optimizer``: "sgd" (the homework's update, rate divided by batch) or "adam" (decoupled weight
      decay, rate used as is).
    - ``schedule``: "constant", "step" (multiply by ``gamma`` every ``step_size`` epochs) or "cosine"
      (half cosine from ``rate`` to ``min_rate`` over the run); ``warmup`` epochs of linear warm-up.
    - ``clip``: rescale each step's gradient (of the mean loss) to global norm at most ``clip``.
    - ``l2``: an L2 penalty (l2/2)·Σ‖w‖² added to each batch's summed loss, so to the mean loss
      (l2/(2·batch))·Σ‖w‖² (scikit-learn's ``alpha``): its gradient goes through clipping and the
      optimiser, Adam's moments included, unlike ``decay`` (for SGD the two are the same).
    - ``shuffle``: False takes each epoch's rows in order instead of a fresh permutation.
    - ``last_batch``: what becomes of the rows left over after each epoch's whole batches (n % batch
      of them): "drop" (the default) skips them, a different few each epoch when shuffling, so an
      epoch is n // batch steps; "fill" trains on them too, in a last batch filled up with the first
      rows of that epoch's order, so that every row is used every epoch and an epoch is ceil(n /
      batch) steps, as many as scikit-learn's (whose last batch is a smaller one instead).
      MLPClassifier uses "fill". Either way every step has ``batch`` rows.
    - ``validation``: a Data, or a fraction of d to hold out. With it, each epoch is evaluated, the
      best weights (by validation accuracy) are restored at the end, and ``patience`` (epochs
      without improvement) enables early stopping.
    - ``on_epoch(record)``: called after each epoch with its dict; return True to stop.
    - ``diagnostics``: N (or True: 10) records per-layer statistics of every N-th step, counted over
      the whole run, in ``History.diagnostics`` (pynet.diagnostics, docs/TRAINING.md).
    - Ctrl-C (SIGINT): training stops at the end of the current step and fit returns normally, with
      ``history.interrupted`` True, the best weights so far restored (with validation) or the last
      ones kept, and the finished epochs in the History (the unfinished one's steps in ``losses``).
      A second Ctrl-C within 10 s of one that stopped a fit (this one or an earlier one) raises
      KeyboardInterrupt (pynet.checkpoint.Aborted) at once, so that a loop of fits can be left.
    - ``checkpoint``: a path where the whole training state (weights, momentum or Adam's moments,
      step count and so schedule position, pynet's generator, the history, the best weights) is
      saved atomically after every epoch (pynet/checkpoint.py). ``resume``: such a path to continue
      from, with the same model shapes, data and settings (``epochs`` may change except with the
      cosine schedule); the resumed run ends with the same weights, bit for bit, as one that was
      never stopped. A checkpoint of other settings is refused (CheckpointError, naming both).
    Raises DivergedError if the loss, or a weight after an update, becomes NaN or infinite (naming
    the step, and the layer and any non-finite input), and ValueError or TypeError naming
    the argument for a bad setting (before any training): a rate that is not > 0, momentum outside
    [0, 1), a negative decay, min_rate outside [0, rate], a step schedule's gamma <= 0, or epochs,
    warmup or step_size so large that the run's step count would not fit a C int.
    """
    # every training option, defaults filled in; a bad name is Python's own TypeError, unprefixed
    options = config.user_options("fit", options)
    with errors_from("fit"):   # every check happens here, before any training
        model_handle(m)   # TypeError if m is not a Model
        if y is None:
            data_handle(d)   # TypeError if d is not a Data
        else:
            d = _arrays_to_data(m, d, y)
        epochs = _index(epochs, "epochs", 1)
        batch = _index(options["batch"], "batch", 1)
        every = diagnostics_every(diagnostics)
        warmup = _index(options["warmup"], "warmup", 0)
        step_size = options["step_size"]
        if step_size is not None:
            step_size = _index(step_size, "step_size", 1)
        elif str(options["schedule"]).strip().lower() == "step":   # a missing argument (its range is C's)
            raise ValueError("the step schedule needs step_size (epochs between rate cuts)")
        options.update(batch=batch, warmup=warmup, step_size=step_size)
        if patience is not None:
            patience = _index(patience, "patience", 1)
            if validation is None:
                raise ValueError("early stopping (patience) needs validation data or a validation fraction")
        rng_start = _checkpoint.rng_state()
        if resume is not None:   # the validation split must be drawn as the interrupted run drew it
            _checkpoint.set_rng_state(_checkpoint.rng_start(resume))
            rng_start = _checkpoint.rng_state()
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
        if last_batch not in LAST_BATCH:
            raise ValueError("last_batch must be one of %s, got %r" % (", ".join(map(repr, LAST_BATCH)), last_batch))
        steps_per_epoch = len(train_rows) // batch
        if last_batch == "fill" and steps_per_epoch and len(train_rows) % batch:
            steps_per_epoch += 1
        if steps_per_epoch < 1:
            raise ValueError("batch %d is larger than the %d training rows" % (batch, len(train_rows)))
        count = functools.partial(_check_step_count, steps_per_epoch=steps_per_epoch, train_rows=len(train_rows),
                                  batch=batch)
        total = count("epochs", epochs)
        warmup_steps = count("warmup", warmup)
        step_steps = None
        if step_size is not None and config.OPTIONS_BY_NAME["schedule"].to_c(options["schedule"]) == lib.PN_STEP:
            step_steps = count("step_size", step_size)
        # options in epochs become steps; pn_check_config is the one range check, shared with train_model
        cfg = config.make_config("fit", **dict(options, warmup=warmup_steps, step_size=step_steps, total_steps=total))
        try:
            losses = np.full(total, np.nan)
            correct = np.zeros(total, dtype=np.int32)
        except MemoryError:
            raise MemoryError("not enough memory to record the loss of each of the %d steps of %d epochs (%.3g "
                              "GiB); train for fewer epochs or with a larger batch"
                              % (total, epochs, total * 12 / 2**30)) from None
    # what a checkpoint must agree on to be resumed: every option as given (choices by name), and more
    settings = {k: str(v).strip().lower() if isinstance(config.OPTIONS_BY_NAME[k].kind, dict) else v
                for k, v in options.items()}
    settings.update({"shuffle": bool(shuffle), "last_batch": last_batch, "patience": patience,
                     "validation": validation if validation is None or not isinstance(validation, Data)
                     else "a Data of %d rows" % validation.X.rows,
                     "layers": [[l.activation.name if hasattr(l.activation, "name") else str(l.activation),
                                 l.dropout] for l in m.layers]})
    if cfg.schedule == lib.PN_COSINE:
        settings["epochs"] = epochs   # the cosine's length; other schedules can be resumed for more epochs
    show = progress_enabled(progress)
    history = History()
    history.losses = losses
    recorder = Recorder(m, every, batch) if every else None
    best = (-1.0, np.inf)
    best_weights, since_best = None, 0
    start = time.perf_counter()
    step, first_epoch = 0, 1
    if resume is not None:
        meta, saved = _checkpoint.load(resume, m, settings, train_rows)
        step, first_epoch = meta["step"], meta["epoch"] + 1
        if step > total:
            raise ValueError("fit: cannot resume from %s: it is %d epochs in, more than epochs=%d"
                             % (resume, meta["epoch"], epochs))
        _checkpoint.restore(m, saved)
        history.losses[:step], correct[:step] = saved["losses"], saved["correct"]
        history.epochs, history.best_epoch = meta["epochs"], meta["best_epoch"]
        best, since_best = tuple(meta["best"]), meta["since_best"]
        best_weights = _checkpoint.best_weights(m, saved)
        if patience is not None and since_best >= patience:
            history.stopped_early, first_epoch = True, epochs + 1
    with _checkpoint.deferred_sigint() as interrupt:
        try:
            step = _epochs(m, d, cfg, history, correct, first_epoch, epochs, step, steps_per_epoch, batch, shuffle,
                           train_rows, val, patience, show, on_epoch, options["rate"], interrupt,
                           functools.partial(_checkpoint.save, checkpoint, settings=settings, rng_start=rng_start,
                                             train_rows=train_rows, correct=correct) if checkpoint else None,
                           [best, best_weights, since_best], recorder)
        except _checkpoint.Aborted:   # a second Ctrl-C soon after the first: out, at once
            raise
        except KeyboardInterrupt:   # SIGINT outside the main thread's default handler
            history.interrupted = True
            step = history._step
    history.losses = history.losses[:step]
    if recorder:
        history.diagnostics = recorder.result()
    if history._best_weights is not None:   # (the same values when the last finished epoch was the best)
        _restore(m, history._best_weights)
    del history._best_weights, history._step
    forget_input(m)
    history.seconds = time.perf_counter() - start
    return history


def _epochs(m, d, cfg, history, correct, first_epoch, epochs, step, steps_per_epoch, batch, shuffle, train_rows, val,
            patience, show, on_epoch, rate, interrupt, save, best_state, recorder):
    """fit's loop over epochs from first_epoch; returns the steps done. Stops at the end of a step
    when interrupt.requested becomes True (a deferred SIGINT), setting history.interrupted."""
    best, best_weights, since_best = best_state
    history._best_weights, history._step = best_weights, step
    perm = np.empty(len(train_rows), dtype=np.int32)
    perm_ptr = ffi.cast("int *", ffi.from_buffer(perm))
    rows = np.empty(steps_per_epoch * batch, dtype=np.int32)
    handle, cd = model_handle(m), data_handle(d)
    for epoch in range(first_epoch, epochs + 1):
        t0 = time.perf_counter()
        if shuffle:
            check(lib.shuffle_indices(perm_ptr, len(train_rows)))
        else:
            perm[:] = np.arange(len(train_rows), dtype=np.int32)
        if len(rows) <= len(perm):
            rows[:] = train_rows[perm[:len(rows)]]
        else:   # last_batch="fill": the last batch is filled up with the epoch's first rows
            rows[:len(perm)] = train_rows[perm]
            rows[len(perm):] = train_rows[perm[:len(rows) - len(perm)]]
        bar = Progress(steps_per_epoch, "epoch %d/%d" % (epoch, epochs), unit="step", enabled=show,
                       tenths=False)

        def after_chunk(done, start=step):
            history._step = start + done
            if interrupt.requested and done < steps_per_epoch:   # (a finished epoch is still recorded)
                return True
            bar.update(done, loss=float(np.mean(history.losses[max(start + done - 50, 0):start + done])))

        done = run_steps(handle, cd, cfg, history.losses, step, steps_per_epoch, fn="fit", rows=rows, batch=batch,
                         correct=correct, recorder=recorder, after_chunk=after_chunk, max_chunk=steps_per_epoch,
                         diverged_message=lambda bad: (
                             "fit: the loss became %s at step %d (epoch %d), so training stopped there. The "
                             "learning rate %g is probably too high: try a lower one, or gradient clipping (clip)."
                             % (history.losses[bad], bad, epoch, rate)))
        step += done
        if done < steps_per_epoch:   # interrupted
            bar.close(quiet=True)
            history.interrupted = True
            return step
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
                history._best_weights = best_weights
            else:
                since_best += 1
        record["seconds"] = time.perf_counter() - t0
        history.epochs.append(record)
        if save is not None:
            save(m, epoch=epoch, step=step, history=history, since_best=since_best, best=best,
                 best_weights=best_weights)
        if show:
            _print_epoch(record, epochs)
        if on_epoch is not None and on_epoch(record):
            break
        if interrupt.requested:   # a SIGINT during the evaluation or on_epoch
            history.interrupted = True
            break
        if patience is not None and since_best >= patience:
            history.stopped_early = True
            break
    return step


def _arrays_to_data(m, X, y):
    """The Data fit(m, X, y) trains on; sets m.labels from string labels when it has none."""
    from .data import make_data
    from .inference import class_indices
    if isinstance(X, Data):
        raise TypeError("give either fit(m, d) with a Data or fit(m, X, y) with arrays, not a Data and y")
    classes = m.layers[-1].outputs
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] > 1:
        return make_data(X, y_arr, labels=m.labels)
    indices, labels = class_indices(y_arr, m.labels, classes)
    d = make_data(X, indices, classes=classes, labels=labels)
    if m.labels is None and labels is not None:
        m.labels = list(labels)
    return d


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


fit.__signature__ = config.signature_with_options(fit, ("m", "d", "y", "epochs"),
                                                  ("shuffle", "validation", "patience", "progress", "on_epoch",
                                                   "diagnostics", "checkpoint", "resume"))
