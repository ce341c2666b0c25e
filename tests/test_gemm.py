"""The fast GEMM and the kernels around it against independent references.

gemm (cache-blocked, packed, SIMD microkernels, threaded) is compared with NumPy's ``@`` and with the
library's own plain triple loop, gemm_reference, over shapes that hit every edge of the blocking:
empty and single rows/columns, odd sizes around the microkernel tiles (AVX-512 8 × 16, AVX2 6 × 8,
portable 4 × 8) and the cache blocks (k blocks of up to 256, row blocks of 144, column blocks of
1024), long k, all four transpose combinations, alpha/beta, row strides longer than the rows, and
output windows inside a larger buffer. Every test runs on each kernel the CPU has.

Tolerance: a sum of k products computed in any order differs from the exact one by at most about
k·u·Σ|a||b| (u = 2⁻⁵³), so two implementations differ by at most twice that; the tests allow
4·k·u·(|op(A)|·|op(B)|) + 4·u·|beta·C|, element by element.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pynet
from pynet._native import ffi, lib

import reference as ref
from simd_levels import ALL_KERNELS, KERNELS  # noqa: E402

U = 2.0 ** -53



@pytest.fixture(params=KERNELS)
def kernel(request):
    assert lib.pn_set_simd(request.param.encode()) == 0
    yield request.param
    lib.pn_set_simd(b"auto")


@pytest.fixture
def threads():
    before = pynet.get_threads()
    yield
    pynet.set_threads(before)


def ptr(x):
    """A double* to x's first element (x is kept alive by the caller)."""
    return ffi.cast("double *", x.ctypes.data) if x.size else ffi.NULL


def ld(x):
    """The row stride of a row-major 2-D array or view, in doubles."""
    assert x.size == 0 or x.strides[1] == 8
    return max(x.strides[0] // 8 if x.shape[0] > 1 else 0, x.shape[1], 1)


def run_gemm(ta, tb, A, B, C, alpha=1.0, beta=0.0, fn=None):
    """C (possibly a window of a wider buffer) ← alpha·op(A)·op(B) + beta·C, with the arrays' own
    row strides as lda, ldb, ldc."""
    m, n = C.shape
    k = A.shape[0] if ta else A.shape[1]
    status = (fn or lib.gemm)(int(ta), int(tb), m, n, k, alpha, ptr(A), ld(A), ptr(B), ld(B), beta, ptr(C), ld(C))
    if status:
        pynet._native.raise_last(status)


def operands(rng, ta, tb, m, n, k, pad=0):
    """op(A) is m × k and op(B) k × n, stored transposed when asked, with `pad` extra columns of
    garbage in every row (so lda/ldb exceed the row length)."""
    def stored(rows, cols):
        full = rng.standard_normal((rows, cols + pad))
        full[:, cols:] = np.nan   # any read of the padding would poison the result
        return full[:, :cols]
    A = stored(k, m) if ta else stored(m, k)
    B = stored(n, k) if tb else stored(k, n)
    return A, B


def op(x, t):
    return x.T if t else x


def bound(A, B, ta, tb, k, alpha=1.0, beta=0.0, C0=None):
    mag = np.abs(op(A, ta)) @ np.abs(op(B, tb)) if k else np.zeros((op(A, ta).shape[0], op(B, tb).shape[1]))
    b = 4 * max(k, 1) * U * abs(alpha) * mag + 1e-300
    if C0 is not None and beta != 0:
        b = b + 4 * U * np.abs(beta * C0)
    return b


SHAPES = [
    (0, 0, 0), (0, 5, 3), (5, 0, 3), (5, 3, 0), (1, 1, 1), (1, 17, 1), (17, 1, 1), (1, 1, 300),
    (2, 3, 4), (6, 8, 5), (7, 9, 13), (8, 16, 3), (9, 17, 11), (5, 15, 6), (12, 24, 7), (13, 10, 33),
    (16, 32, 64), (31, 33, 35), (128, 10, 785), (785, 10, 128), (128, 32, 785), (785, 32, 128),
    (143, 65, 255), (144, 64, 256), (145, 66, 257), (100, 70, 513), (3, 5, 2000),
]


@pytest.mark.parametrize("ta", [0, 1])
@pytest.mark.parametrize("tb", [0, 1])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_matches_numpy_and_reference(kernel, ta, tb, m, n, k):
    rng = np.random.default_rng(m * 10007 + n * 101 + k + 7 * ta + 13 * tb)
    A, B = operands(rng, ta, tb, m, n, k)
    expected = op(A, ta) @ op(B, tb)
    C = np.full((m, n), np.nan)   # beta = 0 must ignore whatever C held, NaN included
    run_gemm(ta, tb, A, B, C)
    R = np.full((m, n), np.nan)
    run_gemm(ta, tb, A, B, R, fn=lib.gemm_reference)
    tol = bound(A, B, ta, tb, k)
    assert np.all(np.abs(C - expected) <= tol), np.max(np.abs(C - expected) / tol)
    assert np.all(np.abs(C - R) <= tol)


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("m,n,k", [(300, 1030, 40), (1030, 40, 300), (200, 300, 600)])
def test_gemm_larger_than_one_cache_block(kernel, ta, tb, m, n, k):
    rng = np.random.default_rng(5)
    A, B = operands(rng, ta, tb, m, n, k)
    C = np.empty((m, n))
    run_gemm(ta, tb, A, B, C)
    expected = op(A, ta) @ op(B, tb)
    assert np.all(np.abs(C - expected) <= bound(A, B, ta, tb, k))


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (-0.5, 0.25), (2.0, -1.0), (0.0, 0.5), (0.0, 0.0),
                                        (1.0, 0.0), (0.75, 1.0)])
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_alpha_beta(kernel, alpha, beta, ta, tb):
    rng = np.random.default_rng(11)
    m, n, k = 37, 45, 600   # three k blocks: beta applies in the first, the later ones add
    A, B = operands(rng, ta, tb, m, n, k)
    C0 = rng.standard_normal((m, n))
    C = C0.copy()
    run_gemm(ta, tb, A, B, C, alpha, beta)
    expected = alpha * (op(A, ta) @ op(B, tb)) + beta * C0
    assert np.all(np.abs(C - expected) <= bound(A, B, ta, tb, k, alpha, beta, C0))


def test_beta_zero_ignores_nan_and_alpha_zero_scales(kernel):
    rng = np.random.default_rng(3)
    A, B = operands(rng, 0, 0, 20, 30, 600)   # 600: three k blocks, so later blocks add to C
    C = np.full((20, 30), np.nan)
    run_gemm(0, 0, A, B, C, 1.0, 0.0)
    assert np.all(np.isfinite(C))
    C0 = rng.standard_normal((20, 30))
    C = C0.copy()
    run_gemm(0, 0, A, B, C, 0.0, 0.5)   # alpha = 0: no product at all, C ← beta·C
    np.testing.assert_array_equal(C, 0.5 * C0)
    C = np.full((20, 30), np.nan)
    run_gemm(0, 0, A, B, C, 0.0, 0.0)
    np.testing.assert_array_equal(C, np.zeros((20, 30)))


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("m,n,k", [(9, 17, 5), (37, 45, 260), (130, 33, 300)])
def test_strided_operands_and_output_window(kernel, ta, tb, m, n, k):
    """lda, ldb longer than the rows (padding full of NaN, which must never be read), and C a
    window of a wider buffer whose other columns must stay untouched."""
    rng = np.random.default_rng(17)
    A, B = operands(rng, ta, tb, m, n, k, pad=5)
    buf = np.full((m, n + 7), -3.0)
    C = buf[:, 2:2 + n]
    C[...] = np.nan
    run_gemm(ta, tb, A, B, C)
    expected = op(A, ta) @ op(B, tb)
    assert np.all(np.abs(C - expected) <= bound(A, B, ta, tb, k))
    np.testing.assert_array_equal(buf[:, :2], -3.0)
    np.testing.assert_array_equal(buf[:, 2 + n:], -3.0)


def test_same_bits_for_any_thread_count_and_every_call(kernel, threads):
    """Each element of C is summed by one thread in a fixed order: 1 or 2 threads, or a repeat,
    give identical bits."""
    rng = np.random.default_rng(23)
    for ta, tb, m, n, k in [(0, 0, 128, 32, 785), (1, 0, 785, 32, 128), (0, 1, 128, 785, 32),
                            (0, 0, 300, 1030, 300), (1, 1, 97, 61, 513)]:
        A, B = operands(rng, ta, tb, m, n, k)
        runs = []
        for t in (1, 2, 2, 1):
            pynet.set_threads(t)
            C = np.empty((m, n))
            run_gemm(ta, tb, A, B, C)
            runs.append(C)
        for C in runs[1:]:
            np.testing.assert_array_equal(C, runs[0])


def test_python_gemm_wrapper_and_matrix_mult_matrix(kernel):
    rng = np.random.default_rng(29)
    a, b = rng.standard_normal((70, 90)), rng.standard_normal((90, 50))
    tol = bound(a, b, 0, 0, 90)
    assert np.all(np.abs(pynet.matrix_mult_matrix(a, b).data - a @ b) <= tol)
    out = pynet.gemm(a.T.copy(), b, transpose_a=True, alpha=2.0)
    assert np.all(np.abs(out.data - 2 * (a @ b)) <= 2 * tol)
    ref = pynet.gemm(a, b, reference=True)
    assert np.all(np.abs(ref.data - a @ b) <= tol)


def test_bad_arguments_are_reported():
    a = np.zeros((3, 4))
    pa = ptr(a)
    assert lib.gemm(0, 0, -1, 3, 4, 1.0, pa, 4, pa, 3, 0.0, pa, 3) == lib.PN_ERR_SHAPE
    assert "sizes must be >= 0" in ffi.string(lib.pn_error_message()).decode()
    lib.pn_clear_error()
    assert lib.gemm(0, 0, 3, 3, 4, 1.0, pa, 3, pa, 3, 0.0, pa, 3) == lib.PN_ERR_SHAPE   # lda 3 < k = 4
    lib.pn_clear_error()
    assert lib.gemm(0, 0, 3, 3, 4, 1.0, ffi.NULL, 4, pa, 3, 0.0, pa, 3) == lib.PN_ERR_VALUE
    lib.pn_clear_error()


def test_unknown_or_unavailable_kernel_is_refused():
    assert lib.pn_set_simd(b"sse9") == lib.PN_ERR_VALUE
    assert "unknown kernel" in ffi.string(lib.pn_error_message()).decode()
    lib.pn_clear_error()
    assert lib.pn_set_simd(b"auto") == 0
    assert ffi.string(lib.pn_simd()).decode() in ALL_KERNELS
    assert pynet.build_info()["simd"] == ffi.string(lib.pn_simd()).decode()


def test_no_read_past_the_end_of_any_operand():
    """Edge tiles load under masks; put every operand flush against an unreadable page and run
    shapes whose last rows and columns are partial tiles. A read past the end would crash the
    child process."""
    code = textwrap.dedent("""
        import ctypes, mmap, sys
        import numpy as np
        from pynet._native import ffi, lib
        libc = ctypes.CDLL(None)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        PAGE = mmap.PAGESIZE
        keep = []
        def at_page_end(shape, rng):
            n = int(np.prod(shape))
            pages = (n * 8 + PAGE - 1) // PAGE + 1
            buf = mmap.mmap(-1, pages * PAGE)
            arr = np.frombuffer(buf, dtype=np.float64)
            addr = arr.ctypes.data
            assert libc.mprotect(addr + (pages - 1) * PAGE, PAGE, 0) == 0   # PROT_NONE
            end = (pages - 1) * PAGE // 8
            view = arr[end - n:end].reshape(shape)
            view[...] = rng.standard_normal(shape)
            keep.append((buf, arr))
            return view
        rng = np.random.default_rng(1)
        for name in sys.argv[1:]:
            assert lib.pn_set_simd(name.encode()) == 0
            for ta in (0, 1):
                for tb in (0, 1):
                    for m, n, k in [(13, 10, 7), (7, 3, 5), (9, 17, 300), (130, 21, 260), (5, 70, 9)]:
                        A = at_page_end((k, m) if ta else (m, k), rng)
                        B = at_page_end((n, k) if tb else (k, n), rng)
                        C = at_page_end((m, n), rng)
                        p = lambda x: ffi.cast("double *", ffi.from_buffer(x))
                        ref = (A.T if ta else A) @ (B.T if tb else B)
                        for fn in (lib.gemm, lib.gemm_f32):   # float64, and float32 products
                            for beta in (0.0, 1.0):
                                assert fn(ta, tb, m, n, k, 1.0, p(A), A.shape[1], p(B), B.shape[1], beta,
                                          p(C), n) == 0
                            assert np.allclose(C, 2 * ref, rtol=1e-4, atol=1e-4)   # beta = 1 added it to itself
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code] + KERNELS, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


# ---- the kernels gemm fuses ------------------------------------------------------------------

ACTS = ["LINEAR", "LOGISTIC", "RELU", "LRELU", "SOFTMAX", "TANH"]


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("batch,inputs,outputs", [(1, 3, 1), (128, 785, 32), (67, 50, 10), (130, 300, 1030)])
def test_forward_layer_fuses_the_activation(kernel, threads, act, batch, inputs, outputs):
    """forward_layer applies f to each tile as gemm finishes it; the result must match f applied
    to NumPy's product, and be the same bits for 1 and 2 threads and as activate_matrix on the
    plain product."""
    if act == "TANH" and not hasattr(pynet.ACTIVATION, "TANH"):
        pytest.skip("no TANH in this build")
    rng = np.random.default_rng(batch + inputs + outputs)
    X = rng.standard_normal((batch, inputs))
    l = pynet.make_layer(inputs, outputs, act)
    outs = []
    for t in (1, 2):
        pynet.set_threads(t)
        outs.append(pynet.forward_layer(l, X).data.copy())
    np.testing.assert_array_equal(outs[0], outs[1])
    z = pynet.matrix_mult_matrix(X, l.w)
    pynet.activate_matrix(z, act)
    np.testing.assert_array_equal(outs[0], z.data)
    expected = ref.activate(X @ l.w.data, act)
    # the product is within the gemm bound; f is 1-Lipschitz-ish here and exp is within 1 ulp
    tol = 8 * inputs * U * (np.abs(X) @ np.abs(l.w.data)) + 4 * U * np.abs(expected) + 1e-300
    assert np.all(np.abs(outs[0] - expected) <= tol * (4 if act in ("LOGISTIC", "SOFTMAX", "TANH") else 1))


@pytest.mark.parametrize("act", ["LOGISTIC", "SOFTMAX"])
def test_vectorised_exp_is_accurate_and_handles_extremes(kernel, act):
    """The logistic and softmax use a vectorised exp (SLEEF's 1-ulp method): compare with NumPy
    far into both tails, including overflow, underflow, subnormal results, infinities and NaN."""
    x = np.concatenate([np.linspace(-800, 800, 4001), np.linspace(-1, 1, 999), [0.0, -0.0, np.inf, -np.inf],
                        [-745.0, -744.0, -708.5, 708.5, 709.7, 709.8, 710.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        if act == "LOGISTIC":
            m = x.reshape(-1, 1).copy()
            pynet.activate_matrix(m, act)
            expected = 1.0 / (1.0 + np.exp(-x))
            got = m[:, 0]
        else:   # a two-column softmax [x, 0] is e^x / (e^x + 1), exercising exp(x − max)
            m = np.stack([x, np.zeros_like(x)], axis=1)
            pynet.activate_matrix(m, act)
            expected = ref.activate(np.stack([x, np.zeros_like(x)], axis=1), act)[:, 0]
            got = m[:, 0]
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=8 * U, atol=1e-300)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    nan_in = np.array([[np.nan, 1.0]])
    pynet.activate_matrix(nan_in, act)
    assert np.isnan(nan_in[0, 0])
