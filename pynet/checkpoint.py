"""pynet.checkpoint — what ``fit`` needs to survive Ctrl-C and to resume: a SIGINT that waits for
the end of the current training step, and checkpoint files.

A checkpoint (``fit(..., checkpoint=PATH)``) is a NumPy ``.npz`` archive, written atomically (a
temporary file in the same folder, fsynced, renamed over PATH) at the end of every epoch, that never
holds a pickle (read with ``allow_pickle=False``). Format ``pynet-checkpoint``, version 1. Entries:
``metadata`` (UTF-8 JSON as uint8: format, version, the fit settings, the layer shapes, the epoch
and step reached, the history's epoch records, best epoch and patience count), ``rng_start`` and
``rng`` (uint64 × 4: pynet's generator when fit started and now), ``train_rows`` (int32: the rows
fit trains on, to check the data), ``losses`` and ``correct`` (every step so far), and per layer i
``w{i}``, ``b{i}`` (weights and bias), ``v{i}``, ``vb{i}`` (momentum, or Adam's first moments),
``s{i}``, ``sb{i}`` (Adam's second moments) and ``best_w{i}``, ``best_b{i}`` (the best weights by
validation accuracy, when there are some). Resuming with ``fit(..., resume=PATH)`` puts all of that
back, so the resumed run continues bit for bit as if it had never stopped.
"""
import contextlib
import json
import os
import signal
import threading
import time

import numpy as np

from ._native import check, ffi, lib
from . import config
from ._files import atomic_file

FORMAT = "pynet-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed here: unreadable, or from other settings or shapes."""


class _Interrupt:
    requested = False


class Aborted(KeyboardInterrupt):
    """A second Ctrl-C soon after one that stopped a fit: the user wants out, not another fit stopped
    gently (``cross_val_score`` or ``GridSearchCV`` would otherwise go on with the next fit). fit
    lets it through; it is a KeyboardInterrupt, so whatever is running stops as on any Ctrl-C."""


AGAIN_SECONDS = 10.0   # a Ctrl-C this soon after the last one that stopped a fit aborts
_last_stop = [None]    # time.monotonic() of that last one


@contextlib.contextmanager
def deferred_sigint():
    """While inside, a SIGINT (Ctrl-C) only sets ``.requested`` on the yielded object, so the
    training loop stops at the end of the current step instead of anywhere in the middle. A second
    SIGINT, in this fit or a later one, within AGAIN_SECONDS of the one that did that raises Aborted
    at once. Only in the main thread and when SIGINT has Python's default handler (otherwise nothing
    changes and a KeyboardInterrupt arrives as usual; fit catches it between steps)."""
    flag = _Interrupt()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return

    def handler(signum, frame):
        now = time.monotonic()
        if flag.requested or (_last_stop[0] is not None and now - _last_stop[0] < AGAIN_SECONDS):
            _last_stop[0] = None
            raise Aborted("a second Ctrl-C within %g s: stopped instead of ending the training step" % AGAIN_SECONDS)
        _last_stop[0] = now
        flag.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def rng_state():
    state = np.empty(4, dtype=np.uint64)
    lib.pn_get_rng_state(ffi.cast("uint64_t *", ffi.from_buffer(state)))
    return state


def set_rng_state(state):
    state = np.ascontiguousarray(state, dtype=np.uint64)
    lib.pn_set_rng_state(ffi.cast("uint64_t *", ffi.from_buffer(state)))


def _shapes(m):
    return [[l.inputs, l.outputs, l.b is not None] for l in m.layers]


def save(path, m, *, settings, epoch, step, history, since_best, best, best_weights, rng_start, train_rows,
         correct):
    """Write the checkpoint of fit's state after ``epoch`` (``step`` steps) to path, atomically."""
    meta = {"format": FORMAT, "version": VERSION, "settings": settings, "layers": _shapes(m), "epoch": epoch,
            "step": step, "epochs": history.epochs, "best_epoch": history.best_epoch, "since_best": since_best,
            "best": list(best)}
    arrays = {"metadata": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
              "rng_start": rng_start, "rng": rng_state(), "train_rows": train_rows,
              "losses": history.losses[:step], "correct": correct[:step]}
    for i, l in enumerate(m.layers):
        arrays["w%d" % i], arrays["v%d" % i] = l.w.data, l.v.data
        s = np.empty(l.w.data.size)
        sb = np.empty(0 if l.b is None else l.b.data.size)
        check(lib.pn_get_adam_moments(l._ptr, ffi.cast("double *", ffi.from_buffer(s)), s.size,
                                      ffi.cast("double *", ffi.from_buffer(sb)) if sb.size else ffi.NULL, sb.size))
        arrays["s%d" % i] = s.reshape(l.w.data.shape)
        if l.b is not None:
            arrays["b%d" % i], arrays["vb%d" % i], arrays["sb%d" % i] = l.b.data, l.vb.data, sb
        if best_weights is not None:
            arrays["best_w%d" % i] = best_weights[i][0]
            if best_weights[i][1] is not None:
                arrays["best_b%d" % i] = best_weights[i][1]
    path = os.fspath(path)
    with atomic_file(path, durable=True) as f:
        np.savez(f, **arrays)


def _read(path):
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(bytes(arrays.pop("metadata")).decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError("cannot resume: the checkpoint %s does not exist" % path) from None
    except (OSError, ValueError, KeyError, UnicodeDecodeError, EOFError) as e:
        raise CheckpointError("cannot resume from %s: not a readable pynet checkpoint (%s)" % (path, e)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError("cannot resume from %s: not a pynet checkpoint of version %d" % (path, VERSION))
    return meta, arrays


def rng_start(path):
    """The generator's state when the checkpointed run's fit started (to redraw its validation split)."""
    return _read(path)[1]["rng_start"]


def load(path, m, settings, train_rows):
    """Read the checkpoint at path and check it belongs to this run (model shapes, settings,
    training rows). Returns (metadata, arrays) without changing anything yet."""
    meta, arrays = _read(path)
    path = os.fspath(path)
    if meta["layers"] != _shapes(m):
        raise CheckpointError("cannot resume from %s: it is of a model with layers (inputs, outputs, bias) %s, "
                              "this model has %s" % (path, meta["layers"], _shapes(m)))
    # a training option added after the checkpoint was written counts as its default there
    saved = dict({k: v for k, v in dict(config.defaults(), last_batch="drop").items() if k in settings},
                 **meta["settings"])
    diff = ["%s %r (checkpoint) vs %r (now)" % (k, saved.get(k), settings.get(k))
            for k in sorted(set(saved) | set(settings)) if saved.get(k) != settings.get(k)]
    if diff:
        raise CheckpointError("cannot resume from %s: it was written with other settings: %s"
                              % (path, "; ".join(diff)))
    if not np.array_equal(arrays["train_rows"], train_rows):
        raise CheckpointError("cannot resume from %s: it was written for other training data (%d training rows "
                              "then, %d now, or another validation split)"
                              % (path, arrays["train_rows"].size, len(train_rows)))
    return meta, arrays


def restore(m, arrays):
    """Put the weights, biases and optimiser state of a loaded checkpoint into m."""
    for i, l in enumerate(m.layers):
        l.w, l.v = arrays["w%d" % i], arrays["v%d" % i]
        s = np.ascontiguousarray(arrays["s%d" % i], dtype=np.float64).reshape(-1)
        sb = np.empty(0)
        if l.b is not None:
            l.b, l.vb.data[...] = arrays["b%d" % i], arrays["vb%d" % i]
            sb = np.ascontiguousarray(arrays["sb%d" % i], dtype=np.float64)
        check(lib.pn_set_adam_moments(l._ptr, ffi.cast("double *", ffi.from_buffer(s)), s.size,
                                      ffi.cast("double *", ffi.from_buffer(sb)) if sb.size else ffi.NULL, sb.size))
    set_rng_state(arrays["rng"])


def best_weights(m, arrays):
    if "best_w0" not in arrays:
        return None
    return [(arrays["best_w%d" % i], arrays.get("best_b%d" % i)) for i in range(len(m.layers))]
