"""The boundary between Python and pynet's C core: every call into ``pynet._core`` that can fail
goes through the helpers here, which turn the C library's status codes and messages into Python
exceptions, and build zero-copy numpy views of C memory that keep their owner alive.

Users never touch ``lib``; the homework-level modules (``pynet.matrix``, ``pynet.classifier``)
call it through these helpers.
"""
import operator
import os

import numpy as np

from .errors import DivergedError  # re-exported under its old name

# OpenMP threads that finish their share of a step wait for the next one. GNU OpenMP's default is to
# spin on the core for a while (300,000 spins) first, which on a busy machine takes the core from the
# thread doing the work: with one other process busy on a 2-core machine a two-thread training step
# took 1.5-8x its one-thread time. Sleeping at once (passive waits) costs a wake-up at every product
# instead, about 50 us on a virtual machine, 30-40% of a 784-256-10 step. So pynet spins briefly and
# then sleeps (GOMP_SPINCOUNT=10000, about 0.3 ms of `pause` here: longer than the gaps inside a step),
# and its training loops (train_model, fit) measure whether one thread or all is faster and run on the
# faster one, which under load is one thread (csrc/train.c; docs/PERFORMANCE.md has the figures).
# OpenMP reads these once, when its runtime loads (the import below, unless another library loaded the
# same runtime first); values the user set are kept (either variable set means no change to the other),
# and the settings are taken back afterwards so that they reach no other library (scikit-learn's own
# OpenMP runtime, say) nor child processes.
_WAIT_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}
_user_set_wait = any(k in os.environ for k in _WAIT_DEFAULTS)
if not _user_set_wait:
    os.environ.update(_WAIT_DEFAULTS)
try:
    from ._core import ffi, lib
except ModuleNotFoundError as e:   # a source checkout whose C core was never built here
    if e.name != __name__.rpartition(".")[0] + "._core":
        raise
    _here = os.path.dirname(os.path.abspath(__file__))
    raise ImportError(
        "pynet's compiled C core is missing from %s: this source checkout was not built in place (a "
        "plain `pip install .` builds it into site-packages, which this folder shadows). Run "
        "`pip install -e .` or `make` in %s." % (_here, os.path.dirname(_here))) from None
finally:
    if not _user_set_wait:
        for _k in _WAIT_DEFAULTS:
            os.environ.pop(_k, None)

__all__ = ["ffi", "lib", "DivergedError", "diverged", "check", "raise_last", "call", "numpy_view",
           "set_seed", "set_threads", "get_threads", "set_adaptive_threads", "training_threads", "build_info"]


def diverged(losses, first, n, fn, default_message):
    """The DivergedError for a training loop's PN_ERR_NONFINITE over steps first..first+n (losses is
    the whole run's array, indexed by step): the C core's message when a weight or the input went
    bad (it names the step, the layer and the input), else ``default_message(bad_step)``."""
    message = ffi.string(lib.pn_error_message()).decode("utf-8", "replace")
    lib.pn_clear_error()
    where = ffi.new("int[3]")
    lib.pn_last_divergence(where, where + 1, where + 2)
    step, layer, bad_input = int(where[0]), int(where[1]), bool(where[2])
    if not first <= step < first + n:   # cannot happen; keep the old way of finding it
        step = first + int(np.flatnonzero(~np.isfinite(losses[first:first + n]))[0])
    if layer >= 0 or bad_input:
        for core in ("train_steps: ", "train_model: "):   # the C loop's own name
            if message.startswith(core):
                message = message[len(core):]
        message = "%s: %s" % (fn, message)
    else:
        message = default_message(step)
    return DivergedError(message, iteration=step, loss=float(losses[step]), losses=losses[:step + 1].copy(),
                         layer=layer if layer >= 0 else None, bad_input=bad_input)


_EXCEPTIONS = {
    lib.PN_ERR_NOMEM: MemoryError,
    lib.PN_ERR_SHAPE: ValueError,
    lib.PN_ERR_VALUE: ValueError,
    lib.PN_ERR_NONFINITE: FloatingPointError,
}


def raise_last(code=None):
    """Raise the exception for the C library's last recorded error (and clear it)."""
    if code is None:
        code = lib.pn_error_code()
    message = ffi.string(lib.pn_error_message()).decode("utf-8", "replace")
    lib.pn_clear_error()
    raise _EXCEPTIONS.get(code, RuntimeError)(message or "pynet C core failed with status %d" % code)


def check(status):
    """Raise if a C function returned a non-zero status."""
    if status:
        raise_last(status)


def call(fn, *args):
    """Call a C function that signals failure only through the error state (matrix- or
    double-returning functions) and raise if it recorded one."""
    lib.pn_clear_error()
    result = fn(*args)
    code = lib.pn_error_code()
    if code:
        raise_last(code)
    return result


class _Keep:
    """The base object of a numpy view of C memory: it exposes the memory through
    ``__array_interface__`` and holds whatever owns that memory, so the view keeps it alive."""

    __slots__ = ("__array_interface__", "owner")


def numpy_view(ptr, rows, cols, owner):
    """A writable (rows, cols) float64 numpy array over the C doubles at ``ptr``, keeping ``owner``
    alive for as long as the array (or any view of it) exists."""
    if rows * cols == 0 or ptr == ffi.NULL:
        return np.zeros((rows, cols))   # nothing to share
    keep = _Keep()
    keep.owner = owner
    keep.__array_interface__ = {
        "data": (int(ffi.cast("uintptr_t", ptr)), False),
        "shape": (rows, cols),
        "typestr": "<f8",
        "version": 3,
    }
    return np.asarray(keep)


INT_MAX = 2**31 - 1   # the C core's sizes and counts are C ints


def _index(value, name, minimum=None, maximum=INT_MAX):
    """An integer argument (by default one that fits a C int), with a ValueError/TypeError that
    names it."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an integer, got %r" % (name, value)) from None
    if minimum is not None and value < minimum:
        raise ValueError("%s must be >= %d, got %d" % (name, minimum, value))
    if maximum is not None and value > maximum:
        raise ValueError("%s must be at most %d, got %d" % (name, maximum, value))
    return value


def _number(value, name):
    """A finite float argument."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError("%s must be a number, got %r" % (name, value)) from None
    if not np.isfinite(value):
        raise ValueError("%s must be finite, got %r" % (name, value))
    return value


def set_seed(seed):
    """Seed the one random generator behind make_layer, random_matrix, random_batch and
    train_model. The same seed gives the same run, bit for bit, for any thread count."""
    seed = _index(seed, "seed", 0, 2**64 - 1)
    if seed >= 2 ** 64:
        raise ValueError("seed must be < 2**64, got %d" % seed)
    lib.set_seed(seed)


def set_threads(n):
    """Use n threads in the C kernels (default: OMP_NUM_THREADS, else every core)."""
    check(lib.pn_set_threads(_index(n, "threads", 1)))


def get_threads():
    """The number of threads the C kernels use."""
    return lib.pn_get_threads()


def set_adaptive_threads(on=True):
    """Let train_model and fit run blocks of steps on one thread when that measures faster than all
    of them (on by default; results are the same bits either way). Returns the previous setting."""
    if not isinstance(on, (bool, np.bool_)):
        raise TypeError("set_adaptive_threads: on must be True or False, got %r" % (on,))
    return bool(lib.pn_set_adaptive_threads(int(on)))


def training_threads():
    """What this thread's last training loop measured: {"one": seconds per step on one thread,
    "all": on every thread (None where not measured), "last": the thread count of its last block}."""
    out = ffi.new("double[2]")
    last = ffi.new("int *")
    lib.pn_training_threads(out, out + 1, last)
    return {"one": out[0] or None, "all": out[1] or None, "last": int(last[0])}


def build_info():
    """How the C core was built and runs: OpenMP, threads, and the SIMD kernels in use
    ("avx512", "avx2" or "portable", chosen at run time from what the CPU supports)."""
    return {"openmp": bool(lib.pn_has_openmp()), "threads": get_threads(),
            "simd": ffi.string(lib.pn_simd()).decode()}
