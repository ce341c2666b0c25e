"""pynet.steps — the one loop that runs training steps of the C core from Python, for both
``train_model`` and ``fit``: the steps go to C's ``train_steps`` in chunks of about a tenth of a
second, so that a progress line stays fresh and Ctrl-C is honoured between chunks (chunking changes
nothing else: the C generator carries on); a non-finite loss or weight becomes a DivergedError, and
every error names the public function the user called."""
import contextlib
import time

from ._native import diverged, ffi, lib, raise_last
from .diagnostics import attach

__all__ = ["run_steps", "errors_from"]


@contextlib.contextmanager
def errors_from(fn, core="train_steps"):
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


def run_steps(handle, cd, cfg, losses, first, count, *, fn, diverged_message, rows=None, batch=0, correct=None,
              recorder=None, after_chunk=None, max_chunk=100000):
    """Run the training steps first .. first+count-1 of a run (numbered in the whole run, so that
    messages name the run's step) and return how many ran.

    ``handle``: (C model, lock), classifier.model_handle's; ``cd``: the C data; ``cfg``: a checked
    train_config. ``losses`` (float64) and ``correct`` (int32, or None) are the whole run's arrays,
    indexed by step. ``rows``: the int32 rows of these steps' batches, ``batch`` per step, or None
    for random batches (C's random_batch). ``recorder``: a diagnostics Recorder or None.
    ``after_chunk(done)`` is called after each chunk with the steps done so far; True stops the loop
    there. ``diverged_message(step)`` words a non-finite loss the C core did not explain."""
    cm, lock = handle
    losses_ptr = ffi.cast("double *", ffi.from_buffer(losses)) if len(losses) else ffi.NULL
    rows_ptr = ffi.cast("int *", ffi.from_buffer(rows)) if rows is not None else None
    correct_ptr = ffi.cast("int *", ffi.from_buffer(correct)) if correct is not None else None
    done, chunk = 0, 1
    while done < count:
        n = min(chunk, count - done)
        step = first + done
        if recorder:
            n = recorder.limit(step, n)
            recorder.before(step, n)
        t0 = time.perf_counter()
        with lock:   # threads sharing the model take turns (classifier.model_handle)
            status = lib.train_steps(cm, cd, cfg, step, n, ffi.NULL if rows_ptr is None else rows_ptr + done * batch,
                                     losses_ptr + step, ffi.NULL if correct_ptr is None else correct_ptr + step)
        elapsed = time.perf_counter() - t0
        if status == lib.PN_ERR_NONFINITE:
            raise attach(diverged(losses, step, n, fn, diverged_message), recorder)
        if status:
            with errors_from(fn):   # the C loop's messages say "train_steps: "
                raise_last(status)
        done += n
        if recorder:
            recorder.after(first + done)
        if after_chunk is not None and after_chunk(done):
            break
        chunk = max(1, min(max_chunk, int(n * 0.1 / max(elapsed, 1e-6))))
    return done
