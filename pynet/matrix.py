"""pynet.matrix — the homework's matrix module (src/matrix.py), backed by C.

A :class:`Matrix` is a C ``matrix``: ``rows × cols`` doubles in one contiguous row-major buffer.
``m.data`` is that buffer as a 2-D float64 numpy array — the same memory, not a copy — so
``m.data[i][j] = x`` writes the C matrix, exactly as the homework's pseudo-code does, and
``np.asarray(m)`` is zero-copy too. Wherever a function takes a Matrix, a 2-D numpy array (or
anything numpy can turn into one) is accepted as well.

Functions that return a new matrix (``make_matrix``, ``copy_matrix``, ...) return a Matrix that owns
its buffer; views of a layer's buffers (``layer.w``, ``forward_layer``'s result) keep the layer
alive instead.
"""
import numpy as np

from ._native import _index, _number, call, check, ffi, lib, numpy_view

__all__ = ["Matrix", "as_matrix", "make_matrix", "copy_matrix", "random_matrix", "transpose_matrix",
           "matrix_mult_matrix", "axpy_matrix", "gemm", "free_matrix"]


class Matrix:
    """A C matrix of doubles. ``Matrix(array_like)`` copies a 2-D array into a new C matrix."""

    __slots__ = ("_m", "_owner", "_view", "__weakref__")

    def __init__(self, data):
        arr = _to_2d(data, "Matrix")
        m = _owned(arr.shape[0], arr.shape[1])
        numpy_view(m._m.data, m.rows, m.cols, m)[...] = arr
        self._m, self._owner, self._view = m._m, m._owner, None

    # -- construction without copying (internal) ---------------------------------------------
    @classmethod
    def _wrap(cls, cmatrix, owner):
        """A Matrix over an existing C matrix struct whose memory ``owner`` keeps alive."""
        self = cls.__new__(cls)
        self._m = ffi.new("matrix *", cmatrix)
        self._owner = owner
        self._view = None
        return self

    @classmethod
    def _borrow(cls, arr):
        """A Matrix sharing the memory of a C-contiguous 2-D float64 array (kept alive)."""
        rows, cols = arr.shape
        buf = ffi.from_buffer("double[]", arr, require_writable=True) if arr.size else ffi.NULL
        return cls._wrap({"rows": rows, "cols": cols, "data": buf}, (arr, buf))

    # -- the homework's fields ----------------------------------------------------------------
    @property
    def rows(self):
        return self._m.rows

    @property
    def cols(self):
        return self._m.cols

    @property
    def shape(self):
        return (self._m.rows, self._m.cols)

    @property
    def data(self):
        """The matrix as a writable (rows, cols) float64 numpy array over the C memory."""
        # Made once and kept: a Matrix's struct never changes after _wrap, and homework code reads
        # m.data[i][j] in element loops, where a fresh view per access cost most of a training step.
        # The view holds the memory's owner, not this Matrix, so caching it makes no reference cycle.
        view = self._view
        if view is None:
            view = numpy_view(self._m.data, self._m.rows, self._m.cols, self._owner)
            if self._m.data != ffi.NULL:
                self._view = view
        return view

    @data.setter
    def data(self, values):
        view = self.data
        values = np.asarray(values, dtype=np.float64)
        if values.shape != view.shape:
            raise ValueError("cannot assign an array of shape %s to a %dx%d matrix"
                             % (values.shape, self.rows, self.cols))
        view[...] = values

    @property
    def __array_interface__(self):
        # np.asarray(m) goes through this: zero-copy, and the array's base is m itself.
        return self.data.__array_interface__

    def __len__(self):
        return self._m.rows

    def __getitem__(self, index):
        return self.data[index]

    def __setitem__(self, index, value):
        self.data[index] = value

    def __repr__(self):
        with np.printoptions(precision=4, threshold=50, edgeitems=3, suppress=True):
            body = np.array2string(self.data, prefix="Matrix(")
        return "Matrix(%s)  # %dx%d" % (body, self.rows, self.cols)


def _to_2d(data, what):
    """data as a 2-D float64 numpy array (maybe a copy), or a ValueError naming `what`."""
    if isinstance(data, Matrix):
        return data.data
    if np.iscomplexobj(data):
        raise ValueError("%s: expected real numbers, got complex values (take .real or abs() first)" % what)
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError("%s: expected a 2-D array of numbers, got %s (%s)" % (what, type(data).__name__, e)) from None
    if arr.ndim != 2:
        raise ValueError("%s: expected a 2-D array, got shape %s" % (what, arr.shape))
    if arr.shape[0] > 2**31 - 1 or arr.shape[1] > 2**31 - 1:
        raise ValueError("%s: shape %s is too large for a C matrix" % (what, arr.shape))
    return arr


def as_matrix(x, name="matrix", writable=False):
    """x as a Matrix, without copying when x is already a Matrix or a C-contiguous 2-D float64
    array. With ``writable=True`` (for functions that modify their argument in place) anything
    that would need a copy is refused, because the result could not reach the caller."""
    if isinstance(x, Matrix):
        return x
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim == 2 and x.flags.c_contiguous \
            and x.flags.writeable and max(x.shape) <= 2**31 - 1:
        return Matrix._borrow(x)
    if writable:
        raise TypeError("%s is modified in place, so it must be a pynet.Matrix or a writable, C-contiguous "
                        "2-D float64 numpy array; got %s" % (name, _describe(x)))
    arr = _to_2d(x, name)
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        arr = np.array(arr, order="C")
    return Matrix._borrow(arr)


def _describe(x):
    if isinstance(x, np.ndarray):
        return "a %s array of shape %s%s" % (x.dtype, x.shape, "" if x.flags.c_contiguous else " (not contiguous)")
    return type(x).__name__


def _owned(rows, cols):
    """A new zeroed C matrix owned by the returned Matrix."""
    return _adopt(call(lib.make_matrix, rows, cols))


def _adopt(cmatrix):
    """Take ownership of a C matrix the library just allocated."""
    owner = ffi.gc(cmatrix.data, lib.pn_free) if cmatrix.data != ffi.NULL else None
    return Matrix._wrap(cmatrix, owner)


def make_matrix(rows, cols):
    """A rows × cols matrix of zeros."""
    return _owned(_index(rows, "rows", 0), _index(cols, "cols", 0))


def copy_matrix(m):
    """A new matrix with m's values."""
    m = as_matrix(m, "m")
    return _adopt(call(lib.copy_matrix, m._m[0]))


def random_matrix(rows, cols, s):
    """A rows × cols matrix of values drawn uniformly from [-s, s] (seed with set_seed)."""
    return _adopt(call(lib.random_matrix, _index(rows, "rows", 0), _index(cols, "cols", 0), _number(s, "s")))


def transpose_matrix(m):
    """mᵀ as a new matrix."""
    m = as_matrix(m, "m")
    return _adopt(call(lib.transpose_matrix, m._m[0]))


def matrix_mult_matrix(a, b):
    """The product a·b as a new matrix; a is (n × k), b is (k × m)."""
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    return _adopt(call(lib.matrix_mult_matrix, a._m[0], b._m[0]))


def axpy_matrix(a, x, y):
    """a·x + y as a new matrix (x and y of the same shape)."""
    x, y = as_matrix(x, "x"), as_matrix(y, "y")
    return _adopt(call(lib.axpy_matrix, _number(a, "a"), x._m[0], y._m[0]))


_PRECISIONS = ("float64", "float32")


def gemm(a, b, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, out=None, reference=False,
         precision="float64"):
    """out = alpha·op(a)·op(b) + beta·out, where op transposes when its flag is set — the C core's
    GEMM. ``reference=True`` runs the plain triple loop instead (for checking). ``precision="float32"``
    is the arithmetic of fit's ``matmul="float32"``: a and b rounded to float32, sums in float32 within
    blocks of at most 256 terms of k, out in float64. Returns out (a new Matrix when out is None)."""
    if precision not in _PRECISIONS:
        raise ValueError("gemm: unknown precision %r; valid: %s" % (precision, ", ".join(_PRECISIONS)))
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    m, k = (a.cols, a.rows) if transpose_a else (a.rows, a.cols)
    k2, n = (b.cols, b.rows) if transpose_b else (b.rows, b.cols)
    if k != k2:
        raise ValueError("gemm: op(a) is %dx%d but op(b) is %dx%d (inner sizes must match)" % (m, k, k2, n))
    if out is None:
        out = _owned(m, n)
    else:
        out = as_matrix(out, "out", writable=True)
        if out.shape != (m, n):
            raise ValueError("gemm: out is %dx%d but op(a)·op(b) is %dx%d" % (out.rows, out.cols, m, n))
    fn = {("float64", False): lib.gemm, ("float64", True): lib.gemm_reference, ("float32", False): lib.gemm_f32,
          ("float32", True): lib.gemm_f32_reference}[precision, bool(reference)]
    check(fn(int(bool(transpose_a)), int(bool(transpose_b)), m, n, k, _number(alpha, "alpha"),
             a._m.data, max(a.cols, 1), b._m.data, max(b.cols, 1), _number(beta, "beta"),
             out._m.data, max(out.cols, 1)))
    return out


def free_matrix(m):
    """The homework's ``free_matrix(m)``, for code written against it (``free_matrix(l.out); l.out = out``).
    Python frees a matrix when its last reference goes, so this releases nothing itself: it is safe on
    any Matrix (a layer's own buffers included), a numpy array or None, any number of times, and the
    matrix stays usable afterwards."""
    if m is not None and not isinstance(m, (Matrix, np.ndarray)):
        raise TypeError("free_matrix: expected a Matrix, got %s" % type(m).__name__)
