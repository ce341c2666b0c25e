"""pynet.data — examples and their labels: ``Data`` (X, one-hot y, class names), ``make_data``,
``random_batch``, ``split_validation`` and ``Standardizer``. The dataset loaders build their Data
here; nothing in this module knows about layers or models."""
import warnings

import numpy as np

from ._native import _index, _number, call, check, ffi, lib
from .matrix import Matrix, as_matrix, _adopt

__all__ = ["Data", "make_data", "random_batch", "data_handle", "split_validation", "Standardizer"]


class Data:
    """Examples ``X`` (one per row) and their labels ``y``, both Matrix: finite numbers, and each row
    of y the class probabilities of its example — one-hot truth (what the loaders and make_data give),
    or soft labels (non-negative, summing to 1), for which the cross-entropy and its gradient
    ``y − p`` hold as well. Anything else (NaN, a row of 5.0) is refused with a ValueError naming it."""

    __slots__ = ("X", "y", "labels", "__weakref__")

    def __init__(self, X, y, labels=None, *, _who="Data", _x_checked=False, _y_onehot=False):
        # _x_checked: the caller (make_data) has checked X already, in its one pass over X;
        # _y_onehot: y is one-hot rows the caller built from labels, so there is nothing to check
        self.X, self.y = as_matrix(X, "X"), as_matrix(y, "y")
        if self.X.rows != self.y.rows:
            raise ValueError("%s: X is %dx%d but y is %dx%d (one label row per example)"
                             % (_who, self.X.rows, self.X.cols, self.y.rows, self.y.cols))
        if not _x_checked:
            _check_finite(self.X, _who + ": X")
        if not _y_onehot:
            _check_finite(self.y, _who + ": y")
            _check_label_rows(self.y, _who)
        self.labels = list(labels) if labels is not None else None
        if self.labels is not None and len(self.labels) != self.y.cols:
            raise ValueError("data: %d labels (%s) for %d classes (y has %d columns)"
                             % (len(self.labels), _preview(self.labels), self.y.cols, self.y.cols))

    @property
    def _c(self):
        return ffi.new("data *", {"X": self.X._m[0], "y": self.y._m[0]})

    def head(self, n):
        """The first ``n`` rows (all of them if there are fewer) as a new Data sharing this one's
        memory (views, not copies), with the same class names."""
        n = _index(n, "n", 0)
        return Data(self.X.data[:n], self.y.data[:n], self.labels)

    @property
    def classes(self):
        """Each row's class index (argmax of y)."""
        return np.argmax(self.y.data, axis=1) if self.y.cols else np.zeros(self.y.rows, dtype=np.intp)

    def __len__(self):
        return self.X.rows

    def __repr__(self):
        return "Data(X %dx%d, y %dx%d)" % (self.X.rows, self.X.cols, self.y.rows, self.y.cols)


def make_data(X, y, classes=None, labels=None, *, _x_scan=None, _pixel_advice=None):
    """A Data object from numpy arrays. X is (n × features); y is either one-hot rows (n × classes,
    at least two columns) or n integer labels — 1-D or an (n, 1) column, as ``y.reshape(-1, 1)``
    gives — turned into one-hot rows with ``classes`` columns (default: max label + 1).
    X is shared, not copied, when it is already a C-contiguous float64 array. NaN or infinite
    values are refused: they would train silently into garbage (relu turns NaN into 0). X that
    looks like raw 0–255 pixels (uint8 or whole numbers, none below 0, the largest from 32 to 255) gets
    a UserWarning: such inputs train to huge losses; divide by 255 or use pynet.Standardizer."""
    # (_x_scan: scan_values of X's float64 values, from a caller that has refused non-finite X itself:
    # MLPClassifier, with its own message. One pass over X serves both checks. _pixel_advice: the
    # caller's words for the raw-pixel warning, (who, what to do).)
    given = X.data if isinstance(X, Matrix) else np.asarray(X)
    X = as_matrix(X, "X")
    scan = _x_scan
    if scan is None:
        scan = scan_values(X.data)
        _check_finite(X, "make_data: X", scan)   # before y is turned into one-hot rows; Data checks y
    _warn_if_raw_pixels(given, scan, *(_pixel_advice or ()))
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        # a column of labels, not one-hot rows of a single class (which could only ever say "class 0")
        y_arr = y_arr[:, 0]
    if y_arr.ndim == 1:
        if y_arr.size and not np.issubdtype(y_arr.dtype, np.integer):
            as_int = y_arr.astype(np.int64) if np.issubdtype(y_arr.dtype, np.number) else None
            if as_int is None or not np.array_equal(as_int, y_arr):
                raise ValueError("make_data: 1-D y must hold integer class labels, got dtype %s" % y_arr.dtype)
            y_arr = as_int
        if y_arr.size and y_arr.min() < 0:
            raise ValueError("make_data: class labels must be >= 0, found %d" % y_arr.min())
        top = int(y_arr.max()) + 1 if y_arr.size else 0
        k = top if classes is None else _index(classes, "classes", 1)
        if top > k:
            raise ValueError("make_data: label %d does not fit %d classes" % (top - 1, k))
        if k > 2**31 - 1:
            raise ValueError("make_data: the largest label, %d, would make %d classes; at most %d are "
                             "possible" % (top - 1, k, 2**31 - 1))
        try:
            onehot = np.zeros((y_arr.size, k))
        except MemoryError:
            raise MemoryError("make_data: one-hot rows for %d labels and %d classes need %.1f GB; is the "
                              "largest label (%d) right?" % (y_arr.size, k, y_arr.size * k * 8 / 1e9, top - 1)) from None
        onehot[np.arange(y_arr.size), y_arr] = 1.0
        y_m = Matrix._borrow(onehot)
        built = True
    elif y_arr.ndim == 2:
        y_m, built = as_matrix(y, "y"), False
    else:
        raise ValueError("make_data: y must be 1-D labels or 2-D one-hot rows, got shape %s" % (y_arr.shape,))
    return Data(X, y_m, labels, _who="make_data", _x_checked=True, _y_onehot=built)


class Scan(tuple):
    """What one pass over an array's values found (``scan_values``): ``min`` and ``max`` of its values
    that are not NaN (NaN if there are none), the flat index ``first_bad`` of its first NaN or infinite
    value (-1: none) and how many there are, ``bad``."""
    __slots__ = ()
    min = property(lambda self: self[0])
    max = property(lambda self: self[1])
    first_bad = property(lambda self: self[2])
    bad = property(lambda self: self[3])


def scan_values(a):
    """Scan of a numpy array's values as float64, in one threaded pass in C (pn_scan_values); an array
    that is not C-contiguous float64 is converted first."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    out = ffi.new("pn_scan_result *")
    check(lib.pn_scan_values(ffi.cast("double *", ffi.from_buffer(a)) if a.size else ffi.NULL, a.size, out))
    return Scan((float(out.min), float(out.max), int(out.first_bad), int(out.bad)))


PIXEL_ADVICE = ("Divide X by 255 (X / 255.0), or standardise the float64 X with one mean and std for all "
                "pixels: pynet.Standardizer.fit(X, per_feature=False).apply(X)")


def _warn_if_raw_pixels(arr, scan, who="make_data", advice=PIXEL_ADVICE):
    """UserWarning when X (the array given, ``arr``; ``scan``: scan_values of its values) looks like
    unscaled 8-bit pixels: whole numbers (any dtype), none below 0, the largest from 32 to 255. Scaled
    or standardised data is not whole; small counts (0-4, a one-hot code) stay below 32; a binary
    uint8 mask has a maximum of 1."""
    if arr.size == 0 or arr.dtype.kind not in "uif":
        return
    top, low = scan.max, scan.min
    if not (np.isfinite(top) and 32 <= top <= 255) or not low >= 0:
        return
    if arr.dtype == np.uint8:
        why = "X is uint8 with values up to %d" % top
    else:
        if arr.dtype.kind == "f" and not np.array_equal(arr, np.floor(arr)):
            return
        why = "X holds only whole numbers from %g to %g" % (low, top)
    warnings.warn("%s: %s, which looks like raw 0-255 pixels; a network usually trains badly on unscaled "
                  "pixels. %s" % (who, why, advice), UserWarning, stacklevel=3)


def _preview(items, n=4):
    items = [str(i) for i in items]
    return ", ".join(items[:n]) + (", ..." if len(items) > n else "")


def _check_finite(m, what, scan=None):
    """ValueError naming the first NaN or infinite entry of Matrix m, if any (``scan``: scan_values of
    m's values, when the caller has it)."""
    scan = scan_values(m.data) if scan is None else scan
    if scan.bad:
        r, c = divmod(scan.first_bad, m.cols)
        raise ValueError("%s has %r at row %d, column %d (%d non-finite values in all); only finite numbers "
                         "can be learnt from" % (what, float(m.data[r, c]), r, c, scan.bad))


def _check_label_rows(y, who):
    """ValueError naming the first row of Matrix y that is not a row of class probabilities."""
    a = y.data
    if not a.size:
        if y.rows and not y.cols:
            raise ValueError("%s: y is %dx0: each example needs a label row with one column per class" % (who, y.rows))
        return
    sums = a.sum(axis=1)
    bad = (np.abs(sums - 1.0) > 1e-6) | (a.min(axis=1) < 0)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError("%s: y (%dx%d) must hold one row of class probabilities per example: one-hot truth, or "
                         "soft labels (>= 0, summing to 1); row %d is [%s] (sum %g), and %d of %d rows are not "
                         "(for integer class labels pass a 1-D y to make_data)"
                         % (who, y.rows, y.cols, r, _preview(["%g" % v for v in a[r]], 6), sums[r],
                            int(bad.sum()), y.rows))


def _data(d):
    if not isinstance(d, Data):
        raise TypeError("expected a Data object (from make_data or a loader), got %s" % type(d).__name__)
    return d


def data_handle(d):
    """The C ``data`` struct of a Data (X and y by pointer, not copied), for library code that calls
    the C core itself; d must stay alive while it is used. TypeError if d is not a Data."""
    return _data(d)._c[0]


def random_batch(d, n):
    """n rows of d drawn uniformly with replacement, copied into a new Data."""
    d = _data(d)
    b = call(lib.random_batch, d._c[0], _index(n, "n", 0))
    return Data(_adopt(b.X), _adopt(b.y), d.labels)


class Standardizer:
    """Per-feature standardisation, x ← (x − mean) / std, with mean and std learnt from training
    data only. Features that never vary (MNIST's border pixels) get std 1, so they become 0."""

    def __init__(self, mean, std):
        """``mean`` and ``std``: 1-D, one value per feature (as ``fit`` and ``load_model`` give them)."""
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        if mean.ndim != 1 or std.ndim != 1 or mean.shape != std.shape or mean.size == 0:
            raise ValueError("Standardizer: mean and std must be 1-D with one value per feature, the same number "
                             "(at least one) in each; got shapes %s and %s" % (mean.shape, std.shape))
        self.mean, self.std = np.ascontiguousarray(mean), np.ascontiguousarray(std)
        if not (np.all(np.isfinite(self.mean)) and np.all(self.std > 0) and np.all(np.isfinite(self.std))):
            raise ValueError("Standardizer: mean must be finite and std finite and > 0")

    @classmethod
    def fit(cls, X, min_std=1e-8, per_feature=True):
        """Statistics of the training data X. ``per_feature=False`` uses one mean and one std over
        all of X for every feature: safer for pixels, where per-pixel statistics turn a rarely lit
        border pixel (tiny std) into a huge input (docs/RECIPES.md: MNIST training collapses)."""
        X = np.asarray(X.data if isinstance(X, Matrix) else X, dtype=np.float64)
        if X.ndim != 2 or X.size == 0:
            raise ValueError("Standardizer.fit: expected a non-empty 2-D array, got shape %s" % (X.shape,))
        if not per_feature:
            mean, std = float(X.mean()), float(X.std())
            return cls(np.full(X.shape[1], mean), np.full(X.shape[1], std if std >= min_std else 1.0))
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std[std < min_std] = 1.0
        return cls(mean, std)

    def apply(self, X):
        """Standardise X in place (a Matrix, Data, or writable float64 array) and return it."""
        target = X.X if isinstance(X, Data) else X
        arr = target.data if isinstance(target, Matrix) else target
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or not arr.flags.writeable:
            raise TypeError("Standardizer.apply works in place on a Matrix, a Data or a writable float64 array")
        if arr.ndim != 2 or arr.shape[1] != self.mean.size:
            raise ValueError("Standardizer.apply: X has shape %s but the standardizer was fit on %d features"
                             % (arr.shape, self.mean.size))
        arr -= self.mean
        arr /= self.std
        return X

    def __repr__(self):
        return "Standardizer(%d features)" % self.mean.size


def split_validation(d, fraction):
    """Split d into (training row indices, validation Data) with a random ``fraction`` of the rows
    held out, drawn from pynet's generator. The training rows are not copied."""
    d = _data(d)
    fraction = _number(fraction, "validation")
    n = d.X.rows
    n_val = int(round(n * fraction))
    if not 0 < fraction < 1 or n_val < 1 or n_val >= n:
        raise ValueError("validation fraction must leave at least one row on each side; got %g of %d rows"
                         % (fraction, n))
    perm = np.empty(n, dtype=np.int32)
    check(lib.shuffle_indices(ffi.cast("int *", ffi.from_buffer(perm)), n))
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    val = Data(d.X.data[val_idx], d.y.data[val_idx], d.labels)
    return train_idx.astype(np.int32), val
