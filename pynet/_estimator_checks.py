"""pynet._estimator_checks — what MLPClassifier (pynet/estimator.py) checks its inputs with and how
its messages name things: scikit-learn's validate_data without its own finite check, pynet's one
pass over X in its place, the settings named by the estimator's parameters, and the ``threads``
block. Imported only by pynet.estimator (so only once scikit-learn is wanted)."""
import contextlib
import re

import numpy as np

from ._native import get_threads, set_threads
from .data import scan_values


def validate_inputs(est, *args, **kwargs):
    """scikit-learn's input validation (``validate_data`` from 1.6 on, the method before), as float64
    in C order, without its check for NaN and infinity: that is a pass of its own over X (a sum, about
    23 ms for MNIST's 60,000 rows), which check_X does in the same pass as make_data's other check."""
    kwargs.update(dtype=np.float64, order="C")
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:   # scikit-learn < 1.6, where the argument had its old name
        return est._validate_data(*args, force_all_finite=False, **kwargs)
    return validate_data(est, *args, ensure_all_finite=False, **kwargs)


def check_X(X):
    """scan_values(X), after a ValueError naming the first NaN or infinite entry of the 2-D X if there
    is one (in words scikit-learn's own checks look for: "NaN", "inf")."""
    scan = scan_values(X)
    if scan.bad:
        r, c = divmod(scan.first_bad, X.shape[1])
        v = X[r, c]
        raise ValueError("MLPClassifier: input X contains %s at row %d, column %d (%d NaN or infinite values in "
                         "all); only finite numbers can be learnt from or predicted. Missing values need "
                         "imputing first (sklearn.impute.SimpleImputer in a Pipeline, say) or their rows dropped"
                         % ("NaN" if np.isnan(v) else "%sinf" % ("-" if v < 0 else ""), r, c, scan.bad))
    return scan


# pynet.fit's names for the settings whose estimator parameter is named otherwise
_PARAM_NAMES = {"rate": "learning_rate_init", "batch": "batch_size", "l2": "alpha", "beta1": "beta_1",
                "beta2": "beta_2", "eps": "epsilon"}


@contextlib.contextmanager
def in_our_words():
    """A plain ValueError or TypeError from pynet.fit or make_mlp about a setting comes out in the
    estimator's words: "MLPClassifier: learning_rate_init must be > 0, got 0 (pynet.fit's rate)"
    rather than "fit: rate must be > 0, got 0". The exception itself is kept."""
    try:
        yield
    except (ValueError, TypeError) as e:
        if type(e) in (ValueError, TypeError) and len(e.args) == 1 and isinstance(e.args[0], str):
            message = e.args[0]
            for prefix in ("fit: ", "make_mlp: "):
                if message.startswith(prefix):
                    message = message[len(prefix):]
            word = message.split(" ", 1)[0]
            if word in _PARAM_NAMES:
                message = "%s%s (pynet.fit's %s)" % (_PARAM_NAMES[word], message[len(word):], word)
            else:   # names that are never ordinary words, wherever they stand ("0 <= beta1, beta2 < 1")
                message = re.sub(r"\b(beta1|beta2|eps|l2)\b", lambda w: _PARAM_NAMES[w.group(1)], message)
            if not message.startswith("MLPClassifier"):
                e.args = ("MLPClassifier: " + message,)
        raise


@contextlib.contextmanager
def kernel_threads(n):
    """Run the C kernels on n threads inside the block (None: leave the setting alone)."""
    if n is None:
        yield
        return
    before = get_threads()
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)
